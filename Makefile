# recur: build, test and set-up. `make demo` and `make test` install missing Debian
# packages first (through `make deps`).

LUA        ?= lua5.4
BUSTED     ?= busted
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LUA_INCDIR ?= /usr/include/lua5.4
# OpenBLAS. OPENBLAS_DIR (its prefix), or OPENBLAS_INCDIR and OPENBLAS_LIBDIR, say
# where it is, as luarocks passes them from the rockspec's external dependency;
# without them the system's folders are searched. In the library folder the OpenMP
# build is preferred when it is installed (an openblas-openmp/ subfolder, as Debian
# installs it, or Fedora's libopenblaso), because the default pthreads build and our
# OpenMP pointwise loops fight over the cores (README, "Threads"). OPENBLAS_LIB names
# the library outright.
OPENBLAS_DIR    ?=
OPENBLAS_INCDIR ?= $(if $(OPENBLAS_DIR),$(OPENBLAS_DIR)/include,$(firstword $(wildcard /usr/include/$(MULTIARCH)/openblas-pthread /usr/include/$(MULTIARCH)/openblas-openmp /usr/include/openblas) /usr/include))
OPENBLAS_LIBDIR ?= $(if $(OPENBLAS_DIR),$(OPENBLAS_DIR)/lib,$(firstword $(wildcard /usr/lib/$(MULTIARCH)) /usr/lib))
# cblas.h in the folder given or its openblas/ subfolder; else the compiler's own
# search path (which has the multiarch folder) finds it.
CBLAS_INCDIR    := $(or $(patsubst %/cblas.h,%,$(firstword $(wildcard $(OPENBLAS_INCDIR)/cblas.h $(OPENBLAS_INCDIR)/openblas/cblas.h))),$(OPENBLAS_INCDIR))
OPENBLAS_LIB    ?= $(or $(firstword $(wildcard $(addprefix $(OPENBLAS_LIBDIR)/,openblas-openmp/libopenblas.so.0 \
                     $(MULTIARCH)/openblas-openmp/libopenblas.so.0 libopenblaso.so libopenblas.so libopenblas.so.0 \
                     $(MULTIARCH)/libopenblas.so))),-L$(OPENBLAS_LIBDIR) -lopenblas)
# The folder the library is loaded from at run time (the binaries' rpath).
OPENBLAS_RPATH  ?= $(if $(filter /%,$(firstword $(OPENBLAS_LIB))),$(patsubst %/,%,$(dir $(firstword $(OPENBLAS_LIB)))),$(OPENBLAS_LIBDIR))

CC      ?= gcc
# x86-64-v2 keeps the binary runnable on any x86-64 from the last 15 years;
# -ffp-contract=off keeps float results the same whether or not the CPU has FMA;
# -fno-math-errno lets GCC vectorise sqrt loops (no code reads errno).
ARCHFLAGS ?= $(if $(filter x86_64%,$(MULTIARCH)),-march=x86-64-v2,)
CFLAGS  ?= -O3 $(ARCHFLAGS) -ffp-contract=off -fno-math-errno
# -fvisibility=hidden: the module exports luaopen_recur_core alone, so a host that
# links Lua statically with -rdynamic cannot swap one of recur's functions for a
# namesake of its own, nor recur one of the host's.
# The public headers (include/recur/) give their functions default visibility, for
# librecur.so; -fno-semantic-interposition lets GCC inline them all the same, and the
# module's version script (csrc/lua_core.map) keeps them local to recur/core.so.
# -Werror=implicit-function-declaration: a header missing at build time (cblas.h while
# apt installs it) must stop the build, not leave a call whose pointer result is cut to
# an int (it crashed the OpenBLAS kernel check once).
ALL_CFLAGS = $(CFLAGS) -std=gnu11 -fPIC -fopenmp -fvisibility=hidden -fno-semantic-interposition -Wall -Wextra \
  -Werror=implicit-function-declaration \
  -Iinclude -I$(LUA_INCDIR) -I$(CBLAS_INCDIR)
LDFLAGS ?=
# -z nodelete: Lua unloads C modules when a state closes, and unloading libgomp
# under live OpenMP worker threads crashes the process at exit.
ALL_LDFLAGS = $(LDFLAGS) -shared -fopenmp -Wl,-z,nodelete -Wl,-rpath,$(OPENBLAS_RPATH)
LIBS    = $(OPENBLAS_LIB) -lm

