-- MSE: mean squared error, sum((input - target)^2) / N (reduction "mean", N the
-- number of elements) or the plain sum (reduction "sum").
-- Input and target: float tensors of the same shape (any).
local core = require "recur.core"
local util = require "recur.nn.util"
local Criterion = require "recur.nn.Criterion"

local MSE = util.class("MSE", Criterion)

-- opts: reduction ("mean" | "sum")
function MSE:__init(opts)
  Criterion.__init(self, "MSE", opts)
end

function MSE:forward(x, t)
  x, t = self:_pair("MSE", x, t)
  local s = core.nn_mse(x, t)
  self.output = self.reduction == "mean" and s / x:numel() or s
  return self.output
end

function MSE:backward(x, t)
  x, t = self:_pair("MSE", x, t)
  local scale = self.reduction == "mean" and 1 / x:numel() or 1
  return core.nn_mse_backward(x, t, scale):view(x:size())
end

return MSE
