-- One-to-many generation with recur.models.ConditionedGenerator: a number n in 0..999,
-- given as a vector of its three digits (one-hot hundreds, tens, units: 30 values),
-- is spelled out in English words ("three hundred forty two"). The vector sets the
-- decoder's initial state; nothing else tells it which number to spell.
-- A tenth of the numbers are held out: spelling them needs the digits composed
-- ("forty" from the tens, "two" from the units), not a memorised sequence.
-- Prints the exact-match accuracy of greedy and beam-search outputs on the held-out
-- numbers.
--
-- STEPS changes the training length (default 800).
--
--   lua5.4 examples/one_to_many.lua        (after make, from any directory)
-- From a checkout its lua/ and build/ come first; copied elsewhere, the installed recur
-- (examples/checkout.lua says why this is not a require).
local checkout = loadfile((arg[0]:match("^(.*)/") or ".") .. "/checkout.lua")
if checkout then checkout() end
local recur = require "recur"
local ConditionedGenerator = require "recur.models.ConditionedGenerator"

local SEED = tonumber(os.getenv("SEED") or "") or 1
local STEPS, BATCH, BEAM = tonumber(os.getenv("STEPS") or "") or 800, 64, 4

local UNITS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
               "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
local TENS = {"ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

-- the words of n, as a list
local function spell(n)
  if n == 0 then return {"zero"} end
  local words = {}
  if n >= 100 then words[1], words[2] = UNITS[n // 100], "hundred" end
  local r = n % 100
  if r >= 20 then
    words[#words + 1] = TENS[r // 10]
    if r % 10 > 0 then words[#words + 1] = UNITS[r % 10] end
  elseif r > 0 then
    words[#words + 1] = UNITS[r]
  end
  return words
end

-- ids: <pad> 1, <s> 2, </s> 3, then the words
local tokens = {"<pad>", "<s>", "</s>", "zero", "hundred"}
for _, w in ipairs(UNITS) do tokens[#tokens + 1] = w end
for i = 2, #TENS do tokens[#tokens + 1] = TENS[i] end
local vocab = recur.data.Vocab.new(tokens)
local PAD, START, END = 1, 2, 3

local function digits_vector(numbers)
  local z = recur.zeros(#numbers, 30)
  for b, n in ipairs(numbers) do
    z:set(b, n // 100 + 1, 1)
    z:set(b, 10 + (n // 10) % 10 + 1, 1)
    z:set(b, 20 + n % 10 + 1, 1)
  end
  return z
end

-- targets (T,B): each number's words and </s>, padded
local function targets_for(numbers)
  local longest = 0
  for _, n in ipairs(numbers) do longest = math.max(longest, #spell(n) + 1) end
  local t = recur.full({longest, #numbers}, PAD, "int64")
  for b, n in ipairs(numbers) do
    local words = spell(n)
    for i, w in ipairs(words) do t:set(i, b, vocab:id(w)) end
    t:set(#words + 1, b, END)
  end
  return t
end

-- generated ids as text, without the end marker
local function text_of(ids)
  local words = {}
  for _, id in ipairs(ids) do
    if id == END then break end
    words[#words + 1] = vocab:token(id)
  end
  return table.concat(words, " ")
end

-- a seeded split: every tenth number of a shuffled order is held out
recur.manual_seed(SEED)
local order = {}
for n = 0, 999 do order[n + 1] = n end
for i = #order, 2, -1 do
  local j = recur.random_integer(1, i)
  order[i], order[j] = order[j], order[i]
end
local train, test = {}, {}
for i, n in ipairs(order) do
  if i % 10 == 0 then test[#test + 1] = n else train[#train + 1] = n end
end

local model = ConditionedGenerator{cond_size = 30, vocab_size = #tokens, start_id = START, end_id = END,
                                   pad_id = PAD, embed = 16, hidden = 64, cell = "lstm"}
local optimizer = recur.optim.Adam(model, {lr = 3e-3})
local clock, wall = os.clock(), os.time()
local batcher = recur.data.Drawn.new(function()
  local numbers = {}
  for b = 1, BATCH do numbers[b] = train[recur.random_integer(1, #train)] end
  return {z = digits_vector(numbers), y = targets_for(numbers)}
end, {per_epoch = 250})
recur.train.Trainer{
  model = model, optimizer = optimizer, batcher = batcher, clip = 5, max_iters = STEPS, max_epochs = STEPS,
  eval_every = 250, progress = false,
  on_eval = function(r) print(string.format("step %4d  loss %.3g", r.iter, r.train_loss)) end,
}:run()
local train_seconds = os.clock() - clock

model:evaluate()
local greedy = model:generate(digits_vector(test), {length = 10})
local greedy_right, beam_right = 0, 0
for i, n in ipairs(test) do
  local z = digits_vector({n})
  local best = model:beam_search(z, {beam_size = BEAM, length = 10})[1]
  local want = table.concat(spell(n), " ")
  if text_of(greedy[i]) == want then greedy_right = greedy_right + 1 end
  if text_of(best.ids) == want then beam_right = beam_right + 1 end
  if i <= 5 then
    print(string.format("%3d -> greedy %-26s beam %s", n, "'" .. text_of(greedy[i]) .. "'",
      "'" .. text_of(best.ids) .. "'"))
  end
end
print(string.format("exact match on %d held-out numbers: greedy %.3f, beam (size %d) %.3f",
  #test, greedy_right / #test, BEAM, beam_right / #test))
print(string.format("%d steps of %d: %.1f s CPU training, %.1f s CPU in all, about %d s wall",
  STEPS, BATCH, train_seconds, os.clock() - clock, os.time() - wall))
