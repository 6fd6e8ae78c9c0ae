-- Recurrent: one recurrent layer in one direction over the fused C kernels
-- (core.rnn_layer): an LSTM, GRU or Elman RNN (tanh, relu or identity: the linear RNN).
--
-- forward(x, h0, c0, lengths) -> y, hn, cn
--   x (T,B,D); h0, c0 (B,H) or nil for zeros (c0 only for "lstm"); lengths nil or
--   int64 (B) with values in 1..T for padded batches (sequence b uses steps 1..L_b,
--   its outputs past L_b are zero and hn is its state after step L_b, as PyTorch's
--   packed sequences). y (T,B,H); hn (B,H); cn (B,H) for "lstm", else nil.
-- backward(x, gy, ghn, gcn) -> gx, gh0, gc0
--   for the last forward; ghn, gcn may be nil (zero); gh0/gc0 are returned only when
--   h0/c0 were given. Parameter gradients are added to the module's gradients.
-- As in torch/nn, y and gx are buffers the module keeps (self.output, self.grad_input):
--   the next forward (backward) of the same shape overwrites them; hn, cn, gh0, gc0 are
--   new tensors, so a carried state is never overwritten. Clone y or gx to keep it.
-- step(x_t, h, c) -> h, c: one step for generation, x_t (B,D), h and c (B,H)
--   updated in place.
--
-- set_precision("bf16" | "int8" | "fp32" [, {training = true}]) -> self: "bf16" runs
--   forward and step in evaluation mode with bfloat16 weights and float32 sums, "int8"
--   with int8 weights (recur.nn.bf16; not the classic gru); training mode stays
--   float32, and backward needs a float32 forward. With training = true ("bf16"
--   only), training mode's forward runs its products in bf16 too (the weights are
--   rounded anew at every forward; the float32 weights are the ones trained) and
--   backward stays float32. Default "fp32".
--
-- Parameters (PyTorch's layout, gate blocks stacked i,f,g,o for the LSTM and r,z,n
-- for the GRU): weight_ih (G*H,D), weight_hh (G*H,H), bias_ih (G*H), bias_hh (G*H),
-- each name followed by opts.suffix (the stacked classes use "_l0", "_l1_reverse", ...).
-- Memory kept between forward and backward: the kernel's saved activations,
-- about T*B*H*(2, 5, 6) floats for rnn, gru, lstm.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local schemes = require "recur.nn.init_schemes"
local bf16 = require "recur.nn.bf16"

local Recurrent = util.class("Recurrent", Module)

Recurrent.GATES = {lstm = 4, gru = 3, rnn_tanh = 1, rnn_relu = 1, rnn_identity = 1}

local OPTIONS = {reverse = true, reset_after = true, bias = true, dtype = true, init = true,
                 forget_bias = true, suffix = true, bptt_truncate = true}

