-- Learning-rate schedules with PyTorch 1.13's semantics (torch.optim.lr_scheduler).
-- Each one sets `opt.lr` on the optimizer it was given.
--
--   StepLR(opt, {step_size, gamma = 0.1})           lr = base * gamma^floor(epoch / step_size)
--   ExponentialLR(opt, {gamma})                      lr = base * gamma^epoch
--   CosineAnnealingLR(opt, {T_max, eta_min = 0})     lr = eta_min + (base - eta_min)
--                                                         * (1 + cos(pi * epoch / T_max)) / 2
--   ReduceLROnPlateau(opt, {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
--                          threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8})
--
-- As in PyTorch, building a schedule takes base = opt.lr and counts as epoch 0, and
-- each `sched:step()` (once per epoch, after the optimizer's steps) moves to the next
-- epoch. The first three use PyTorch's closed forms (its _get_closed_form_lr): the rate
-- depends only on the base rate and the epoch, never on what opt.lr held before, so a
-- resumed run gets bitwise the same rates. ReduceLROnPlateau multiplies the current
-- opt.lr by factor (not below min_lr; changes smaller than eps are skipped) once the
-- metric given to `sched:step(metric)` has not improved for more than `patience`
-- epochs, then waits `cooldown` epochs before counting again.
--
-- `sched:get_last_lr()` returns the rate set by the last step. `sched:state_dict()`
-- returns a flat table of numbers and strings (for recur.io.encode_meta);
-- `sched:load_state_dict(t)` restores it (the closed forms also set opt.lr).
local Optimizer = require "recur.optim.Optimizer"

local M = {}

local options, check = Optimizer.options, Optimizer.check

local function check_optimizer(name, opt)
  if type(opt) ~= "table" or type(opt.lr) ~= "number" then
    error(name .. ": expected an optimizer (a table with a number field lr)", 0)
  end
end

local function state_number(name, t, key)
  local v = t[key]
  if type(v) ~= "number" or v ~= v then
    error(string.format("%s:load_state_dict: %s must be a number, got %s", name, key,
      tostring(v)), 0)
  end
  return v
end

-- Closed-form schedules: subclasses (Optimizer.subclass(name, Closed)) define fields
-- (the hyperparameter names) and rate(epoch).
local Closed = {}

function Closed:_start(opt)
  self.optimizer = opt
  self.base_lr = opt.lr
  self.last_epoch = -1
  self:step()
end

function Closed:step(...)
  if select("#", ...) > 0 then
    error(self.__name .. ":step takes no argument (each call is one epoch; "
      .. "ReduceLROnPlateau:step takes the metric)", 2)
  end
  self.last_epoch = self.last_epoch + 1
  self.last_lr = self:rate(self.last_epoch)
  self.optimizer.lr = self.last_lr
end

function Closed:get_last_lr()
  return self.last_lr
end

function Closed:state_dict()
  local t = {last_epoch = self.last_epoch, base_lr = self.base_lr}
  for _, f in ipairs(self.fields) do t[f] = self[f] end
  return t
end

function Closed:load_state_dict(t)
  if type(t) ~= "table" then error(self.__name .. ":load_state_dict: expected a table", 2) end
  local epoch = math.tointeger(state_number(self.__name, t, "last_epoch"))
  if not epoch or epoch < 0 then
    error(self.__name .. ":load_state_dict: last_epoch must be a non-negative integer", 2)
  end
  local vals = {base_lr = state_number(self.__name, t, "base_lr")}
  for _, f in ipairs(self.fields) do vals[f] = state_number(self.__name, t, f) end
  for k, v in pairs(vals) do self[k] = v end
  self.last_epoch = epoch
  self.last_lr = self:rate(epoch)
  self.optimizer.lr = self.last_lr
end

local StepLR = Optimizer.subclass("StepLR", Closed)
StepLR.fields = {"step_size", "gamma"}

function StepLR:__init(opt, opts)
  check_optimizer("StepLR", opt)
  local o = options("StepLR", opts, {gamma = 0.1}, {step_size = "number"})
  check("StepLR", math.tointeger(o.step_size) and o.step_size > 0,
    "step_size must be a positive integer, got %s", tostring(o.step_size))
  check("StepLR", o.gamma >= 0, "gamma must be >= 0, got %g", o.gamma)
  self.step_size, self.gamma = math.tointeger(o.step_size), o.gamma
  self:_start(opt)
end

function StepLR:rate(epoch)
  return self.base_lr * self.gamma ^ (epoch // self.step_size)
end

local ExponentialLR = Optimizer.subclass("ExponentialLR", Closed)
ExponentialLR.fields = {"gamma"}

function ExponentialLR:__init(opt, opts)
  check_optimizer("ExponentialLR", opt)
  local o = options("ExponentialLR", opts, {}, {gamma = "number"})
  check("ExponentialLR", o.gamma >= 0, "gamma must be >= 0, got %g", o.gamma)
  self.gamma = o.gamma
  self:_start(opt)
end

function ExponentialLR:rate(epoch)
  return self.base_lr * self.gamma ^ epoch
end

local CosineAnnealingLR = Optimizer.subclass("CosineAnnealingLR", Closed)
CosineAnnealingLR.fields = {"T_max", "eta_min"}

function CosineAnnealingLR:__init(opt, opts)
  check_optimizer("CosineAnnealingLR", opt)
  local o = options("CosineAnnealingLR", opts, {eta_min = 0}, {T_max = "number"})
  check("CosineAnnealingLR", o.T_max > 0, "T_max must be positive, got %g", o.T_max)
  check("CosineAnnealingLR", o.eta_min >= 0, "eta_min must be >= 0, got %g", o.eta_min)
  self.T_max, self.eta_min = o.T_max, o.eta_min
  self:_start(opt)
end

function CosineAnnealingLR:rate(epoch)
  local cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
  return self.eta_min + (self.base_lr - self.eta_min) * cosine
end

local ReduceLROnPlateau = Optimizer.subclass("ReduceLROnPlateau", {}) -- no parent

local PLATEAU_NUMBERS = {"factor", "patience", "threshold", "cooldown", "min_lr", "eps"}

local function check_modes(name, mode, threshold_mode)
  check(name, mode == "min" or mode == "max", "mode must be 'min' or 'max', got '%s'",
    tostring(mode))
  check(name, threshold_mode == "rel" or threshold_mode == "abs",
    "threshold_mode must be 'rel' or 'abs', got '%s'", tostring(threshold_mode))
end

function ReduceLROnPlateau:__init(opt, opts)
  local name = "ReduceLROnPlateau"
  check_optimizer(name, opt)
  local o = options(name, opts, {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
    threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8})
  check(name, o.factor >= 0 and o.factor < 1, "factor must be in [0, 1), got %g", o.factor)
  for _, k in ipairs({"patience", "cooldown"}) do
    check(name, math.tointeger(o[k]) and o[k] >= 0, "%s must be an integer >= 0, got %s", k, tostring(o[k]))
  end
  for _, k in ipairs({"threshold", "min_lr", "eps"}) do
    check(name, o[k] >= 0, "%s must be >= 0, got %g", k, o[k])
  end
  check_modes(name, o.mode, o.threshold_mode)
  for k, v in pairs(o) do self[k] = v end
  self.optimizer = opt
  self.last_epoch = 0
  self.best = o.mode == "min" and math.huge or -math.huge
  self.num_bad_epochs = 0
  self.cooldown_counter = 0
  self.last_lr = opt.lr
end

function ReduceLROnPlateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then
    return a < best * (1 - self.threshold)
  elseif self.mode == "min" then
    return a < best - self.threshold
  elseif self.threshold_mode == "rel" then
    return a > best * (self.threshold + 1)
  else
    return a > best + self.threshold
  end
end

function ReduceLROnPlateau:step(metric)
  if type(metric) ~= "number" then
    error("ReduceLROnPlateau:step: expected the metric (a number), got " .. type(metric), 2)
  end
  self.last_epoch = self.last_epoch + 1
  if self:is_better(metric, self.best) then
    self.best = metric
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0 -- bad epochs during the cooldown do not count
  end
  if self.num_bad_epochs > self.patience then
    local old = self.optimizer.lr
    local new = math.max(old * self.factor, self.min_lr)
    if old - new > self.eps then self.optimizer.lr = new end
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self.last_lr = self.optimizer.lr
end

function ReduceLROnPlateau:get_last_lr()
  return self.last_lr
end

-- best is left out while it is still the infinite starting value (JSON has no infinity).
function ReduceLROnPlateau:state_dict()
  local t = {mode = self.mode, threshold_mode = self.threshold_mode, last_epoch = self.last_epoch,
    num_bad_epochs = self.num_bad_epochs, cooldown_counter = self.cooldown_counter}
  for _, k in ipairs(PLATEAU_NUMBERS) do t[k] = self[k] end
  if self.best ~= math.huge and self.best ~= -math.huge then t.best = self.best end
  return t
end

function ReduceLROnPlateau:load_state_dict(t)
  local name = "ReduceLROnPlateau"
  if type(t) ~= "table" then error(name .. ":load_state_dict: expected a table", 2) end
  check_modes(name .. ":load_state_dict", t.mode, t.threshold_mode)
  local vals = {}
  for _, k in ipairs(PLATEAU_NUMBERS) do vals[k] = state_number(name, t, k) end
  for _, k in ipairs({"last_epoch", "num_bad_epochs", "cooldown_counter"}) do
    vals[k] = math.tointeger(state_number(name, t, k))
    if not vals[k] then error(name .. ":load_state_dict: " .. k .. " must be an integer", 2) end
  end
  if t.best ~= nil then vals.best = state_number(name, t, "best") end
  for k, v in pairs(vals) do self[k] = v end
  self.mode, self.threshold_mode = t.mode, t.threshold_mode
  if t.best == nil then self.best = self.mode == "min" and math.huge or -math.huge end
  self.last_lr = self.optimizer.lr
end

M.StepLR = StepLR
M.ExponentialLR = ExponentialLR
M.CosineAnnealingLR = CosineAnnealingLR
M.ReduceLROnPlateau = ReduceLROnPlateau

return M