# Where objects, the module and the C tests go: `make sanitize` builds into build-san/
# so that the instrumented objects never mix with the normal ones.
BUILD ?= build
SRCS := $(wildcard csrc/*.c)
OBJS := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
# The core without its Lua bindings, for C/C++ hosts (include/recur/recur.h), static
# and shared; and the bindings alone (librecur-lua), for hosts that embed Lua and
# preload recur.core (include/recur/recur_lua.h). librecur-lua.so loads librecur.so.
# The bf16 kernels (csrc/bf16*.c) have no public API: only the bindings call them, so
# they go with the bindings (librecur.so hides every symbol that is not public).
LIB_OBJS := $(filter-out $(BUILD)/obj/lua_%.o $(BUILD)/obj/bf16%.o,$(OBJS))
LUA_OBJS := $(filter $(BUILD)/obj/lua_%.o $(BUILD)/obj/bf16%.o,$(OBJS))
LIB  := $(BUILD)/librecur.a
SOVERSION := 0
SOLIB := $(BUILD)/librecur.so.$(SOVERSION)
LUALIB := $(BUILD)/librecur-lua.a
LUASOLIB := $(BUILD)/librecur-lua.so.$(SOVERSION)
HDRS := $(wildcard csrc/*.h include/recur/*.h)
PUBLIC_HDRS := $(wildcard include/recur/*.h)
CORE := $(BUILD)/recur/core.so
# recur.dist (csrc/dist/lua_dist.c), data-parallel training over MPI: a module of its
# own, built only when mpicc is found, so that recur.core never links MPI and recur
# builds and tests without it. MPICC= (empty) leaves it out.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
DIST := $(if $(MPICC),$(BUILD)/recur/dist.so)
VERSION := $(shell sed -n 's/.*RECUR_VERSION "\(.*\)".*/\1/p' include/recur/version.h)

# Debian packages: what the build and the demo need, and Open MPI (libopenmpi-dev for
# mpicc, which builds recur.dist; openmpi-bin for mpirun), so that every checkout can
# train data-parallel.
DEB_PACKAGES = gcc make lua5.4 liblua5.4-dev libopenblas-dev libopenblas0-openmp lua-busted lua-cjson lua-argparse luarocks \
  libopenmpi-dev openmpi-bin
# What only the tests need, installed by `make test` and not by `make demo`: zip and
# unzip pack and unpack the rock; pkgconf builds the C hosts of spec/install_spec.lua;
# lighttpd, its Lua module and curl serve and fetch spec/lighttpd_spec.lua's requests.
# (Installing lighttpd starts Debian's default site on port 80 where systemd runs;
# `systemctl disable --now lighttpd` stops it.)
DEB_TEST = zip unzip pkgconf lighttpd lighttpd-modules-lua curl
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
# .ci/asan.supp: what OpenBLAS (not instrumented) reads past small matrices.
SAN_ASAN_OPTIONS = detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=4096:abort_on_error=1:suppressions=$(CURDIR)/.ci/asan.supp
SAN_ENV    = RECUR_SANITIZE=1 BUILD=$(SAN_BUILD) CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_FLAGS)" \
  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" \
  ASAN_OPTIONS=$(SAN_ASAN_OPTIONS) \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LUA_CPATH="$(CURDIR)/$(SAN_BUILD)/?.so;;" LUA_INIT_5_4="require 'recur.core'"
# The fuzzer (spec/fuzz/api_fuzz.lua): `make fuzz FUZZ_CALLS=200000 FUZZ_SEED=7` runs it
# on the sanitized build; `make sanitize` runs SANITIZE_FUZZ_CALLS of it. FUZZ_ARGS
# passes more flags: FUZZ_ARGS='--only 9562' replays one call, '--seconds 600' caps time.
FUZZ_CALLS ?= 100000
FUZZ_SEED  ?= 1
FUZZ_ARGS  ?=
SANITIZE_FUZZ_CALLS ?= 20000

.PHONY: lib host-example all deps deps-test test test-c demo memcheck sanitize sanitize-build fuzz bench bench-peer install install-lua install-lib uninstall rock clean fixtures

all: $(CORE) $(DIST)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The recurrent kernels' pointwise loops (and the exponentials and tanh of nn.c and attention.c) pick
# one of two computed values per lane
# (csrc/rnn_math.h); GCC vectorises such a select only when it may evaluate both
# sides, which float traps would forbid. No code here reads the FP exception flags,
# and the flag changes no result.
RNN_CFLAGS = -fno-trapping-math
$(BUILD)/obj/rnn.o $(BUILD)/obj/nn.o $(BUILD)/obj/attention.o $(BUILD)/obj/bf16_rnn.o: ALL_CFLAGS += $(RNN_CFLAGS)

# The float exp, sigmoid and tanh of the kernels against double libm (2^32/61 floats).
$(BUILD)/rnn_math_test: spec/c/rnn_math_test.c csrc/rnn_math.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(RNN_CFLAGS) -std=gnu11 -Wall -Wextra -Icsrc $< $(LDFLAGS) -lm -o $@

# The packed per-step products against a double-precision product.
$(BUILD)/rnn_gemm_test: spec/c/rnn_gemm_test.c csrc/rnn_gemm.c csrc/rnn_gemm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 -fopenmp -Wall -Wextra -Icsrc $< csrc/rnn_gemm.c $(LDFLAGS) -lm -o $@

