-- Seq2Seq: an encoder-decoder (sequence-to-sequence) model, as Sutskever et al.
-- (2014), PyTorch's seq2seq tutorial and OpenNMT build it: an encoder RNN reads the
-- source, its final state starts a decoder RNN that predicts the target one token at a
-- time; with config.attention the decoder also attends over the encoder's outputs
-- (below).
--
--   src (S,B) int64, src_lengths (B) int64 or nil
--     -> src_embed: Embedding(Vs,E) -> dropout -> encoder: LSTM | GRU | RNN, L layers
--        of H, with lengths -> final state h (L,B,H) (and c for the LSTM)
--   dec_in (T,B) int64, from that state
--     -> tgt_embed: Embedding(Vt,E) -> dropout -> decoder: same cell, L layers of H
--     -> (T,B,H) -> dropout -> generator: Linear(H,Vt) -> logits (T,B,Vt)
--
-- Targets tgt (T,B) are the gold output sequences, each ending with eos_id and padded
-- with pad_id after it (T may differ from S; a column may be all padding past its
-- end). Teacher forcing feeds dec_in = bos_id, tgt[1], ..., tgt[T-1] (shift); the
-- loss is CrossEntropy{ignore_index = pad_id}, mean nats per non-padding target.
-- Source padding: column b of src is read for steps 1..src_lengths[b] only (the
-- encoder's state is the one after its last real token, as PyTorch's packed
-- sequences), so whatever id pads it is never seen; nil means every column has S.
--
-- Scheduled sampling (Bengio et al. 2015, recur.models.scheduled): in train_step with
-- sampling_prob p > 0, the input of step t+1 is, independently for every sequence and
-- step with probability p, the model's own prediction at step t instead of tgt[t]:
-- the argmax of the step's logits (sampling = "argmax", the default: p = 1 trains on
-- exactly what greedy decoding feeds itself) or a draw from its softmax (sampling =
-- "sample", as the paper). A stepping pass from the encoder's state chooses the
-- inputs, then the decoder's sequence forward and backward run on them: the paper's
-- gradient, which does not differentiate through the choice (see scheduled.lua).
-- Seq2Seq.sampling_probability gives p for the paper's decay schedules; set
-- model.sampling_prob once per epoch.
--
--   local model = recur.models.Seq2Seq{src_vocab_size = Vs, tgt_vocab_size = Vt}
--   model:zero_grad(); local loss = model:train_step{x = src, y = tgt, lengths = src_lengths}; opt:step()
--   local ids = model:greedy(src, src_lengths, {max_length = 50})   -- B id arrays
--
-- Inference: greedy(src, src_lengths, opts) (recur.decode.generate: greedy, or sampled
-- with a temperature) and beam_search(...) (recur.beam) stop a sequence at eos_id
-- (kept as its last id) or after max_length tokens. decoder_for(src) returns
-- an object whose step(ids, state) starts from the encoder's state when state is nil,
-- so recur.beam.search works on it unchanged: the state {h = (L,K,H), c = (L,K,H)}
-- has the K sequences on dimension 2.
--
-- Attention (config.attention, nn.Attention over the memory = the encoder's outputs
-- (S,B,H), padded positions masked):
--   "bahdanau"       context_t = attend(h_{t-1}, additive score); h_t = rnn([emb_t;
--                    context_t], h_{t-1}); out_t = h_t   (PyTorch tutorial's AttnDecoderRNN)
--   "luong-dot" | "luong-general" | "luong-concat"
--                    h_t = rnn([emb_t; h~_{t-1}], h_{t-1}) (input feeding, h~_0 = 0);
--                    context_t = attend(h_t); out_t = h~_t = tanh(W_c [context_t; h_t])
-- h is the top layer's state; the generator reads out_t. Because step t's input needs
-- step t-1's output, the decoder runs step by step in training too: each step and layer
-- is a T = 1 call of the fused kernel on a C layer of its own (_step_layer) that keeps
-- that step's activations for the step-wise backward. config.bidirectional: the encoder
-- reads both ways with H/2 units per direction (H even); its outputs are (S,B,H) and the
-- decoder starts from each layer's forward and backward final states side by side
-- (OpenNMT's brnn, no bridge parameters), with or without attention. The generation
-- state then also holds memory (S,B,H), lengths (1,B) and, for Luong, feed (1,B,H): B on
-- dimension 2, so that recur.beam reorders the memory with the hypotheses.
--
-- Parameters: src_embed.weight, encoder.weight_ih_l0, ..., tgt_embed.weight,
-- decoder.weight_ih_l0, ..., generator.weight, generator.bias (encoder and decoder
-- names as torch.nn.LSTM/GRU). Memory between forward and backward: both embedding
-- outputs ((S+T)*B*E), the two rnns' saved activations (about 6*L*(S+T)*B*H floats
-- for the LSTM, 5 for the GRU), the decoder output (T*B*H), the logits and their
-- gradient (2*T*B*Vt). Buffers are kept from call to call as in torch/nn: the logits
-- forward returns are overwritten by the next forward of the same shape, and the
-- logits step returns by the next step of the same batch size (a separate buffer, so
-- stepping leaves forward's logits alone); clone what you keep.
-- With attention add, per step, the decoder input [emb; fed] (B*(E+H)), the output and
-- for Luong [context; h] (B*3H), the attention's tape entry (nn.Attention), and per step
-- and layer one C layer's saved activations and workspace (about B*H*(G+2) floats and
-- the packed weights, (D+H)*G*H floats with D = E+H for layer 1, kept between batches:
-- 0.85 MB per step for E = 64, H = 128, B = 32 LSTM), up to step_memory_limit bytes;
-- the steps past it share one C layer per decoder layer and recompute their forward.
local core = require "recur.core"
local nn = require "recur.nn"
local util = require "recur.nn.util"
local Model = require "recur.models.Model"
local beam = require "recur.beam"
local decode = require "recur.decode"
local scheduled = require "recur.models.scheduled"
local Attention = require "recur.nn.Attention"

local Seq2Seq = util.class("Seq2Seq", Model)
Seq2Seq.kind = "seq2seq"

local DEFAULTS = {embed = 64, hidden = 128, layers = 2, cell = "lstm", dropout = 0,
                  pad_id = 1, bos_id = 2, eos_id = 3, sampling_prob = 0,
                  sampling = "argmax", attention = "none", bidirectional = false}
local CONFIG_KEYS = {src_vocab_size = true, tgt_vocab_size = true}
for k in pairs(DEFAULTS) do CONFIG_KEYS[k] = true end

-- config.attention -> the score of nn.Attention it uses (nil: no attention).
Seq2Seq.ATTENTION = {"none", "bahdanau", "luong-dot", "luong-general", "luong-concat"}
local SCORE = {bahdanau = "additive", ["luong-dot"] = "dot", ["luong-general"] = "general",
               ["luong-concat"] = "concat"}

-- The attention and bidirectional settings of config c (checked; `attention` and
-- `bidirectional` default to "none" and false, so that checkpoints written before
-- attention load unchanged): the encoder's hidden size per direction and the decoder's
-- input size. A bidirectional encoder gives each direction hidden/2 units, so that its
-- outputs (the attention memory) and its final states, the two directions' halves
-- concatenated layer by layer, have the decoder's size (OpenNMT's brnn); with
-- attention the decoder reads [embedding; fed vector of hidden units] at every step.
local function check_attention(op, c)
  util.opt_choice(op, c, "attention", nil, Seq2Seq.ATTENTION)
  util.opt_bool(op, c, "bidirectional", false)
  if c.bidirectional and c.hidden % 2 ~= 0 then
    error(string.format("%s: a bidirectional encoder gives each direction hidden/2 units: config.hidden must be even, got %d",
      op, c.hidden), 3)
  end
  return c.bidirectional and c.hidden // 2 or c.hidden, c.embed + (SCORE[c.attention] and c.hidden or 0)
