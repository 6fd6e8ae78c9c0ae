package = "recur"
version = "scm-1"
rockspec_format = "3.0"
-- `luarocks make rockspec/recur-scm-1.rockspec` builds the checkout in place and
-- never reads this source; it names the repository for `luarocks install` of the scm
-- version once recur is published there. `make rock` packs the checkout into a source
-- rock that carries its own archive (its rockspec is this one with the version and
-- the archive filled in), so `luarocks install recur-<version>.src.rock` needs no
-- server.
source = {
  url = "git+https://example.invalid/recur.git",
}
description = {
  summary = "Recurrent neural networks (RNN, GRU, LSTM) for Lua 5.4 on a fast C core",
  detailed = [[
recur trains and runs recurrent networks from Lua: fused C kernels for whole
sequences forward and backward through time, OpenBLAS GEMMs, modules, losses,
optimizers, safetensors checkpoints, language-model data pipelines and decoding.]],
  license = "MIT",
}
-- lua-cjson reads and writes checkpoint headers, argparse parses the `recur` command's
-- flags. On Debian the lua-cjson and lua-argparse packages provide both, but luarocks
-- does not see packages it did not install: there, install with --deps-mode=none
-- (README, "Install as a rock").
dependencies = {
  "lua >= 5.4, < 5.5",
  "lua-cjson >= 2.1",
  "argparse >= 0.7",
}
-- Found by luarocks, or given: luarocks install ... OPENBLAS_DIR=/opt/openblas (or
-- OPENBLAS_INCDIR and OPENBLAS_LIBDIR). The Makefile prefers the OpenMP build of
-- OpenBLAS in that folder when there is one.
external_dependencies = {
  OPENBLAS = { library = "openblas" },
}
build = {
  type = "make",
  -- The Makefile picks its own optimisation flags (CFLAGS, ARCHFLAGS override them).
  build_target = "all",
  build_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    OPENBLAS_DIR = "$(OPENBLAS_DIR)",
    OPENBLAS_INCDIR = "$(OPENBLAS_INCDIR)",
    OPENBLAS_LIBDIR = "$(OPENBLAS_LIBDIR)",
  },
  install_target = "install-lua",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
  install = {
    bin = { recur = "bin/recur" },
  },
}
-- `luarocks test` in a checkout: builds, then runs busted if it is installed (a rock
-- or Debian's lua-busted); nothing is downloaded.
test = {
  type = "command",
  script = "rockspec/test.lua",
}
