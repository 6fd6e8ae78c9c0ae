-- recur: recurrent neural networks for Lua 5.4 on a C core.
--
-- `require "recur"` returns this table: every function of the C module
-- (`recur.core`: tensors, kernels) plus the Lua packages, loaded on first use:
-- recur.nn, recur.optim, recur.data, recur.train, recur.decode, recur.beam, recur.models,
-- recur.io, recur.checkpoint.
--
-- recur.load(path) -> model, info: any model of recur.models from its checkpoint
-- (recur.checkpoint.load).
local core = require "recur.core"

local recur = {core = core, version = core.version}

for name, fn in pairs(core) do
  if type(fn) == "function" then recur[name] = fn end
end

-- Packages load lazily so that a host embedding only the tensor core pays for nothing else.
local packages = {
  nn = "recur.nn", optim = "recur.optim", data = "recur.data", train = "recur.train",
  decode = "recur.decode", models = "recur.models", io = "recur.io", gradcheck = "recur.gradcheck",
  lm = "recur.lm", checkpoint = "recur.checkpoint", progress = "recur.progress", plot = "recur.plot", beam = "recur.beam",
}

function recur.load(path)
  return require("recur.checkpoint").load(path)
end

setmetatable(recur, {
  __index = function(t, key)
    local modname = packages[key]
    if not modname then return nil end
    local value = require(modname)
    rawset(t, key, value)
    return value
  end,
})

-- Loading changes nothing in the process beyond the OpenBLAS kernel repair
-- (csrc/blas_core.c): threads keep OpenMP's and OpenBLAS's defaults (a count per core,
-- or OMP_NUM_THREADS), started on the first parallel operation, not here.
return recur