end

local function check_prob(op, what, p)
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error(string.format("%s: %s must be a number in [0, 1], got %s", op, what, tostring(p)), 3)
  end
  return p
end

-- config: src_vocab_size, tgt_vocab_size (required), embed (64), hidden (128),
-- layers (2), cell (nn.cells: "lstm", "gru", ...), dropout (0: on both embeddings, between
-- layers and before the generator), pad_id (1), bos_id (2), eos_id (3): target-side
-- ids in 1..tgt_vocab_size, sampling_prob (0: teacher forcing; the default p of
-- train_step, also settable as model.sampling_prob between epochs), sampling
-- ("argmax": the fed prediction is the step's best token; "sample": drawn from its
-- softmax, as Bengio et al.; also model.sampling).
function Seq2Seq:__init(config)
  Model.__init(self)
  local c = Model.configure("Seq2Seq", config, DEFAULTS, CONFIG_KEYS)
  for _, key in ipairs({"src_vocab_size", "tgt_vocab_size", "embed", "hidden", "layers"}) do
    if c[key] == nil then error("Seq2Seq: config." .. key .. " is required", 2) end
    c[key] = util.check_positive_int("Seq2Seq", "config." .. key, c[key])
  end
  local stack = nn.stack_class("Seq2Seq", c.cell)
  for _, key in ipairs({"pad_id", "bos_id", "eos_id"}) do
    local id = math.type(c[key]) == "integer" and c[key] or nil
    if not id or id < 1 or id > c.tgt_vocab_size then
      error(string.format("Seq2Seq: config.%s must be a target id in 1..%d, got %s", key,
        c.tgt_vocab_size, tostring(c[key])), 2)
    end
  end
  -- a pad target is ignored by the loss: eos must count, and bos is never a target
  if c.pad_id == c.eos_id or c.pad_id == c.bos_id then
    error("Seq2Seq: config.pad_id must differ from bos_id and eos_id", 2)
  end
  util.opt_number("Seq2Seq", c, "dropout", nil, 0, 1, true)
  check_prob("Seq2Seq", "config.sampling_prob", c.sampling_prob)
  util.opt_choice("Seq2Seq", c, "sampling", nil, scheduled.SAMPLING)
  local enc_hidden, dec_input = check_attention("Seq2Seq", c)
  self.config = c
  self.pad_id, self.bos_id, self.eos_id = c.pad_id, c.bos_id, c.eos_id
  self.sampling_prob, self.sampling = c.sampling_prob, c.sampling
  local rnn_opts = {num_layers = c.layers, dropout = c.layers > 1 and c.dropout or 0}
  local enc_opts = {num_layers = c.layers, dropout = rnn_opts.dropout, bidirectional = c.bidirectional}
  self.src_embed = self:register_module("src_embed", nn.Embedding(c.src_vocab_size, c.embed))
  self.encoder = self:register_module("encoder", stack(c.embed, enc_hidden, enc_opts))
  self.tgt_embed = self:register_module("tgt_embed", nn.Embedding(c.tgt_vocab_size, c.embed))
  self.decoder = self:register_module("decoder", stack(dec_input, c.hidden, rnn_opts))
  self.generator = self:register_module("generator", nn.Linear(c.hidden, c.tgt_vocab_size))
  self.score = SCORE[c.attention]
  if self.score then
    self.bahdanau = c.attention == "bahdanau"
    self.attention = self:register_module("attention", Attention{score = self.score, query_size = c.hidden,
      memory_size = c.hidden, attn_size = (self.score == "additive" or self.score == "concat") and c.hidden or nil})
    -- Luong's attentional hidden state h~ = tanh(W_c [context; h]), without a bias (Luong
    -- et al. 2015, eq. 5; OpenNMT's linear_out)
    if not self.bahdanau then
      self.attn_out = self:register_module("attn_out", nn.Linear(2 * c.hidden, c.hidden, {bias = false}))
    end
  end
  self.drop_src = self:register_module("drop_src", nn.Dropout(c.dropout))
  self.drop_tgt = self:register_module("drop_tgt", nn.Dropout(c.dropout))
  self.drop_out = self:register_module("drop_out", nn.Dropout(c.dropout))
  self.criterion = nn.CrossEntropy{ignore_index = c.pad_id}
  self.is_lstm = c.cell == "lstm"
