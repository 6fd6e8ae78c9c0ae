-- LanguageModel: next-token prediction with a stacked recurrent network, as
-- char-rnn, torch-rnn and PyTorch's word_language_model build it.
--
--   ids (T,B) int64 -> encoder: Embedding(V,E) -> (T,B,E) -> dropout
--     -> rnn: LSTM | GRU | RNN, L layers of H (dropout between layers) -> (T,B,H)
--     -> dropout -> decoder: Linear(H,V) -> logits (T,B,V)
--
-- Parameter names follow word_language_model: encoder.weight, rnn.weight_ih_l0, ...,
-- decoder.weight, decoder.bias.
-- Dropout (config.dropout, training mode only) acts where word_language_model and
-- Zaremba et al. (2014) put it: on the embedding output, between the rnn's layers and
-- on the last layer's output before the decoder; never on the recurrent connections.
-- tie_weights (Press & Wolf 2017; Inan et al. 2017; word_language_model's --tied):
-- decoder.weight IS encoder.weight, one (V,H) tensor (embed must equal hidden), and
-- one gradient tensor into which both backward passes add, so the gradient is the sum
-- of its two uses. parameters() lists the tensor once (an optimizer steps it once);
-- state_dict keeps both names, as PyTorch's does, and a model built with tie_weights
-- loads them back tied (load_state_dict refuses two different tensors for them).
-- The hidden state is carried from chunk to chunk (truncated BPTT): `state` is a
-- table {h = (L,B,H), c = (L,B,H) for the LSTM}, nil for zeros; gradients stop at
-- chunk boundaries, and within a chunk after bptt_truncate steps when it is given.
-- Scheduled sampling (Bengio et al. 2015, recur.models.scheduled): with sampling_prob
-- p > 0, train_step feeds at step t+1 of each sequence, with probability p, the
-- model's own prediction at step t instead of x[t+1] (sampling "argmax": the best
-- token; "sample": a draw from the softmax). A stepping pass from the carried state
-- chooses the inputs, then the chunk's forward and backward run on them (the
-- paper's gradient: no gradient through the choice), and the state carried on is the
-- one the fed inputs leave.
-- set_precision("bf16" | "int8" | "fp32" [, {training = true}]): inference (forward
-- and step in evaluation mode: the evaluation, generation) with the rnn's and the
-- decoder's weights in bfloat16 and float32 sums, or in int8 (recur.nn.bf16); training
-- stays float32 unless training = true ("bf16": the forward products of training in
-- bf16 from the float32 weights, rounded anew each forward; backward in float32).
-- Default "fp32"; not saved in checkpoints (a property of the run, not of the model).
-- Memory between forward and backward: the embedding output (T*B*E), the rnn's saved activations (about 6*L*T*B*H floats for the LSTM), its
-- output (T*B*H) and the logits and their gradient (2*T*B*V). The embedding output,
-- the logits and the decoder's input gradient are buffers kept from step to step
-- (see Linear): the logits forward returns are overwritten by the next forward or
-- step of the same shape, so clone them to keep them.
local core = require "recur.core"
local nn = require "recur.nn"
local util = require "recur.nn.util"
local Model = require "recur.models.Model"
local scheduled = require "recur.models.scheduled"
local bf16 = require "recur.nn.bf16"

local LanguageModel = util.class("LanguageModel", Model)
LanguageModel.kind = "lm"

local NAME = "LanguageModel"
local DEFAULTS = {embed = 64, hidden = 128, layers = 2, cell = "lstm", dropout = 0}
local KNOWN = {vocab_size = true, embed = true, hidden = true, layers = true, cell = true,
               dropout = true, bptt_truncate = true, tie_weights = true, sampling_prob = true,
               sampling = true}

