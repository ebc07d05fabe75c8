# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
# libkevent: `make` builds into build/, `make test` runs the Criterion suite (as root),
# `make asan` the same under ASan+UBSan, `make demo` the echo server, `make bench` the
# benchmarks, `make install` / `make uninstall` (PREFIX, LIBDIR, INCLUDEDIR, MANDIR, SBINDIR,
# DESTDIR), `make vmtest KERNEL=6.1|6.12` the suite inside a Debian kernel under qemu,
# `make bpf-cross-load ARCH_CROSS=arm64` the BPF objects of another architecture built and put
# through this kernel's verifier. V=1 shows the commands.

OUTPUT	:= build
CLANG	?= clang
BPFTOOL ?= bpftool
CC	?= cc
AR	?= ar
ARCH	:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

VERSION	:= 0.1.0
SOMAJOR	:= 0
SONAME	:= libkevent.so.$(SOMAJOR)

PREFIX	?= /usr/local
LIBDIR	?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR	?= $(PREFIX)/share/man
SBINDIR	?= $(PREFIX)/sbin
INSTALL	?= install

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst lib/%.c,$(OUTPUT)/lib/%.o,$(LIB_SRCS))
TEST_SRCS := $(wildcard tests/*.c)
EX_SRCS	:= $(wildcard examples/*.c)
BENCH_SRCS := $(wildcard bench/*.c)
KCTL_SRCS := $(wildcard tools/keventctl/*.c)

INCLUDES := -Iinclude -Ibpf -I$(OUTPUT)
CFLAGS	?= -g -O2
LIB_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
	-D_GNU_SOURCE $(INCLUDES)
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I. -Iinclude -Ibpf
BPF_HDRS := $(wildcard bpf/*.h) include/ukevent.h vmlinux.h
LIBS	:= -lbpf -lelf -lz -lpthread
APP_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude

SAN	:= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

DEPS	:= clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config libcriterion-dev \
	make gcc libc6-dev wrk libclang-rt-14-dev

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all deps test vmtest vmtest-deps asan demo bench bench-chart bench-timers bench-inotify \
	bench-aio vmlinux clean format bpf-cross bpf-cross-load install uninstall

all: deps lib $(OUTPUT)/keventctl

.PHONY: lib
lib: $(OUTPUT)/libkevent.a $(OUTPUT)/libkevent.so $(OUTPUT)/libkevent-uninstalled.pc

# Installs only what is missing; a no-op on a machine that has everything.
deps:
	$(Q)missing=""; for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || \
			missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "  DEPS    installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/lib $(OUTPUT)/asan $(OUTPUT)/asan/lib:
	$(Q)mkdir -p $@

# BPF: one object per source file. maps.bpf.o alone is the core (the maps every queue
# needs), loaded by the first kevent_init(); each source family is linked with it into an
# object and a skeleton of its own, loaded with the family's first interest (lib/kernel.c).
KEV_FAMILIES := $(filter-out maps,$(patsubst bpf/%.bpf.c,%,$(BPF_SRCS)))
KEV_SKELS := $(patsubst %,$(OUTPUT)/kev_%.skel.h,core $(KEV_FAMILIES))

# Kept, not removed as intermediates: the skeletons are read by lib/kernel.c, the objects by
# bpftool and llvm-objdump.
.SECONDARY: $(BPF_OBJS) $(KEV_SKELS) $(KEV_SKELS:.skel.h=.bpf.o)

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/kev_core.bpf.o: $(OUTPUT)/bpf/maps.bpf.o
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

# maps.bpf.o first: libbpf 1.1's linker gives a map seen extern before its definition
# offset 0 in .maps, and the skeleton then fails to relocate. One family per object also
# keeps each extern kfunc in one input (the 1.1 linker fails on a kfunc declared twice).
$(OUTPUT)/kev_%.bpf.o: $(OUTPUT)/bpf/maps.bpf.o $(OUTPUT)/bpf/%.bpf.o
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(OUTPUT)/kev_%.skel.h: $(OUTPUT)/kev_%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name kev_$*_bpf > $@

# The BPF objects built for another architecture: `make bpf-cross ARCH_CROSS=arm64` compiles
# every bpf/*.bpf.c with -D__TARGET_ARCH_$(ARCH_CROSS) and links the objects as above, into
# build/cross/$(ARCH_CROSS)/, with the same vmlinux.h (CO-RE relocates it). A check that
# they build; bpf/kev_arch.h says what the programs read of another architecture.
ARCH_CROSS ?= arm64
CROSS	:= $(OUTPUT)/cross/$(ARCH_CROSS)
CROSS_CFLAGS := $(filter-out -D__TARGET_ARCH_%,$(BPF_CFLAGS)) -D__TARGET_ARCH_$(ARCH_CROSS)

bpf-cross: $(patsubst %,$(CROSS)/kev_%.bpf.o,core $(KEV_FAMILIES))

.SECONDARY: $(patsubst bpf/%.bpf.c,$(CROSS)/bpf/%.bpf.o,$(BPF_SRCS))

$(CROSS)/bpf:
	$(Q)mkdir -p $@

$(CROSS)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(CROSS)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(CROSS_CFLAGS) -c $< -o $@

$(CROSS)/kev_core.bpf.o: $(CROSS)/bpf/maps.bpf.o
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(CROSS)/kev_%.bpf.o: $(CROSS)/bpf/maps.bpf.o $(CROSS)/bpf/%.bpf.o
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

# Load each of them on this kernel (root, bpffs at /sys/fs/bpf): the verifier's answer,
# nothing attached, the pins removed at once. The other architecture's register fields do
# not relocate here: they are guarded (kev_arch.h), so the programs load, seeing no system
# call. The verifier's log is printed on a failure.
bpf-cross-load: bpf-cross
	$(Q)d=/sys/fs/bpf/kev-cross-$(ARCH_CROSS)-$$$$; fail=0; \
	for o in $(patsubst %,$(CROSS)/kev_%.bpf.o,core $(KEV_FAMILIES)); do \
		if $(BPFTOOL) prog loadall $$o $$d; then \
			printf '  %-8s %s: %s\n' LOADED $$o "$$(ls $$d 2>/dev/null | xargs)"; \
		else \
			printf '  %-8s %s\n' FAILED $$o; fail=1; \
		fi; \
		rm -rf $$d; \
	done; exit $$fail

# The library.
$(OUTPUT)/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(KEV_SKELS) | $(OUTPUT)/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

$(OUTPUT)/libkevent.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/libkevent.so: $(LIB_OBJS) lib/libkevent.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libkevent.map \
		-o $(OUTPUT)/libkevent.so.$(VERSION) $(LIB_OBJS) $(LIBS)
	$(Q)ln -sf libkevent.so.$(VERSION) $(OUTPUT)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

# The pkg-config file: $(call kev_pc,libdir,includedir,extra Libs). libbpf's own .pc brings
# libelf and zlib for a static link (pkg-config --static).
comma	:= ,
kev_pc = printf '%s\n' "libdir=$(1)" "includedir=$(2)" "" \
	"Name: libkevent" "Description: the kevent event queue on eBPF" \
	"Version: $(VERSION)" \
	"Requires.private: libbpf" "Cflags: -I\$${includedir}" \
	"Libs: -L\$${libdir} $(3)-lkevent" "Libs.private: -lpthread"

$(OUTPUT)/libkevent-uninstalled.pc: Makefile | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(call kev_pc,$(abspath $(OUTPUT)),$(abspath include),-Wl$(comma)-rpath$(comma)\$${libdir} ) > $@

# keventctl(8): the library's public API and libbpf, and the map layouts of bpf/kev_shared.h
# (a layout change breaks this build rather than its output). Linked with the static library:
# the installed tool needs no libkevent.so at run time. $(call kev_kctl,flags,library)
KCTL_DEPS := $(KCTL_SRCS) tools/keventctl/keventctl.h bpf/kev_shared.h include/kevent.h \
	include/ukevent.h include/kevent_inode.h
kev_kctl = $(CC) $(APP_CFLAGS) $(1) -Ibpf -Itools/keventctl -o $@ $(KCTL_SRCS) $(2) $(LIBS)

$(OUTPUT)/keventctl: $(KCTL_DEPS) $(OUTPUT)/libkevent.a
	$(call msg,CC,$@)
	$(Q)$(call kev_kctl,,$(OUTPUT)/libkevent.a)

# make install: what a program needs to build against libkevent (the public headers only,
# the static and shared library, libkevent.pc), keventctl, and the man pages. make uninstall
# removes exactly these files (directories stay: others may share them).
INST_HEADERS := include/kevent.h include/ukevent.h include/kevent_inode.h
INST_MAN := $(wildcard man/*.3 man/*.7 man/*.8)
INST_FILES := $(addprefix $(INCLUDEDIR)/,$(notdir $(INST_HEADERS))) \
	$(addprefix $(LIBDIR)/,libkevent.a libkevent.so.$(VERSION) $(SONAME) libkevent.so \
		pkgconfig/libkevent.pc) \
	$(SBINDIR)/keventctl \
	$(foreach m,$(INST_MAN),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

# The run-time linker's cache knows the new library only after ldconfig; a staged install
# (DESTDIR) is not the system's.
kev_ldconfig = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

install: lib $(OUTPUT)/keventctl
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(SBINDIR) \
		$(addprefix $(DESTDIR)$(MANDIR)/man,3 7 8)
	$(Q)$(INSTALL) -m 644 $(INST_HEADERS) $(DESTDIR)$(INCLUDEDIR)
	$(Q)$(INSTALL) -m 644 $(OUTPUT)/libkevent.a $(DESTDIR)$(LIBDIR)
	$(Q)$(INSTALL) -m 755 $(OUTPUT)/libkevent.so.$(VERSION) $(DESTDIR)$(LIBDIR)
	$(Q)ln -sf libkevent.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libkevent.so
	$(Q)$(call kev_pc,$(LIBDIR),$(INCLUDEDIR),) > $(DESTDIR)$(LIBDIR)/pkgconfig/libkevent.pc
	$(Q)$(INSTALL) -m 755 $(OUTPUT)/keventctl $(DESTDIR)$(SBINDIR)
	$(Q)for m in $(INST_MAN); do \
		$(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; done
	$(Q)$(call kev_ldconfig)

uninstall:
	$(call msg,UNINST,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INST_FILES))
	$(Q)$(call kev_ldconfig)

# Tests: one Criterion binary. Run as root; under CI=true a skip is a failure.
# The suite runs the examples too (tests/examples.c).
EX_BINS	:= $(patsubst examples/%.c,$(OUTPUT)/%,$(EX_SRCS))
TEST_CFLAGS := -Wno-missing-field-initializers -DKT_BUILD_DIR='"$(abspath $(OUTPUT))"' \
	-DKT_SRC_DIR='"$(abspath .)"'

$(OUTPUT)/kevent-tests: $(TEST_SRCS) $(wildcard tests/*.h) $(OUTPUT)/libkevent.a $(EX_BINS) \
		$(OUTPUT)/libkevent.so $(OUTPUT)/keventctl
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(TEST_CFLAGS) -o $@ $(TEST_SRCS) \
		$(OUTPUT)/libkevent.a -lcriterion $(LIBS)

# Once per path (K26): BPF, KEVENT_BACKEND=syscall, unprivileged (tests/run-suite.sh).
test: deps $(OUTPUT)/kevent-tests
	$(call msg,TEST,$(OUTPUT)/kevent-tests)
	$(Q)tests/run-suite.sh $(OUTPUT)/kevent-tests
	$(Q)$(MAKE) --no-print-directory smoke

# The suite inside one of Debian 12's kernels under qemu (tests/vm/run.sh says how):
# KERNEL=6.1 (bookworm's own) or 6.12 (bookworm-backports). The first run downloads the
# kernel package into build/vm/, and vmtest-deps installs qemu and busybox if missing; no
# other target does either. VMTEST_CMD is what the guest runs (default: the suite once per
# path, as make test runs it), VMTEST_TIMEOUT the seconds before the guest is killed,
# VMTEST_MEM and VMTEST_CPUS its size.
KERNEL	?= 6.1
export VMTEST_CMD VMTEST_TIMEOUT VMTEST_MEM VMTEST_CPUS V

vmtest: deps vmtest-deps $(OUTPUT)/kevent-tests
	$(Q)tests/vm/run.sh $(KERNEL)

vmtest-deps:
	$(Q)tests/vm/run.sh --deps

# The same suite, library and tests built with AddressSanitizer and UBSan.
ASAN_OBJS := $(patsubst lib/%.c,$(OUTPUT)/asan/lib/%.o,$(LIB_SRCS))

$(OUTPUT)/asan/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(KEV_SKELS) | $(OUTPUT)/asan/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(LIB_CFLAGS) $(SAN) -c $< -o $@

# The suite drives this keventctl, so that a memory error in the tool fails its test too.
$(OUTPUT)/asan/keventctl: $(KCTL_DEPS) $(ASAN_OBJS)
	$(call msg,CC,$@)
	$(Q)$(call kev_kctl,$(SAN),$(ASAN_OBJS))

$(OUTPUT)/asan/kevent-tests: $(TEST_SRCS) $(wildcard tests/*.h) $(ASAN_OBJS) $(EX_BINS) \
		$(OUTPUT)/libkevent.so $(OUTPUT)/keventctl $(OUTPUT)/asan/keventctl
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(SAN) $(TEST_CFLAGS) \
		-DKT_KEVENTCTL='"$(abspath $(OUTPUT))/asan/keventctl"' -o $@ $(TEST_SRCS) \
		$(ASAN_OBJS) -lcriterion $(LIBS)

asan: deps $(OUTPUT)/asan/kevent-tests
	$(call msg,TEST,$(OUTPUT)/asan/kevent-tests)
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) \
		tests/run-suite.sh $(OUTPUT)/asan/kevent-tests

# Examples and benchmarks link the static library.
$(OUTPUT)/%: examples/%.c $(OUTPUT)/libkevent.a
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) -o $@ $< $(OUTPUT)/libkevent.a $(LIBS)

demo: deps $(OUTPUT)/echo
	$(Q)$(OUTPUT)/echo

vmlinux:
	$(call msg,GEN,vmlinux.h)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

format:
	$(Q)clang-format -i include/*.h bpf/*.[ch] lib/*.[ch] tests/*.[ch] examples/*.c \
		tools/keventctl/*.[ch]

clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

# Benchmarks: one program per scenario in bench/, each runnable alone, sharing bench/bench.h.
# `make bench` runs the scenarios in order (each appends its rows to build/bench.json), then
# bench/report prints the combined table and bench/chart draws it (build/bench.svg, a bar per
# row; `make bench-chart` draws it again from build/bench.json). Never part of `make test`.
BENCH_BINS := $(patsubst bench/%.c,$(OUTPUT)/bench/%,$(BENCH_SRCS))
BENCH_RUN  := startup harvest chain wakeup register unrelated http

$(OUTPUT)/bench:
	$(Q)mkdir -p $@

$(OUTPUT)/bench/%: bench/%.c bench/bench.h $(OUTPUT)/libkevent.a | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) -o $@ $< $(OUTPUT)/libkevent.a $(LIBS) -lm

bench: deps $(BENCH_BINS)
	$(Q)rm -f $(OUTPUT)/bench.json
	$(Q)fail=0; for b in $(BENCH_RUN); do \
		echo "== $$b"; $(OUTPUT)/bench/$$b || fail=1; echo; \
	done; \
	echo "== all results ($(OUTPUT)/bench.json)"; $(OUTPUT)/bench/report; \
	$(OUTPUT)/bench/chart || fail=1; exit $$fail

bench-chart: $(OUTPUT)/bench/chart
	$(Q)$(OUTPUT)/bench/chart

# The other sources' benchmarks, one target each (they append to build/bench.json too).
bench-timers: deps $(OUTPUT)/bench/timers $(OUTPUT)/bench/report
	$(Q)$(OUTPUT)/bench/timers -r 3 -t 5

bench-inotify: deps $(OUTPUT)/bench/inotify
	$(Q)$(OUTPUT)/bench/inotify

bench-aio: deps $(OUTPUT)/bench/aio_sendfile
	$(Q)$(OUTPUT)/bench/aio_sendfile

# The stress, ThreadSanitizer and fuzzing harnesses, and make test's smoke runs of them.
include mk/harness.mk