end

-- name -> shape of the parameters Seq2Seq(config) registers, computed without building
-- the model (config's keys and the sizes it reads are checked): what recur.checkpoint
-- compares a file's tensors with before it allocates anything.
function Seq2Seq.parameter_shapes(config)
  local c = Model.configure("Seq2Seq", config, DEFAULTS, CONFIG_KEYS)
  for _, key in ipairs({"src_vocab_size", "tgt_vocab_size", "embed", "hidden", "layers"}) do
    c[key] = util.check_positive_int("Seq2Seq", "config." .. key, c[key])
  end
  local enc_hidden, dec_input = check_attention("Seq2Seq", c)
  local Vs, Vt, E, H = c.src_vocab_size, c.tgt_vocab_size, c.embed, c.hidden
  local shapes = {["src_embed.weight"] = {Vs, E}, ["tgt_embed.weight"] = {Vt, E},
                  ["generator.weight"] = {Vt, H}, ["generator.bias"] = {Vt}}
  local score = SCORE[c.attention]
  -- nn.Attention's parameters with query, memory and attention sizes all H
  if score == "general" then
    shapes["attention.memory_layer.weight"] = {H, H}
  elseif score == "concat" or score == "additive" then
    shapes["attention.query_layer.weight"] = {H, H}
    shapes["attention.memory_layer.weight"] = {H, H}
    shapes["attention.v.weight"] = {1, H}
    if score == "additive" then shapes["attention.query_layer.bias"] = {H} end
  end
  if score and score ~= "additive" then shapes["attn_out.weight"] = {H, 2 * H} end
  nn.stack_shapes("Seq2Seq", shapes, "encoder.", c.cell, E, enc_hidden, c.layers, c.bidirectional)
  return nn.stack_shapes("Seq2Seq", shapes, "decoder.", c.cell, dec_input, H, c.layers, false)
end

-- Argument checks; `level` 4 reports at the caller of the public method that called
-- check_batch.
local function check_ids(op, what, x, B, level)
  if not util.is_tensor(x) or x:dtype() ~= "int64" then
    error(string.format("%s: %s must be an int64 tensor of ids, got %s", op, what,
      util.is_tensor(x) and x:dtype() or type(x)), level)
  end
  if x:dim() ~= 2 then
    error(string.format("%s: %s must be 2-D (T,B), got %s", op, what, util.shape_str(x)), level)
  end
  if B and x:size(2) ~= B then
    error(string.format("%s: %s has shape %s but the source batch has %d sequences", op, what,
      util.shape_str(x), B), level)
  end
end

local function check_lengths(op, lengths, S, B)
  if lengths == nil then return end
  if not util.is_tensor(lengths) or lengths:dtype() ~= "int64" or lengths:dim() ~= 1
      or lengths:numel() ~= B then
    error(string.format("%s: src_lengths must be an int64 tensor of %d lengths (one per source)",
      op, B), 4)
  end
  if lengths:min() < 1 or lengths:max() > S then
    error(string.format("%s: src_lengths must be in 1..%d (the source length S), got %d..%d", op,
      S, lengths:min(), lengths:max()), 4)
  end
end

-- The arguments of a public method: src (S,B), src_lengths, and the target-side ids
-- (T,B) when `what` names them.
local function check_batch(op, src, src_lengths, tgt, what)
  check_ids(op, "src", src, nil, 4)
  local S, B = src:size(1), src:size(2)
  if what then check_ids(op, what, tgt, B, 4) end
  check_lengths(op, src_lengths, S, B)
end

-- The teacher-forcing decoder inputs for targets tgt (T,B): bos_id, then tgt[1..T-1].
function Seq2Seq:shift(tgt)
  check_ids("Seq2Seq:shift", "tgt", tgt, nil, 3)
  local T, B = tgt:size(1), tgt:size(2)
  local dec_in = core.full({T, B}, self.bos_id, "int64")
  if T > 1 then dec_in:narrow(1, 2, T - 1):copy_(tgt:narrow(1, 1, T - 1)) end
  return dec_in
end

-- The decoder's initial state from the encoder's final one: the same tensors, or for a
-- bidirectional encoder (L*2,B,H/2) -> (L,B,H), layer k's forward and reverse halves
-- side by side (OpenNMT's brnn: no bridge parameters, and the decoder sees both ends
-- of the source). bridge_back splits a gradient the same way.
function Seq2Seq:_bridge(s)
  if not self.config.bidirectional or s == nil then return s end
  local L, B, Hd = self.config.layers, s:size(2), s:size(3)
  local out = core.empty({L, B, 2 * Hd}, s:dtype())
  for k = 1, L do
    local o = out:select(1, k)
    o:narrow(2, 1, Hd):copy_(s:select(1, 2 * k - 1))
    o:narrow(2, Hd + 1, Hd):copy_(s:select(1, 2 * k))
  end
  return out
end

function Seq2Seq:_bridge_back(g)
  if not self.config.bidirectional or g == nil then return g end
  local L, B, Hd = self.config.layers, g:size(2), g:size(3) // 2
  local out = core.empty({2 * L, B, Hd}, g:dtype())
  for k = 1, L do
    local gk = g:select(1, k)
    out:select(1, 2 * k - 1):copy_(gk:narrow(2, 1, Hd))
    out:select(1, 2 * k):copy_(gk:narrow(2, Hd + 1, Hd))
  end
  return out
end

-- Encoder forward (activations kept for backward); the decoder's initial h, c (new
-- tensors). With attention the encoder's outputs (S,B,H) become the attention's
-- memory, padded positions masked.
function Seq2Seq:_encode(src, src_lengths)
  self._src, self._src_lengths = src, src_lengths
  self._emb_s = self.drop_src:forward(self.src_embed:forward(src))
  local _, hn, cn = self.encoder:forward(self._emb_s, nil, nil, src_lengths)
  self._enc_y = self.encoder.output
  if self.attention then
    self.attention:set_memory(self._enc_y, src_lengths)
    self._attn_memory = self._enc_y
  end
  return self:_bridge(hn), self:_bridge(cn)
