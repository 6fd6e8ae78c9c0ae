-- ConditionedGenerator: one-to-many generation, a token sequence decoded from a
-- conditioning vector z (a class embedding, an image feature, a latent code), as
-- Show and Tell / Show, Attend and Tell start their decoder.
--
--   z (B,Z) -> init_h: Linear(Z, L*H) -> tanh -> h0 (L,B,H), one (B,H) slice per layer
--           -> init_c: Linear(Z, L*H) -> tanh -> c0 (L,B,H)   (LSTM, condition_cell)
--   inputs (T,B) int64 -> encoder: Embedding(V,E) -> dropout
--     -> rnn: LSTM | GRU | RNN, L layers of H, from (h0, c0) -> (T,B,H)
--     -> dropout -> decoder: Linear(H,V) -> logits (T,B,V)
--
-- The LSTM's cell state: by default (condition_cell = true) it is conditioned as h
-- is, through its own Linear + tanh, so both halves of the state carry z from the
-- first step; condition_cell = false starts it at zero (PyTorch's default c0) and
-- saves the init_c parameters. GRU and RNN have no cell state and no init_c.
--
-- Training is teacher forcing: the inputs are the targets shifted right behind
-- start_id (`shift`), and the loss is the mean cross-entropy over the target tokens
-- (pad_id, when given, is ignored). With sampling_prob p > 0 it is scheduled sampling
-- (Bengio et al. 2015, recur.models.scheduled): the input of step t+1 is, with
-- probability p, the model's own prediction at step t (sampling "argmax" or
-- "sample"), chosen by a stepping pass from initial_state(z) before the
-- teacher-forced forward and backward on the chosen inputs. The gradient flows through the stack's gh0/gc0
-- and the tanh into init_h/init_c, and on to z (backward returns it).
-- Generation runs one step at a time from the state `initial_state(z)` gives:
-- `generate` (greedy or sampled with recur.decode.choose, a batch at once) and
-- `beam_search` (recur.beam.search, one z at a time). `step(ids, state)` is
-- recur.beam's model interface: state {h = (L,K,H), c = (L,K,H)} with the K
-- sequences on dimension 2.
--
-- Parameter names: init_h.weight, init_h.bias, init_c.*, encoder.weight,
-- rnn.weight_ih_l0, ..., decoder.weight, decoder.bias.
-- Memory between forward and backward: the embedding output (T*B*E), the stack's
-- saved activations (about 6*L*T*B*H floats for the LSTM), its output (T*B*H), the
-- logits (T*B*V) and the initial states (2*L*B*H). The logits are the decoder's
-- buffer, overwritten by the next forward or step of the same shape: clone to keep.
local core = require "recur.core"
local nn = require "recur.nn"
local util = require "recur.nn.util"
local Model = require "recur.models.Model"
local decode = require "recur.decode"
local beam = require "recur.beam"
local scheduled = require "recur.models.scheduled"

local ConditionedGenerator = util.class("ConditionedGenerator", Model)
ConditionedGenerator.kind = "generator"

local NAME = "ConditionedGenerator"
local DEFAULTS = {embed = 32, hidden = 64, layers = 1, cell = "lstm", dropout = 0, condition_cell = true}
local KNOWN = {cond_size = true, vocab_size = true, start_id = true, end_id = true, pad_id = true,
               embed = true, hidden = true, layers = true, cell = true, dropout = true,
               condition_cell = true, sampling_prob = true, sampling = true}

local function check_id(what, id, V)
  if math.type(id) ~= "integer" or id < 1 or id > V then
    error(string.format("%s: %s must be a token id in 1..%d, got %s", NAME, what, V, tostring(id)), 3)
  end
  return id
end

