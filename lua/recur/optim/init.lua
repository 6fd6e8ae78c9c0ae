-- recur.optim: optimizers, gradient clipping and learning-rate schedules.
--
--   local opt = recur.optim.Adam(model, {lr = 2e-3})   -- model: parameters() + gradients()
--   opt:zero_grad(); <forward, backward>; recur.optim.clip_grad_norm(model, 5); opt:step()
--
-- Optimizers (see Optimizer.lua for the shared interface): SGD, Adam, AdamW, RMSprop,
-- Adagrad; create(name, model, opts) builds one by its lower-case name ("sgd", "adam",
-- "adamw", "rmsprop", "adagrad"; the list is optim.names). Clipping (clip.lua):
-- clip_grad_norm, clip_grad_value. Schedules (lr_scheduler.lua): StepLR, ExponentialLR,
-- CosineAnnealingLR, ReduceLROnPlateau.
local clip = require "recur.optim.clip"
local schedulers = require "recur.optim.lr_scheduler"
local create = require "recur.optim.create"

return {
  Optimizer = require "recur.optim.Optimizer",
  SGD = require "recur.optim.SGD",
  Adam = require "recur.optim.Adam",
  AdamW = require "recur.optim.AdamW",
  RMSprop = require "recur.optim.RMSprop",
  Adagrad = require "recur.optim.Adagrad",
  create = create.create,
  names = create.names,
  clip_grad_norm = clip.clip_grad_norm,
  clip_grad_value = clip.clip_grad_value,
  StepLR = schedulers.StepLR,
  ExponentialLR = schedulers.ExponentialLR,
  CosineAnnealingLR = schedulers.CosineAnnealingLR,
  ReduceLROnPlateau = schedulers.ReduceLROnPlateau,
}