end

-- The C layer that runs layer k of the decoder at step t of a step-wise (attention)
-- decoder: one per step and layer, so that each keeps its step's saved activations
-- for backward (the fused kernels at T = 1); t = 0 names the layer that the steps past
-- the memory limit share (see _dedicated_steps). Kept from batch to batch, rebuilt
-- after a dtype change.
function Seq2Seq:_step_layer(t, k)
  local pool = self._step_layers
  if not pool or pool.dtype ~= self.dtype then
    pool = {dtype = self.dtype}
    self._step_layers = pool
  end
  pool[t] = pool[t] or {}
  local layer = pool[t][k]
  if not layer then
    local r = self.decoder.layers[k][1]
    local opts = {dtype = self.dtype}
    if r.cell == "gru" then opts.reset_after = r.reset_after end
    layer = core.rnn_layer(r.cell, r.input_size, r.hidden_size, opts)
    pool[t][k] = layer
  end
  return layer
end

-- Seq2Seq.step_memory_limit: the bytes the step-wise decoder's per-step C layers may
-- hold (their saved activations and workspace, the packed weights included); a model
-- may set its own (model.step_memory_limit).
Seq2Seq.step_memory_limit = 256 * 2 ^ 20

-- How many of T steps of a batch of B get C layers of their own: as many as the memory
-- limit allows (an estimate of each step's layers: the packed weights, (D+H)*G*H
-- elements per layer, and about B*H*(2G+4) of activations and workspace). The others
-- share one C layer per decoder layer: their forward runs again, on the inputs and
-- states kept, just before their backward (the same numbers: the kernels are
-- deterministic), one more T = 1 forward per step in exchange for memory that does not
-- grow with T. Pool entries past the count are released.
function Seq2Seq:_dedicated_steps(T, B)
  local es = self.dtype == "float64" and 8 or 4
  local per_step = 0
  for k = 1, self.config.layers do
    local r = self.decoder.layers[k][1]
    local G, D, H = r.gates, r.input_size, r.hidden_size
    per_step = per_step + es * (G * H * (D + H) + B * H * (2 * G + 4))
  end
  local K = math.min(T, math.floor(self.step_memory_limit / per_step))
  local pool = self._step_layers
  if pool then
    for t = K + 1, #pool do pool[t] = nil end
  end
  return K
end

-- The dropout between decoder layers k and k+1 at step t (a mask per step).
function Seq2Seq:_step_dropout(t, k)
  self._step_drops = self._step_drops or {}
  local drops = self._step_drops
  drops[t] = drops[t] or {}
  local d = drops[t][k]
  if not d then
    d = nn.Dropout(self.config.dropout)
    drops[t][k] = d
  end
  d:train(self.training)
  return d
end

