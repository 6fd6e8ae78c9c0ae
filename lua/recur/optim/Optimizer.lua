-- Optimizer: what every optimizer of recur.optim shares.
--
-- An optimizer keeps parallel arrays of parameters and their gradients (contiguous,
-- float32 or float64, each gradient of its parameter's shape and dtype; the tensors
-- themselves, so the module's own parameter and gradient tensors are updated and read in
-- place), per-parameter state tensors of the parameters' shapes and dtypes (moment
-- buffers, allocated once at construction), the step count
-- and the hyperparameters as plain fields: `opt.lr` is read and set by the schedules.
-- `step()` makes one fused C pass per parameter. float64 parameters (the models of
-- gradient checks) are updated by the same equations with coefficients in double, where
-- float32 rounds them to float as PyTorch does; one optimizer may hold both dtypes.
--
-- The parameters come in one of three forms:
--   a module: `parameters()` returning the parameter and gradient arrays (recur.nn), or
--     `parameters()` and `gradients()` returning one array each,
--   a table `{params = {...}, grads = {...}}`,
--   a list of pairs `{{param, grad}, ...}`.
--
-- Checkpoints: `state_dict([prefix])` returns `tensors, meta`: copies of the state
-- tensors named `<prefix><buffer>.<i>` (e.g. `exp_avg.3` for the third parameter) and
-- a table of numbers (the step count, the parameter count, every hyperparameter, the
-- structural flags as 0/1), ready for recur.io.save and recur.io.encode_meta.
-- `load_state_dict(tensors, meta [, prefix])` checks everything before copying
-- anything, so a refused state leaves the optimizer as it was.
local recur = require "recur"
local util = require "recur.util"

local Optimizer = {}
Optimizer.__index = Optimizer
Optimizer.__name = "Optimizer"

local TENSOR_MT = getmetatable(recur.zeros(1))

local function is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) == TENSOR_MT
end
Optimizer.is_tensor = is_tensor

local function shape_str(t)
  return "(" .. table.concat(t:size(), "x") .. ")"
end
Optimizer.shape_str = shape_str

local function same_shape(a, b)
  local sa, sb = a:size(), b:size()
  if #sa ~= #sb then return false end
  for d = 1, #sa do
    if sa[d] ~= sb[d] then return false end
  end
  return true
end

-- A new optimizer class: calling the class table constructs an instance through
-- cls:__init(...). The schedules (lr_scheduler.lua) use it too, with their own parent.
function Optimizer.subclass(name, parent)
  parent = parent or Optimizer
  local cls = {}
  cls.__index = cls
  cls.__name = name
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local self = setmetatable({}, c)
      self:__init(...)
      return self
    end,
  })
end

