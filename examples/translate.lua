-- A toy translation with recur.models.Seq2Seq: English number words to digits,
-- "three hundred and twelve" -> "3 1 2", a source of 1 to 5 words and a target of 1
-- to 3 digits. An encoder-decoder LSTM learns it from 80% of 0..999 with scheduled
-- sampling, and is scored by exact match on the 200 numbers it never saw, decoded
-- greedily and by beam search. About 2 s on one core; RECUR_TRANSLATE_EPOCHS changes the
-- training length (default 20):
--
--   lua5.4 examples/translate.lua        (after make, from any directory)
-- From a checkout its lua/ and build/ come first; copied elsewhere, the installed recur
-- (examples/checkout.lua says why this is not a require).
local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
if checkout then checkout() end
local recur = require "recur"
recur.set_num_threads(1)   -- batches of 32 by 128 units: one thread beats two waiting on each other
local Seq2Seq = require "recur.models.Seq2Seq"

local EPOCHS = tonumber(os.getenv("RECUR_TRANSLATE_EPOCHS") or "") or 20

local ONES = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
              "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
local TENS = {nil, "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

local function words(n)
  if n == 0 then return {"zero"} end
  local out = {}
  if n >= 100 then
    out[#out + 1] = ONES[n // 100]
    out[#out + 1] = "hundred"
    n = n % 100
    if n > 0 then out[#out + 1] = "and" end
  end
  if n >= 20 then
    out[#out + 1] = TENS[n // 10]
    n = n % 10
  end
  if n > 0 then out[#out + 1] = ONES[n] end
  return out
end

-- Vocabularies: the source pads with <pad> (never read: the encoder takes lengths),
-- the target has Seq2Seq's default ids pad 1, bos 2, eos 3, then the digits.
local src_tokens = {"<pad>", "zero", "hundred", "and"}
for _, w in ipairs(ONES) do src_tokens[#src_tokens + 1] = w end
for i = 2, 9 do src_tokens[#src_tokens + 1] = TENS[i] end
local src_vocab = recur.data.Vocab.new(src_tokens)
local tgt_vocab = recur.data.Vocab.new({"<pad>", "<s>", "</s>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
local EOS = tgt_vocab:id("</s>")

local function digits(n)
  local ids = {}
  for ch in tostring(n):gmatch(".") do ids[#ids + 1] = tgt_vocab:id(ch) end
  ids[#ids + 1] = EOS
  return ids
end

-- 800 numbers to learn from, 200 held out
recur.manual_seed(2024)
local numbers = {}
for n = 0, 999 do numbers[n + 1] = n end
for i = #numbers, 2, -1 do
  local j = recur.random_integer(1, i)
  numbers[i], numbers[j] = numbers[j], numbers[i]
end
local function pairs_of(from, to)
  local src, tgt, n = {}, {}, {}
  for i = from, to do
    src[#src + 1] = src_vocab:encode(words(numbers[i]))
    tgt[#tgt + 1] = digits(numbers[i])
    n[#n + 1] = numbers[i]
  end
  return src, tgt, n
end
local train_src, train_tgt = pairs_of(1, 800)
local test_src, test_tgt, test_n = pairs_of(801, 1000)

local batcher = recur.data.SentenceBatcher.new(train_src, {batch_size = 32, targets = train_tgt})
local test = recur.data.SentenceBatcher.new(test_src, {batch_size = #test_src, targets = test_tgt,
                                                         sort = false, shuffle = false}):get_batch(1)

local model = Seq2Seq{src_vocab_size = src_vocab:size(), tgt_vocab_size = tgt_vocab:size(),
                                   embed = 32, hidden = 128, layers = 1, cell = "lstm"}
local opt = recur.optim.Adam(model, {lr = 3e-3})

-- Exact-match accuracy of decoded id arrays against the held-out targets.
local function accuracy(decoded)
  local right = 0
  for b, ids in ipairs(decoded) do
    if table.concat(ids, " ") == table.concat(test_tgt[test.indices[b]], " ") then right = right + 1 end
  end
  return right / #decoded
end

local start = recur.now()
recur.train.Trainer{
  model = model, optimizer = opt, batcher = batcher, clip = 5, max_epochs = EPOCHS,
  eval_every = 5 * batcher:num_batches(), progress = false,
  -- the paper's inverse-sigmoid decay of teacher forcing: p from 0.09 up to 0.4
  on_epoch = function(epoch)
    model.sampling_prob = Seq2Seq.sampling_probability(epoch - 1, {schedule = "inverse_sigmoid", k = 10})
  end,
  on_eval = function(r)
    model:evaluate()
    local held_out = model:loss(test.x, test.y, test.lengths)
    local exact = accuracy(model:greedy(test.x, test.lengths, {max_length = 5}))
    model:train()
    print(string.format("epoch %3d  %5.1fs  p %.2f  train loss %.4f  held-out loss %.4f  greedy exact %.1f%%",
      r.epoch, recur.now() - start, model.sampling_prob, r.train_loss, held_out, 100 * exact))
  end,
}:run()

model:evaluate()
local greedy = model:greedy(test.x, test.lengths, {max_length = 5})
local beamed = model:beam_search(test.x, test.lengths, {beam_size = 4, max_length = 5})
print(string.format("held-out exact match after %d epochs (%.0f s): greedy %.1f%%, beam 4 %.1f%%",
  EPOCHS, recur.now() - start, 100 * accuracy(greedy), 100 * accuracy(beamed)))
for b = 1, 5 do
  local out = {}
  for _, id in ipairs(beamed[b]) do
    if id ~= EOS then out[#out + 1] = tgt_vocab:token(id) end
  end
  print(string.format("  %-32s -> %s", table.concat(words(test_n[test.indices[b]]), " "), table.concat(out)))
end