-- The attention decoder's forward on inputs dec_in (T,B) from state h, c, step by step
-- (the vector fed at step t depends on step t-1's output, so the sequence kernels
-- cannot run the whole target at once):
--   Bahdanau: context_t = attend(h_{t-1} of the top layer); h_t = rnn([emb_t; context_t],
--     h_{t-1}); out_t = h_t (the PyTorch tutorial's AttnDecoderRNN)
--   Luong: h_t = rnn([emb_t; h~_{t-1}], h_{t-1}) (input feeding, h~_0 = 0); context_t =
--     attend(h_t of the top layer); out_t = h~_t = tanh(W_c [context_t; h_t])
-- then dropout and the generator on out (T,B,H) at once. Saved for backward: each
-- step's layer activations (in _step_layer's C layers), the inputs X (T,B,E+H), the
-- outputs and, for Luong, [context; h] (T,B,2H).
function Seq2Seq:_decode_attention(dec_in, h, c)
  local cfg, dt = self.config, self.dtype
  local T, B, H, E, L = dec_in:size(1), dec_in:size(2), cfg.hidden, cfg.embed, cfg.layers
  self._dec_in = dec_in
  self._emb_t = self.drop_tgt:forward(self.tgt_embed:forward(dec_in))
  local X = util.buffer(self, "_att_x", dt, {T, B, E + H})
  X:narrow(3, 1, E):copy_(self._emb_t)
  local out = util.buffer(self, "_att_out", dt, {T, B, H})
  local cat = not self.bahdanau and util.buffer(self, "_att_cat", dt, {T, B, 2 * H}) or nil
  local drop = self.training and cfg.dropout > 0 and L > 1
  self.attention:clear()
  -- steps past K share a C layer per decoder layer and keep what recomputes them
  local K = self:_dedicated_steps(T, B)
  local kept = {}
  local hs, cs = {}, {}
  for k = 1, L do hs[k], cs[k] = h:select(1, k), c and c:select(1, k) or nil end
  for t = 1, T do
    local x_t = X:narrow(1, t, 1)
    local fed = x_t:select(1, 1):narrow(2, E + 1, H)
    if self.bahdanau then
      fed:copy_((self.attention:forward_step(hs[L])))
    elseif t == 1 then
      fed:zero_()
    else
      fed:copy_(out:select(1, t - 1))
    end
    local input = x_t
    if t > K then kept[t] = {} end
    for k = 1, L do
      local w_ih, w_hh, b_ih, b_hh = self.decoder.layers[k][1]:weights()
      if t > K then kept[t][k] = {input, hs[k], cs[k]} end
      local y, hn, cn = self:_step_layer(t > K and 0 or t, k):forward(input, w_ih, w_hh, b_ih, b_hh, hs[k], cs[k])
      hs[k], cs[k] = hn, cn
      input = (drop and k < L) and self:_step_dropout(t, k):forward(y) or y
    end
    local o = out:select(1, t)
    if self.bahdanau then
      o:copy_(hs[L])
    else
      local cat_t = cat:select(1, t)
      cat_t:narrow(2, 1, H):copy_((self.attention:forward_step(hs[L])))
      cat_t:narrow(2, H + 1, H):copy_(hs[L])
      core.addmm(o, cat_t, self.attn_out.weight, 1, 0, false, true)
      o:tanh_()
    end
  end
  self._att_T, self._att_cat_saved, self._att_drop = T, cat, drop
  self._att_K, self._att_kept = K, kept
  self._dec_y = out
  self._dec_y_d = self.drop_out:forward(out)
  self.logits = self.generator:forward(self._dec_y_d)
  return self.logits
end

-- Backward of _decode_attention, last step first: accumulates the decoder's, the
-- attention's and the generator's gradients and the target embedding's; returns the
-- gradient of the initial state h, c (L,B,H) and of the memory (S,B,H).
function Seq2Seq:_backward_attention(glogits)
  local cfg, dt = self.config, self.dtype
  local T, H, E, L = self._att_T, cfg.hidden, cfg.embed, cfg.layers
  local B = self._dec_in:size(2)
  local gy_d = self.generator:backward(self._dec_y_d, glogits)
  local gout = self.drop_out:backward(self._dec_y, gy_d)
  local out, cat = self._dec_y, self._att_cat_saved
  local gX = util.buffer(self, "_att_gx", dt, {T, B, E + H})
  local drop = self._att_drop
  local gh, gc = {}, {}
  local g_top = util.buffer(self, "_att_gtop", dt, {1, B, H})
  -- (1 - h~^2) * g of every step, for W_c's gradient in one product after the loop
  local g_pres = not self.bahdanau and util.buffer(self, "_att_gpre", dt, {T, B, H}) or nil
  local g_cat = not self.bahdanau and util.buffer(self, "_att_gcat", dt, {B, 2 * H}) or nil
  for t = T, 1, -1 do
    local gtop = g_top:select(1, 1)
    gtop:copy_(gout:select(1, t))
    if not self.bahdanau then
      -- the h~_t fed to step t+1 receives that step's input gradient too
      if t < T then gtop:add_(gX:select(1, t + 1):narrow(2, E + 1, H)) end
      local o, g_pre = out:select(1, t), g_pres:select(1, t)
      g_pre:copy_(o):mul_(o):neg_():add_(1):mul_(gtop)        -- (1 - h~^2) * g
      core.addmm(g_cat, g_pre, self.attn_out.weight, 1, 0, false, false)
      local gquery = self.attention:backward_step(g_cat:narrow(2, 1, H):contiguous())
      gtop:copy_(g_cat:narrow(2, H + 1, H)):add_(gquery)
    end
    local g = g_top
    for k = L, 1, -1 do
      local r = self.decoder.layers[k][1]
      local gw_ih, gw_hh, gb_ih, gb_hh = r:weight_grads()
      local layer = self:_step_layer(t > self._att_K and 0 or t, k)
      if t > self._att_K then
        local w_ih, w_hh, b_ih, b_hh = r:weights()
        local input, h0, c0 = table.unpack(self._att_kept[t][k], 1, 3)
        layer:forward(input, w_ih, w_hh, b_ih, b_hh, h0, c0)
      end
      local gx, gh0, gc0 = layer:backward(g, gh[k], gc[k], gw_ih, gw_hh, gb_ih, gb_hh, nil)
      gh[k], gc[k] = gh0, gc0
      if k > 1 then
        g = (drop and self:_step_dropout(t, k - 1):backward(nil, gx)) or gx
      else
        gX:select(1, t):copy_(gx:select(1, 1))
      end
    end
    if self.bahdanau then
      -- context_t was attend(h_{t-1}): its gradient joins that state's
      local gquery = self.attention:backward_step(gX:select(1, t):narrow(2, E + 1, H):contiguous())
      gh[L]:add_(gquery)
    end
  end
  if g_pres then
    core.addmm(self.attn_out:gradient("weight"), g_pres:view(T * B, H), cat:view(T * B, 2 * H), 1, 1, true, false)
  end
  self.tgt_embed:backward(self._dec_in, self.drop_tgt:backward(nil, gX:narrow(3, 1, E):contiguous()))
  local gh0 = core.empty({L, B, H}, dt)
  local gc0 = self.is_lstm and core.empty({L, B, H}, dt) or nil
  for k = 1, L do
    gh0:select(1, k):copy_(gh[k])
    if gc0 then gc0:select(1, k):copy_(gc[k]) end
  end
  return gh0, gc0, self.attention:memory_grad()
