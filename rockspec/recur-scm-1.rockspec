package = "recur"
version = "scm-1"
rockspec_format = "3.0"
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
-- lua-cjson and argparse are used at run time (checkpoints, the `recur` command);
-- they are not listed as rock dependencies so that the rock installs offline on
-- Debian, where they come from the lua-cjson and lua-argparse packages.
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  OPENBLAS = { library = "openblas" },
}
build = {
  type = "make",
  -- The Makefile picks -O3 -march=x86-64-v2 and the OpenMP build of OpenBLAS itself.
  build_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
  install = {
    bin = { recur = "bin/recur" },
  },
}