# The public kernels with NULL pointers and zero sizes, as their headers promise.
$(BUILD)/capi_test: spec/c/capi_test.c spec/c/ctest.h $(LIB)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Iinclude $< $(LIB) $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_RPATH) -lm -fopenmp -o $@

# The attention kernels against central differences, float32 against float64, edges.
$(BUILD)/attention_test: spec/c/attention_test.c spec/c/ctest.h $(LIB)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Iinclude $< $(LIB) $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_RPATH) -lm -fopenmp -o $@

C_TESTS = $(BUILD)/rnn_math_test $(BUILD)/rnn_gemm_test $(BUILD)/capi_test $(BUILD)/attention_test

test-c: $(C_TESTS)
	$(BUILD)/rnn_math_test
	$(BUILD)/rnn_gemm_test
	$(BUILD)/capi_test
	$(BUILD)/attention_test

$(CORE): $(OBJS) csrc/lua_core.map
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -Wl,--version-script=csrc/lua_core.map -o $@ $(OBJS) $(LIBS)

# mpicc wraps $(CC) with MPI's include and library flags.
$(BUILD)/recur/dist.so: csrc/dist/lua_dist.c include/recur/tensor.h
	@mkdir -p $(dir $@)
	OMPI_CC=$(CC) $(MPICC) $(CFLAGS) -std=gnu11 -fPIC -fvisibility=hidden -Wall -Wextra \
	  -Werror=implicit-function-declaration -Iinclude -I$(LUA_INCDIR) $< $(LDFLAGS) -shared -o $@

lib: $(LIB) $(SOLIB) $(LUALIB) $(LUASOLIB)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

$(LUALIB): $(LUA_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LUA_OBJS)

# The linker names (librecur.so -> librecur.so.0) sit next to the libraries in
# $(BUILD) too, so that -L$(BUILD) -lrecur works before installing.
$(SOLIB): $(LIB_OBJS)
	$(CC) $(LDFLAGS) -shared -fopenmp -Wl,-soname,librecur.so.$(SOVERSION) -Wl,-rpath,$(OPENBLAS_RPATH) \
	  -o $@ $(LIB_OBJS) $(LIBS)
	ln -sf librecur.so.$(SOVERSION) $(BUILD)/librecur.so

# Lua's own functions stay undefined here: the host that loads this library has them.
# The bindings call OpenBLAS and OpenMP for the thread settings (lua_runtime.c).
$(LUASOLIB): $(LUA_OBJS) $(SOLIB) csrc/lua_core.map
	$(CC) $(LDFLAGS) -shared -fopenmp -Wl,-soname,librecur-lua.so.$(SOVERSION) -Wl,--version-script=csrc/lua_core.map \
	  -Wl,-rpath,$(OPENBLAS_RPATH) -o $@ $(LUA_OBJS) -L$(BUILD) -lrecur $(LIBS)
	ln -sf librecur-lua.so.$(SOVERSION) $(BUILD)/librecur-lua.so

$(BUILD)/host-example: examples/host.c $(LIB)
	$(CC) -O2 -Wall -Wextra -Iinclude $< $(LIB) $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_RPATH) -lm -fopenmp -o $@

host-example: $(BUILD)/host-example
	$(BUILD)/host-example

# recur's product kernels timed alone (bench/kernels.c); bf16.o is not in librecur.a
$(BUILD)/bench/kernels: bench/kernels.c $(LIB) $(BUILD)/obj/bf16.o
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -fopenmp $< $(LIB) $(BUILD)/obj/bf16.o $(LDFLAGS) $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_RPATH) -lm -o $@

deps:
	@sh .ci/deps.sh $(DEB_PACKAGES)
	@sh .ci/luarocks-lua54.sh
	@sh .ci/luarocks-provided.sh

deps-test: deps
	@sh .ci/deps.sh $(DEB_TEST)

test: deps-test
	@$(MAKE) --no-print-directory all test-c
	$(BUSTED) --lua=$(LUA) spec

demo: deps
	@$(MAKE) --no-print-directory all
	$(LUA) examples/demo.lua

memcheck: deps-test
	@sh .ci/deps.sh $(DEB_MEMCHECK)
	@$(MAKE) --no-print-directory all
	RECUR_MEMCHECK=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 valgrind --error-exitcode=1 \
	  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --suppressions=.ci/valgrind.supp $(LUA) /usr/bin/busted $(MEMCHECK_SPECS)

sanitize-build:
	@sh .ci/deps.sh $(DEB_SANITIZE)
	@$(SAN_MAKE) all lib $(C_TESTS:$(BUILD)/%=$(SAN_BUILD)/%)