-- config: cond_size (Z), vocab_size (V), start_id (the token fed first) required;
-- end_id (ends a generated sequence), pad_id (targets equal to it are not scored),
-- embed (E), hidden (H), layers (L), cell (nn.cells: "lstm", "gru", ...), dropout (on the
-- embeddings, between layers and on the outputs, in training mode), condition_cell
-- (LSTM: c0 from z as well, default true; false: c0 = 0), sampling_prob (0: teacher
-- forcing; scheduled sampling's p, also settable as model.sampling_prob between
-- epochs), sampling ("argmax" | "sample"; also model.sampling). The two are left out
-- of config unless given.
function ConditionedGenerator:__init(config)
  Model.__init(self)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  util.check_positive_int(NAME, "cond_size", c.cond_size)
  util.check_positive_int(NAME, "vocab_size", c.vocab_size)
  util.check_positive_int(NAME, "embed", c.embed)
  util.check_positive_int(NAME, "hidden", c.hidden)
  util.check_positive_int(NAME, "layers", c.layers)
  check_id("start_id", c.start_id, c.vocab_size)
  if c.end_id ~= nil then check_id("end_id", c.end_id, c.vocab_size) end
  if c.pad_id ~= nil then check_id("pad_id", c.pad_id, c.vocab_size) end
  local stack = nn.stack_class(NAME, c.cell)
  util.opt_number(NAME, c, "dropout", nil, 0, 1, true)
  util.opt_bool(NAME, c, "condition_cell", true)
  if config.condition_cell ~= nil and c.cell ~= "lstm" then
    error(NAME .. ": condition_cell applies to the LSTM's cell state, not to cell '" .. c.cell .. "'", 2)
  end
  -- model.config must build the same model again: no default condition_cell beside a GRU or RNN
  if c.cell ~= "lstm" then c.condition_cell = nil end
  self.sampling_prob = util.opt_number(NAME, c, "sampling_prob", 0, 0, 1)
  self.sampling = util.opt_choice(NAME, c, "sampling", "argmax", scheduled.SAMPLING)
  self.config = c
  self.is_lstm = c.cell == "lstm"
  local L, H = c.layers, c.hidden
  self.init_h = self:register_module("init_h", nn.Linear(c.cond_size, L * H))
  if self.is_lstm and c.condition_cell then
    self.init_c = self:register_module("init_c", nn.Linear(c.cond_size, L * H))
  end
  self.encoder = self:register_module("encoder", nn.Embedding(c.vocab_size, c.embed))
  self.rnn = self:register_module("rnn", stack(c.embed, H,
    {num_layers = L, dropout = L > 1 and c.dropout or 0}))
  self.decoder = self:register_module("decoder", nn.Linear(H, c.vocab_size))
  self.drop_in = self:register_module("drop_in", nn.Dropout(c.dropout))
  self.drop_out = self:register_module("drop_out", nn.Dropout(c.dropout))
  self.criterion = nn.CrossEntropy({ignore_index = c.pad_id})
end

