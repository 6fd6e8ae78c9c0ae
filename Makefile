# recur: build, test and set-up. `make demo` and `make test` install missing Debian
# packages first (through `make deps`).

LUA        ?= lua5.4
BUSTED     ?= busted
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LUA_INCDIR ?= /usr/include/lua5.4
# OpenBLAS: the CBLAS header of the Debian build, and the OpenMP build of the library
# when it is installed, because the default pthreads build and our OpenMP pointwise
# loops fight over the cores (README, "Threads").
OPENBLAS_INCDIR ?= $(firstword $(wildcard /usr/include/$(MULTIARCH)/openblas-pthread /usr/include/$(MULTIARCH)/openblas-openmp /usr/include/openblas) /usr/include)
OPENBLAS_LIBDIR ?= $(firstword $(wildcard /usr/lib/$(MULTIARCH)/openblas-openmp /usr/lib/$(MULTIARCH)/openblas-pthread) /usr/lib/$(MULTIARCH))
OPENBLAS_LIB    ?= $(firstword $(wildcard $(OPENBLAS_LIBDIR)/libopenblas.so.0 $(OPENBLAS_LIBDIR)/libopenblas.so) -lopenblas)

CC      ?= gcc
# x86-64-v2 keeps the binary runnable on any x86-64 from the last 15 years;
# -ffp-contract=off keeps float results the same whether or not the CPU has FMA;
# -fno-math-errno lets GCC vectorise sqrt loops (no code reads errno).
ARCHFLAGS ?= $(if $(filter x86_64%,$(MULTIARCH)),-march=x86-64-v2,)
CFLAGS  ?= -O3 $(ARCHFLAGS) -ffp-contract=off -fno-math-errno
# -fvisibility=hidden: the module exports luaopen_recur_core alone, so a host that
# links Lua statically with -rdynamic cannot swap one of recur's functions for a
# namesake of its own, nor recur one of the host's.
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -fPIC -fopenmp -fvisibility=hidden -Wall -Wextra -I$(LUA_INCDIR) -I$(OPENBLAS_INCDIR)
LDFLAGS ?=
# -z nodelete: Lua unloads C modules when a state closes, and unloading libgomp
# under live OpenMP worker threads crashes the process at exit.
ALL_LDFLAGS = $(LDFLAGS) -shared -fopenmp -Wl,-z,nodelete -Wl,-rpath,$(OPENBLAS_LIBDIR)
LIBS    = $(OPENBLAS_LIB) -lm