-- cell: "lstm" | "gru" | "rnn_tanh" | "rnn_relu" | "rnn_identity"
-- opts: reverse (false), reset_after (gru only, default true: PyTorch's variant;
--   false is the classic Cho et al. GRU), bias (true), dtype ("float32"),
--   init ("default" | "fan_in" | "orthogonal", see init_schemes), forget_bias
--   (lstm only), suffix (parameter-name suffix, ""), bptt_truncate (nil: full
--   backpropagation through time; k >= 0: the gradient of each output flows back
--   through at most k earlier steps, exactly, as in the kernels' rnn.h).
function Recurrent:__init(cell, D, H, opts)
  Module.__init(self)
  opts = util.check_opts("Recurrent", opts, OPTIONS)
  local G = Recurrent.GATES[cell]
  if not G then
    error("Recurrent: unknown cell '" .. tostring(cell) .. "' (lstm, gru, rnn_tanh, rnn_relu, rnn_identity)", 2)
  end
  if opts.forget_bias ~= nil then
    if cell ~= "lstm" then error("Recurrent: forget_bias applies only to the lstm cell, not " .. cell, 2) end
    if opts.bias == false then error("Recurrent: forget_bias needs bias = true", 2) end
    if type(opts.forget_bias) ~= "number" then error("Recurrent: forget_bias must be a number", 2) end
  end
  local init = opts.init or "default"
  if not schemes.names[init] then
    error("Recurrent: unknown init '" .. tostring(init) .. "' (default, fan_in, orthogonal)", 2)
  end
  self.cell = cell
  self.gates = G
  self.input_size = util.check_positive_int("Recurrent", "input_size", D)
  self.hidden_size = util.check_positive_int("Recurrent", "hidden_size", H)
  -- reverse, reset_after and dtype are the C layer's options, checked there alone
  -- (core.rnn_layer: booleans, reset_after for the gru only, a float dtype)
  self._core = core.rnn_layer(cell, self.input_size, self.hidden_size,
    {reverse = opts.reverse, reset_after = opts.reset_after, dtype = opts.dtype})
  self.reverse = opts.reverse == true
  -- nil for the other cells; `opts.reset_after ~= false or nil` would turn false into
  -- nil, and the kernel's default is reset-after
  if cell == "gru" then self.reset_after = opts.reset_after ~= false end
  self.dtype = opts.dtype or "float32"
  self._core_dtype = self.dtype
  self.bias = util.opt_bool("Recurrent", opts, "bias", true)
  self.bptt_truncate = util.opt_int("Recurrent", opts, "bptt_truncate", nil, 0)
  local s = opts.suffix or ""
  if type(s) ~= "string" then error("Recurrent: option suffix must be a string, got " .. type(s), 2) end
  self.names = {w_ih = "weight_ih" .. s, w_hh = "weight_hh" .. s, b_ih = "bias_ih" .. s,
                b_hh = "bias_hh" .. s}
  self:register_parameter(self.names.w_ih, core.zeros({G * H, D}, self.dtype))
  self:register_parameter(self.names.w_hh, core.zeros({G * H, H}, self.dtype))
  if self.bias then
    self:register_parameter(self.names.b_ih, core.zeros({G * H}, self.dtype))
    self:register_parameter(self.names.b_hh, core.zeros({G * H}, self.dtype))
  end
  schemes.recurrent(self, init, opts.forget_bias)
end

-- weight_ih, weight_hh, bias_ih, bias_hh (biases nil without bias).
function Recurrent:weights()
  local n = self.names
  return self[n.w_ih], self[n.w_hh], self[n.b_ih], self[n.b_hh]
end

-- Their gradients, in the same order.
function Recurrent:weight_grads()
  local n, g = self.names, self._grads
  return g[n.w_ih], g[n.w_hh], g[n.b_ih], g[n.b_hh]
end

-- The C layer for the current dtype (rebuilt after :to(dtype)).
function Recurrent:_layer()
  if not self._core or self._core_dtype ~= self.dtype then
    local opts = {reverse = self.reverse, dtype = self.dtype}
    if self.cell == "gru" then opts.reset_after = self.reset_after end
    self._core = core.rnn_layer(self.cell, self.input_size, self.hidden_size, opts)
    self._core_dtype = self.dtype
  end
  return self._core
end

local function check_state(op, what, s, dtype, B, H)
  if s == nil then return nil end
  util.check_input(op, what, s, dtype, 2)
  if s:size(1) ~= B or s:size(2) ~= H then
    error(string.format("%s: %s has shape %s, expected (%dx%d)", op, what, util.shape_str(s), B, H), 3)
  end
  return s:contiguous()
end

function Recurrent:set_precision(precision, opts)
  local op = "Recurrent:set_precision"
  bf16.check(op, precision, self.dtype)
  self.train_bf16 = bf16.check_training(op, precision, opts)
  if precision ~= "fp32" and self.cell == "gru" and not self.reset_after then
    error(op .. ": " .. precision .. " inference has no classic gru (reset_after = false)", 2)
  end
  self.precision = precision
  bf16.drop(self)
  return self
end

-- Training changes the weights: the bf16 copies are made again after it.
function Recurrent:train(mode)
  Module.train(self, mode)
  if self.training then bf16.drop(self) end
  return self
end

-- The kernel's packed weights: bf16 [w_ih w_hh] (a step is one product), the gru's
-- and int8's apart.
function Recurrent:_bf16_weights()
  local w_ih, w_hh = self:weights()
  local p = bf16.active(self)
  if self.cell == "gru" or p == "int8" then
    return bf16.matrix(self, "w_ih", w_ih, nil, p), bf16.matrix(self, "w_hh", w_hh, nil, p)
  end
  return bf16.matrix(self, "w", w_ih, w_hh), nil
end

-- The bf16 or int8 inference forward (forward's checks done): new hn, cn as in float32.
function Recurrent:_forward_bf16(x, h0, c0, lengths)
  local w_ih, w_hh, b_ih, b_hh = self:weights()
  local B, H = x:size(2), self.hidden_size
  local hn = h0 and h0:clone() or core.zeros({B, H}, "float32")
  local cn = nil
  if self.cell == "lstm" then cn = c0 and c0:clone() or core.zeros({B, H}, "float32") end
  local w, w2 = self:_bf16_weights()
  local y = core.bf16_rnn_forward(self.cell, self.reverse, x, w, w2, b_ih, b_hh, hn, cn, lengths, self.output)
  self.output = y
  self._bf16_forward = true
  return y, hn, cn
end

function Recurrent:forward(x, h0, c0, lengths)
  local op = "Recurrent(" .. self.cell .. ")"
  util.check_input(op, "input", x, self.dtype, 3)
  local B, D = x:size(2), x:size(3)
  if D ~= self.input_size then
    error(string.format("%s: input has shape %s, expected last dim %d", op, util.shape_str(x),
      self.input_size), 2)
  end
  if c0 ~= nil and self.cell ~= "lstm" then error(op .. ": c0 given to a cell without a cell state", 2) end
  h0 = check_state(op, "h0", h0, self.dtype, B, self.hidden_size)
  c0 = check_state(op, "c0", c0, self.dtype, B, self.hidden_size)
  if lengths ~= nil and (not util.is_tensor(lengths) or lengths:dtype() ~= "int64"
      or lengths:numel() ~= B) then
    error(op .. ": lengths must be an int64 tensor with one length per batch entry (" .. B .. ")", 2)
  end
  if bf16.active(self) then return self:_forward_bf16(x:contiguous(), h0, c0, lengths) end
  self._bf16_forward = false
  local w_ih, w_hh, b_ih, b_hh = self:weights()
  local w16, w16_hh
  if self.train_bf16 and self.training then
    -- the optimizer changed the weights in place since the last forward: round them anew
    if self.cell == "gru" then
      w16, w16_hh = bf16.repacked(self, "train_ih", w_ih), bf16.repacked(self, "train_hh", w_hh)
    else
      w16 = bf16.repacked(self, "train", w_ih, w_hh)
    end
  end
  -- y goes into the previous output's block when the shape allows (not when x is it)
  local y, hn, cn = self:_layer():forward(x:contiguous(), w_ih, w_hh, b_ih, b_hh, h0, c0, lengths,
                                          self.output, w16, w16_hh)
  self._h0_given, self._c0_given = h0 ~= nil, c0 ~= nil
  self.output = y
  return y, hn, cn
end

function Recurrent:backward(_, gy, ghn, gcn)
  if not self._core then error("Recurrent: backward before forward", 2) end
  if self._bf16_forward then error("Recurrent: backward after an evaluation-mode forward in " .. tostring(self.precision) .. " (inference only; training mode runs a forward backward can follow)", 2) end
  local gw_ih, gw_hh, gb_ih, gb_hh = self:weight_grads()
  local gx, gh0, gc0 = self._core:backward(gy:contiguous(), ghn and ghn:contiguous(),
    gcn and gcn:contiguous(), gw_ih, gw_hh, gb_ih, gb_hh, self.bptt_truncate, self.grad_input)
  self.grad_input = gx
  return gx, self._h0_given and gh0 or nil, self._c0_given and gc0 or nil
end

function Recurrent:step(x_t, h, c)
  local w_ih, w_hh, b_ih, b_hh = self:weights()
  if bf16.active(self) and util.is_tensor(x_t) and x_t:dim() == 2 then
    -- one step is a forward of length 1 that updates h and c in place
    local B, H = x_t:size(1), self.hidden_size
    h = h or core.zeros({B, H}, "float32")
    if self.cell == "lstm" then c = c or core.zeros({B, H}, "float32") end
    local w, w2 = self:_bf16_weights()
    core.bf16_rnn_forward(self.cell, false, x_t:contiguous():view(1, B, x_t:size(2)), w, w2, b_ih, b_hh, h, c, nil,
      false)
    return h, c
  end
  return self:_layer():step(x_t, w_ih, w_hh, b_ih, b_hh, h, c)
end

return Recurrent