end

-- Decoder forward from state h, c on inputs dec_in (T,B): the logits (T,B,Vt).
function Seq2Seq:_decode(dec_in, h, c)
  if self.attention then return self:_decode_attention(dec_in, h, c) end
  self._dec_in = dec_in
  self._emb_t = self.drop_tgt:forward(self.tgt_embed:forward(dec_in))
  self._dec_y = self.decoder:forward(self._emb_t, h, c)
  self._dec_y_d = self.drop_out:forward(self._dec_y)
  self.logits = self.generator:forward(self._dec_y_d)
  return self.logits
end

-- Logits (T,B,Vt) for sources src (S,B) and decoder inputs dec_in (T,B) (shift(tgt)
-- for teacher forcing, or decoder_inputs(...) for scheduled sampling).
function Seq2Seq:forward(src, dec_in, src_lengths)
  local op = "Seq2Seq:forward"
  check_batch(op, src, src_lengths, dec_in, "dec_in")
  local h, c = self:_encode(src, src_lengths)
  return self:_decode(dec_in, h, c)
end

-- Accumulates parameter gradients for the last forward, given the logits' gradient.
-- Without attention the encoder's outputs feed nothing: only its final state receives
-- a gradient, from the decoder's initial state; with attention they also receive the
-- memory's gradient.
function Seq2Seq:backward(_, glogits)
  if not self._dec_in then error("Seq2Seq: backward before forward", 2) end
  local gh, gc, gy_enc
  if self.attention then
    gh, gc, gy_enc = self:_backward_attention(glogits)
  else
    local gy_d = self.generator:backward(self._dec_y_d, glogits)
    local gy = self.drop_out:backward(self._dec_y, gy_d)
    local gemb_t
    gemb_t, gh, gc = self.decoder:backward(self._emb_t, gy)
    self.tgt_embed:backward(self._dec_in, self.drop_tgt:backward(nil, gemb_t))
    local y = self._enc_y
    gy_enc = util.buffer(self, "_gy_enc", self.dtype, {y:size(1), y:size(2), y:size(3)}):zero_()
  end
  local gemb_s = self.encoder:backward(self._emb_s, gy_enc, self:_bridge_back(gh), self:_bridge_back(gc))
  self.src_embed:backward(self._src, self.drop_src:backward(nil, gemb_s))
end

