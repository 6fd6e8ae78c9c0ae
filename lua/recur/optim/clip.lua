-- Gradient clipping, PyTorch 1.13's torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
--
--   clip_grad_norm(grads, max_norm [, norm_type = 2]) -> total_norm
--     total_norm is the norm of all gradients taken together as one vector (2-norm, or
--     the largest |g| for norm_type = math.huge), computed in C with double
--     accumulation in a fixed order (the same number whatever the thread count).
--     When total_norm > max_norm every gradient is scaled in place by
--     max_norm / (total_norm + 1e-6) (PyTorch's 1e-6 keeps the result just under
--     max_norm). A NaN or infinite norm leaves the gradients untouched and is returned
--     as is, so that the caller can skip the step.
--   clip_grad_value(grads, clip_value)
--     clamps every gradient element to [-clip_value, clip_value] in place.
--
-- grads: an array of float tensors, or a module (its gradients: the second array of
-- parameters(), or gradients()).
local core = require "recur.core"
local Optimizer = require "recur.optim.Optimizer"

local clip = {}

local function grad_list(name, grads)
  if type(grads) == "table" and type(grads.parameters) == "function" then
    local module = grads
    grads = select(2, module:parameters())
    if grads == nil and type(module.gradients) == "function" then grads = module:gradients() end
  end
  if type(grads) ~= "table" then
    error(string.format("%s: expected an array of gradient tensors, got %s", name, type(grads)), 0)
  end
  for i, g in ipairs(grads) do
    if not Optimizer.is_tensor(g) then
      error(string.format("%s: gradient %d is not a tensor", name, i), 0)
    end
    local dt = g:dtype()
    if dt ~= "float32" and dt ~= "float64" then
      error(string.format("%s: gradient %d is %s, expected float32 or float64", name, i, dt), 0)
    end
  end
  return grads
end

function clip.clip_grad_norm(grads, max_norm, norm_type)
  grads = grad_list("clip_grad_norm", grads)
  if type(max_norm) ~= "number" or not (max_norm >= 0) then
    error("clip_grad_norm: max_norm must be a non-negative number, got " .. tostring(max_norm), 2)
  end
  norm_type = norm_type or 2
  local total
  if norm_type == 2 then
    local sum = 0.0
    for _, g in ipairs(grads) do sum = sum + core.optim_sum_squares(g) end
    total = math.sqrt(sum)
  elseif norm_type == math.huge then
    total = 0.0
    for _, g in ipairs(grads) do
      local m = core.optim_max_abs(g)
      if m ~= m then total = m break end
      if m > total then total = m end
    end
  else
    error("clip_grad_norm: norm_type must be 2 or math.huge, got " .. tostring(norm_type), 2)
  end
  if total ~= total or total == math.huge then return total end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for _, g in ipairs(grads) do g:mul_(coef) end
  end
  return total
end

function clip.clip_grad_value(grads, clip_value)
  grads = grad_list("clip_grad_value", grads)
  if type(clip_value) ~= "number" or not (clip_value >= 0) then
    error("clip_grad_value: clip_value must be a non-negative number, got "
      .. tostring(clip_value), 2)
  end
  for _, g in ipairs(grads) do g:clamp_(-clip_value, clip_value) end
end

return clip