-- name -> shape of the parameters ConditionedGenerator(config) registers, computed without building
-- the model (config's keys and the sizes it reads are checked): what recur.checkpoint
-- compares a file's tensors with before it allocates anything.
function ConditionedGenerator.parameter_shapes(config)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  local sizes = {}
  for _, key in ipairs({"cond_size", "vocab_size", "embed", "hidden", "layers"}) do
    sizes[key] = util.check_positive_int(NAME, key, c[key])
  end
  local Z, V, E, H, L = sizes.cond_size, sizes.vocab_size, sizes.embed, sizes.hidden, sizes.layers
  local shapes = {["init_h.weight"] = {L * H, Z}, ["init_h.bias"] = {L * H}, ["encoder.weight"] = {V, E},
                  ["decoder.weight"] = {V, H}, ["decoder.bias"] = {V}}
  if c.cell == "lstm" and util.opt_bool(NAME, c, "condition_cell", true) then
    shapes["init_c.weight"], shapes["init_c.bias"] = {L * H, Z}, {L * H}
  end
  return nn.stack_shapes(NAME, shapes, "rnn.", c.cell, E, H, L, false)
end

local function check_z(self, z)
  local Z = self.config.cond_size
  if not util.is_tensor(z) or z:dtype() ~= self.dtype or z:dim() ~= 2 or z:size(2) ~= Z then
    error(string.format("%s: the conditioning vector z must be a %s (B,%d) tensor, got %s", NAME, self.dtype, Z,
      util.is_tensor(z) and (z:dtype() .. " " .. util.shape_str(z)) or type(z)), 3)
  end
  return z
end

-- tanh(linear(z)) as (B,L*H) and as the stack's (L,B,H) (a new contiguous tensor).
local function conditioned_state(linear, z, L, H)
  local flat = linear:forward(z):tanh()                   -- (B,L*H), a new tensor
  local B = z:size(1)
  return flat, flat:view(B, L, H):transpose(1, 2):contiguous()
end

-- The state {h = (L,B,H), c = (L,B,H) for the LSTM} that z (B,Z) sets: the start of
-- generation. New tensors, free to be advanced in place by step.
function ConditionedGenerator:initial_state(z)
  check_z(self, z)
  local L, H = self.config.layers, self.config.hidden
  local _, h = conditioned_state(self.init_h, z, L, H)
  local c
  if self.init_c then
    _, c = conditioned_state(self.init_c, z, L, H)
  elseif self.is_lstm then
    c = core.zeros({L, z:size(1), H}, self.dtype)
  end
  return {h = h, c = c}
end

-- Teacher forcing's inputs for targets (T,B): start_id, then targets 1..T-1.
function ConditionedGenerator:shift(targets)
  if not util.is_tensor(targets) or targets:dtype() ~= "int64" or targets:dim() ~= 2 then
    error(NAME .. ": targets must be an int64 (T,B) tensor of token ids, got " ..
      (util.is_tensor(targets) and (targets:dtype() .. " " .. util.shape_str(targets)) or type(targets)), 2)
  end
  local T = targets:size(1)
  local inputs = core.full(targets:size(), self.config.start_id, "int64")
  if T > 1 then inputs:narrow(1, 2, T - 1):copy_(targets:narrow(1, 1, T - 1)) end
  return inputs
end

-- Logits (T,B,V) for the decoder inputs (T,B) (start_id first: see shift) from the
-- state that z (B,Z) sets.
function ConditionedGenerator:forward(z, inputs)
  check_z(self, z)
  if not util.is_tensor(inputs) or inputs:dtype() ~= "int64" or inputs:dim() ~= 2 or inputs:size(2) ~= z:size(1) then
    error(string.format("%s: forward expects inputs as an int64 (T,%d) tensor of token ids, got %s", NAME,
      z:size(1), util.is_tensor(inputs) and (inputs:dtype() .. " " .. util.shape_str(inputs)) or type(inputs)), 2)
  end
  local L, H = self.config.layers, self.config.hidden
  local h0, c0
  self._h0_flat, h0 = conditioned_state(self.init_h, z, L, H)
  if self.init_c then self._c0_flat, c0 = conditioned_state(self.init_c, z, L, H) end
  self._z, self._inputs = z, inputs
  self._emb = self.encoder:forward(inputs)
  self._emb_d = self.drop_in:forward(self._emb)
  self._y = self.rnn:forward(self._emb_d, h0, c0)
  self._y_d = self.drop_out:forward(self._y)
  self.logits = self.decoder:forward(self._y_d)
  return self.logits
end

-- The gradient into a conditioning Linear from the state's gradient gs (L,B,H):
-- back through the layout and the tanh (d tanh = 1 - tanh^2). Returns d z.
local function condition_backward(linear, z, flat, gs)
  local B, Z = z:size(1), z:size(2)
  local g = gs:transpose(1, 2):contiguous():view(B, flat:size(2))
  g:mul_(flat:mul(flat):neg():add(1))
  return linear:backward(z, g):view(B, Z)
end

-- Adds the parameter gradients of the last forward given the logits' gradient
-- (T,B,V); returns the gradient of z (B,Z), a new tensor.
function ConditionedGenerator:backward(z, glogits)
  if not self._inputs then error(NAME .. ": backward before forward", 2) end
  z = z or self._z
  local gy_d = self.decoder:backward(self._y_d, glogits)
  local gy = self.drop_out:backward(self._y, gy_d)
  local gemb_d, gh0, gc0 = self.rnn:backward(self._emb_d, gy)
  self.encoder:backward(self._inputs, self.drop_in:backward(self._emb, gemb_d))
  local gz = condition_backward(self.init_h, z, self._h0_flat, gh0):clone()
  if self.init_c then gz:add_(condition_backward(self.init_c, z, self._c0_flat, gc0)) end
  return gz
end

-- The conditioning vectors and targets of a batch {z = (B,Z), y = (T,B)}.
local function batch_parts(op, batch)
  if type(batch) ~= "table" then
    error(string.format("%s: expects a batch {z = (B,Z), y = targets (T,B)}, got %s", op, type(batch)), 3)
  end
  return batch.z, batch.y
end

local TRAIN_OPTIONS = {sampling_prob = true}

-- One batch {z = (B,Z), y = targets (T,B)} (end_id and pad_id included as the data
-- has them), teacher-forced, or with scheduled sampling when p > 0 (opts.sampling_prob,
-- default self.sampling_prob): mean cross-entropy per scored token, backward
-- (gradients are added: zero them first). Returns the loss, nil (no state is carried
-- from batch to batch), the number of scored tokens and the inputs fed (T,B).
function ConditionedGenerator:train_step(batch, _, opts)
  local op = NAME .. ":train_step"
  local z, targets = batch_parts(op, batch)
  opts = util.check_opts(op, opts, TRAIN_OPTIONS)
  local p = util.opt_number(op, opts, "sampling_prob", self.sampling_prob, 0, 1)
  local inputs = self:shift(targets)
  if p > 0 then inputs = scheduled.inputs(self, self:initial_state(z), inputs, p, self.sampling) end
  local logits = self:forward(z, inputs)
  local loss = self.criterion:forward(logits, targets)
  self:backward(z, self.criterion:backward(logits, targets))
  return loss, nil, math.tointeger(self.criterion.count), inputs
end

-- The teacher-forced loss of one batch without backward (Model:evaluate_batches
-- averages it), the number of scored tokens, and nil.
function ConditionedGenerator:batch_loss(batch)
  local z, targets = batch_parts(NAME .. ":batch_loss", batch)
  local loss = self.criterion:forward(self:forward(z, self:shift(targets)), targets)
  return loss, math.tointeger(self.criterion.count), nil
end

-- Logits (K,V) for one step of ids (K) and the state after it, advanced in place
-- (recur.beam's interface). The state is required: start from initial_state(z).
-- The logits are the decoder's buffer, overwritten by the next step.
function ConditionedGenerator:step(ids, state)
  if type(state) ~= "table" or not util.is_tensor(state.h) then
    error(NAME .. ": step needs a state {h =, c =}; start from initial_state(z)", 2)
  end
  local K = ids:numel()
  local x = self.encoder:forward(ids:view(K))       -- (K,E)
  local y = self.rnn:step(x, state.h, state.c)      -- (K,H), the top layer's h
  return self.decoder:forward(y), state
end

local GENERATE_OPTIONS = {length = true, temperature = true, top_k = true, top_p = true, banned = true,
                          min_length = true}

-- Sequences for every row of z (B,Z) (recur.decode.generate): a Lua array of B arrays
-- of token ids, each ending with end_id when the model produced it (as recur.beam's
-- hypotheses). opts: length (50, the most tokens), temperature (0: greedy, the
-- default), top_k, top_p, banned: see recur.decode.choose; min_length (end_id banned
-- for the first min_length tokens). Draws use recur's seeded generator.
function ConditionedGenerator:generate(z, opts)
  opts = util.check_opts(NAME .. ":generate", opts, GENERATE_OPTIONS)
  check_z(self, z)
  local length = util.check_positive_int(NAME .. ":generate", "length", opts.length or 50)
  local first = core.full({z:size(1)}, self.config.start_id, "int64")
  return decode.generate(self, self:initial_state(z), first, {length = length,
    end_id = self.config.end_id, min_length = opts.min_length, temperature = opts.temperature or 0,
    top_k = opts.top_k, top_p = opts.top_p, banned = opts.banned})
end

-- recur.beam.search from the state that one conditioning vector z ((Z) or (1,Z))
-- sets, after start_id. opts are beam.search's (end_id defaults to the model's).
-- Returns its hypotheses, best first.
function ConditionedGenerator:beam_search(z, opts)
  if util.is_tensor(z) and z:dim() == 1 then z = z:view(1, z:numel()) end
  check_z(self, z)
  if z:size(1) ~= 1 then error(NAME .. ": beam_search takes one conditioning vector, got " .. util.shape_str(z), 2) end
  local o = {}
  for k, v in pairs(util.check_opts(NAME .. ":beam_search", opts, beam.OPTIONS)) do o[k] = v end
  if o.end_id == nil then o.end_id = self.config.end_id end
  local model = self
  local conditioned = {step = function(_, ids, state)
    return model:step(ids, state or model:initial_state(z))
  end}
  return beam.search(conditioned, {self.config.start_id}, o)
end

return ConditionedGenerator