-- config: vocab_size (required), embed (64), hidden (128), layers (2), cell (nn.cells:
-- "lstm", "gru", ...), dropout (0, in [0, 1): on the embeddings, between layers and
-- before the decoder), tie_weights (nil: false; needs embed == hidden), bptt_truncate
-- (nil: the gradient flows back through the whole chunk; k >= 0: each output's gradient
-- flows back through at most k earlier steps, see nn.Recurrent), sampling_prob (0:
-- teacher forcing; scheduled sampling's p, also settable as model.sampling_prob between
-- epochs), sampling ("argmax" | "sample": the fed prediction, see above; also
-- model.sampling). Any other key is an error.
function LanguageModel:__init(config)
  Model.__init(self)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  if c.vocab_size == nil then error(NAME .. ": config.vocab_size is required", 2) end
  for _, key in ipairs({"vocab_size", "embed", "hidden", "layers"}) do
    c[key] = util.check_positive_int(NAME, "config." .. key, c[key])
  end
  local stack = nn.stack_class(NAME, c.cell)
  util.opt_number(NAME, c, "dropout", nil, 0, 1, true)
  util.opt_int(NAME, c, "bptt_truncate", nil, 0)
  util.opt_bool(NAME, c, "tie_weights")
  if c.tie_weights and c.embed ~= c.hidden then
    error(string.format("%s: tie_weights needs embed == hidden (the decoder's weight is the "
      .. "embedding), got embed %d and hidden %d", NAME, c.embed, c.hidden), 2)
  end
  -- absent from config unless given, so that a model trained without them keeps the
  -- configuration (and checkpoint) it had before they existed
  self.sampling_prob = util.opt_number(NAME, c, "sampling_prob", 0, 0, 1)
  self.sampling = util.opt_choice(NAME, c, "sampling", "argmax", scheduled.SAMPLING)
  self.config = c
  self.encoder = self:register_module("encoder", nn.Embedding(c.vocab_size, c.embed))
  -- the stack's own dropout acts between layers only, and it refuses one for a single layer
  self.rnn = self:register_module("rnn", stack(c.embed, c.hidden, {num_layers = c.layers,
    dropout = c.layers > 1 and c.dropout or 0, bptt_truncate = c.bptt_truncate}))
  self.decoder = self:register_module("decoder", nn.Linear(c.hidden, c.vocab_size))
  if c.tie_weights then self:_tie() end
  self.drop_in = self:register_module("drop_in", nn.Dropout(c.dropout))
  self.drop_out = self:register_module("drop_out", nn.Dropout(c.dropout))
  self.criterion = nn.CrossEntropy()
  self.is_lstm = c.cell == "lstm"
end

