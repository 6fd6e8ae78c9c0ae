-- Adagrad (Duchi et al.), the equations of PyTorch 1.13's torch.optim.Adagrad. At
-- step t (counting from 1):
--
--   g = g + weight_decay * p
--   sum = sum + g^2                        (state sum, starts at initial_accumulator_value)
--   p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
--
-- Options: {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0,
-- eps = 1e-10}. Memory: one buffer per parameter.
local core = require "recur.core"
local Optimizer = require "recur.optim.Optimizer"

local Adagrad = Optimizer.subclass("Adagrad")

function Adagrad:__init(source, opts)
  local o = Optimizer.options("Adagrad", opts,
    {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10})
  local check = Optimizer.check
  check("Adagrad", o.lr >= 0, "invalid learning rate %g", o.lr)
  check("Adagrad", o.lr_decay >= 0, "invalid lr_decay %g", o.lr_decay)
  check("Adagrad", o.weight_decay >= 0, "invalid weight_decay %g", o.weight_decay)
  check("Adagrad", o.initial_accumulator_value >= 0, "invalid initial_accumulator_value %g",
    o.initial_accumulator_value)
  check("Adagrad", o.eps >= 0, "invalid eps %g", o.eps)
  self.lr, self.lr_decay, self.weight_decay, self.eps = o.lr, o.lr_decay, o.weight_decay, o.eps
  self.initial_accumulator_value = o.initial_accumulator_value
  self:_setup(source, {"lr", "lr_decay", "weight_decay", "eps", "initial_accumulator_value"}, {},
    {"sum"}, o.initial_accumulator_value)
end

function Adagrad:step()
  self:_check_lr()
  local t = self.step_count + 1
  local clr = self.lr / (1 + (t - 1) * self.lr_decay)
  local sum = self.state.sum
  for i, p in ipairs(self.params) do
    core.optim_adagrad(p, self.grads[i], sum[i], clr, self.eps, self.weight_decay)
  end
  self.step_count = t
end

return Adagrad
