#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
#
# tests/vm/run.sh KERNEL: boots one of Debian 12's kernels in qemu and runs the test suite
# inside it, against this work tree, which the guest sees read-only.
#
#   KERNEL   6.1 (bookworm's own kernel) or 6.12 (bookworm-backports)
#   tests/vm/run.sh --deps   installs only what the VM needs (qemu, busybox, cpio), if missing
#
# Environment:
#   VMTEST_CMD      the command run inside the guest, by bash, from the top of the work tree
#                   (default: tests/run-suite.sh build/kevent-tests, the suite once per
#                   path as make test runs it; the binary is built on the host first)
#   VMTEST_TIMEOUT  seconds before a guest that has not powered off is killed (default 3600)
#   VMTEST_MEM      guest memory (default 4G); VMTEST_CPUS guest CPUs (default 2)
#   V=1             the commands, and the guest's whole console (kernel messages included)
#   CI, KEVENT_*    passed on into the guest as they are
#
# The exit status is the guest command's, or 124 when the guest timed out, 125 when it
# never got as far as running the command.
#
# How it works: the kernel package is downloaded with apt-get (nothing else is fetched) into
# build/vm/KERNEL/ and unpacked there. A small initramfs (busybox, the virtio and 9p modules,
# tests/vm/init) mounts the host's root file system read-only over 9p, so the guest has the
# host's binaries and libraries (libbpf, Criterion, bpftool) and this work tree at the same
# path, and chroots into it to run the command. Output comes back on the serial console; the
# exit status through a second, writable 9p export (build/vm/KERNEL/out/).
#
# KVM guests hang after the boot loader on the project's machines, so qemu runs under TCG.
set -euo pipefail

VM_DEPS=(qemu-system-x86 busybox-static cpio xz-utils e2fsprogs)
# Used when the package index names no 6.1 image (for instance before any apt-get update).
DEFAULT_61=linux-image-6.1.0-50-amd64-unsigned

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

V=${V:-0}
log() { printf '  %-8s %s\n' "$1" "$2" >&2; }
run() {
	[ "$V" = 1 ] && echo "+ $*" >&2
	"$@"
}
die() {
	echo "vmtest: $*" >&2
	exit 125
}

# Installs the packages the VM needs, only those missing; apt-get update only if needed.
vm_deps() {
	local missing=() p
	for p in "${VM_DEPS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log DEPS "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# The host's Debian mirror, from its own sources (deb822 or one-line format), so that the
# backports index comes from the same archive.
debian_mirror() {
	local uri
	uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
			-e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' |
		grep -v -e security -e '^cdrom:' | head -n 1)
	echo "${uri:-http://deb.debian.org/debian}"
}

# apt options for a private index of bookworm-backports under build/vm/apt/: the host's
# own apt configuration, lists and caches stay untouched.
APT_BPO=()
setup_backports() {
	local d=$top/build/vm/apt
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror)" \
		"bookworm-backports main" >"$d/sources.list"
	APT_BPO=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
	# The index is refreshed at most once a day.
	if [ -z "$(find "$d/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440)" ]; then
		log APT "bookworm-backports index"
		run apt-get "${APT_BPO[@]}" -qq update
	fi
}

# Prints the name of the newest kernel image package of series $1 in the index.
kernel_package() {
	local pat name
	case $1 in
	6.1)
		pat='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$'
		name=$(apt-cache search --names-only "$pat" | cut -d' ' -f1 | sort -V | tail -n 1)
		if [ -z "$name" ]; then
			# A machine whose index was never fetched.
			apt-get -qq update >&2
			name=$(apt-cache search --names-only "$pat" | cut -d' ' -f1 |
				sort -V | tail -n 1)
		fi
		echo "${name:-$DEFAULT_61}"
		;;
	6.12)
		pat='^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$'
		name=$(apt-cache "${APT_BPO[@]}" search --names-only "$pat" | cut -d' ' -f1 |
			sort -V | tail -n 1)
		[ -n "$name" ] || die "no 6.12 image in the bookworm-backports index"
		echo "$name"
		;;
	*) die "KERNEL must be 6.1 or 6.12, not '$1'" ;;
	esac
}

