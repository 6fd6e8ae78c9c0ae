-- Sequential: modules applied one after the other; each receives the first output
-- of the previous one (so an RNN's output sequence flows on and its final states
-- are dropped: use the RNN directly when you need them).
--
-- Children are named "0", "1", ... as in PyTorch's nn.Sequential, so a state dict
-- holds "0.weight", "1.weight_ih_l0", ...; `add(module, name)` picks another name.
-- Keeps the input of every child from the last forward, for backward.
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"

local Sequential = util.class("Sequential", Module)

-- Sequential(m1, m2, ...)
function Sequential:__init(...)
  Module.__init(self)
  self.modules = {}
  for i = 1, select("#", ...) do self:add((select(i, ...))) end
end

-- Appends a module (named by its 0-based position unless `name` is given); returns self.
function Sequential:add(module, name)
  if type(module) ~= "table" or type(module.forward) ~= "function" then
    error("Sequential: add expects a module, got " .. type(module), 2)
  end
  name = name or tostring(#self.modules)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error("Sequential: child name must be a non-empty string without dots, got " .. tostring(name), 2)
  end
  -- The dtype is that of the modules with parameters, which must agree; modules
  -- without parameters (Dropout) simply follow.
  if module:num_parameters() == 0 then
    module:to(self.dtype)
  elseif not self._dtype_set then
    self._dtype_set = true
    self:to(module.dtype)
  elseif module.dtype ~= self.dtype then
    error(string.format("Sequential: the new module is %s but the others are %s (convert it with :to)",
      tostring(module.dtype), self.dtype), 2)
  end
  self.modules[#self.modules + 1] = module
  self:register_module(name, module)
  return self
end

function Sequential:forward(x)
  self._inputs = {}
  for i, m in ipairs(self.modules) do
    self._inputs[i] = x
    x = (m:forward(x))
  end
  self.output = x
  return x
end

function Sequential:backward(x, gy)
  if not self._inputs or self._inputs[1] ~= x then
    error("Sequential: backward must follow forward on the same input", 2)
  end
  for i = #self.modules, 1, -1 do
    gy = (self.modules[i]:backward(self._inputs[i], gy))
  end
  return gy
end

return Sequential
