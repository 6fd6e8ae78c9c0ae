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

-- 1..999: "three hundred and twelve"
local function below_thousand(n)
  local h, r = n // 100, n % 100
  if h == 0 then return below_hundred(r) end
  return ones[h] .. " hundred" .. (r > 0 and " and " .. below_hundred(r) or "")
end

-- 0..999,999,999, in groups of three digits: "three hundred million forty two thousand
-- and seven". "and" before the last two digits whenever something bigger came first.
local function words(n)
  if n == 0 then return "zero" end
  local parts = {}
  local mi, th, u = n // 1000000, (n // 1000) % 1000, n % 1000
  if mi > 0 then parts[#parts + 1] = below_thousand(mi) .. " million" end
  if th > 0 then parts[#parts + 1] = below_thousand(th) .. " thousand" end
  if u > 0 then
    parts[#parts + 1] = (#parts > 0 and u < 100 and "and " or "") .. below_thousand(u)
  end
  return table.concat(parts, " ")
end

local numbers = {}
for n = 0, 9999 do numbers[#numbers + 1] = words(n) .. "\t" .. n end
Rng.new(12):shuffle(numbers)
write("numbers.tsv", numbers)

-- data/numbers_long.tsv --------------------------------------------------------------
-- The same words for numbers of 1 to 9 digits (below 10^9, with "million"): sources of
-- 1 to about 20 words, for measuring how a translator holds up as they grow. The digit
-- count is uniform (so short and long sources are equally common) and each digit after
-- the first is 0 one time in three besides its uniform draw, so that groups and
-- hundreds go missing ("five million and forty two") as often as in real text. No
-- number twice: the 10 one-digit and 90 two-digit numbers run out, longer ones fill in.
local long_rng = Rng.new(1000000007)
local long, seen_n = {}, {}
while #long < 20000 do
  local digits = long_rng:int(9)
  local n = long_rng:int(9)
  for _ = 2, digits do
    n = 10 * n + (long_rng:int(3) == 1 and 0 or long_rng:int(10) - 1)
  end
  if digits == 1 and long_rng:int(10) == 1 then n = 0 end
  if not seen_n[n] then
    seen_n[n] = true
    long[#long + 1] = words(n) .. "\t" .. n
  end
end
write("numbers_long.tsv", long)

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

-- data/dates.tsv ----------------------------------------------------------------------
-- Dates written the ways people write them, each to its ISO 8601 form: "the 3rd of march
-- 1999", "03/03/99", "March 3, 1999", "wednesday, 3 march 1999" ... -> 1999-03-03. Days
-- from 1950-01-01 to 2049-12-31, so that a two-digit year is unambiguous (50..99 are
-- 19xx, 00..49 are 20xx); day/month order is British (dd/mm) wherever both are digits.
-- The weekday, where a form has one, is the date's true one: a translator must read it
-- and drop it. No source line twice, so a validation split never holds a training line.
local MONTHS = { "january", "february", "march", "april", "may", "june", "july", "august",
  "september", "october", "november", "december" }
local WEEKDAYS = { "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday" }
local ORDINALS = { "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
  "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
  "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth" }

local function leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end
local function month_days(y, m)
  if m == 2 then return leap(y) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end
-- 1 = sunday (Sakamoto's method)
local function weekday(y, m, d)
  local t = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 }
  if m < 3 then y = y - 1 end
  return (y + y // 4 - y // 100 + y // 400 + t[m] + d) % 7 + 1
end
-- 3 -> "3rd", 12 -> "12th", 22 -> "22nd"
local function suffixed(d)
  local last = d % 10
  if d // 10 == 1 or last == 0 or last > 3 then return d .. "th" end
  return d .. ({ "st", "nd", "rd" })[last]
end
-- 3 -> "third", 22 -> "twenty second", 30 -> "thirtieth"
local function ordinal_words(d)
  if d <= 20 then return ORDINALS[d] end
  if d == 30 then return "thirtieth" end
  return tens[d // 10] .. " " .. ORDINALS[d % 10]
end

local date_rng = Rng.new(19990303)
-- 1999 -> "nineteen ninety nine"; 2005 -> "two thousand and five"; 2014 -> "twenty
-- fourteen" or "two thousand and fourteen", as people say both
local function year_words(y)
  local yy = y % 100
  if y < 2000 then return "nineteen " .. below_hundred(yy) end
  if yy >= 10 and date_rng:int(2) == 1 then return "twenty " .. below_hundred(yy) end
  return words(y)
end
local function cap(s) return s:sub(1, 1):upper() .. s:sub(2) end
local function abbr(m) return MONTHS[m]:sub(1, 3) end

local FORMS = {
  function(y, m, d) return string.format("the %s of %s %d", suffixed(d), MONTHS[m], y) end,
  function(y, m, d) return string.format("%02d/%02d/%02d", d, m, y % 100) end,
  function(y, m, d) return string.format("%s %d, %d", cap(MONTHS[m]), d, y) end,
  function(y, m, d) return string.format("%d %s %02d", d, abbr(m), y % 100) end,
  function(y, m, d) return string.format("%d/%02d/%02d", y, m, d) end,
  function(y, m, d) return string.format("%d %s %d", d, cap(MONTHS[m]), y) end,
  function(y, m, d) return string.format("the %s of %s %s", ordinal_words(d), MONTHS[m], year_words(y)) end,
  function(y, m, d) return string.format("%d.%d.%d", d, m, y) end,
  function(y, m, d) return string.format("%s, %d %s %d", WEEKDAYS[weekday(y, m, d)], d, MONTHS[m], y) end,
  function(y, m, d) return string.format("%02d-%s-%d", d, abbr(m):upper(), y) end,
  function(y, m, d) return string.format("%s the %s, %d", MONTHS[m], ordinal_words(d), y) end,
  function(y, m, d) return string.format("%s %s, '%02d", abbr(m), suffixed(d), y % 100) end,
}

local dates, seen_date = {}, {}
while #dates < 10000 do
  local y = 1949 + date_rng:int(100)
  local m = date_rng:int(12)
  local d = date_rng:int(month_days(y, m))
  local s = FORMS[date_rng:int(#FORMS)](y, m, d)
  if not seen_date[s] then
    seen_date[s] = true
    dates[#dates + 1] = s .. "\t" .. string.format("%d-%02d-%02d", y, m, d)
  end
end
write("dates.tsv", dates)
