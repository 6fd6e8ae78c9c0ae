-- Writes the small synthetic data sets shipped under data/ (data/README.md says what each
-- is for). Run from the repository root:  lua5.4 data/generate.lua [DIR]
-- (DIR defaults to data; spec/data/shipped_spec.lua regenerates into a temporary one
-- and compares with the committed files).
-- The output is the same on every machine: the random numbers come from recur's own
-- seeded splitmix64 (recur.data.shuffle), never from math.random, and every real number
-- is written rounded to one decimal.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local Rng = require("recur.data.shuffle")
local dir = arg[1] or "data"

local function write(name, lines)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  print(string.format("%s: %d lines", path, #lines))
end

-- data/numbers.tsv -------------------------------------------------------------------
-- English number words to digits, 0..9999, British style ("three hundred and twelve")
-- with spaces instead of hyphens ("seventy seven"), so that a word-level source has a
-- vocabulary of 31 words. Shuffled, so that a validation split taken from the end of
-- the file samples the whole range.
local ones = { "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
  "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
  "nineteen" }
local tens = { nil, "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety" }

-- 1..99
local function below_hundred(n)
  if n < 20 then return ones[n] end
  local t, u = n // 10, n % 10
  return u == 0 and tens[t] or (tens[t] .. " " .. ones[u])
end

-- 0..9999
local function words(n)
  if n == 0 then return "zero" end
  local parts = {}
  local th, h, r = n // 1000, (n // 100) % 10, n % 100
  if th > 0 then parts[#parts + 1] = ones[th] .. " thousand" end
  if h > 0 then parts[#parts + 1] = ones[h] .. " hundred" end
  if r > 0 then
    -- "and" before the last two digits whenever something bigger came first
    parts[#parts + 1] = (#parts > 0 and "and " or "") .. below_hundred(r)
  end
  return table.concat(parts, " ")
end

local numbers = {}
for n = 0, 9999 do numbers[#numbers + 1] = words(n) .. "\t" .. n end
Rng.new(12):shuffle(numbers)
write("numbers.tsv", numbers)

-- data/sentiment.tsv -----------------------------------------------------------------
-- Short reviews labelled positive, negative or neutral. The label follows from a few
-- words (the adjective or verb), which a character- or word-level classifier finds in
-- seconds; the templates and nouns are shared between the labels, so that the words
-- around them carry no label.
local rng = Rng.new(2017)
local function pick(list) return list[rng:int(#list)] end

local nouns = { "film", "book", "meal", "hotel", "phone", "concert", "service", "coffee",
  "game", "album", "show", "room", "camera", "pizza", "lesson", "trip", "laptop", "museum" }
local adverbs = { "", "", "really ", "very ", "truly ", "quite ", "so ", "rather " }
local ends = { "", "", ".", "!", " ." }
local lexicon = {
  positive = {
    adj = { "great", "wonderful", "excellent", "lovely", "superb", "fantastic", "delightful",
      "brilliant", "pleasant", "perfect", "charming", "amazing" },
    verb = { "loved", "enjoyed", "liked", "adored" },
    advice = { "would recommend it", "will buy again", "worth every penny", "five stars" },
  },
  negative = {
    adj = { "terrible", "awful", "dreadful", "boring", "horrible", "poor", "disappointing",
      "dull", "broken", "useless", "nasty", "bad" },
    verb = { "hated", "disliked", "regretted", "loathed" },
    advice = { "would not recommend it", "never again", "a waste of money", "one star" },
  },
  neutral = {
    adj = { "average", "ordinary", "standard", "typical", "acceptable", "unremarkable",
      "as described", "about what i expected" },
    verb = { "bought", "tried", "ordered", "returned" },
    advice = { "it arrived on monday", "it came in a box", "it took an hour", "no opinion yet" },
  },
}
local templates = {
  function(w) return "the " .. pick(nouns) .. " was " .. pick(adverbs) .. pick(w.adj) end,
  function(w) return "what a " .. pick(w.adj) .. " " .. pick(nouns) end,
  function(w) return "i " .. pick(w.verb) .. " the " .. pick(nouns) end,
  function(w) return "i " .. pick(w.verb) .. " this " .. pick(nouns) .. ", " .. pick(w.advice) end,
  function(w) return "honestly the " .. pick(nouns) .. " is " .. pick(adverbs) .. pick(w.adj) end,
  function(w) return "a " .. pick(adverbs) .. pick(w.adj) .. " " .. pick(nouns) .. ", " .. pick(w.advice) end,
  function(w) return "my friends " .. pick(w.verb) .. " the " .. pick(nouns) .. " and it was " .. pick(w.adj) end,
}

local per_label = 600
local reviews, seen = {}, {}
for _, label in ipairs({ "positive", "negative", "neutral" }) do
  local made = 0
  while made < per_label do
    local s = pick(templates)(lexicon[label]) .. pick(ends)
    -- no sentence twice, so that a validation split never holds a copy of a training line
    if not seen[s] then
      seen[s] = true
      reviews[#reviews + 1] = label .. "\t" .. s
      made = made + 1
    end
  end
end
rng:shuffle(reviews)
write("sentiment.tsv", reviews)

-- data/temperature.csv ---------------------------------------------------------------
-- Two years of readings every three hours (8 a day, as synoptic weather stations
-- report), from 1 January 00:00: temperature in degrees Celsius with a yearly season
-- (coldest in mid-January), a daily cycle (warmest at 15:00, wider in summer) and
-- weather: an AR(1) anomaly that persists for days, plus measurement noise. Relative
-- humidity falls as the day warms and as the anomaly rises.
rng = Rng.new(1987)
local function gauss()
  -- Box-Muller; 1 - u keeps the logarithm finite
  local u, v = 1 - rng:uniform(), rng:uniform()
  return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * v)
end

local per_day, days = 8, 730
local rows = { "temp_c,humidity" }
local anomaly = 0
for i = 0, per_day * days - 1 do
  local day, hour = i / per_day, (i % per_day) * 24 / per_day
  local season = -math.cos(2 * math.pi * (day - 15) / 365)        -- -1 mid-January, +1 mid-July
  local daily = (3 + 2 * (season + 1) / 2) * math.cos(2 * math.pi * (hour - 15) / 24)
  anomaly = 0.97 * anomaly + 0.5 * gauss()
  local temp = 10 + 9 * season + daily + anomaly + 0.3 * gauss()
  local humidity = 75 - 10 * season - 3 * daily - 2 * anomaly + 3 * gauss()
  humidity = math.max(15, math.min(100, humidity))
  rows[#rows + 1] = string.format("%.1f,%.1f", temp, humidity)
end
write("temperature.csv", rows)