# Downloads and unpacks package $2 into directory $1 (once), decompresses the modules and
# writes modules.dep: Debian's package leaves both to its postinst, and busybox's modprobe
# reads neither compressed modules nor a missing modules.dep.
fetch_kernel() {
	local dir=$1 pkg=$2 old deb
	old=$(cat "$dir/.unpacked" 2>/dev/null || true)
	if [ "$old" = "$pkg" ]; then
		return 0
	fi
	rm -rf "$dir/new"
	mkdir -p "$dir/new"
	log APT "$pkg"
	# As root, apt-get download otherwise drops to the _apt user, who cannot write here.
	if ! (cd "$dir/new" &&
		run apt-get "${APT_BPO[@]}" -o APT::Sandbox::User=root -qq download "$pkg"); then
		rm -rf "$dir/new"
		# The archive drops superseded kernels: an old index may name one it no longer has.
		[ -n "$old" ] || die "cannot download $pkg (is the package index stale? apt-get update)"
		echo "vmtest: cannot download $pkg: using $old, unpacked before" >&2
		return 0
	fi
	rm -rf "$dir/root" "$dir"/*.deb "$dir/.unpacked"
	mv "$dir"/new/*.deb "$dir/"
	rmdir "$dir/new"
	deb=$(ls "$dir"/*.deb)
	log UNPACK "$deb"
	run dpkg-deb -x "$deb" "$dir/root"
	find "$dir/root/lib/modules" -name '*.ko.xz' -print0 | xargs -0 -r -n 64 -P 2 xz -d
	run busybox depmod -b "$dir/root" "$(ls "$dir/root/lib/modules")"
	echo "$pkg" >"$dir/.unpacked"
}

# Builds $1/initramfs.cpio.gz: busybox, tests/vm/init, and the modules that mounting the
# host over virtio 9p needs, with their dependencies (from modules.dep). The guest loads
# every other module later from the unpacked package, which it sees through 9p.
make_initramfs() {
	local dir=$1 kver=$2 mods=$1/root/lib/modules/$2 ird=$1/initramfs m f
	rm -rf "$ird"
	mkdir -p "$ird"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,host,out,lib/modules/"$kver"}
	cp /bin/busybox "$ird/bin/busybox"
	cp tests/vm/init "$ird/init"
	chmod 755 "$ird/init"
	cp "$mods"/modules.{dep,alias,symbols,builtin,order} "$ird/lib/modules/$kver/"
	for m in virtio_pci 9pnet_virtio 9p; do
		grep -q "/$m\.ko$" "$mods/modules.builtin" && continue
		# shellcheck disable=SC2013 # module paths, one a word
		for f in $(sed -n "s|^\([^:]*/$m\.ko\):\(.*\)|\1 \2|p" "$mods/modules.dep"); do
			mkdir -p "$ird/lib/modules/$kver/$(dirname "$f")"
			cp "$mods/$f" "$ird/lib/modules/$kver/$f"
		done
	done
	(cd "$ird" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$dir/initramfs.cpio.gz"
}

# The guest's command as a script: the environment to keep, the directory, the command.
write_command() {
	local out=$1 cmd=$2 v
	{
		echo '#!/bin/bash'
		echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
		echo 'export HOME=/tmp LANG=C.UTF-8'
		for v in $(compgen -e | grep -E '^(CI|KEVENT_[A-Z0-9_]+|CRITERION_[A-Z0-9_]+)$'); do
			printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'cd %q\n' "$top"
		printf 'exec bash -c %q\n' "$cmd"
	} >"$out/cmd"
}

