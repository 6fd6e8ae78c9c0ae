-- recur: recurrent neural networks for Lua 5.4 on a C core.
--
-- `require "recur"` returns this table: every function of the C module
-- (`recur.core`: tensors, kernels) plus the Lua packages, loaded on first use:
-- recur.nn, recur.optim, recur.data, recur.train, recur.decode, recur.beam, recur.models,
-- recur.io.
local core = require "recur.core"

local recur = {core = core, version = core.version}

for name, fn in pairs(core) do
  if type(fn) == "function" then recur[name] = fn end
end

-- Packages load lazily so that a host embedding only the tensor core pays for nothing else.
local packages = {
  nn = "recur.nn", optim = "recur.optim", data = "recur.data", train = "recur.train",
  decode = "recur.decode", models = "recur.models", io = "recur.io", gradcheck = "recur.gradcheck",
  lm = "recur.lm", progress = "recur.progress", plot = "recur.plot", beam = "recur.beam",
}

setmetatable(recur, {
  __index = function(t, key)
    local modname = packages[key]
    if not modname then return nil end
    local value = require(modname)
    rawset(t, key, value)
    return value
  end,
})

-- The default matches the machine's cores for both OpenMP and OpenBLAS, unless the
-- user pinned a count in the environment.
if not os.getenv("OMP_NUM_THREADS") and not os.getenv("OPENBLAS_NUM_THREADS") then
  core.set_num_threads(core.get_num_threads())
end

return recur