-- One attention-decoder step for generation (see _decode_attention): x (B,E) the
-- embedded ids; state's h, c advanced and, for Luong, feed (1,B,H) (h~) replaced in
-- place. The memory is the state's: set on the attention when it is not the one set
-- last (a beam search reorders it with the state). Returns the generator's input (B,H).
function Seq2Seq:_step_attention(x_emb, state)
  local cfg, dt = self.config, self.dtype
  local B, H, E = x_emb:size(1), cfg.hidden, cfg.embed
  if state.memory == nil then error("Seq2Seq:step: an attention model's state needs the memory (use encode)", 3) end
  if state.memory ~= self._attn_memory then
    self.attention:set_memory(state.memory, state.lengths and state.lengths:reshape(B) or nil)
    self._attn_memory = state.memory
  end
  local x = util.buffer(self, "_step_in", dt, {B, E + H})
  x:narrow(2, 1, E):copy_(x_emb)
  local context, weights
  if self.bahdanau then
    context, weights = self.attention:attend(state.h:select(1, cfg.layers))
    x:narrow(2, E + 1, H):copy_(context)
  else
    x:narrow(2, E + 1, H):copy_(state.feed:select(1, 1))
  end
  local y = self.decoder:step(x, state.h, self.is_lstm and state.c or nil)
  local out = y
  if not self.bahdanau then
    context, weights = self.attention:attend(y)
    local cat = util.buffer(self, "_step_cat", dt, {B, 2 * H})
    cat:narrow(2, 1, H):copy_(context)
    cat:narrow(2, H + 1, H):copy_(y)
    out = state.feed:select(1, 1)
    core.addmm(out, cat, self.attn_out.weight, 1, 0, false, true)
    out:tanh_()
  end
  if self._attn_record then self._attn_record[#self._attn_record + 1] = weights:clone() end
  return out
end

-- One decoder step for generation: ids (B) the tokens just produced, state
-- {h = (L,B,H), c = (L,B,H) for the LSTM} advanced in place (required: it starts
-- from encode's state; see decoder_for). Returns the logits (B,Vt) and the state.
-- With attention the state also holds memory (S,B,H), the encoder's outputs, lengths
-- (1,B) int64 or nil, and for Luong feed (1,B,H), the last h~: every tensor has the B
-- sequences on dimension 2, as recur.beam reorders them.
-- No dropout, no activations saved. The embedding and logits go into buffers of
-- their own, so that a step between two training forwards (scheduled sampling) does
-- not make the modules' (T*B)-row buffers be reallocated every batch.
function Seq2Seq:step(ids, state)
  local op = "Seq2Seq:step"
  if not util.is_tensor(ids) or ids:dtype() ~= "int64" then
    error(op .. ": ids must be an int64 tensor (B) of the tokens just produced", 2)
  end
  if type(state) ~= "table" or state.h == nil then
    error(op .. ": needs the state {h =, c =} from encode (or use decoder_for(src))", 2)
  end
  local B = ids:numel()
  if state.h:dim() ~= 3 or state.h:size(2) ~= B then
    error(string.format("%s: state.h has shape %s, expected (%dx%dx%d)", op, util.shape_str(state.h),
      self.config.layers, B, self.config.hidden), 2)
  end
  local x = core.nn_embedding(self.tgt_embed.weight, ids:reshape(B), self._step_x)
  self._step_x = x
  local y
  if self.attention then
    y = self:_step_attention(x, state)
  else
    y = self.decoder:step(x, state.h, self.is_lstm and state.c or nil)
  end
  local g = self.generator
  local logits = util.buffer(self, "_step_logits", self.dtype, {B, g.out_features})
  core.addmm(logits, y, g.weight, 1, 0, false, true, g.bias)   -- y W^T + b, as Linear:forward
  return logits, state
end

-- The generation state from the decoder's initial h, c (not copied): with attention,
-- the memory (a copy of the encoder's outputs, which the next encode overwrites), the
-- source lengths as (1,B) and Luong's zero feed.
function Seq2Seq:_start_state(h, c)
  local state = {h = h, c = c}
  if self.attention then
    local B = h:size(2)
    state.memory = self._enc_y:clone()
    state.lengths = self._src_lengths and self._src_lengths:reshape(1, B):clone() or nil
    if not self.bahdanau then state.feed = core.zeros({1, B, self.config.hidden}, self.dtype) end
  end
  return state
end

-- The state the decoder starts from for sources src (S,B): {h = (L,B,H), c = (L,B,H)
-- for the LSTM}, and with attention memory, lengths and feed (see step); new tensors
-- (step may advance them in place).
function Seq2Seq:encode(src, src_lengths)
  local op = "Seq2Seq:encode"
  check_batch(op, src, src_lengths)
  return self:_start_state(self:_encode(src, src_lengths))
end

-- Decoder inputs (T,B) with scheduled sampling (recur.models.scheduled, the
-- prediction as self.sampling says) from the encoder state h, c (not modified):
-- column b at step t+1 is the model's prediction at step t with probability p, else
-- tgt[t]; step 1 is always bos_id.
function Seq2Seq:_sampled_inputs(tgt, h, c, p)
  if p == 0 then return self:shift(tgt) end
  return scheduled.inputs(self, self:_start_state(h, c), self:shift(tgt), p, self.sampling)
end

-- The decoder inputs scheduled sampling with probability p (default
-- self.sampling_prob) feeds for sources src and targets tgt; p = 0 gives shift(tgt).
function Seq2Seq:decoder_inputs(src, tgt, src_lengths, p)
  local op = "Seq2Seq:decoder_inputs"
  check_batch(op, src, src_lengths, tgt, "tgt")
  p = check_prob(op, "p", p == nil and self.sampling_prob or p)
  local h, c = self:_encode(src, src_lengths)
  return self:_sampled_inputs(tgt, h, c, p)
end

local TRAIN_OPTIONS = {sampling_prob = true}

-- The source, target and source lengths of a batch {x = src (S,B), y = tgt (T,B),
-- lengths = (B) or nil}, as SentenceBatcher serves pairs.
local function batch_parts(op, batch)
  if type(batch) ~= "table" then
    error(string.format("%s: expects a batch {x = src, y = tgt, lengths =}, got %s", op, type(batch)), 3)
  end
  return batch.x, batch.y, batch.lengths
end

-- One training batch {x = src (S,B), y = tgt (T,B), lengths = source lengths (B) or
-- nil}: forward (with scheduled sampling when p > 0), the loss (mean nats per
-- non-padding target), backward. Gradients are added to the module's (zero them
-- first). No state is carried from batch to batch (the second argument is ignored, as
-- the protocol allows). opts: sampling_prob (self.sampling_prob). Returns the loss,
-- nil, the number of scored targets and the decoder inputs that were fed (T,B).
function Seq2Seq:train_step(batch, _, opts)
  local op = "Seq2Seq:train_step"
  local src, tgt, src_lengths = batch_parts(op, batch)
  opts = util.check_opts(op, opts, TRAIN_OPTIONS)
  check_batch(op, src, src_lengths, tgt, "tgt")
  local p = opts.sampling_prob
  p = check_prob(op, "sampling_prob", p == nil and self.sampling_prob or p)
  local h, c = self:_encode(src, src_lengths)
  local dec_in = self:_sampled_inputs(tgt, h, c, p)
  local logits = self:_decode(dec_in, h, c)
  local loss = self.criterion:forward(logits, tgt)
  self:backward(src, self.criterion:backward(logits, tgt))
  return loss, nil, math.tointeger(self.criterion.count), dec_in
end

-- The teacher-forced loss of one batch without backward, the number of targets it
-- counts, and nil (Model:evaluate_batches averages it).
function Seq2Seq:batch_loss(batch)
  local loss, count = self:loss(batch_parts("Seq2Seq:batch_loss", batch))
  return loss, count, nil
end

-- The teacher-forced loss (mean nats per non-padding target) without backward, and
-- the number of targets it counts. Runs in the current mode (call evaluate() first to
-- switch dropout off).
function Seq2Seq:loss(src, tgt, src_lengths)
  local op = "Seq2Seq:loss"
  check_batch(op, src, src_lengths, tgt, "tgt")
  local h, c = self:_encode(src, src_lengths)
  local loss = self.criterion:forward(self:_decode(self:shift(tgt), h, c), tgt)
  return loss, math.tointeger(self.criterion.count)
end

-- A decoder conditioned on one encoded source: step(ids, state) as Seq2Seq:step,
-- starting from (a copy of) the encoder's state when state is nil, which is the
-- interface of recur.beam.search (prefix {bos_id}).
local Conditioned = {}
Conditioned.__index = Conditioned

-- A copy of a state table: columns b..b+n-1 of every tensor (dimension 2), or all.
local function copy_state(state, b, n)
  local copy = {}
  for k, v in pairs(state) do
    if util.is_tensor(v) then copy[k] = (b and v:narrow(2, b, n) or v):clone() else copy[k] = v end
  end
  return copy
end

function Conditioned:step(ids, state)
  if state == nil then state = copy_state(self.start) end
  return self.model:step(ids, state)
end

-- start: the state of one source (Seq2Seq:step's, B = 1), copied at each search's start.
local function conditioned(model, start)
  return setmetatable({model = model, start = start}, Conditioned)
end

-- The beam-searchable decoder for one source src (S,1) (or (S) ids).
function Seq2Seq:decoder_for(src, src_lengths)
  local op = "Seq2Seq:decoder_for"
  if util.is_tensor(src) and src:dim() == 1 then src = src:reshape(src:numel(), 1) end
  check_batch(op, src, src_lengths)
  if src:size(2) ~= 1 then
    error(string.format("%s: expects one source (S,1), got %s (see beam_search for batches)", op,
      util.shape_str(src)), 2)
  end
  return conditioned(self, self:_start_state(self:_encode(src, src_lengths)))
end

local DECODE_OPTIONS = {max_length = true, temperature = true, top_k = true, top_p = true,
                        banned = true, min_length = true, attention = true}

-- Greedy (or sampled) decoding of a batch of sources (S,B) with recur.decode.generate:
-- a Lua array of B id arrays, each ending with eos_id when it was produced within
-- max_length (opts, default 100) tokens. opts also: temperature (0, greedy; above 0
-- samples translations), top_k, top_p, banned (recur.decode.choose), min_length
-- (eos_id banned for the first min_length tokens). A NaN or +inf logit is an error.
-- Runs in the current mode; steps have no dropout.
function Seq2Seq:greedy(src, src_lengths, opts)
  local op = "Seq2Seq:greedy"
  opts = util.check_opts(op, opts, DECODE_OPTIONS)
  local max_length = util.check_positive_int(op, "max_length", opts.max_length or 100)
  check_batch(op, src, src_lengths)
  local record = util.opt_bool(op, opts, "attention", false)
  if record and not self.attention then
    error(op .. ": attention = true needs a model with attention (config.attention is 'none')", 2)
  end
  local state = self:_start_state(self:_encode(src, src_lengths))
  local first = core.full({src:size(2)}, self.bos_id, "int64")
  self._attn_record = record and {} or nil
  local ok, out = pcall(decode.generate, self, state, first, {length = max_length, end_id = self.eos_id,
    min_length = opts.min_length, temperature = opts.temperature or 0, top_k = opts.top_k,
    top_p = opts.top_p, banned = opts.banned})
  local steps = self._attn_record
  self._attn_record = nil
  if not ok then error(out, 0) end
  if not record then return out end
  -- weights[b][i]: the attention over source b's tokens when output token i was chosen
  local weights = {}
  for b, ids in ipairs(out) do
    local len = src_lengths and src_lengths:get(b) or src:size(1)
    weights[b] = {}
    for i = 1, #ids do weights[b][i] = steps[i]:select(1, b):narrow(1, 1, len):totable() end
  end
  return out, weights
end

local BEAM_OPTIONS = {beam_size = true, max_length = true, length_penalty = true, n_best = true,
                      banned = true, min_length = true}

-- Beam search (recur.beam) for every source of a batch (S,B), one after another.
-- opts: beam_size (5), max_length (100), length_penalty (1), n_best, banned, min_length, as
-- recur.beam.search. Returns a Lua array of B id arrays (the best hypothesis of each,
-- with eos_id last when it ended) and, second, the B lists of hypotheses.
function Seq2Seq:beam_search(src, src_lengths, opts)
  local op = "Seq2Seq:beam_search"
  opts = util.check_opts(op, opts, BEAM_OPTIONS)
  local max_length = util.check_positive_int(op, "max_length", opts.max_length or 100)
  check_batch(op, src, src_lengths)
  local state = self:_start_state(self:_encode(src, src_lengths))
  local search_opts = {beam_size = opts.beam_size, length = max_length, end_id = self.eos_id,
                       length_penalty = opts.length_penalty, n_best = opts.n_best,
                       banned = opts.banned, min_length = opts.min_length}
  local best, all = {}, {}
  for b = 1, src:size(2) do
    local hyps = beam.search(conditioned(self, copy_state(state, b, 1)), {self.bos_id}, search_opts)
    best[b], all[b] = hyps[1].ids, hyps
  end
  return best, all
end

-- Bengio et al.'s decay schedules of p (recur.models.scheduled.probability).
function Seq2Seq.sampling_probability(i, opts)
  return scheduled.probability(i, opts, "Seq2Seq.sampling_probability")
end

return Seq2Seq
