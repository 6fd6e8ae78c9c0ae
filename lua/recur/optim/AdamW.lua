-- AdamW (Loshchilov & Hutter): Adam with the weight decay decoupled from the gradient,
-- the equations of PyTorch 1.13's torch.optim.AdamW. Each step first shrinks the
-- parameter, p = p * (1 - lr * weight_decay), then applies Adam's update without
-- adding weight_decay * p to the gradient.
--
-- Options: as recur.optim.Adam, with weight_decay = 1e-2 by default (PyTorch's).
local Adam = require "recur.optim.Adam"
local Optimizer = require "recur.optim.Optimizer"

local AdamW = Optimizer.subclass("AdamW", Adam)

AdamW.defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2, amsgrad = false}
AdamW.decoupled = true

return AdamW
