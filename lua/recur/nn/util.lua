-- Helpers shared by the recur.nn classes: a class constructor, buffers and tensor
-- checks with errors that name the operation (option checks: recur.util).
local core = require "recur.core"
local base = require "recur.util"

local util = {}

local tensor_mt = getmetatable(core.zeros(1))

function util.is_tensor(x)
  return type(x) == "userdata" and getmetatable(x) == tensor_mt
end

-- "(3x4x5)", the way the C core prints shapes in its errors.
function util.shape_str(t)
  local s = t:size()
  if #s == 0 then return "()" end
  return "(" .. table.concat(s, "x") .. ")"
end

function util.same_shape(a, b)
  local sa, sb = a:size(), b:size()
  if #sa ~= #sb then return false end
  for i = 1, #sa do
    if sa[i] ~= sb[i] then return false end
  end
  return true
end

-- A class whose table is callable: `Linear(D, H)` builds an instance through
-- `__init`. Methods are found through plain tables (an instance's metatable is its
-- class, whose __index is the class itself; the class's metatable has __index = parent),
-- so a method call costs table lookups and no function call. Metamethods are copied
-- from the parent because Lua does not look them up through __index.
function util.class(name, parent)
  local cls = {__name = name}
  cls.__index = cls
  if parent then
    for _, mm in ipairs({"__tostring"}) do
      if rawget(parent, mm) then cls[mm] = parent[mm] end
    end
  end
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      local ok, err = pcall(obj.__init, obj, ...)
      if not ok then
        -- Our own errors ("LSTM: unknown option ...") are reported at the caller's
        -- line rather than inside the library; anything else keeps its position.
        if type(err) == "string" then
          local rest = err:match("^[^\n]-:%d+: (.*)$")
          if rest and rest:match("^[%w_%.%(%) ]+: ") then error(rest, 2) end
        end
        error(err, 0)
      end
      return obj
    end,
    __tostring = function() return "recur.nn." .. name end,
  })
  return cls, parent
end

-- class -> the metatable of its instances that inline children (see util.inline).
local inline_metatables = setmetatable({}, {__mode = "k"})
local is_inline_metatable = setmetatable({}, {__mode = "k"})

-- Lets `obj` read the parameters of the children it registered inline
-- (Module:register_module("", child)) as its own fields, so lstm.weight_hh_l1 works
-- as in PyTorch: its metatable becomes a copy of its class's whose __index looks in
-- the class first, then in obj._inline (parameter name -> child). The child's
-- current tensor is read every time (Module:to replaces them). Only such instances
-- pay a function call for a key they do not hold.
function util.inline(obj)
  local cls = getmetatable(obj)
  if is_inline_metatable[cls] then return obj end
  local mt = inline_metatables[cls]
  if not mt then
    mt = {}
    for k, v in pairs(cls) do
      if type(k) == "string" and k:sub(1, 2) == "__" then mt[k] = v end
    end
    mt.__index = function(o, key)
      local v = cls[key]
      if v ~= nil then return v end
      local child = rawget(o, "_inline")[key]
      if child then return child[key] end
      return nil
    end
    inline_metatables[cls] = mt
    is_inline_metatable[mt] = true
  end
  return setmetatable(obj, mt)
end

-- The tensor kept in owner[key] when it has `dtype` and the shape `size` (a list of
-- sizes) and does not share storage with `avoid` (the call's input), else a new one
-- stored there: a module's output or gradient buffer, allocated once per shape and
-- overwritten by every later call (torch/nn's output and gradInput).
function util.buffer(owner, key, dtype, size, avoid)
  local b = owner[key]
  if b and b:dtype() == dtype and b:dim() == #size and not (avoid and b:shares_storage(avoid)) then
    local fits = true
    for d = 1, #size do
      if b:size(d) ~= size[d] then fits = false break end
    end
    if fits then return b end
  end
  b = core.empty(size, dtype)
  owner[key] = b
  return b
end

-- The option checks are recur.util's (they serve every module, not only nn); kept
-- here under their old names for the code that reaches them through recur.nn.util.
util.check_opts = base.check_opts
util.check_positive_int = base.check_positive_int
util.opt_int = base.opt_int
util.opt_bool = base.opt_bool
util.opt_number = base.opt_number
util.opt_choice = base.opt_choice

function util.check_dtype_name(op, dtype)
  if dtype ~= "float32" and dtype ~= "float64" then
    error(string.format("%s: dtype must be 'float32' or 'float64', got %s", op, tostring(dtype)), 3)
  end
  return dtype
end

-- A float tensor of the module's dtype with `ndim` dims (nil: any), else an error
-- naming the operation and what was expected, raised at `level` (3: the caller of the
-- function that called check_input).
function util.check_input(op, what, x, dtype, ndim, level)
  level = level or 3
  if not util.is_tensor(x) then
    error(string.format("%s: %s must be a tensor, got %s", op, what, type(x)), level)
  end
  local dt = x:dtype()
  if dtype and dt ~= dtype then
    error(string.format("%s: %s is %s but the module is %s (convert one with :to(dtype))",
      op, what, dt, dtype), level)
  end
  if ndim and x:dim() ~= ndim then
    error(string.format("%s: %s must be %d-D, got %s", op, what, ndim, util.shape_str(x)), level)
  end
  return x
end

return util
