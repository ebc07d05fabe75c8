# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
# The harnesses of issue 10, included at the end of the Makefile. All run as root.
#
#   make stress   (a) tests/stress/overflow.c: STRESS_EVENTS events (10M) through a 4 KiB
#                 kernel ring, every one accounted for (K24);
#                 (b) tests/stress/leak.c: STRESS_CYCLES (100,000) open/ADD/close cycles of
#                 TCP, UDP and AF_UNIX sockets without REMOVE, then what the process holds
#                 must be back where it started (K17, issue 10 item 3);
#                 (c) tests/stress/threads.c: 8 threads doing every call on one queue for
#                 STRESS_SECONDS (30), invariants checked (K3, K8, K10, K12, K20).
#   make tsan     the Criterion suite and stress (c), library and tests built with
#                 ThreadSanitizer; tests/tsan.supp holds the provably benign reports.
#   make fuzz     tests/fuzz/fuzz.c under libFuzzer (ASan + UBSan) for FUZZ_SECONDS (60),
#                 from the seeds of tests/fuzz/corpus; new inputs go to build/fuzz/corpus,
#                 crashes to build/fuzz/crashes/. FUZZ_JOBS=n runs n processes (-fork): an
#                 input mostly waits for the kernel, so a few per CPU pay.
#   make smoke    a few seconds of stress (a), (b) and (c) and one pass of the fuzzer over
#                 its seeds: make test runs it after the suite. SMOKE_LEAK=0 leaves out
#                 stress (b), SMOKE_OWN=0 the socket rounds of stress (c).

STRESS_EVENTS	?= 10000000
STRESS_CYCLES	?= 100000
STRESS_SECONDS	?= 30
TSAN_SECONDS	?= 10
FUZZ_SECONDS	?= 60
FUZZ_JOBS	?= 1
SMOKE_LEAK	?= 1
SMOKE_OWN	?= 1

STRESS_DEPS := tests/stress/stress.c tests/stress/stress.h

$(OUTPUT)/stress $(OUTPUT)/tsan/lib $(OUTPUT)/fuzz/lib $(OUTPUT)/fuzz/corpus \
		$(OUTPUT)/fuzz/crashes:
	$(Q)mkdir -p $@

.PHONY: stress tsan fuzz smoke

# Stress programs: one binary each, linked with the static library.
$(OUTPUT)/stress/%: tests/stress/%.c $(STRESS_DEPS) $(OUTPUT)/libkevent.a | $(OUTPUT)/stress
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) -Ibpf -o $@ $< tests/stress/stress.c $(OUTPUT)/libkevent.a $(LIBS)

stress: deps $(OUTPUT)/stress/overflow $(OUTPUT)/stress/leak $(OUTPUT)/stress/threads
	$(Q)fail=0; \
	echo "== stress (a): events through a small kernel ring"; \
	$(OUTPUT)/stress/overflow -n $(STRESS_EVENTS) || fail=1; \
	echo "== stress (b): sockets closed without REMOVE"; \
	$(OUTPUT)/stress/leak -n $(STRESS_CYCLES) || fail=1; \
	echo "== stress (c): threads on one queue"; \
	$(OUTPUT)/stress/threads -d $(STRESS_SECONDS) || fail=1; \
	exit $$fail

# ThreadSanitizer: the library, the suite and stress (c), in build/tsan/.
# TSan models no fences (gcc says so, -Wtsan); the library's fences pair with the kernel's
# side of a BPF ring buffer, which TSan does not see either.
TSAN	  := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
TSAN_OBJS := $(patsubst lib/%.c,$(OUTPUT)/tsan/lib/%.o,$(LIB_SRCS))
TSAN_ENV  := TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) halt_on_error=1 \
	second_deadlock_stack=1 history_size=4"

$(OUTPUT)/tsan/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(KEV_SKELS) | $(OUTPUT)/tsan/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(LIB_CFLAGS) $(TSAN) -c $< -o $@

