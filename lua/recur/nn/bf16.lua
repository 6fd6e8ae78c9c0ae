-- bfloat16 inference: which precision a module's products run in, and the packed
-- bfloat16 copies of its weights (core.bf16_matrix) that the bf16 products read.
--
-- A module with set_precision("bf16") (nn.Recurrent, the stacks, LanguageModel) runs
-- its forward and step in evaluation mode with bfloat16 weights and float32 sums
-- (csrc/bf16.h: vdpbf16ps on CPUs with AVX-512 BF16, the same arithmetic in portable
-- C elsewhere); training mode, and so backward, stay float32.
-- The packed copies are made at the first bf16 call and made again when a weight is
-- another tensor (after :to()), after train(true) (training changes the weights) and
-- after LanguageModel:load_state_dict. A weight edited in place in evaluation mode
-- is not noticed: call set_precision("bf16") again (bf16.drop) to repack.
local core = require "recur.core"

local bf16 = {}

bf16.PRECISIONS = {fp32 = true, bf16 = true}

-- precision, checked: a known name, and bf16 only for a float32 module.
function bf16.check(op, precision, dtype)
  if not bf16.PRECISIONS[precision] then
    error(string.format("%s: unknown precision '%s' (fp32, bf16)", op, tostring(precision)), 3)
  end
  if precision == "bf16" and dtype ~= "float32" then
    error(string.format("%s: bf16 inference needs a float32 module, this one is %s", op, tostring(dtype)), 3)
  end
  return precision
end

-- Whether module's next forward or step runs in bfloat16.
function bf16.active(module)
  return module.precision == "bf16" and not module.training
end

-- The packed copy of weight w (a float32 (N,K) tensor), or of [w w2] side by side,
-- kept under name in module.
function bf16.matrix(module, name, w, w2)
  local cache = rawget(module, "_bf16")
  if not cache then
    cache = {}
    module._bf16 = cache
  end
  local e = cache[name]
  if not e or e.tensor ~= w or e.tensor2 ~= w2 then
    e = {tensor = w, tensor2 = w2, matrix = core.bf16_matrix(w, w2)}
    cache[name] = e
  end
  return e.matrix
end

-- Forgets every packed copy in module and its children.
function bf16.drop(module)
  module._bf16 = nil
  for _, c in ipairs(module._children or {}) do bf16.drop(c.module) end
end

-- y (..., N) = x (..., K) w^T + bias in bfloat16, into module's buffer `key`.
function bf16.linear(module, name, x, w, bias, key)
  local K, N = w:size(2), w:size(1)
  local M = x:numel() // K
  local size = x:size()
  size[#size] = N
  local y = core.bf16_linear(x:reshape(M, K), bf16.matrix(module, name, w), bias, module[key])
  module[key] = y
  return y:view(size)
end

return bf16
