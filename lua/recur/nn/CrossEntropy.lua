-- CrossEntropy: softmax cross-entropy on logits with integer class targets, fused in
-- C (one pass for the row maxima and log-sum-exp, OpenMP over rows; the softmax is
-- never materialised in forward).
--
--   loss:forward(logits, targets [, mask]) -> loss in nats
--   loss:backward(logits, targets [, mask]) -> gradient (same shape as logits)
--
-- logits (N,V) or (T,B,V) (any leading dims), float; targets int64 with the leading
-- dims of logits, 1-based class ids in 1..V (an id outside that range is an error,
-- except ignore_index). Padding is excluded with ignore_index (targets equal to it
-- count for nothing) and/or a mask with the shape of targets (1 counts, 0 does not;
-- other values weight the position). Reduction "mean" divides the weighted sum by the
-- total weight (the number of counted targets), "sum" does not divide; when nothing
-- counts the mean is 0 (not NaN) so an all-padding batch does not poison training.
-- After forward, `loss.count` is that total weight and `loss:perplexity()` is
-- exp(loss) (meaningful with reduction "mean").
-- Keeps the row log-sum-exp (N values) from forward; backward reuses it when called
-- with the same tensors, and otherwise recomputes it. Like torch/nn's gradInput, the
-- gradient tensor returned by backward is reused (overwritten) by the next backward
-- with the same shape: a (T*B,V) block is large, and allocating a fresh one every
-- step costs more than the kernel. Clone it to keep it.
local core = require "recur.core"
local util = require "recur.nn.util"
local Criterion = require "recur.nn.Criterion"

local CrossEntropy = util.class("CrossEntropy", Criterion)

-- opts: ignore_index (an integer, default none), reduction ("mean" | "sum")
function CrossEntropy:__init(opts)
  opts = Criterion.__init(self, "CrossEntropy", opts, {ignore_index = true})
  local ignore = opts.ignore_index
  if ignore ~= nil then
    ignore = type(ignore) == "number" and math.tointeger(ignore) or nil
    if not ignore then
      error("CrossEntropy: ignore_index must be an integer, got " .. tostring(opts.ignore_index), 2)
    end
  end
  self.ignore_index = ignore
end

-- logits as (N,V), targets as (N), mask as (N) in the logits' dtype.
function CrossEntropy:_flat(x, target, mask)
  local name = "CrossEntropy"
  util.check_input(name, "input", x)
  if x:dtype() == "int64" then error(name .. ": input logits must be float, got int64", 3) end
  if x:dim() < 2 then error(name .. ": input logits must be (N,V) or (T,B,V), got " .. util.shape_str(x), 3) end
  if not util.is_tensor(target) or target:dtype() ~= "int64" then
    error(name .. ": targets must be an int64 tensor of 1-based class ids", 3)
  end
  local xs, ts = x:size(), target:size()
  local ok = #ts == #xs - 1
  for i = 1, #ts do ok = ok and ts[i] == xs[i] end
  if not ok then
    error(string.format("%s: targets %s must have the shape of the input %s without its last dim",
      name, util.shape_str(target), util.shape_str(x)), 3)
  end
  local V = xs[#xs]
  local N = x:numel() // V
  local m
  if mask ~= nil then
    if not util.is_tensor(mask) or not util.same_shape(mask, target) then
      error(string.format("%s: mask must be a tensor of the targets' shape %s", name, util.shape_str(target)), 3)
    end
    m = mask:dtype() == x:dtype() and mask:reshape(N) or mask:to(x:dtype()):reshape(N)
  end
  return x:reshape(N, V), target:reshape(N), m
end

function CrossEntropy:forward(x, target, mask)
  local x2, t1, m1 = self:_flat(x, target, mask)
  local loss_sum, weight_sum, lse = core.nn_cross_entropy(x2, t1, self.ignore_index, m1)
  self._last = {x = x, target = target, mask = mask, lse = lse, weight_sum = weight_sum}
  self.count = weight_sum
  if self.reduction == "mean" then
    self.output = weight_sum > 0 and loss_sum / weight_sum or 0
  else
    self.output = loss_sum
  end
  return self.output
end

function CrossEntropy:backward(x, target, mask)
  -- checked here first, so that a bad argument is reported at backward's caller
  -- (checked inside the forward below, it would name this file's line)
  local x2, t1, m1 = self:_flat(x, target, mask)
  local last = self._last
  if not (last and last.x == x and last.target == target and last.mask == mask) then
    self:forward(x, target, mask)
    last = self._last
  end
  local scale = 1
  if self.reduction == "mean" then scale = last.weight_sum > 0 and 1 / last.weight_sum or 0 end
  -- the binding writes into the kept buffer when it fits, else returns a new one
  local g = core.nn_cross_entropy_backward(x2, t1, self.ignore_index, m1, last.lse, scale,
    self._grad_buffer)
  self._grad_buffer = g
  return g:view(x:size())
end

-- exp of the last loss: the perplexity when the loss is a mean in nats.
function CrossEntropy:perplexity()
  if not self.output then error("CrossEntropy: perplexity before forward", 2) end
  return math.exp(self.output)
end

return CrossEntropy
