-- Adam (Kingma & Ba) with optional L2 weight decay and AMSGrad, the equations of
-- PyTorch 1.13's torch.optim.Adam. At step t (counting from 1):
--
--   g = g + weight_decay * p
--   m = beta1 * m + (1 - beta1) * g                  (state exp_avg)
--   v = beta2 * v + (1 - beta2) * g^2                (state exp_avg_sq)
--   vmax = max(vmax, v), used in place of v          (amsgrad: state max_exp_avg_sq)
--   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
--
-- Options: {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
-- amsgrad = false}; the betas live in the fields beta1 and beta2. Memory: two buffers
-- per parameter (three with amsgrad). AdamW (recur.optim.AdamW) is this class with the
-- weight decay decoupled from the gradient.
local core = require "recur.core"
local Optimizer = require "recur.optim.Optimizer"

local Adam = Optimizer.subclass("Adam")

Adam.defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false}
Adam.decoupled = false

function Adam:__init(source, opts)
  local name = self.__name
  local o = Optimizer.options(name, opts, self.defaults)
  local check = Optimizer.check
  local b = o.betas
  check(name, #b == 2 and type(b[1]) == "number" and type(b[2]) == "number",
    "betas must be a table of two numbers")
  check(name, o.lr >= 0, "invalid learning rate %g", o.lr)
  check(name, o.eps >= 0, "invalid eps %g", o.eps)
  check(name, b[1] >= 0 and b[1] < 1, "invalid beta1 %g (expected 0 <= beta1 < 1)", b[1])
  check(name, b[2] >= 0 and b[2] < 1, "invalid beta2 %g (expected 0 <= beta2 < 1)", b[2])
  check(name, o.weight_decay >= 0, "invalid weight_decay %g", o.weight_decay)
  self.lr, self.beta1, self.beta2, self.eps = o.lr, b[1], b[2], o.eps
  self.weight_decay, self.amsgrad = o.weight_decay, o.amsgrad
  local buffers = {"exp_avg", "exp_avg_sq"}
  if o.amsgrad then buffers[3] = "max_exp_avg_sq" end
  self:_setup(source, {"lr", "beta1", "beta2", "eps", "weight_decay"}, {"amsgrad"}, buffers)
end

function Adam:step()
  self:_check_lr()
  local t = self.step_count + 1
  local m, v, vmax = self.state.exp_avg, self.state.exp_avg_sq, self.state.max_exp_avg_sq
  for i, p in ipairs(self.params) do
    core.optim_adam(p, self.grads[i], m[i], v[i], vmax and vmax[i] or nil, self.lr, self.beta1,
      self.beta2, self.eps, self.weight_decay, self.decoupled, t)
  end
  self.step_count = t
end

return Adam
