-- Many-to-one classification of variable-length sequences with
-- recur.models.SequenceClassifier: the parity of a bit string (is the number of 1s
-- odd?). Every bit matters to the answer until the last one, so the network must
-- carry one bit of memory across the whole string, and every batch mixes lengths:
-- strings are padded to 30 and `lengths` tells the model where each one ends.
-- Training draws lengths 1..30: the short strings are the curriculum that lets the
-- gradient find parity at all (trained on long strings only, the loss stays at
-- log 2). The test set holds strings of length 5..30 only.
-- Prints the test accuracy against the majority-class baseline.
--
-- STEPS changes the training length (default 3000).
--
--   lua5.4 examples/classify.lua        (after make, from any directory)
-- From a checkout its lua/ and build/ come first; copied elsewhere, the installed recur
-- (examples/checkout.lua says why this is not a require).
local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
if checkout then checkout() end
local recur = require "recur"
local SequenceClassifier = require "recur.models.SequenceClassifier"

local SEED = tonumber(os.getenv("SEED") or "") or 1
local STEPS, BATCH, MAX_LEN, TEST = tonumber(os.getenv("STEPS") or "") or 3000, 32, 30, 2000
local PAD = 3                                  -- ids: 1 is the bit 0, 2 the bit 1, 3 pads

-- B random bit strings as ids (MAX_LEN,B), their lengths (B) in lo..MAX_LEN and
-- their parity (B) as class ids: 1 even, 2 odd.
local function batch(B, lo)
  local x = recur.full({MAX_LEN, B}, PAD, "int64")
  local lengths, labels = recur.zeros({B}, "int64"), recur.zeros({B}, "int64")
  for b = 1, B do
    local n, parity = recur.random_integer(lo, MAX_LEN), 0
    for t = 1, n do
      local bit = recur.random_integer(0, 1)
      x:set(t, b, bit + 1)
      parity = parity ~ bit
    end
    lengths:set(b, n)
    labels:set(b, parity + 1)
  end
  return x, lengths, labels
end

recur.manual_seed(SEED)
local model = SequenceClassifier{vocab_size = 3, num_classes = 2, embed = 4, hidden = 32, cell = "gru"}
local optimizer = recur.optim.Adam(model, {lr = 0.02})
local clock, wall = os.clock(), os.time()
-- fresh random strings every step: an epoch is 500 of them
local batcher = recur.data.Drawn.new(function()
  local x, lengths, labels = batch(BATCH, 1)
  return {x = x, lengths = lengths, labels = labels}
end, {per_epoch = 500})
recur.train.Trainer{
  model = model, optimizer = optimizer, batcher = batcher, clip = 5, max_iters = STEPS, max_epochs = STEPS,
  eval_every = 500, progress = false,
  on_eval = function(r) print(string.format("step %4d  loss %.3g", r.iter, r.train_loss)) end,
}:run()

local x, lengths, labels = batch(TEST, 5)
local accuracy = model:accuracy(x, labels, lengths)
-- the majority-class baseline answers the more frequent test label every time
local odd = 0
for _, y in ipairs(labels:totable()) do if y == 2 then odd = odd + 1 end end
local baseline = math.max(odd, TEST - odd) / TEST

local bits = {}
for t = 1, lengths:get(1) do bits[t] = x:get(t, 1) - 1 end
print(string.format("%s -> %s", table.concat(bits), ({"even", "odd"})[model:predict(x, lengths):get(1)]))
print(string.format("test accuracy %.3f (majority-class baseline %.3f) on %d strings of length 5..%d",
  accuracy, baseline, TEST, MAX_LEN))
print(string.format("%d steps of %d, %.1f s CPU, about %d s wall", STEPS, BATCH, os.clock() - clock, os.time() - wall))