-- name -> shape of the parameters LanguageModel(config) registers, computed without building
-- the model (config's keys and the sizes it reads are checked): what recur.checkpoint
-- compares a file's tensors with before it allocates anything.
function LanguageModel.parameter_shapes(config)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  for _, key in ipairs({"vocab_size", "embed", "hidden", "layers"}) do
    c[key] = util.check_positive_int(NAME, "config." .. key, c[key])
  end
  local V, E, H = c.vocab_size, c.embed, c.hidden
  local shapes = {["encoder.weight"] = {V, E}, ["decoder.weight"] = {V, H}, ["decoder.bias"] = {V}}
  return nn.stack_shapes(NAME, shapes, "rnn.", c.cell, E, H, c.layers, false)
end

-- logits (T,B,V) for ids x (T,B), and the state after the chunk.
function LanguageModel:forward(x, state)
  state = state or {}
  self._emb = self.encoder:forward(x)
  self._emb_d = self.drop_in:forward(self._emb)
  local y, hn, cn = self.rnn:forward(self._emb_d, state.h, state.c)
  self._y = y
  self._y_d = self.drop_out:forward(y)
  self.logits = self:_decode(self._y_d)
  return self.logits, {h = hn, c = cn}
end

-- Accumulates parameter gradients for the last forward; the state's gradient is
-- dropped (truncated BPTT).
function LanguageModel:backward(x, glogits)
  local gy_d = self.decoder:backward(self._y_d, glogits)
  local gy = self.drop_out:backward(self._y, gy_d)
  local gemb_d = self.rnn:backward(self._emb_d, gy)
  local gemb = self.drop_in:backward(self._emb, gemb_d)
  self.encoder:backward(x, gemb)
end

local TRAIN_OPTIONS = {sampling_prob = true}

-- One training chunk, batch {x = ids (T,B), y = next ids (T,B)}: forward (with
-- scheduled sampling when p > 0), loss (mean nats per token), backward. Gradients are
-- added to the module's (zero them first). opts: sampling_prob (self.sampling_prob).
-- Returns the loss, the carried state, the token count and the inputs fed (T,B).
function LanguageModel:train_step(batch, state, opts)
  local op = NAME .. ":train_step"
  opts = util.check_opts(op, opts, TRAIN_OPTIONS)
  local p = util.opt_number(op, opts, "sampling_prob", self.sampling_prob, 0, 1)
  local x, y = batch.x, batch.y
  if p > 0 then x = scheduled.inputs(self, state, x, p, self.sampling) end
  local logits, next_state = self:forward(x, state)
  local loss = self.criterion:forward(logits, y)
  self:backward(x, self.criterion:backward(logits, y))
  return loss, next_state, y:numel(), x
end

-- The loss of one chunk without backward (Model:evaluate_batches averages it).
function LanguageModel:batch_loss(batch, state)
  local logits, next_state = self:forward(batch.x, state)
  return self.criterion:forward(logits, batch.y), batch.y:numel(), next_state
end

function LanguageModel:set_precision(precision, opts)
  bf16.check(NAME .. ":set_precision", precision, self.dtype)
  self.train_bf16 = bf16.check_training(NAME .. ":set_precision", precision, opts)
  self.rnn:set_precision(precision, opts)
  self.precision = precision
  bf16.drop(self)
  return self
end

-- Training changes the weights: the bf16 copies are made again after it.
function LanguageModel:train(mode)
  Model.train(self, mode)
  if self.training then bf16.drop(self) end
  return self
end

-- The decoder's logits for y (..., H), in bf16 or int8 when inference is.
function LanguageModel:_decode(y)
  local p = bf16.active(self)
  if p then
    return bf16.linear(self, "decoder", y, self.decoder.weight, self.decoder.bias, "_bf16_logits", p)
  end
  if self.train_bf16 and self.training then
    -- training in bf16: the decoder's forward product too (its backward is Linear's)
    local w = self.decoder.weight
    local K = w:size(2)
    local size = y:size()
    size[#size] = w:size(1)
    local out = core.bf16_linear(y:reshape(y:numel() // K, K), bf16.repacked(self, "decoder", w), self.decoder.bias,
      self._bf16_train_logits)
    self._bf16_train_logits = out
    return out:view(size)
  end
  return self.decoder:forward(y)
end

-- decoder.weight and its gradient become the encoder's tensors (see the header).
function LanguageModel:_tie()
  self.decoder.weight = self.encoder.weight
  self.decoder._grads.weight = self.encoder._grads.weight
end

-- Module:to gives each module new tensors; tied, the decoder takes the encoder's again.
function LanguageModel:to(dtype)
  Model.to(self, dtype)
  if self.config.tie_weights then self:_tie() end
  return self
end

-- Tied, the state's encoder.weight and decoder.weight must be one tensor's values: an
-- untied model's two different matrices cannot both be loaded into one.
function LanguageModel:load_state_dict(t, opts)
  if self.config.tie_weights and type(t) == "table" then
    local e, d = t["encoder.weight"], t["decoder.weight"]
    if util.is_tensor(e) and util.is_tensor(d) and util.same_shape(e, d)
        and (e:to("float64") - d:to("float64")):abs():max() ~= 0 then
      error(NAME .. ": load_state_dict: tie_weights, but the state's encoder.weight and "
        .. "decoder.weight differ (a state of an untied model?)", 2)
    end
  end
  bf16.drop(self)
  return Model.load_state_dict(self, t, opts)
end

-- Logits (B,V) for one step of ids (B), and the state after it (for generation).
-- Runs the layers' single-step kernels (no activations saved, no dropout). The state
-- is advanced in place and returned (the same table when one is given; keep a clone
-- of its tensors to branch from a state), and the logits are the decoder's buffer,
-- overwritten by the next step: generating a token allocates no tensor.
function LanguageModel:step(ids, state)
  local B = ids:numel()
  state = state or {}
  local h, c = self:step_state(state, B)
  local x = self.encoder:forward(ids:view(B))       -- (B,E)
  local y = self.rnn:step(x, h, c)                  -- (B,H), the top layer's h
  state.h, state.c = h, c
  return self:_decode(y), state
end

return LanguageModel
