-- Lower-precision inference: which precision a module's products run in, and the
-- packed copies of its weights (core.bf16_matrix, core.int8_matrix) that they read.
--
-- A module with set_precision("bf16") (nn.Recurrent, the stacks, LanguageModel) runs
-- its forward and step in evaluation mode with bfloat16 weights and float32 sums
-- (csrc/bf16.h: vdpbf16ps on CPUs with AVX-512 BF16, the same arithmetic in AVX2 or
-- portable C elsewhere, the same bits); "int8" with int8 weight rows and inputs
-- quantized per step, int32 sums (csrc/bf16_int8.h: vpdpbusd with AVX-512 VNNI, else
-- AVX2 or C), meant for generation; training mode,
-- and so backward, stay float32.
-- The packed copies are made at the first bf16 call and made again when a weight is
-- another tensor (after :to()), after train(true) (training changes the weights) and
-- after LanguageModel:load_state_dict. A weight edited in place in evaluation mode
-- is not noticed: call set_precision("bf16") again (bf16.drop) to repack.
local core = require "recur.core"

local bf16 = {}

bf16.PRECISIONS = {fp32 = true, bf16 = true, int8 = true}

-- precision, checked: a known name, and bf16 only for a float32 module.
function bf16.check(op, precision, dtype)
  if not bf16.PRECISIONS[precision] then
    error(string.format("%s: unknown precision '%s' (fp32, bf16, int8)", op, tostring(precision)), 3)
  end
  if precision ~= "fp32" and dtype ~= "float32" then
    error(string.format("%s: %s inference needs a float32 module, this one is %s", op, precision, tostring(dtype)), 3)
  end
  return precision
end

-- opts.training of set_precision(precision, opts), checked: true only with "bf16".
function bf16.check_training(op, precision, opts)
  if opts == nil then return false end
  if type(opts) ~= "table" then error(op .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if k ~= "training" then error(string.format("%s: unknown option '%s' (training)", op, tostring(k)), 3) end
  end
  if opts.training ~= nil and type(opts.training) ~= "boolean" then error(op .. ": option training must be a boolean", 3) end
  if opts.training and precision ~= "bf16" then
    error(string.format("%s: training runs in fp32 or bf16, not %s", op, precision), 3)
  end
  return opts.training == true
end

-- The bf16 matrix under name in module, refilled from w (and w2) now: for training,
-- where the optimizer changes the weights in place between forwards.
function bf16.repacked(module, name, w, w2)
  local cache = rawget(module, "_bf16_train")
  if not cache then
    cache = {}
    module._bf16_train = cache
  end
  local m = cache[name]
  if m then m:repack(w, w2) else
    m = core.bf16_matrix(w, w2)
    cache[name] = m
  end
  return m
end

-- The precision of module's next forward or step: "bf16", "int8", or nil for float32.
function bf16.active(module)
  local p = module.precision
  if p == nil or p == "fp32" or module.training then return nil end
  return p
end

-- The packed copy of weight w (a float32 (N,K) tensor), or of [w w2] side by side,
-- kept under name in module; int8 (w alone) when precision is "int8".
function bf16.matrix(module, name, w, w2, precision)
  local cache = rawget(module, "_bf16")
  if not cache then
    cache = {}
    module._bf16 = cache
  end
  local int8 = precision == "int8"
  local e = cache[name]
  if not e or e.tensor ~= w or e.tensor2 ~= w2 or e.int8 ~= int8 then
    e = {tensor = w, tensor2 = w2, int8 = int8, matrix = int8 and core.int8_matrix(w) or core.bf16_matrix(w, w2)}
    cache[name] = e
  end
  return e.matrix
end

-- Forgets every packed copy in module and its children.
function bf16.drop(module)
  module._bf16 = nil
  for _, c in ipairs(module._children or {}) do bf16.drop(c.module) end
end

-- y (..., N) = x (..., K) w^T + bias in precision ("bf16" or "int8"), into module's
-- buffer `key`.
function bf16.linear(module, name, x, w, bias, key, precision)
  local K, N = w:size(2), w:size(1)
  local M = x:numel() // K
  local size = x:size()
  size[#size] = N
  local linear = precision == "int8" and core.int8_linear or core.bf16_linear
  local y = linear(x:reshape(M, K), bf16.matrix(module, name, w, nil, precision), bias, module[key])
  module[key] = y
  return y:view(size)
end

return bf16
