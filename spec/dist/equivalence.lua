-- Trains a small model `iters` iterations with global batch B and writes rank 0's
-- parameters, one number a line (%.9g), to `out`, then the validation losses the
-- Trainer logged, one a line after a line "val". Under mpirun (size > 1) the Trainer
-- trains data-parallel with recur.dist; alone it trains one process on the whole batch.
-- spec/dist_spec.lua compares the two files.
--   lua5.4 spec/dist/equivalence.lua OUT B ITERS [dist|single|fail|hang] [lm|classify|seq2seq|forecast|generator]
-- The padded kinds (classify, seq2seq) have sequences of many lengths, so the ranks'
-- shares of a batch's targets differ, and a last batch of 3 sequences.
local recur = require "recur"
local out, B, iters = arg[1], math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3]))
local mode, kind = arg[4] or "dist", arg[5] or "lm"

local dist
if mode ~= "single" then
  dist = require "recur.dist"
  dist.init()
  if os.getenv("RECUR_DIST_TIMEOUT") then dist.set_timeout(tonumber(os.getenv("RECUR_DIST_TIMEOUT"))) end
end
if mode == "fail" and dist.rank() == 1 then error("rank 1 fails on purpose") end

recur.manual_seed(7)
local models, data = recur.models, recur.data

-- Sequences of lengths 1..7 over ids 4..V, from a fixed rule.
local function sequences(n, V, salt)
  local seqs = {}
  for i = 1, n do
    local s = {}
    for t = 1, (i * 5 + salt) % 7 + 1 do s[t] = (i * 3 + t * t + salt) % (V - 3) + 4 end
    seqs[i] = s
  end
  return seqs
end

local model, batcher, val
if kind == "lm" then
  local V = 11
  local ids = {}
  for i = 1, 600 do ids[i] = (i * 7 + i // 13) % V + 1 end
  model = models.LanguageModel{vocab_size = V, embed = 5, hidden = 8, layers = 2, dropout = 0.3}
  batcher = data.LMBatcher.new(ids, {batch_size = B, seq_length = 5})
  val = data.LMBatcher.new({table.unpack(ids, 1, 200)}, {batch_size = B, seq_length = 5})
elseif kind == "forecast" then
  local xs = {}
  for i = 1, 400 do xs[i] = {math.sin(i / 5), math.cos(i / 7)} end
  model = models.Forecaster{input_size = 2, hidden = 8, layers = 1}
  batcher = data.series.Batcher.new(recur.tensor(xs), {batch_size = B, seq_length = 6})
  val = data.series.Batcher.new(recur.tensor({table.unpack(xs, 1, 150)}), {batch_size = B, seq_length = 6})
elseif kind == "classify" then
  local seqs, labels = sequences(27, 9, 1), {}
  for i = 1, #seqs do labels[i] = #seqs[i] % 3 + 1 end
  model = models.SequenceClassifier{vocab_size = 9, num_classes = 3, embed = 4, hidden = 8, bidirectional = true, dropout = 0.3}
  batcher = data.SentenceBatcher.new(seqs, {batch_size = B, labels = labels, seed = 3})
  val = data.SentenceBatcher.new(seqs, {batch_size = B, labels = labels, seed = 4, shuffle = false})
elseif kind == "seq2seq" then
  local src, tgt = sequences(27, 9, 2), {}
  for i = 1, #src do
    local t = {}
    for k = #src[i], 1, -1 do t[#t + 1] = src[i][k] end
    t[#t + 1] = 3   -- eos
    tgt[i] = t
  end
  model = models.Seq2Seq{src_vocab_size = 9, tgt_vocab_size = 9, embed = 4, hidden = 8, layers = 2, dropout = 0.3,
                         attention = "luong-general", bidirectional = true}
  batcher = data.SentenceBatcher.new(src, {batch_size = B, targets = tgt, seed = 3})
  val = data.SentenceBatcher.new(src, {batch_size = B, targets = tgt, seed = 4, shuffle = false})
elseif kind == "generator" then
  -- one-to-many: z (B,3) to the sequence of its nonzero positions; batches of B drawn
  -- from the generator (recur.data.Drawn), so every rank draws the same global batch
  local function draw(n)
    local z, T = recur.zeros(n, 3), 4
    local y = recur.full({T, n}, 1, "int64")
    for b = 1, n do
      local t = 0
      for j = 1, 3 do
        if recur.rand(1):item() < 0.5 then
          z:set(b, j, 1)
          t = t + 1
          y:set(t, b, j + 3)
        end
      end
      y:set(t + 1, b, 3)
    end
    return {z = z, y = y}
  end
  model = models.ConditionedGenerator{cond_size = 3, vocab_size = 7, start_id = 2, end_id = 3, pad_id = 1,
                                      embed = 4, hidden = 8, dropout = 0.3}
  batcher = data.Drawn.new(function() return draw(B) end, {per_epoch = 4})
  local fixed = {draw(B), draw(2)}
  local k = 0
  val = {next_batch = function() k = k + 1; return fixed[k] end, reset = function() k = 0 end,
         batches = function(self) return function() return self:next_batch() end end,
         state = function() return {k = k} end, set_state = function(_, s) k = s.k end}
else
  error("equivalence: unknown kind " .. tostring(kind))
end

if dist and dist.rank() ~= 0 then
  -- other ranks start elsewhere: the Trainer must hand them rank 0's weights
  for _, p in ipairs((model:parameters())) do p:fill_(0.5) end
end
if mode == "hang" and dist.rank() == 1 then
  -- a rank that never answers (a stuck host), while the others wait in a collective
  local t = os.time()
  while os.time() - t < 60 do end
end
local vals = {}
local trainer = recur.train.Trainer{
  model = model, optimizer = recur.optim.Adam(model, {lr = 1e-2}), clip = 1,
  batcher = batcher, val_batcher = val, max_epochs = 100,
  max_iters = iters, eval_every = 3, progress = false, dist = dist,
  on_eval = function(record) vals[#vals + 1] = record.val_loss end,
}
trainer:run()
if not dist or dist.rank() == 0 then
  local f = assert(io.open(out, "w"))
  for _, p in ipairs((model:parameters())) do
    for _, v in ipairs(p:reshape({-1}):totable()) do f:write(string.format("%.9g\n", v)) end
  end
  f:write("val\n")
  for _, v in ipairs(vals) do f:write(string.format("%.9g\n", v)) end
  assert(f:close())
end
if dist then dist.finalize() end
