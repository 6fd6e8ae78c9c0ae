-- Module: the base class of every recur.nn layer (torch/nn style, PyTorch names).
--
-- A module owns named parameters (`self.weight`, ...) with one gradient tensor each,
-- and child modules. `forward(input)` computes and remembers what `backward` needs;
-- `backward(input, grad_output)` returns the gradient of the input and ADDS the
-- parameter gradients into the module's gradient tensors (zero them with
-- `zero_grad()`), so gradients of several batches or BPTT chunks accumulate.
--
-- Names are dotted as in PyTorch: a child registered as "rnn" contributes
-- "rnn.weight_ih_l0". A child registered with the empty name is inlined: its
-- parameters keep their own names (the stacked RNNs use this so that their layers'
-- parameters are PyTorch's flat weight_ih_l{k}[_reverse]).
local util = require "recur.nn.util"

local Module = util.class("Module")

function Module:__init()
  self.training = true
  self.dtype = "float32"
  self._param_names = {}
  self._grads = {}
  self._children = {}
end

function Module:__tostring()
  return string.format("recur.nn.%s (%d parameters, %s)", getmetatable(self).__name,
    self:num_parameters(), self.dtype)
end

-- Adds a parameter tensor under `name` (stored as self[name]) with a zeroed gradient.
function Module:register_parameter(name, tensor)
  if self._grads[name] or (self._inline and self._inline[name]) then error("register_parameter: duplicate parameter '" .. name .. "'", 2) end
  self._param_names[#self._param_names + 1] = name
  self[name] = tensor
  self._grads[name] = tensor:clone():zero_()
end

-- Adds a child module; name "" inlines its parameter names (see the header): they
-- then also read as fields of this module (m.weight_ih_l0).
function Module:register_module(name, module)
  for _, c in ipairs(self._children) do
    if name ~= "" and c.name == name then
      error("register_module: duplicate child '" .. name .. "'", 2)
    end
  end
  self._children[#self._children + 1] = {name = name, module = module}
  if name == "" then
    self._inline = self._inline or {}
    util.inline(self)
    local _, names = module:named_parameters()
    for _, pname in ipairs(names) do
      if self._grads[pname] or self._inline[pname] then
        error("register_module: duplicate parameter '" .. pname .. "'", 2)
      end
      self._inline[pname] = module
    end
  end
  return module
end

-- The gradient tensor of the module's own parameter `name`.
function Module:gradient(name)
  local g = self._grads[name]
  if not g and self._inline and self._inline[name] then g = self._inline[name]:gradient(name) end
  if not g then error("gradient: no parameter '" .. tostring(name) .. "'", 2) end
  return g
end

-- Walks parameters in a fixed order (own, then children), calling fn(name, param, grad).
function Module:_walk(prefix, fn)
  for _, name in ipairs(self._param_names) do
    fn(prefix .. name, self[name], self._grads[name], self, name)
  end
  for _, c in ipairs(self._children) do
    c.module:_walk(c.name == "" and prefix or prefix .. c.name .. ".", fn)
  end
end

-- name -> parameter tensor, and the names in order as a second value.
function Module:named_parameters()
  local map, names = {}, {}
  self:_walk("", function(name, p)
    if map[name] then error("named_parameters: two parameters named '" .. name .. "'") end
    map[name] = p
    names[#names + 1] = name
  end)
  return map, names
end

-- name -> gradient tensor (same names as named_parameters), names in order.
function Module:named_gradients()
  local map, names = {}, {}
  self:_walk("", function(name, _, g)
    map[name] = g
    names[#names + 1] = name
  end)
  return map, names
end

-- Parameters as a list in named_parameters order, and their gradients as a second list.
-- A tensor shared under two names (tied weights) is listed once, as PyTorch's
-- parameters() does: an optimizer must step it once, and a norm count it once.
function Module:parameters()
  local params, grads, seen = {}, {}, {}
  self:_walk("", function(_, p, g)
    if not seen[p] then
      seen[p] = true
      params[#params + 1] = p
      grads[#grads + 1] = g
    end
  end)
  return params, grads
end

function Module:zero_grad()
  self:_walk("", function(_, _, g) g:zero_() end)
  return self
end

-- Child modules in registration order.
function Module:children()
  local list = {}
  for i, c in ipairs(self._children) do list[i] = c.module end
  return list
end

-- Training mode (dropout active) for this module and all its children.
function Module:train(mode)
  if mode == nil then mode = true end
  self.training = mode and true or false
  for _, c in ipairs(self._children) do c.module:train(mode) end
  return self
end

-- Evaluation mode: dropout is the identity.
function Module:evaluate()
  return self:train(false)
end

-- name -> parameter tensor: the live tensors (not copies), ready for recur.io.save.
function Module:state_dict()
  return (self:named_parameters())
end

-- Copies the tensors of `t` (name -> tensor, any float dtype) into the parameters.
-- strict (default true): a missing or an unexpected entry is an error naming it.
-- A mis-shaped entry is always an error. Returns the lists of missing and unexpected
-- names (empty when strict).
function Module:load_state_dict(t, opts)
  opts = util.check_opts("load_state_dict", opts, {strict = true})
  local strict = opts.strict ~= false
  if type(t) ~= "table" then
    error("load_state_dict: expected a table of name -> tensor, got " .. type(t), 2)
  end
  local params, names = self:named_parameters()
  local missing, unexpected = {}, {}
  for _, name in ipairs(names) do
    if t[name] == nil then missing[#missing + 1] = name end
  end
  for name in pairs(t) do
    if params[name] == nil then unexpected[#unexpected + 1] = tostring(name) end
  end
  table.sort(unexpected)
  if strict and #missing > 0 then
    error(string.format("load_state_dict: missing entr%s %s (expected shape %s)",
      #missing == 1 and "y" or "ies", "'" .. table.concat(missing, "', '") .. "'",
      util.shape_str(params[missing[1]])), 2)
  end
  if strict and #unexpected > 0 then
    error(string.format("load_state_dict: unexpected entr%s %s (this %s has no such parameter)",
      #unexpected == 1 and "y" or "ies", "'" .. table.concat(unexpected, "', '") .. "'",
      getmetatable(self).__name), 2)
  end
  -- Check every shape before copying anything, so a failed load leaves the module as it was.
  for _, name in ipairs(names) do
    local src = t[name]
    if src ~= nil then
      if not util.is_tensor(src) then
        error(string.format("load_state_dict: entry '%s' is a %s, not a tensor", name, type(src)), 2)
      end
      local dt = src:dtype()
      if dt ~= "float32" and dt ~= "float64" then
        error(string.format("load_state_dict: entry '%s' is %s, expected a float tensor", name, dt), 2)
      end
      if not util.same_shape(src, params[name]) then
        error(string.format("load_state_dict: entry '%s' has shape %s, expected %s", name,
          util.shape_str(src), util.shape_str(params[name])), 2)
      end
    end
  end
  for _, name in ipairs(names) do
    if t[name] ~= nil then params[name]:copy_(t[name]) end
  end
  return missing, unexpected
end

-- Converts every parameter and gradient to dtype ("float32" or "float64"), in place
-- on the module (new tensors replace the old ones). Returns self.
function Module:to(dtype)
  util.check_dtype_name("to", dtype)
  for _, name in ipairs(self._param_names) do
    if self[name]:dtype() ~= dtype then
      self[name] = self[name]:to(dtype)
      self._grads[name] = self._grads[name]:to(dtype)
    end
  end
  self.dtype = dtype
  for _, c in ipairs(self._children) do c.module:to(dtype) end
  return self
end

function Module:double() return self:to("float64") end
function Module:float() return self:to("float32") end

-- Total number of parameter elements.
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:forward()
  error(getmetatable(self).__name .. ": forward is not implemented", 2)
end

function Module:backward()
  error(getmetatable(self).__name .. ": backward is not implemented", 2)
end

return Module
