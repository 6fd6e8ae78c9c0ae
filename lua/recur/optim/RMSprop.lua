-- RMSprop (Hinton), optionally centered and with momentum, the equations of PyTorch
-- 1.13's torch.optim.RMSprop:
--
--   g = g + weight_decay * p
--   sq = alpha * sq + (1 - alpha) * g^2                       (state square_avg)
--   centered: ga = alpha * ga + (1 - alpha) * g; avg = sqrt(sq - ga^2) + eps
--             (state grad_avg), else avg = sqrt(sq) + eps
--   momentum > 0: buf = momentum * buf + g / avg; p = p - lr * buf
--                 (state momentum_buffer), else p = p - lr * g / avg
--
-- Options: {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
-- centered = false}. Memory: one to three buffers per parameter.
local core = require "recur.core"
local Optimizer = require "recur.optim.Optimizer"

local RMSprop = Optimizer.subclass("RMSprop")

function RMSprop:__init(source, opts)
  local o = Optimizer.options("RMSprop", opts,
    {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false})
  local check = Optimizer.check
  check("RMSprop", o.lr >= 0, "invalid learning rate %g", o.lr)
  check("RMSprop", o.eps >= 0, "invalid eps %g", o.eps)
  check("RMSprop", o.momentum >= 0, "invalid momentum %g", o.momentum)
  check("RMSprop", o.weight_decay >= 0, "invalid weight_decay %g", o.weight_decay)
  check("RMSprop", o.alpha >= 0, "invalid alpha %g", o.alpha)
  self.lr, self.alpha, self.eps = o.lr, o.alpha, o.eps
  self.weight_decay, self.momentum, self.centered = o.weight_decay, o.momentum, o.centered
  local buffers = {"square_avg"}
  if o.momentum > 0 then buffers[#buffers + 1] = "momentum_buffer" end
  if o.centered then buffers[#buffers + 1] = "grad_avg" end
  self:_setup(source, {"lr", "alpha", "eps", "weight_decay", "momentum"}, {"centered"}, buffers)
end

function RMSprop:step()
  self:_check_lr()
  local sq, ga, bufs = self.state.square_avg, self.state.grad_avg, self.state.momentum_buffer
  local use = self.momentum > 0
  if use and not bufs then
    error("RMSprop: momentum was 0 when this optimizer was built (no momentum buffers); "
      .. "build a new optimizer to use momentum", 2)
  end
  for i, p in ipairs(self.params) do
    core.optim_rmsprop(p, self.grads[i], sq[i], ga and ga[i] or nil, use and bufs[i] or nil,
      self.lr, self.alpha, self.eps, self.weight_decay, self.momentum)
  end
  self.step_count = self.step_count + 1
end

return RMSprop