main() {
	[ "$(id -u)" = 0 ] || die "run as root (apt-get, and the suite needs root inside)"
	vm_deps
	if [ "${1:-}" = --deps ]; then
		return 0
	fi
	[ $# -eq 1 ] || die "usage: $0 6.1|6.12  (or --deps)"

	local series=$1 dir=$top/build/vm/$1 pkg kver out rc=0 start end marker
	local cmd=${VMTEST_CMD:-tests/run-suite.sh build/kevent-tests} timeout=${VMTEST_TIMEOUT:-3600}
	local mem=${VMTEST_MEM:-4G} cpus=${VMTEST_CPUS:-2}

	# One guest at a time on the machine, whichever work tree starts it: a TCG guest keeps
	# both host CPUs busy, and the downloads under build/vm/ are shared within a tree.
	local lockdir=/run/lock
	[ -d "$lockdir" ] || lockdir=/tmp
	exec 9>"$lockdir/libkevent-vmtest.lock"
	if ! flock -n 9; then
		echo "vmtest: waiting for another vmtest on this machine to finish" >&2
		flock 9
	fi

	# The backports index is set up here, not in kernel_package's subshell, so that
	# fetch_kernel downloads with the same options.
	if [ "$series" = 6.12 ]; then
		setup_backports
	fi
	pkg=$(kernel_package "$series")
	fetch_kernel "$dir" "$pkg"
	kver=$(ls "$dir/root/lib/modules")
	make_initramfs "$dir" "$kver"

	# A fresh ext4 scratch disk for /var/tmp: the inode tests want ext4 there, and the
	# host's file system reaches the guest read-only (and as 9p).
	rm -f "$dir/scratch.img"
	truncate -s 2G "$dir/scratch.img"
	mkfs.ext4 -q -F -L vmtest "$dir/scratch.img"

	out=$dir/out
	rm -rf "$out"
	mkdir -p "$out"
	write_command "$out" "$cmd"

	local append=(console=ttyS0 panic=-1 rdinit=/init
		"vmtest_modules=$dir/root/lib/modules/$kver"
		"vmtest_nofile=$(ulimit -Sn):$(ulimit -Hn)")
	[ "$V" = 1 ] || append+=(quiet loglevel=3)
	# shellcheck disable=SC2054 # the commas are qemu's
	local qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem"
		-nodefaults -no-reboot -display none
		-chardev stdio,id=console,signal=off -serial chardev:console
		-kernel "$dir/root/boot/vmlinuz-$kver" -initrd "$dir/initramfs.cpio.gz"
		-append "${append[*]}"
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
		-virtfs "local,path=$out,mount_tag=out,security_model=none"
		-drive "file=$dir/scratch.img,if=virtio,format=raw,cache=unsafe")

	log VM "$pkg ($kver): $cmd"
	start=$(date +%s.%N)
	# The console, kept whole in out/console.log; on the terminal from the guest's
	# "vmtest: running" line to its "vmtest: exit status" line (everything with V=1),
	# carriage returns dropped. stdin is /dev/null so that qemu leaves the terminal alone.
	set +e
	[ "$V" = 1 ] && echo "+ timeout -k 10 $timeout ${qemu[*]}" >&2
	timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>"$out/qemu.err" |
		tr -d '\r' | tee "$out/console.log" |
		awk -v all="$V" 'all == 1 || shown { print; fflush() }
			/^vmtest: running/ { shown = 1 }
			/^vmtest: exit status/ { shown = 0 }'
	rc=${PIPESTATUS[0]}
	set -e
	end=$(date +%s.%N)

	marker=$(grep -a '^vmtest: running' "$out/console.log" || true)
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "vmtest: the guest did not power off within ${timeout}s: killed" >&2
		[ -n "$marker" ] || tail -n 40 "$out/console.log" >&2
		rc=124
	elif [ "$rc" -ne 0 ]; then
		cat "$out/qemu.err" >&2
		die "qemu failed (exit $rc)"
	elif [ ! -s "$out/status" ]; then
		[ "$V" = 1 ] || tail -n 40 "$out/console.log" >&2
		die "the guest powered off without an exit status (see $out/console.log)"
	else
		rc=$(cat "$out/status")
	fi
	awk -v k="$kver" -v rc="$rc" -v s="$start" -v e="$end" -v m="${marker#vmtest: running, }" \
		'BEGIN { printf "vmtest: %s: exit status %s, %.0f s in all%s\n", k, rc, e - s,
			m == "" ? "" : ", " m }' >&2
	return "$rc"
}

main "$@"
