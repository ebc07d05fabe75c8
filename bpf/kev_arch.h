/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The registers a task entered the kernel with, as the inode programs read them: the
 * number of the system call being served and its first four arguments. Where they are is
 * the one thing the BPF code knows of the architecture (__TARGET_ARCH_*); what a number
 * means, the library says (kev_inode_calls).
 *
 * Every field is a CO-RE flavour checked with bpf_core_field_exists(). On a kernel without
 * it (an object built for another architecture, say) the check loads as a constant 0, the
 * verifier never walks the read, and the programs load all the same: they then see no
 * system call (number -1, arguments 0), and inode events come coarser and unnamed.
 *
 * vmlinux.h is x86-64's, so it lacks the types bpf_tracing.h reads another architecture's
 * arguments through: those are declared here, with just the fields it reads. The build is
 * little-endian (-target bpf on x86-64): a big-endian architecture needs -target bpfeb too.
 */
#ifndef KEV_ARCH_H
#define KEV_ARCH_H

#if defined(__TARGET_ARCH_x86)

struct pt_regs___kev_x86 {
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

/* orig_ax is x86-64's own: a kernel with it has di, si, dx and r10, the arguments. */
#define KEV_SYSCALL_REGS() bpf_core_field_exists(struct pt_regs___kev_x86, orig_ax)
#define KEV_SYSCALL_NR(r)  ((long)BPF_CORE_READ((const struct pt_regs___kev_x86 *)(r), orig_ax))

#elif defined(__TARGET_ARCH_arm64)

/*
 * bpf_tracing.h reads arguments 2 to 4 through struct user_pt_regs: a flavour of it under
 * that name, so that an arm64 vmlinux.h, which has the real one, builds too. Include this
 * header after vmlinux.h.
 */
#define user_pt_regs user_pt_regs___kev

struct user_pt_regs___kev {
	__u64 regs[31];
} __attribute__((preserve_access_index));

struct pt_regs___kev_arm64 {
	int syscallno; /* -1 (NO_SYSCALL) outside a system call */
} __attribute__((preserve_access_index));

/* pt_regs___arm64 (orig_x0, the first argument) is bpf_tracing.h's. */
#define KEV_SYSCALL_REGS()                                                                         \
	(bpf_core_field_exists(struct pt_regs___kev_arm64, syscallno) &&                           \
	 bpf_core_field_exists(struct user_pt_regs___kev, regs) &&                                 \
	 bpf_core_field_exists(struct pt_regs___arm64, orig_x0))
#define KEV_SYSCALL_NR(r) ((long)BPF_CORE_READ((const struct pt_regs___kev_arm64 *)(r), syscallno))

#endif

/* The system call the registers r entered the kernel with, -1: none, or not known here. */
static __always_inline long kev_syscall_nr(const struct pt_regs *r)
{
#ifdef KEV_SYSCALL_NR
	if (r && KEV_SYSCALL_REGS())
		return KEV_SYSCALL_NR(r);
#endif
	return -1;
}

/* Its argument i (0 to 3), 0 when not known here. */
static __always_inline __u64 kev_syscall_arg(const struct pt_regs *r, int i)
{
#ifdef KEV_SYSCALL_NR
	if (!r || !KEV_SYSCALL_REGS())
		return 0;
	switch (i) {
	case 0:
		return PT_REGS_PARM1_CORE_SYSCALL(r);
	case 1:
		return PT_REGS_PARM2_CORE_SYSCALL(r);
	case 2:
		return PT_REGS_PARM3_CORE_SYSCALL(r);
	}
	return PT_REGS_PARM4_CORE_SYSCALL(r);
#else
	return 0;
#endif
}

/*
 * A load that later loads may not pass: x86 keeps loads in order, so only the compiler must
 * be held; elsewhere a fetching atomic, fully ordered in BPF's memory model, is the fence.
 */
#if defined(__TARGET_ARCH_x86)
#define KEV_LOAD_ORDERED(p)                                 \
	({                                                  \
		__u32 __v = *(volatile __u32 *)(p);         \
		asm volatile("" ::: "memory");              \
		__v;                                        \
	})
#else
#define KEV_LOAD_ORDERED(p) ((__u32)__sync_fetch_and_add((p), 0))
#endif

#endif /* KEV_ARCH_H */
