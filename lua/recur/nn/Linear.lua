-- Linear: y = x W^T + b over the last dimension.
--
-- Input (N,D) or (T,B,D) (any leading dims); output the same leading dims with H.
-- Parameters (PyTorch's names and layout): weight (H,D), bias (H), initialised
-- U(-1/sqrt(D), 1/sqrt(D)) as PyTorch's nn.Linear.
-- Keeps no state between forward and backward beyond the input given to backward.
-- Like torch/nn's output and gradInput, the tensors forward and backward return are
-- buffers the module keeps: the next forward (backward) with an input of the same
-- number of rows overwrites them. A step of training uses each once, and a (T*B,H)
-- block allocated anew every step costs page faults and collector work; clone a
-- result to keep it past the next call.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local schemes = require "recur.nn.init_schemes"

local Linear = util.class("Linear", Module)

-- opts: bias (default true), dtype ("float32" default or "float64").
function Linear:__init(D, H, opts)
  Module.__init(self)
  opts = util.check_opts("Linear", opts, {bias = true, dtype = true})
  self.in_features = util.check_positive_int("Linear", "in_features", D)
  self.out_features = util.check_positive_int("Linear", "out_features", H)
  self.dtype = util.check_dtype_name("Linear", opts.dtype or "float32")
  local bound = 1 / math.sqrt(D)
  self:register_parameter("weight", schemes.uniform_(core.zeros({H, D}, self.dtype), bound))
  if util.opt_bool("Linear", opts, "bias", true) then
    self:register_parameter("bias", schemes.uniform_(core.zeros({H}, self.dtype), bound))
  end
end

-- x (...,D) as a (N,D) matrix, and the output shape (...,H).
function Linear:_flat(x, what)
  util.check_input("Linear", what, x, self.dtype)
  local size = x:size()
  if #size < 1 or size[#size] ~= self.in_features then
    error(string.format("Linear: %s has shape %s, expected last dim %d", what,
      util.shape_str(x), self.in_features), 3)
  end
  local N = x:numel() // self.in_features
  return x:reshape(N, self.in_features), size, N
end

function Linear:forward(x)
  local x2, size, N = self:_flat(x, "input")
  local y = util.buffer(self, "_output", self.dtype, {N, self.out_features}, x2)
  core.addmm(y, x2, self.weight, 1, 0, false, true, self.bias)  -- y = x W^T + b, (N,H), one pass
  size[#size] = self.out_features
  self.output = y:view(size)
  return self.output
end

function Linear:backward(x, gy)
  local x2, size, N = self:_flat(x, "input")
  util.check_input("Linear", "grad_output", gy, self.dtype)
  if gy:numel() ~= N * self.out_features then
    error(string.format("Linear: grad_output has shape %s for input %s", util.shape_str(gy),
      util.shape_str(x)), 2)
  end
  local gy2 = gy:reshape(N, self.out_features)
  core.addmm(self._grads.weight, gy2, x2, 1, 1, true, false)   -- gW += gy^T x
  if self.bias then self._grads.bias:add_(gy2:sum(1)) end
  local gx = util.buffer(self, "_grad_input", self.dtype, {N, self.in_features}, gy2)
  core.addmm(gx, gy2, self.weight, 1, 0)                       -- gx = gy W, (N,D)
  return gx:view(size)
end

return Linear
