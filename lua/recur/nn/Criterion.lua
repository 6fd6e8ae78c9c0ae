-- Criterion: the base class of the losses. A loss has no parameters:
--   loss:forward(input, target) -> number
--   loss:backward(input, target) -> gradient of that number w.r.t. input (new tensor)
-- `reduction` is "mean" (default) or "sum". `self.output` keeps the last loss.
local util = require "recur.nn.util"

local Criterion = util.class("Criterion")

Criterion.is_criterion = true

function Criterion:__init(name, opts, allowed)
  allowed = allowed or {}
  allowed.reduction = true
  opts = util.check_opts(name, opts, allowed)
  local r = opts.reduction or "mean"
  if r ~= "mean" and r ~= "sum" then
    error(name .. ": reduction must be 'mean' or 'sum', got " .. tostring(r), 3)
  end
  self.reduction = r
  return opts
end

function Criterion:__tostring()
  return string.format("recur.nn.%s (reduction %s)", getmetatable(self).__name, self.reduction)
end

-- Input a float tensor; target (same shape and a float dtype) converted to the
-- input's dtype when it differs, so a float32 target works with a float64 input.
function Criterion:_pair(name, x, t)
  util.check_input(name, "input", x)
  util.check_input(name, "target", t)
  if x:dtype() == "int64" then error(name .. ": input must be a float tensor", 3) end
  if not util.same_shape(x, t) then
    error(string.format("%s: target %s does not match input %s", name, util.shape_str(t),
      util.shape_str(x)), 3)
  end
  if t:dtype() ~= x:dtype() then t = t:to(x:dtype()) end
  return x, t
end

-- A loss class for a sum of per-element terms over input and target of the same shape
-- (see _pair), from its C kernels: sum(x, t) -> number and grad(x, t, scale) -> scale *
-- d(sum)/dx. "mean" divides by the number of elements.
function Criterion.elementwise(name, sum, grad)
  local cls = util.class(name, Criterion)

  -- opts: reduction ("mean" | "sum")
  function cls:__init(opts)
    Criterion.__init(self, name, opts)
  end

  function cls:forward(x, t)
    x, t = self:_pair(name, x, t)
    local s = sum(x, t)
    self.output = self.reduction == "mean" and s / x:numel() or s
    return self.output
  end

  function cls:backward(x, t)
    x, t = self:_pair(name, x, t)
    local scale = self.reduction == "mean" and 1 / x:numel() or 1
    return grad(x, t, scale):view(x:size())
  end

  return cls
end

return Criterion
