/* SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause */
/*
 * A socket storage map of someone other than libkevent, made from userspace: an int key (the
 * descriptor) and a value of value_size bytes. The kernel wants BTF for both. Used by the
 * test of storage teardown (attach.c) and by the registration benchmark's floor
 * (bench/register.c), so it needs nothing of either harness.
 */
#ifndef KT_SK_STORAGE_MAP_H
#define KT_SK_STORAGE_MAP_H

#include <errno.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

/* The map's descriptor, or a negative errno. */
static inline int kt_sk_storage_map(const char *name, __u32 value_size)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	struct btf *btf = btf__new_empty();
	int key, byte, val, map;

	if (!btf)
		return -errno;
	key = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	byte = btf__add_int(btf, "unsigned char", 1, 0);
	val = btf__add_array(btf, key, byte, value_size);
	if (key < 0 || byte < 0 || val < 0) {
		map = -EINVAL;
		goto out;
	}
	if (btf__load_into_kernel(btf)) {
		map = -errno;
		goto out;
	}
	opts.btf_fd = btf__fd(btf);
	opts.btf_key_type_id = (__u32)key;
	opts.btf_value_type_id = (__u32)val;
	map = bpf_map_create(BPF_MAP_TYPE_SK_STORAGE, name, sizeof(int), value_size, 0, &opts);
	if (map < 0)
		map = -errno;
out:
	btf__free(btf);
	return map;
}

#endif /* KT_SK_STORAGE_MAP_H */
