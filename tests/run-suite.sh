#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
#
# Run the Criterion suite once per path a source can take (K26):
#   bpf           as root: KEVENT_BACKEND=bpf, every queue requires the BPF path, where the
#                 kernel runs every source's programs (build/paths says); on an older kernel
#                 each source takes the path it can, and the tests of a BPF path the kernel
#                 lacks skip themselves (under CI=true that fails the run)
#   syscall       KEVENT_BACKEND=syscall: every source on its fallback
#   unprivileged  no capabilities at all: as `nobody` (or root without capabilities when the
#                 tree is closed to nobody) from root, else as the caller; the library
#                 chooses by itself
# Tests named `bpf` run only in the first, tests named `syscall` or `inotify` only in the
# others. A test that skips itself anyway is listed; under CI=true that fails the pass.
# Usage: run-suite.sh TEST-BINARY [criterion options...]
# A pass that cannot run here (the BPF pass without root) is skipped with a line, or, under
# CI=true, fails the run. The exit status is the first failing pass's.
set -uo pipefail

bin=$1
shift
status=0
ci=${CI:-}

# Tests that skipped themselves, from a JSON report ("name: reason" lines): Criterion counts
# them nowhere in its synthesis line, and says "The test was skipped." of those the filter
# left out.
skipped() {
	awk -F'"' '/"name":/ { name = $4 } /"status":/ { status = $4 }
		/"messages":/ && status == "SKIPPED" && $4 != "The test was skipped." {
			print "   " name ": " $4 }' "$1"
}

# pass NAME ENV FILTER [prefix command...]
pass() {
	local name=$1 env=$2 filter=$3 json st n
	shift 3
	json=$(mktemp /tmp/kevent-suite.XXXXXX)
	chmod 666 "$json" # written by the unprivileged pass too
	echo "== suite: $name"
	env ${env:+"$env"} "$@" "$bin" --filter "$filter" --json="$json" "${CRITERION_ARGS[@]}"
	st=$?
	n=$(skipped "$json")
	if [ -n "$n" ]; then
		echo "== suite: $name: $(wc -l <<<"$n") tests skipped themselves:"
		echo "$n"
		if [ "$ci" = true ]; then
			echo "== suite: $name: CI=true forbids skipping"
			[ $st -ne 0 ] || st=1
		fi
	fi
	rm -f "$json"
	[ $st -eq 0 ] || { echo "== suite: $name: FAILED (exit $st)"; [ $status -ne 0 ] || status=$st; }
}

CRITERION_ARGS=("$@")
no_bpf='!(*bpf*)'
no_sys='!(*syscall*|*_inotify_*)'

paths=${KT_PATHS:-$(dirname "$0")/../build/paths}
if [ "$(id -u)" -eq 0 ]; then
	if "$paths" >/dev/null 2>&1; then
		pass bpf KEVENT_BACKEND=bpf "$no_sys"
	else
		echo "== suite: this kernel's paths:" $("$paths" 2>/dev/null)
		pass bpf "" "$no_sys"
	fi
	pass syscall KEVENT_BACKEND=syscall "$no_bpf"
	# As nobody when the build tree is open to it (what the tests write goes to /tmp);
	# else as root without a capability, which an exec cannot give back (noroot).
	drop=(--inh-caps=-all --bounding-set=-all)
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${drop[@]}")
	if "${nobody[@]}" test -x "$bin" 2>/dev/null; then
		pass unprivileged "" "$no_bpf" "${nobody[@]}"
	else
		pass unprivileged "" "$no_bpf" setpriv --securebits=+noroot,+noroot_locked \
			"${drop[@]}"
	fi
else
	if [ "$ci" = true ]; then
		echo "== suite: bpf: needs root, and CI=true forbids skipping it"
		status=1
	else
		echo "== suite: bpf: skipped (needs root)"
	fi
	pass syscall KEVENT_BACKEND=syscall "$no_bpf"
	pass unprivileged "" "$no_bpf"
fi
exit $status