# tests/stress/criterion-tsan.c: Criterion's runner cannot place its arena otherwise.
$(OUTPUT)/tsan/kevent-tests: $(TEST_SRCS) $(wildcard tests/*.h) tests/stress/criterion-tsan.c \
		$(TSAN_OBJS) $(EX_BINS) $(OUTPUT)/libkevent.so $(OUTPUT)/keventctl
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(TSAN) $(TEST_CFLAGS) -o $@ $(TEST_SRCS) \
		tests/stress/criterion-tsan.c $(TSAN_OBJS) -lcriterion $(LIBS)

$(OUTPUT)/tsan/threads: tests/stress/threads.c $(STRESS_DEPS) $(TSAN_OBJS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(APP_CFLAGS) $(TSAN) -o $@ $< tests/stress/stress.c $(TSAN_OBJS) $(LIBS)

# Both run whatever the first says; either failing fails the target.
tsan: deps $(OUTPUT)/tsan/kevent-tests $(OUTPUT)/tsan/threads
	$(Q)fail=0; \
	echo "  TEST     $(OUTPUT)/tsan/kevent-tests"; \
	$(TSAN_ENV) $(OUTPUT)/tsan/kevent-tests || fail=1; \
	echo "  STRESS   $(OUTPUT)/tsan/threads -d $(TSAN_SECONDS)"; \
	$(TSAN_ENV) $(OUTPUT)/tsan/threads -d $(TSAN_SECONDS) || fail=1; \
	exit $$fail

# libFuzzer: clang, the library instrumented for coverage, ASan and UBSan.
FUZZ_CC	  ?= clang
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJS := $(patsubst lib/%.c,$(OUTPUT)/fuzz/lib/%.o,$(LIB_SRCS))
FUZZ_ENV  := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_ARGS := -timeout=10 -max_len=512 -print_final_stats=1

$(OUTPUT)/fuzz/lib/%.o: lib/%.c $(wildcard lib/*.h) include/kevent.h include/ukevent.h \
		bpf/kev_shared.h $(KEV_SKELS) | $(OUTPUT)/fuzz/lib
	$(call msg,CC,$@)
	$(Q)$(FUZZ_CC) $(LIB_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUTPUT)/fuzz/kevent-fuzz: tests/fuzz/fuzz.c $(FUZZ_OBJS)
	$(call msg,CC,$@)
	$(Q)$(FUZZ_CC) $(APP_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LIBS)

fuzz: deps $(OUTPUT)/fuzz/kevent-fuzz | $(OUTPUT)/fuzz/corpus $(OUTPUT)/fuzz/crashes
	$(Q)$(FUZZ_ENV) $(OUTPUT)/fuzz/kevent-fuzz $(FUZZ_ARGS) -max_total_time=$(FUZZ_SECONDS) \
		$(if $(filter-out 1,$(FUZZ_JOBS)),-fork=$(FUZZ_JOBS)) \
		-artifact_prefix=$(OUTPUT)/fuzz/crashes/ $(OUTPUT)/fuzz/corpus tests/fuzz/corpus

# make test's share: seconds each, the same checks.
SMOKE_BINS := $(OUTPUT)/stress/overflow $(OUTPUT)/stress/threads $(OUTPUT)/fuzz/kevent-fuzz \
	$(if $(filter 1,$(SMOKE_LEAK)),$(OUTPUT)/stress/leak)

smoke: deps $(SMOKE_BINS) | $(OUTPUT)/fuzz/corpus
	$(call msg,SMOKE,stress (a) overflow)
	$(Q)$(OUTPUT)/stress/overflow -n 1000000
	$(call msg,SMOKE,stress (c) threads)
	$(Q)$(OUTPUT)/stress/threads -d 3 -o $(SMOKE_OWN)
ifeq ($(SMOKE_LEAK),1)
	$(call msg,SMOKE,stress (b) leak)
	$(Q)$(OUTPUT)/stress/leak -n 4000
endif
	$(call msg,SMOKE,fuzz: each seed of tests/fuzz/corpus once)
	$(Q)$(FUZZ_ENV) $(OUTPUT)/fuzz/kevent-fuzz $(FUZZ_ARGS) tests/fuzz/corpus/* \
		>$(OUTPUT)/fuzz/smoke.log 2>&1 || { cat $(OUTPUT)/fuzz/smoke.log; exit 1; }
