# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
# libkevent: `make` builds into build/, `make test` runs the Criterion suite (as root),
# `make asan` the same under ASan+UBSan, `make demo` the echo server, `make bench` the
# benchmarks. V=1 shows the commands.

OUTPUT	:= build
CLANG	?= clang
BPFTOOL ?= bpftool
CC	?= cc
AR	?= ar
ARCH	:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

VERSION	:= 0.1.0
SOMAJOR	:= 0
SONAME	:= libkevent.so.$(SOMAJOR)

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(patsubst lib/%.c,$(OUTPUT)/lib/%.o,$(LIB_SRCS))
TEST_SRCS := $(wildcard tests/*.c)
EX_SRCS	:= $(wildcard examples/*.c)
BENCH_SRCS := $(wildcard bench/*.c)

INCLUDES := -Iinclude -Ibpf -I$(OUTPUT)
CFLAGS	?= -g -O2
LIB_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
	-D_GNU_SOURCE $(INCLUDES)
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I. -Iinclude -Ibpf
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

.PHONY: all deps test asan demo bench bench-timers bench-inotify bench-aio vmlinux clean format

all: deps lib

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

# BPF: one object per source family, linked into one object and one skeleton.
$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c bpf/kevent.bpf.h bpf/kev_shared.h include/ukevent.h \
		vmlinux.h | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# maps.bpf.o first: libbpf 1.1's linker gives a map seen extern before its definition
# offset 0 in .maps, and the skeleton then fails to relocate.
$(OUTPUT)/kevent.bpf.o: $(BPF_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $(filter %/maps.bpf.o,$^) $(filter-out %/maps.bpf.o,$^)

$(OUTPUT)/kevent.skel.h: $(OUTPUT)/kevent.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name kevent_bpf > $@

# The library.
$(OUTPUT)/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(OUTPUT)/kevent.skel.h | $(OUTPUT)/lib
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

$(OUTPUT)/libkevent-uninstalled.pc: Makefile | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)printf '%s\n' "libdir=$(abspath $(OUTPUT))" "includedir=$(abspath include)" "" \
		"Name: libkevent" "Description: the kevent event queue on eBPF" \
		"Version: $(VERSION)" "Cflags: -I\$${includedir}" \
		"Libs: -L\$${libdir} -Wl,-rpath,\$${libdir} -lkevent" \
		"Libs.private: $(LIBS)" > $@

# Tests: one Criterion binary. Run as root; under CI=true a skip is a failure.
$(OUTPUT)/kevent-tests: $(TEST_SRCS) $(wildcard tests/*.h) $(OUTPUT)/libkevent.a
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) -Wno-missing-field-initializers -o $@ $(TEST_SRCS) \
		$(OUTPUT)/libkevent.a -lcriterion $(LIBS)

test: deps $(OUTPUT)/kevent-tests
	$(call msg,TEST,$(OUTPUT)/kevent-tests)
	$(Q)$(OUTPUT)/kevent-tests
	$(Q)$(MAKE) --no-print-directory smoke

# The same suite, library and tests built with AddressSanitizer and UBSan.
ASAN_OBJS := $(patsubst lib/%.c,$(OUTPUT)/asan/lib/%.o,$(LIB_SRCS))

$(OUTPUT)/asan/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(OUTPUT)/kevent.skel.h | $(OUTPUT)/asan/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(LIB_CFLAGS) $(SAN) -c $< -o $@

$(OUTPUT)/asan/kevent-tests: $(TEST_SRCS) $(wildcard tests/*.h) $(ASAN_OBJS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(SAN) -Wno-missing-field-initializers -o $@ $(TEST_SRCS) \
		$(ASAN_OBJS) -lcriterion $(LIBS)

asan: deps $(OUTPUT)/asan/kevent-tests
	$(call msg,TEST,$(OUTPUT)/asan/kevent-tests)
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) $(OUTPUT)/asan/kevent-tests

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
	$(Q)clang-format -i include/*.h bpf/*.[ch] lib/*.[ch] tests/*.[ch] examples/*.c

clean:
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

# Benchmarks: one program per scenario in bench/, each runnable alone, sharing bench/bench.h.
# `make bench` runs the scenarios in order (each appends its rows to build/bench.json), then
# bench/report prints the combined table. Never part of `make test`.
BENCH_BINS := $(patsubst bench/%.c,$(OUTPUT)/bench/%,$(BENCH_SRCS))
BENCH_RUN  := harvest wakeup register unrelated http

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
	echo "== all results ($(OUTPUT)/bench.json)"; $(OUTPUT)/bench/report; exit $$fail

# The other sources' benchmarks, one target each (they append to build/bench.json too).
bench-timers: deps $(OUTPUT)/bench/timers $(OUTPUT)/bench/report
	$(Q)$(OUTPUT)/bench/timers -r 3 -t 5

bench-inotify: deps $(OUTPUT)/bench/inotify
	$(Q)$(OUTPUT)/bench/inotify

bench-aio: deps $(OUTPUT)/bench/aio_sendfile
	$(Q)$(OUTPUT)/bench/aio_sendfile

# The stress, ThreadSanitizer and fuzzing harnesses, and make test's smoke runs of them.
include mk/harness.mk
