-- SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
-- weight decay, the equations of PyTorch 1.13's torch.optim.SGD:
--
--   d = g + weight_decay * p
--   buf = d on the first step, else momentum * buf + (1 - dampening) * d
--   d = nesterov and d + momentum * buf or buf            (when momentum ~= 0)
--   p = p - lr * d
--
-- Options (lr is required, as in PyTorch): {lr, momentum = 0, dampening = 0,
-- weight_decay = 0, nesterov = false}. Memory: one momentum buffer per parameter when
-- momentum ~= 0, none otherwise (state name `momentum_buffer`).
local core = require "recur.core"
local Optimizer = require "recur.optim.Optimizer"

local SGD = Optimizer.subclass("SGD")

function SGD:__init(source, opts)
  local o = Optimizer.options("SGD", opts,
    {momentum = 0, dampening = 0, weight_decay = 0, nesterov = false}, {lr = "number"})
  local check = Optimizer.check
  check("SGD", o.lr >= 0, "invalid learning rate %g", o.lr)
  check("SGD", o.momentum >= 0, "invalid momentum %g", o.momentum)
  check("SGD", o.weight_decay >= 0, "invalid weight_decay %g", o.weight_decay)
  check("SGD", not o.nesterov or (o.momentum > 0 and o.dampening == 0),
    "Nesterov momentum requires a momentum and zero dampening")
  self.lr, self.momentum, self.dampening = o.lr, o.momentum, o.dampening
  self.weight_decay, self.nesterov = o.weight_decay, o.nesterov
  self:_setup(source, {"lr", "momentum", "dampening", "weight_decay"}, {"nesterov"},
    o.momentum ~= 0 and {"momentum_buffer"} or {})
end

function SGD:step()
  self:_check_lr()
  local bufs = self.state.momentum_buffer
  if self.momentum ~= 0 and not bufs then
    error("SGD: momentum was 0 when this optimizer was built (no momentum buffers); "
      .. "build a new optimizer to use momentum", 2)
  end
  local use = self.momentum ~= 0
  local first = self.step_count == 0
  for i, p in ipairs(self.params) do
    core.optim_sgd(p, self.grads[i], use and bufs[i] or nil, self.lr, self.momentum,
      self.dampening, self.weight_decay, self.nesterov, first)
  end
  self.step_count = self.step_count + 1
end

return SGD
