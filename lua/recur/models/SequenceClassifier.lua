-- SequenceClassifier: many-to-one classification of variable-length sequences, the
-- model a PyTorch user builds from nn.Embedding, nn.LSTM over a packed batch and an
-- nn.Linear on h_n.
--
--   ids (T,B) int64 -> embedding: Embedding(V,E) -> (T,B,E)      (vocab_size given)
--   or features (T,B,D) float                                     (input_size given)
--     -> rnn: LSTM | GRU | RNN, L layers of H, optionally bidirectional, with
--        `lengths` (B) int64: sequence b is steps 1..L_b, the rest is padding
--     -> representation r (B, dirs*H): the top layer's final state, taken at each
--        sequence's own last step; bidirectional: [forward state after step L_b,
--        reverse state after step 1], the last layer's rows of PyTorch's h_n
--     -> dropout -> fc: Linear(dirs*H, C) -> logits (B,C)
--
-- Padding never reaches the logits: the stack stops each sequence at its length.
-- The representation uses h only (an LSTM's cell state is not read), so backward
-- sends the logits' gradient into the stack as ghn alone, zero for the outputs y and
-- for cn.
--
-- Parameter names follow a PyTorch classifier: embedding.weight, rnn.weight_ih_l0,
-- rnn.weight_hh_l0_reverse, ..., fc.weight, fc.bias.
-- Memory between forward and backward: the embedding output (T*B*E), the stack's
-- saved activations (about 6*L*dirs*T*B*H floats for the LSTM) and outputs, and the
-- representation (B*dirs*H). Backward also keeps a zero (T,B,dirs*H) gradient buffer
-- for the unused outputs. The logits are the head's buffer: the next forward with the
-- same batch size overwrites them, so clone them to keep them.
local core = require "recur.core"
local nn = require "recur.nn"
local util = require "recur.nn.util"
local Model = require "recur.models.Model"

local SequenceClassifier = util.class("SequenceClassifier", Model)
-- one label per sequence: exp(loss) is no perplexity of a text
SequenceClassifier.perplexity = false
SequenceClassifier.kind = "classify"

local NAME = "SequenceClassifier"
local DEFAULTS = {embed = 32, hidden = 64, layers = 1, cell = "lstm", dropout = 0, bidirectional = false}
local KNOWN = {vocab_size = true, input_size = true, num_classes = true, embed = true, hidden = true,
               layers = true, cell = true, dropout = true, bidirectional = true}

-- config: num_classes (C, required); exactly one of vocab_size (token ids in 1..V) and
-- input_size (real features of size D); embed (E, ids only), hidden (H), layers (L),
-- cell (nn.cells: "lstm", "gru", ...), dropout (between the layers and on the
-- representation, in training mode), bidirectional.
function SequenceClassifier:__init(config)
  Model.__init(self)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  if (c.vocab_size == nil) == (c.input_size == nil) then
    error(NAME .. ": give exactly one of vocab_size (token ids) and input_size (real features)", 2)
  end
  util.check_positive_int(NAME, "num_classes", c.num_classes)
  util.check_positive_int(NAME, "hidden", c.hidden)
  util.check_positive_int(NAME, "layers", c.layers)
  local stack = nn.stack_class(NAME, c.cell)
  util.opt_number(NAME, c, "dropout", nil, 0, 1, true)
  util.opt_bool(NAME, c, "bidirectional", false)
  if c.input_size ~= nil and config.embed ~= nil then
    error(NAME .. ": embed applies to token ids (vocab_size), not to real features (input_size)", 2)
  end
  -- model.config must build the same model again: no default embed beside input_size
  if c.input_size ~= nil then c.embed = nil end
  self.config = c
  local D
  if c.vocab_size ~= nil then
    util.check_positive_int(NAME, "vocab_size", c.vocab_size)
    D = util.check_positive_int(NAME, "embed", c.embed)
    self.embedding = self:register_module("embedding", nn.Embedding(c.vocab_size, D))
  else
    D = util.check_positive_int(NAME, "input_size", c.input_size)
  end
  self.dirs = c.bidirectional and 2 or 1
  -- a single layer has nothing between layers to drop (the stack refuses the option)
  self.rnn = self:register_module("rnn", stack(D, c.hidden, {num_layers = c.layers,
    bidirectional = c.bidirectional, dropout = c.layers > 1 and c.dropout or 0}))
  self.drop = self:register_module("drop", nn.Dropout(c.dropout))
  self.fc = self:register_module("fc", nn.Linear(self.dirs * c.hidden, c.num_classes))
  self.criterion = nn.CrossEntropy()
end

-- name -> shape of the parameters SequenceClassifier(config) registers, computed without building
-- the model (config's keys and the sizes it reads are checked): what recur.checkpoint
-- compares a file's tensors with before it allocates anything.
function SequenceClassifier.parameter_shapes(config)
  local c = Model.configure(NAME, config, DEFAULTS, KNOWN)
  local C = util.check_positive_int(NAME, "num_classes", c.num_classes)
  local H = util.check_positive_int(NAME, "hidden", c.hidden)
  local L = util.check_positive_int(NAME, "layers", c.layers)
  local dirs = util.opt_bool(NAME, c, "bidirectional", false) and 2 or 1
  local shapes = {["fc.weight"] = {C, dirs * H}, ["fc.bias"] = {C}}
  local D
  if c.vocab_size ~= nil then
    D = util.check_positive_int(NAME, "embed", c.embed)
    shapes["embedding.weight"] = {util.check_positive_int(NAME, "vocab_size", c.vocab_size), D}
  else
    D = util.check_positive_int(NAME, "input_size", c.input_size)
  end
  return nn.stack_shapes(NAME, shapes, "rnn.", c.cell, D, H, L, dirs == 2)
end

-- The input as (T,B,D) for the stack, checked; the embedding runs for ids.
function SequenceClassifier:_embed(x)
  if self.embedding then
    if not util.is_tensor(x) or x:dtype() ~= "int64" or x:dim() ~= 2 then
      error(NAME .. ": forward expects token ids as an int64 (T,B) tensor, got " ..
        (util.is_tensor(x) and (x:dtype() .. " " .. util.shape_str(x)) or type(x)), 3)
    end
    return self.embedding:forward(x)
  end
  if not util.is_tensor(x) or x:dtype() == "int64" or x:dim() ~= 3 or x:size(3) ~= self.config.input_size then
    error(string.format("%s: forward expects features as a float (T,B,%d) tensor, got %s", NAME,
      self.config.input_size, util.is_tensor(x) and (x:dtype() .. " " .. util.shape_str(x)) or type(x)), 3)
  end
  return x
end

local function check_lengths(lengths, T, B)
  if lengths == nil then return nil end
  if not util.is_tensor(lengths) or lengths:dtype() ~= "int64" or lengths:dim() ~= 1 or lengths:numel() ~= B then
    error(string.format("%s: lengths must be an int64 tensor of %d lengths (one per sequence), got %s", NAME, B,
      util.is_tensor(lengths) and (lengths:dtype() .. " " .. util.shape_str(lengths)) or type(lengths)), 3)
  end
  local lo, hi = lengths:min(), lengths:max()
  if lo < 1 or hi > T then
    error(string.format("%s: lengths must lie in 1..%d (the padded length T), got %d..%d", NAME, T, lo, hi), 3)
  end
  return lengths
end

-- Logits (B,C) for x (ids (T,B) or features (T,B,D)) and optional lengths (B).
function SequenceClassifier:forward(x, lengths)
  local input = self:_embed(x)
  local T, B = input:size(1), input:size(2)
  lengths = check_lengths(lengths, T, B)
  local H, L, dirs = self.config.hidden, self.config.layers, self.dirs
  local _, hn = self.rnn:forward(input, nil, nil, lengths)
  -- the stack already stops each direction at the sequence's own end, so the top
  -- layer's rows of hn are the representation
  local rep = util.buffer(self, "_rep", self.rnn.dtype, {B, dirs * H})
  for d = 1, dirs do
    rep:narrow(2, (d - 1) * H + 1, H):copy_(hn:select(1, (L - 1) * dirs + d))
  end
  self._input, self._rep, self._T = input, rep, T
  self._rep_d = self.drop:forward(rep)
  self.logits = self.fc:forward(self._rep_d)
  return self.logits
end

-- Adds the parameter gradients of the last forward given the logits' gradient (B,C).
-- Returns the gradient of the features (T,B,D), or nil for token ids.
function SequenceClassifier:backward(x, glogits)
  if not self._rep then error(NAME .. ": backward before forward", 2) end
  local H, L, dirs = self.config.hidden, self.config.layers, self.dirs
  local B, T = self._rep:size(1), self._T
  local grep = self.drop:backward(self._rep, self.fc:backward(self._rep_d, glogits))
  local ghn = core.zeros({L * dirs, B, H}, self.rnn.dtype)
  for d = 1, dirs do
    ghn:select(1, (L - 1) * dirs + d):copy_(grep:narrow(2, (d - 1) * H + 1, H))
  end
  -- the outputs y feed nothing: their gradient is zero (a buffer zeroed once per shape)
  local gy = self._gy
  if not (gy and gy:dtype() == self.rnn.dtype and gy:size(1) == T and gy:size(2) == B) then
    gy = core.zeros({T, B, dirs * H}, self.rnn.dtype)
    self._gy = gy
  end
  local ginput = self.rnn:backward(self._input, gy, ghn, nil)
  if self.embedding then
    self.embedding:backward(x, ginput)
    return nil
  end
  return ginput
end

-- The targets of a batch: its labels, (B) int64 class ids in 1..C.
local function labels_of(op, batch)
  if type(batch) ~= "table" or not util.is_tensor(batch.labels) then
    error(string.format("%s: expects a batch {x =, lengths =, labels =} with labels, got %s", op,
      type(batch) == "table" and "no labels" or type(batch)), 3)
  end
  return batch.labels
end

-- One training batch {x = ids (T,B) or features (T,B,D), lengths = (B) or nil, labels =
-- (B) class ids}: forward, mean cross-entropy over the batch, backward (gradients are
-- added: zero them first). Returns the loss, nil (no state is carried from batch to
-- batch) and the number of sequences.
function SequenceClassifier:train_step(batch)
  local labels = labels_of(NAME .. ":train_step", batch)
  local logits = self:forward(batch.x, batch.lengths)
  local loss = self.criterion:forward(logits, labels)
  self:backward(batch.x, self.criterion:backward(logits, labels))
  return loss, nil, labels:numel()
end

-- The loss of one batch without backward (Model:evaluate_batches averages it).
function SequenceClassifier:batch_loss(batch)
  local labels = labels_of(NAME .. ":batch_loss", batch)
  return self.criterion:forward(self:forward(batch.x, batch.lengths), labels), labels:numel(), nil
end

-- The most likely class (B) int64 of every sequence, in evaluation mode (no dropout);
-- the module's mode is restored.
function SequenceClassifier:predict(x, lengths)
  local was_training = self.training
  self:evaluate()
  local ok, logits = pcall(self.forward, self, x, lengths)
  self:train(was_training)
  if not ok then error(logits, 0) end
  return logits:argmax(2)
end

-- The fraction of sequences whose predicted class equals targets (B), and the count
-- of correct ones.
function SequenceClassifier:accuracy(x, targets, lengths)
  local predicted = self:predict(x, lengths)
  -- not a tail call: accuracy_of's errors name this method's caller
  local fraction, correct = SequenceClassifier.accuracy_of(predicted, targets)
  return fraction, correct
end

-- The fraction of equal entries of two int64 (B) tensors of class ids, and their count.
function SequenceClassifier.accuracy_of(predicted, targets)
  if not util.is_tensor(targets) or targets:dtype() ~= "int64" or targets:numel() ~= predicted:numel() then
    error(string.format("%s: accuracy needs int64 targets with one class per sequence (%d)", NAME,
      predicted:numel()), 3)
  end
  local p, t = predicted:reshape(-1):totable(), targets:reshape(-1):totable()
  local correct = 0
  for i = 1, #p do
    if p[i] == t[i] then correct = correct + 1 end
  end
  return correct / #p, correct
end

return SequenceClassifier