# Where objects, the module and the C tests go: `make sanitize` builds into build-san/
# so that the instrumented objects never mix with the normal ones.
BUILD ?= build
SRCS := $(wildcard csrc/*.c)
OBJS := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
# The core without its Lua bindings, for C/C++ hosts (csrc/recur.h).
LIB_OBJS := $(filter-out $(BUILD)/obj/lua_%.o,$(OBJS))
LIB  := $(BUILD)/librecur.a
HDRS := $(wildcard csrc/*.h)
CORE := $(BUILD)/recur/core.so

# Debian packages: what the build, the tests and the demo need.
DEB_PACKAGES = gcc make lua5.4 liblua5.4-dev libopenblas-dev libopenblas0-openmp lua-busted lua-cjson lua-argparse luarocks
DEB_MEMCHECK = valgrind
# The runtimes of gcc's AddressSanitizer and UndefinedBehaviorSanitizer (Debian 12).
DEB_SANITIZE = libasan8 libubsan1 binutils
# The peer we compare with (bench-peer, the race, the fixtures), never a dependency.
DEB_PEER = python3-torch

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(LUA_PATH);;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;$(LUA_CPATH);;

# `make memcheck MEMCHECK_SPECS=spec/core/tensor_spec.lua` checks one file.
MEMCHECK_SPECS ?= spec

# `make sanitize`: the module, librecur.a and the C tests built with ASan and UBSan into
# build-san/, then the C tests, the whole spec suite and a short fuzzer run on them.
# lua5.4 is not instrumented, so the ASan runtime is preloaded; everything the specs
# spawn (lua5.4, bin/recur, make host-example) inherits the environment. Leaks are not
# checked (valgrind's `make memcheck` does), and allocation failure returns NULL so that
# the "out of memory" errors the specs expect stay errors. LUA_INIT_5_4 loads the
# sanitized recur.core first in every lua5.4, so that bin/recur, which puts build/ first
# in its own search path, runs it too. RECUR_SANITIZE=1 is for scripts that must know
# (the fuzzer sets its memory cap by it); no spec needs it today.
SAN_BUILD  = build-san
SAN_FLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_CFLAGS = -O1 -g $(ARCHFLAGS) -ffp-contract=off -fno-math-errno $(SAN_FLAGS)
SAN_MAKE   = $(MAKE) --no-print-directory BUILD=$(SAN_BUILD) CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_FLAGS)"
SAN_ENV    = RECUR_SANITIZE=1 BUILD=$(SAN_BUILD) CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_FLAGS)" \
  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" \
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=4096:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LUA_CPATH="$(CURDIR)/$(SAN_BUILD)/?.so;;" LUA_INIT_5_4="require 'recur.core'"
# The fuzzer (spec/fuzz/api_fuzz.lua): `make fuzz FUZZ_CALLS=200000 FUZZ_SEED=7` runs it
# on the sanitized build; `make sanitize` runs SANITIZE_FUZZ_CALLS of it. FUZZ_ARGS
# passes more flags: FUZZ_ARGS='--only 9562' replays one call, '--seconds 600' caps time.
FUZZ_CALLS ?= 100000
FUZZ_SEED  ?= 1
FUZZ_ARGS  ?=
SANITIZE_FUZZ_CALLS ?= 20000

.PHONY: lib host-example all deps test test-c demo memcheck sanitize sanitize-build fuzz bench bench-peer install clean fixtures

all: $(CORE)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The recurrent kernels' pointwise loops (and the softmax exponentials of nn.c) pick
# one of two computed values per lane
# (csrc/rnn_math.h); GCC vectorises such a select only when it may evaluate both
# sides, which float traps would forbid. No code here reads the FP exception flags,
# and the flag changes no result.
RNN_CFLAGS = -fno-trapping-math
$(BUILD)/obj/rnn.o $(BUILD)/obj/nn.o: ALL_CFLAGS += $(RNN_CFLAGS)

# The float exp, sigmoid and tanh of the kernels against double libm (2^32/61 floats).
$(BUILD)/rnn_math_test: spec/c/rnn_math_test.c csrc/rnn_math.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(RNN_CFLAGS) -std=gnu11 -Wall -Wextra -Icsrc $< $(LDFLAGS) -lm -o $@

# The packed per-step products against a double-precision product.
$(BUILD)/rnn_gemm_test: spec/c/rnn_gemm_test.c csrc/rnn_gemm.c csrc/rnn_gemm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 -fopenmp -Wall -Wextra -Icsrc $< csrc/rnn_gemm.c $(LDFLAGS) -lm -o $@

# The public kernels with NULL pointers and zero sizes, as their headers promise.
$(BUILD)/capi_test: spec/c/capi_test.c $(LIB)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Icsrc -I$(OPENBLAS_INCDIR) $< $(LIB) $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_LIBDIR) -lm -fopenmp -o $@

C_TESTS = $(BUILD)/rnn_math_test $(BUILD)/rnn_gemm_test $(BUILD)/capi_test

test-c: $(C_TESTS)
	$(BUILD)/rnn_math_test
	$(BUILD)/rnn_gemm_test
	$(BUILD)/capi_test

$(CORE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJS) $(LIBS)

lib: $(LIB)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

$(BUILD)/host-example: examples/host.c $(LIB)
	$(CC) -O2 -Wall -Wextra -Icsrc -I$(OPENBLAS_INCDIR) $< $(LIB) $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_LIBDIR) -lm -fopenmp -o $@

host-example: $(BUILD)/host-example
	$(BUILD)/host-example

deps:
	@sh .ci/deps.sh $(DEB_PACKAGES)
	@sh .ci/luarocks-lua54.sh

test: deps
	@$(MAKE) --no-print-directory all test-c
	$(BUSTED) --lua=$(LUA) spec

demo: deps
	@$(MAKE) --no-print-directory all
	$(LUA) examples/demo.lua

memcheck: deps
	@sh .ci/deps.sh $(DEB_MEMCHECK)
	@$(MAKE) --no-print-directory all
	RECUR_MEMCHECK=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 valgrind --error-exitcode=1 \
	  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --suppressions=.ci/valgrind.supp $(LUA) /usr/bin/busted $(MEMCHECK_SPECS)

sanitize-build:
	@sh .ci/deps.sh $(DEB_SANITIZE)
	@$(SAN_MAKE) all lib $(C_TESTS:$(BUILD)/%=$(SAN_BUILD)/%)

sanitize: deps
	@$(MAKE) --no-print-directory sanitize-build
	@$(SAN_MAKE) test-c
	$(SAN_ENV) $(BUSTED) --lua=$(LUA) --cpath='$(SAN_BUILD)/?.so' spec
	@$(MAKE) --no-print-directory fuzz FUZZ_CALLS=$(SANITIZE_FUZZ_CALLS)

fuzz:
	@$(MAKE) --no-print-directory sanitize-build
	$(SAN_ENV) $(LUA) spec/fuzz/api_fuzz.lua --seed $(FUZZ_SEED) --calls $(FUZZ_CALLS) $(FUZZ_ARGS)

bench: deps
	@$(MAKE) --no-print-directory all
	$(LUA) bench/run.lua all

bench-peer: deps
	@sh .ci/deps.sh $(DEB_PEER)
	@$(MAKE) --no-print-directory all
	$(LUA) bench/peer.lua

fixtures:
	@sh .ci/deps.sh $(DEB_PEER)
	for g in spec/fixtures/generate_*.py; do /usr/bin/python3 $$g || exit 1; done

# Used by the rock (rockspec/recur-scm-1.rockspec, which installs bin/recur itself)
# and by hand: INST_LIBDIR holds recur/core.so, INST_LUADIR the Lua modules.
INST_LIBDIR ?= /usr/local/lib/lua/5.4
INST_LUADIR ?= /usr/local/share/lua/5.4
install: $(CORE)
	mkdir -p $(INST_LIBDIR)/recur $(INST_LUADIR)
	cp $(CORE) $(INST_LIBDIR)/recur/core.so
	cp -r lua/recur $(INST_LUADIR)/

clean:
	rm -rf build build-san