-- The parameters and gradients of `source` (see the header) as two checked arrays.
function Optimizer.collect(name, source)
  if type(source) ~= "table" then
    error(string.format("%s: expected a module, {params = ..., grads = ...} or a list of "
      .. "{param, grad} pairs, got %s", name, type(source)), 0)
  end
  local params, grads
  if type(source.parameters) == "function" then
    -- recur.nn modules return both lists from parameters(); other objects may offer
    -- gradients() instead.
    params, grads = source:parameters()
    if grads == nil and type(source.gradients) == "function" then grads = source:gradients() end
  elseif source.params ~= nil or source.grads ~= nil then
    params, grads = source.params, source.grads
  else
    params, grads = {}, {}
    for i, pair in ipairs(source) do
      if type(pair) ~= "table" then
        error(string.format("%s: entry %d is a %s, expected a {param, grad} pair", name, i,
          type(pair)), 0)
      end
      params[i], grads[i] = pair[1], pair[2]
    end
  end
  if type(params) ~= "table" or type(grads) ~= "table" then
    error(name .. ": parameters and gradients must be arrays of tensors", 0)
  end
  if #params == 0 then error(name .. ": got an empty parameter list", 0) end
  if #params ~= #grads then
    error(string.format("%s: %d parameters but %d gradients", name, #params, #grads), 0)
  end
  local seen = {}
  for i = 1, #params do
    local p, g = params[i], grads[i]
    if not is_tensor(p) then
      error(string.format("%s: parameter %d is not a tensor", name, i), 0)
    end
    if not is_tensor(g) then
      error(string.format("%s: gradient %d is not a tensor", name, i), 0)
    end
    for _, pair in ipairs({{"parameter", p}, {"gradient", g}}) do
      local what, t = pair[1], pair[2]
      if t:dtype() ~= "float32" and t:dtype() ~= "float64" then
        error(string.format("%s: %s %d is %s, optimizers update float32 or float64 tensors",
          name, what, i, t:dtype()), 0)
      end
      if not t:is_contiguous() then
        error(string.format("%s: %s %d is not contiguous", name, what, i), 0)
      end
    end
    if p:dtype() ~= g:dtype() then
      error(string.format("%s: parameter %d is %s but its gradient is %s", name, i, p:dtype(),
        g:dtype()), 0)
    end
    if not same_shape(p, g) then
      error(string.format("%s: parameter %d is %s but its gradient is %s", name, i, shape_str(p),
        shape_str(g)), 0)
    end
    -- A tensor listed twice would be updated twice per step.
    if seen[p] then
      error(string.format("%s: parameter %d is the same tensor as parameter %d", name, i,
        seen[p]), 0)
    end
    seen[p] = i
  end
  return params, grads
end

-- Options with defaults: unknown keys and wrong types are errors (an option that is
-- silently ignored would hide a typo). Each option has the type of its default;
-- options without a default are listed in `required` (name -> type) and must be given.
function Optimizer.options(name, opts, defaults, required)
  local known = {}
  for k in pairs(defaults) do known[k] = true end
  for k in pairs(required or {}) do known[k] = true end
  opts = util.check_opts(name, opts, known, 0)   -- no position, as the errors below
  local out = {}
  for k, v in pairs(opts) do
    local def = defaults[k]
    local want = def ~= nil and type(def) or required[k]
    if type(v) ~= want then
      error(string.format("%s: option %s must be a %s, got %s", name, k, want, type(v)), 0)
    end
    if want == "number" and v ~= v then error(string.format("%s: option %s is NaN", name, k), 0) end
    out[k] = v
  end
  for k, def in pairs(defaults) do
    if out[k] == nil then out[k] = def end
  end
  for k in pairs(required or {}) do
    if out[k] == nil then error(string.format("%s: option %s is required", name, k), 0) end
  end
  return out
end

function Optimizer.check(name, ok, fmt, ...)
  if not ok then error(name .. ": " .. string.format(fmt, ...), 0) end
end

-- Shared construction: the parameters, the hyperparameter fields, and one state
-- array per name in `buffers` (zero-filled, or filled with `fill`).
function Optimizer:_setup(source, hypers, flags, buffers, fill)
  local name = self.__name
  self.params, self.grads = Optimizer.collect(name, source)
  self.hypers, self.flags = hypers, flags
  self.step_count = 0
  self.state_names = buffers
  self.state = {}
  for _, b in ipairs(buffers) do
    local list = {}
    for i, p in ipairs(self.params) do
      list[i] = recur.zeros(p:size(), p:dtype())
      if fill and fill ~= 0 then list[i]:fill_(fill) end
    end
    self.state[b] = list
  end
end

-- Sets every gradient to zero (backward passes accumulate into them).
function Optimizer:zero_grad()
  for _, g in ipairs(self.grads) do g:zero_() end
end

function Optimizer:_check_lr()
  local lr = self.lr
  if type(lr) ~= "number" or lr ~= lr or lr < 0 then
    error(string.format("%s: lr must be a non-negative number, got %s", self.__name,
      tostring(lr)), 3)
  end
end

function Optimizer:state_dict(prefix)
  prefix = prefix or ""
  local tensors = {}
  for _, b in ipairs(self.state_names) do
    for i, t in ipairs(self.state[b]) do tensors[prefix .. b .. "." .. i] = t:clone() end
  end
  local meta = {step = self.step_count, num_params = #self.params}
  for _, h in ipairs(self.hypers) do meta[h] = self[h] end
  for _, f in ipairs(self.flags) do meta[f] = self[f] and 1 or 0 end
  return tensors, meta
end

function Optimizer:load_state_dict(tensors, meta, prefix)
  local name = self.__name .. ":load_state_dict"
  prefix = prefix or ""
  if type(tensors) ~= "table" or type(meta) ~= "table" then
    error(name .. ": expected the tensors and meta tables of state_dict()", 2)
  end
  local function num(key)
    local v = meta[key]
    if type(v) ~= "number" or v ~= v then
      error(string.format("%s: meta.%s must be a number, got %s", name, key, tostring(v)), 0)
    end
    return v
  end
  local np = math.tointeger(num("num_params"))
  if np ~= #self.params then
    error(string.format("%s: the state is for %s parameters, this optimizer has %d", name,
      tostring(meta.num_params), #self.params), 2)
  end
  local step = math.tointeger(num("step"))
  if not step or step < 0 then
    error(string.format("%s: meta.step must be a non-negative integer, got %s", name,
      tostring(meta.step)), 2)
  end
  for _, f in ipairs(self.flags) do
    local want = self[f] and 1 or 0
    if num(f) ~= want then
      error(string.format("%s: %s is %s in the state but %d in this optimizer", name, f,
        tostring(meta[f]), want), 2)
    end
  end
  local hv = {}
  for _, h in ipairs(self.hypers) do hv[h] = num(h) end
  for _, b in ipairs(self.state_names) do
    for i, t in ipairs(self.state[b]) do
      local key = prefix .. b .. "." .. i
      local src = tensors[key]
      if not is_tensor(src) then
        error(string.format("%s: missing state tensor '%s'", name, key), 2)
      end
      if src:dtype() == "int64" then
        error(string.format("%s: state tensor '%s' is int64, expected a float tensor", name, key), 2)
      end
      if not same_shape(src, t) then
        error(string.format("%s: state tensor '%s' is %s, expected %s", name, key, shape_str(src),
          shape_str(t)), 2)
      end
    end
  end
  for _, b in ipairs(self.state_names) do
    for i, t in ipairs(self.state[b]) do t:copy_(tensors[prefix .. b .. "." .. i]) end
  end
  self.step_count = step
  for h, v in pairs(hv) do self[h] = v end
end

return Optimizer