sanitize: deps-test
	@$(MAKE) --no-print-directory sanitize-build
	@ASAN_OPTIONS=$(SAN_ASAN_OPTIONS) $(SAN_MAKE) test-c
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

# `make install PREFIX=/opt/recur` (default /usr/local; DESTDIR for staging): the C
# libraries (librecur.so, librecur.a; librecur-lua for hosts that embed Lua), the public
# headers under include/recur/, recur.pc and recur-lua.pc for pkg-config, the Lua module
# (recur/core.so and the Lua files, where lua5.4 looks for them under /usr/local) and
# the `recur` command.
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# INST_LIBDIR holds recur/core.so, INST_LUADIR the Lua modules (luarocks's names: the
# rock sets them and runs install-lua).
INST_LIBDIR  ?= $(LIBDIR)/lua/5.4
INST_LUADIR  ?= $(PREFIX)/share/lua/5.4
# What a static link adds after -lrecur (recur.pc's Libs.private).
LIBS_PRIVATE  = $(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_RPATH) -fopenmp -lm
PC_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
  -e 's|@LUADIR@|$(INST_LUADIR)|g' -e 's|@LUACDIR@|$(INST_LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
  -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g'

install: install-lua install-lib
	mkdir -p $(DESTDIR)$(BINDIR)
	cp bin/recur $(DESTDIR)$(BINDIR)/recur
	chmod 755 $(DESTDIR)$(BINDIR)/recur

install-lua: $(CORE) $(DIST)
	mkdir -p $(DESTDIR)$(INST_LIBDIR)/recur $(DESTDIR)$(INST_LUADIR)
	cp $(CORE) $(DESTDIR)$(INST_LIBDIR)/recur/core.so
	$(if $(DIST),cp $(DIST) $(DESTDIR)$(INST_LIBDIR)/recur/dist.so)
	cp -r lua/recur $(DESTDIR)$(INST_LUADIR)/

install-lib: lib recur.pc.in recur-lua.pc.in
	mkdir -p $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/recur $(DESTDIR)$(PKGCONFIGDIR)
	cp $(LIB) $(LUALIB) $(SOLIB) $(LUASOLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf librecur.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/librecur.so
	ln -sf librecur-lua.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/librecur-lua.so
	cp $(PUBLIC_HDRS) $(DESTDIR)$(INCLUDEDIR)/recur/
	$(PC_SUBST) recur.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/recur.pc
	$(PC_SUBST) recur-lua.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/recur-lua.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/recur $(DESTDIR)$(INST_LIBDIR)/recur/core.so $(DESTDIR)$(INST_LIBDIR)/recur/dist.so
	rm -rf $(DESTDIR)$(INST_LUADIR)/recur $(DESTDIR)$(INCLUDEDIR)/recur
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,librecur.a librecur-lua.a librecur.so librecur-lua.so \
	  librecur.so.$(SOVERSION) librecur-lua.so.$(SOVERSION))
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/recur.pc $(DESTDIR)$(PKGCONFIGDIR)/recur-lua.pc

# `make rock`: build/recur-$(VERSION)-1.src.rock from the checkout's tracked files as
# they stand (edits included), for `luarocks install` anywhere, offline (README-rock.md).
# A source rock is a zip of the rockspec and the source archive; the rockspec inside is
# rockspec/recur-scm-1.rockspec with this version and that archive as its source, which
# luarocks then unpacks from the rock instead of fetching it (`luarocks pack` would
# insist on fetching the url itself).
ROCK_VERSION := $(VERSION)-1
ROCK  := $(BUILD)/recur-$(ROCK_VERSION).src.rock
ROCK_STAGE = $(BUILD)/rock

rock:
	@command -v git >/dev/null || { echo "make rock: needs git (it packs the tracked files)" >&2; exit 1; }
	rm -rf $(ROCK_STAGE) && mkdir -p $(ROCK_STAGE)/recur-$(VERSION)
	git ls-files -z | xargs -0 tar cf - | tar xf - -C $(ROCK_STAGE)/recur-$(VERSION)
	tar czf $(ROCK_STAGE)/recur-$(VERSION).tar.gz -C $(ROCK_STAGE) recur-$(VERSION)
	sed -e 's|^version = "scm-1"|version = "$(ROCK_VERSION)"|' \
	    -e 's|^  url = .*|  url = "recur-$(VERSION).tar.gz",\n  dir = "recur-$(VERSION)",|' \
	    rockspec/recur-scm-1.rockspec > $(ROCK_STAGE)/recur-$(ROCK_VERSION).rockspec
	rm -f $(ROCK)
	cd $(ROCK_STAGE) && zip -q ../$(notdir $(ROCK)) recur-$(ROCK_VERSION).rockspec recur-$(VERSION).tar.gz
	rm -rf $(ROCK_STAGE)
	@echo "made $(ROCK)"

clean:
	rm -rf build build-san
