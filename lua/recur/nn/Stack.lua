-- Stack: a multi-layer, optionally bidirectional recurrent network whose layers may
-- be of different cell types (an LSTM layer over a GRU layer, ...). RNN, GRU and LSTM
-- are Stacks whose layers all share one cell.
--
--   local m = recur.nn.Stack(D, H, {"gru", {cell = "lstm", forget_bias = 1}},
--                            {bidirectional = true, dropout = 0.2})
--
-- Layer specs: a cell name ("lstm", "gru", "rnn_tanh", "rnn_relu", "rnn_identity") or a table
-- {cell = ..., reset_after = (gru), init = ..., forget_bias = (lstm)} whose keys
-- override the stack-wide options of the same name. All layers share hidden size H.
--
-- forward(x, h0, c0, lengths) -> y, hn, cn   (or forward(x, {h0 =, c0 =, lengths =}))
--   x (T,B,D), or (B,T,D) with batch_first.
--   h0 (L*dirs,B,H) or nil for zeros; rows ordered layer 0 forward, layer 0 reverse,
--     layer 1 forward, ... as PyTorch.
--   c0 (L*dirs,B,H) or nil: cell states, read only in the rows of LSTM layers (a stack
--     without LSTM layers takes no c0).
--   lengths nil or int64 (B) in 1..T for padded batches (as PyTorch's packed
--     sequences: outputs past a sequence's length are zero, final states are taken at
--     its last step, the reverse direction starts at its last step).
--   y (T,B,dirs*H) (or (B,T,dirs*H)): the last layer's outputs, forward and reverse
--     concatenated along the last dim; hn (L*dirs,B,H); cn (L*dirs,B,H) when the
--     stack has an LSTM layer (zero in the rows of other layers), else nil.
-- backward(x, gy, ghn, gcn) -> gx, gh0, gc0   for the last forward; ghn and gcn may be
--   nil; gh0 (gc0) is returned when h0 (c0) was given. Parameter gradients accumulate.
-- step(x_t, h, c) -> y_t, h, c   one time step for generation (unidirectional only):
--   x_t (B,D), h and c (L,B,H) updated in place, y_t (B,H) the top layer's new h.
--   Dropout is not applied (generation runs the evaluation model).
--
-- set_precision(precision [, {training = true}]) -> self: every layer's
--   (nn.Recurrent:set_precision): forward and step in evaluation mode with bfloat16
--   ("bf16") or int8 weights, and with training = true the training forward in bf16.
--
-- The y it returns is a buffer, overwritten by the next forward with the same T and B
-- (as torch/nn's output; clone it to keep it): a bidirectional stack concatenates
-- each layer's two directions into a (T,B,2H) buffer it keeps per layer, and a
-- unidirectional one returns its last layer's y, which that Recurrent layer keeps.
-- gx is its first layer's buffer likewise; hn, cn, gh0 and gc0 are new tensors.
--
-- Parameters: PyTorch's flat names weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
-- bias_hh_l{k} (k from 0) with suffix _reverse for the reverse direction, so a
-- state dict of torch.nn.LSTM/GRU/RNN loads as is. Layer k > 0 takes dirs*H inputs.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"
local Recurrent = require "recur.nn.Recurrent"
local Dropout = require "recur.nn.Dropout"

local Stack = util.class("Stack", Module)

local OPTIONS = {bidirectional = true, dropout = true, batch_first = true, bias = true,
                 init = true, forget_bias = true, reset_after = true, dtype = true,
                 bptt_truncate = true}
local LAYER_KEYS = {cell = true, reset_after = true, init = true, forget_bias = true}

-- opts: bidirectional (false), dropout (0: probability in [0, 1) applied to the outputs of
-- every layer but the last, in training mode), batch_first (false), bias (true),
-- init ("default"), forget_bias (nil; LSTM layers), reset_after (GRU layers, true),
-- dtype ("float32"), bptt_truncate (nil: full BPTT; k: within every layer the
-- gradient of each output flows back at most k steps, see Recurrent).
function Stack:__init(D, H, layers, opts)
  Module.__init(self)
  opts = util.check_opts(getmetatable(self).__name, opts, OPTIONS)
  local name = getmetatable(self).__name
  self.input_size = util.check_positive_int(name, "input_size", D)
  self.hidden_size = util.check_positive_int(name, "hidden_size", H)
  if type(layers) ~= "table" or #layers == 0 then
    error(name .. ": expected a non-empty list of layer specs", 2)
  end
  self.num_layers = #layers
  self.bidirectional = util.opt_bool(name, opts, "bidirectional", false)
  self.num_directions = self.bidirectional and 2 or 1
  self.batch_first = util.opt_bool(name, opts, "batch_first", false)
  self.dtype = util.check_dtype_name(name, opts.dtype or "float32")
  -- p = 1 would zero every layer's input but the first: no network trains through that
  local p = util.opt_number(name, opts, "dropout", 0, 0, 1, true)
  if p > 0 and #layers == 1 then
    error(name .. ": dropout acts between layers and a single layer has none (use nn.Dropout on the output)", 2)
  end
  self.dropout = p

  self.cells, self.layers, self.dropouts = {}, {}, {}
  self._outs = {}   -- bidirectional: layer k's (T,B,2H) output buffer
  self.has_lstm = false
  for k, spec in ipairs(layers) do
    if type(spec) == "string" then spec = {cell = spec} end
    if type(spec) ~= "table" then error(name .. ": layer " .. k .. " spec must be a string or a table", 2) end
    util.check_opts(name .. " layer " .. k, spec, LAYER_KEYS)
    local cell = spec.cell
    if not Recurrent.GATES[cell] then
      error(string.format("%s: layer %d has unknown cell '%s' (lstm, gru, rnn_tanh, rnn_relu, rnn_identity)",
        name, k, tostring(cell)), 2)
    end
    local function opt(key)
      if spec[key] ~= nil then return spec[key] end
      return opts[key]
    end
    self.cells[k] = cell
    self.has_lstm = self.has_lstm or cell == "lstm"
    self.layers[k] = {}
    local in_size = k == 1 and D or H * self.num_directions
    for d = 1, self.num_directions do
      local ropts = {
        reverse = d == 2,
        suffix = "_l" .. (k - 1) .. (d == 2 and "_reverse" or ""),
        bias = opts.bias,
        dtype = self.dtype,
        init = opt("init"),
        bptt_truncate = opts.bptt_truncate,
      }
      -- A cell option given for one layer must apply to it (Recurrent refuses it
      -- otherwise); given stack-wide, it reaches only the cells it applies to.
      for _, key in ipairs({"forget_bias", "reset_after"}) do
        if spec[key] ~= nil then
          ropts[key] = spec[key]
        elseif (key == "forget_bias" and cell == "lstm") or (key == "reset_after" and cell == "gru") then
          ropts[key] = opts[key]
        end
      end
      local ok, layer = pcall(Recurrent, cell, in_size, H, ropts)
      if not ok then error(name .. ": layer " .. k .. ": " .. tostring(layer), 2) end
      self.layers[k][d] = self:register_module("", layer)
    end
    if k < #layers and p > 0 then
      self.dropouts[k] = self:register_module("", Dropout(p))
    end
  end
  local has = {}
  for _, cell in ipairs(self.cells) do has[cell] = true end
  if opts.forget_bias ~= nil and not has.lstm then
    error(name .. ": forget_bias given but the network has no LSTM layer", 2)
  end
  if opts.reset_after ~= nil and not has.gru then
    error(name .. ": reset_after given but the network has no GRU layer", 2)
  end
end

-- Splits forward's arguments: positional (h0, c0, lengths) or one options table.
local function state_args(name, a, b, c)
  if type(a) == "table" then
    util.check_opts(name .. ":forward", a, {h0 = true, c0 = true, lengths = true})
    if b ~= nil or c ~= nil then error(name .. ": forward takes an options table or positional states, not both", 3) end
    return a.h0, a.c0, a.lengths
  end
  return a, b, c
end

local function check_states(self, name, what, s, B)
  if s == nil then return nil end
  util.check_input(name, what, s, self.dtype, 3)
  local L = self.num_layers * self.num_directions
  if s:size(1) ~= L or s:size(2) ~= B or s:size(3) ~= self.hidden_size then
    error(string.format("%s: %s has shape %s, expected (%dx%dx%d)", name, what, util.shape_str(s),
      L, B, self.hidden_size), 3)
  end
  return s:contiguous()
end

function Stack:forward(x, a, b, c)
  local name = getmetatable(self).__name
  local h0, c0, lengths = state_args(name, a, b, c)
  util.check_input(name, "input", x, self.dtype, 3)
  if self.batch_first then x = x:transpose(1, 2) end
  x = x:contiguous()
  local T, B, D = x:size(1), x:size(2), x:size(3)
  if D ~= self.input_size then
    error(string.format("%s: input has shape %s, expected input size %d", name, util.shape_str(x), self.input_size), 2)
  end
  if c0 ~= nil and not self.has_lstm then
    error(name .. ": c0 given but the network has no LSTM layer", 2)
  end
  h0 = check_states(self, name, "h0", h0, B)
  c0 = check_states(self, name, "c0", c0, B)
  local H, dirs = self.hidden_size, self.num_directions
  local hn = core.zeros({self.num_layers * dirs, B, H}, self.dtype)
  local cn = self.has_lstm and core.zeros({self.num_layers * dirs, B, H}, self.dtype) or nil

  self._inputs = {}
  self._h0_given, self._c0_given = h0 ~= nil, c0 ~= nil
  local input = x
  for k = 1, self.num_layers do
    self._inputs[k] = input
    local out
    if dirs == 2 then out = util.buffer(self._outs, k, self.dtype, {T, B, 2 * H}, input) end
    for d = 1, dirs do
      local row = (k - 1) * dirs + d
      local lstm = self.cells[k] == "lstm"
      local y, hn_kd, cn_kd = self.layers[k][d]:forward(input, h0 and h0:select(1, row),
        (lstm and c0) and c0:select(1, row) or nil, lengths)
      hn:select(1, row):copy_(hn_kd)
      if lstm then cn:select(1, row):copy_(cn_kd) end
      if dirs == 2 then out:narrow(3, (d - 1) * H + 1, H):copy_(y) else out = y end
    end
    if self.dropouts[k] then out = self.dropouts[k]:forward(out) end
    input = out
  end
  local y = input
  if self.batch_first then y = y:transpose(1, 2):contiguous() end
  self.output = y
  return y, hn, cn
end

function Stack:backward(_, gy, ghn, gcn)
  local name = getmetatable(self).__name
  if not self._inputs then error(name .. ": backward before forward", 2) end
  util.check_input(name, "grad_output", gy, self.dtype, 3)
  if self.batch_first then gy = gy:transpose(1, 2) end
  local H, dirs = self.hidden_size, self.num_directions
  local x = self._inputs[1]
  local B = x:size(2)
  ghn = check_states(self, name, "ghn", ghn, B)
  gcn = check_states(self, name, "gcn", gcn, B)
  local gh0 = self._h0_given and core.zeros({self.num_layers * dirs, B, H}, self.dtype) or nil
  local gc0 = self._c0_given and core.zeros({self.num_layers * dirs, B, H}, self.dtype) or nil
  local g = gy
  for k = self.num_layers, 1, -1 do
    if self.dropouts[k] then g = self.dropouts[k]:backward(nil, g) end
    local gin
    for d = 1, dirs do
      local row = (k - 1) * dirs + d
      local lstm = self.cells[k] == "lstm"
      local gy_d = g
      if dirs == 2 then
        -- the layer reads a contiguous gradient: copy this direction's half into one
        -- buffer that serves every layer and direction in turn
        gy_d = util.buffer(self, "_gy_half", self.dtype, {g:size(1), B, H}):copy_(g:narrow(3, (d - 1) * H + 1, H))
      end
      local gx, gh0_d, gc0_d = self.layers[k][d]:backward(self._inputs[k], gy_d,
        ghn and ghn:select(1, row), (lstm and gcn) and gcn:select(1, row) or nil)
      if gin then gin:add_(gx) else gin = gx end
      if gh0 then gh0:select(1, row):copy_(gh0_d) end
      if gc0 and lstm then gc0:select(1, row):copy_(gc0_d) end
    end
    g = gin
  end
  if self.batch_first then g = g:transpose(1, 2):contiguous() end
  return g, gh0, gc0
end

function Stack:set_precision(precision, opts)
  local name = getmetatable(self).__name
  for k = 1, self.num_layers do
    for d = 1, self.num_directions do
      local ok, err = pcall(self.layers[k][d].set_precision, self.layers[k][d], precision, opts)
      if not ok then error(name .. ":set_precision: layer " .. k .. ": " .. tostring(err):gsub("^Recurrent:set_precision: ", ""), 2) end
    end
  end
  self.precision = precision
  return self
end

function Stack:step(x_t, h, c)
  local name = getmetatable(self).__name
  if self.bidirectional then error(name .. ": step needs a unidirectional network", 2) end
  util.check_input(name, "x_t", x_t, self.dtype, 2)
  local B = x_t:size(1)
  if h == nil then error(name .. ": step needs the hidden states h (L,B,H)", 2) end
  check_states(self, name, "h", h, B)
  if not h:is_contiguous() then error(name .. ": step updates h in place: it must be contiguous", 2) end
  if self.has_lstm then
    if c == nil then error(name .. ": step needs the cell states c (L,B,H) of the LSTM layers", 2) end
    check_states(self, name, "c", c, B)
    if not c:is_contiguous() then error(name .. ": step updates c in place: it must be contiguous", 2) end
  elseif c ~= nil then
    error(name .. ": c given but the network has no LSTM layer", 2)
  end
  local input = x_t
  for k = 1, self.num_layers do
    local h_k = h:select(1, k)
    local c_k = self.cells[k] == "lstm" and c:select(1, k) or nil
    self.layers[k][1]:step(input, h_k, c_k)
    input = h_k
  end
  return input, h, c
end

return Stack
