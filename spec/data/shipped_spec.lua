-- The data sets under data/ (data/README.md): data/generate.lua rewrites them byte for
-- byte, and their contents are what the README says, checked on hand-written lines, on
-- counts and means computed here, and (numbers_long.tsv, dates.tsv) by reading every
-- source back with a parser written here, independently of the generator.
local data = require("recur.data")
local helpers = require("spec.support.helpers")

describe("data/generate.lua", function()
  it("writes the committed files byte for byte", function()
    local dir = helpers.tmp_dir()
    assert(os.execute("lua5.4 data/generate.lua '" .. dir .. "' > /dev/null"))
    for _, name in ipairs({ "numbers.tsv", "numbers_long.tsv", "sentiment.tsv", "temperature.csv",
                               "dates.tsv" }) do
      assert(helpers.read_all(dir .. "/" .. name) == helpers.read_all("data/" .. name),
        name .. " differs from what data/generate.lua writes")
    end
    helpers.remove_dir(dir)
  end)
end)

describe("data/numbers.tsv", function()
  local src, tgt = data.read_pairs("data/numbers.tsv")
  local by_target = {}
  for i, t in ipairs(tgt) do by_target[t] = src[i] end

  it("holds each of 0..9999 once", function()
    assert.are.equal(10000, #tgt)
    for n = 0, 9999 do assert(by_target[tostring(n)], "missing " .. n) end
  end)

  it("spells numbers in British English with spaces", function()
    local want = {
      ["0"] = "zero", ["7"] = "seven", ["13"] = "thirteen", ["40"] = "forty",
      ["77"] = "seventy seven", ["100"] = "one hundred", ["312"] = "three hundred and twelve",
      ["1000"] = "one thousand", ["1100"] = "one thousand one hundred",
      ["2005"] = "two thousand and five", ["3090"] = "three thousand and ninety",
      ["9999"] = "nine thousand nine hundred and ninety nine",
    }
    for t, s in pairs(want) do assert.are.equal(s, by_target[t]) end
  end)

  it("is shuffled: the last tenth spans the range", function()
    local lo, hi = math.huge, -math.huge
    for i = 9001, 10000 do
      local v = tonumber(tgt[i])
      lo, hi = math.min(lo, v), math.max(hi, v)
    end
    assert.is_true(lo < 100 and hi > 9900)
  end)
end)

describe("data/sentiment.tsv", function()
  it("has 600 distinct sentences for each of three labels", function()
    local labels, texts = data.read_labeled("data/sentiment.tsv")
    local count, seen = {}, {}
    for i, l in ipairs(labels) do
      count[l] = (count[l] or 0) + 1
      assert.is_nil(seen[texts[i]], texts[i])
      seen[texts[i]] = true
    end
    assert.are.same({ positive = 600, negative = 600, neutral = 600 }, count)
  end)
end)

describe("data/temperature.csv", function()
  local x, names = data.read_csv("data/temperature.csv")

  -- Mean of column d over the rows r (1-based) with keep(r).
  local function mean(d, keep)
    local s, n = 0, 0
    for r = 1, x:size(1) do
      if keep(r) then s, n = s + x:get(r, d), n + 1 end
    end
    return s / n
  end

  it("has two columns named in its header and 730 days of 8 rows", function()
    assert.are.same({ "temp_c", "humidity" }, names)
    assert.are.same({ 730 * 8, 2 }, x:size())
  end)

  it("is warmer in July than in January and at 15:00 than at 03:00", function()
    local function day(r) return (r - 1) // 8 % 365 end
    local jan = mean(1, function(r) return day(r) < 31 end)
    local jul = mean(1, function(r) return day(r) >= 181 and day(r) < 212 end)
    assert.is_true(jul - jan > 12, string.format("July %.1f, January %.1f", jul, jan))
    local at3 = mean(1, function(r) return (r - 1) % 8 == 1 end)
    local at15 = mean(1, function(r) return (r - 1) % 8 == 5 end)
    assert.is_true(at15 - at3 > 4, string.format("15:00 %.1f, 03:00 %.1f", at15, at3))
    -- humidity moves against the temperature
    assert.is_true(mean(2, function(r) return (r - 1) % 8 == 1 end)
      > mean(2, function(r) return (r - 1) % 8 == 5 end) + 5)
  end)
end)

-- English number words (as data/numbers.tsv writes them, with "million") to a number:
-- a reader of its own, so that the generator is checked, not repeated. nil when the
-- words are not a number.
local WORD_VALUE = {zero = 0, one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7,
  eight = 8, nine = 9, ten = 10, eleven = 11, twelve = 12, thirteen = 13, fourteen = 14,
  fifteen = 15, sixteen = 16, seventeen = 17, eighteen = 18, nineteen = 19, twenty = 20,
  thirty = 30, forty = 40, fifty = 50, sixty = 60, seventy = 70, eighty = 80, ninety = 90}
local function read_number(text)
  local total, group = 0, 0
  for w in text:gmatch("%S+") do
    if WORD_VALUE[w] then group = group + WORD_VALUE[w]
    elseif w == "hundred" then group = group * 100
    elseif w == "thousand" then total, group = total + group * 1000, 0
    elseif w == "million" then total, group = total + group * 1000000, 0
    elseif w ~= "and" then return nil end
  end
  return total + group
end

describe("data/numbers_long.tsv", function()
  local src, tgt = data.read_pairs("data/numbers_long.tsv")

  it("holds 20,000 distinct numbers below 10^9 whose words read back to the digits", function()
    assert.are.equal(20000, #tgt)
    local seen = {}
    for i, t in ipairs(tgt) do
      assert.matches("^%d+$", t)
      assert.is_nil(seen[t], t .. " twice")
      seen[t] = true
      assert.are.equal(tonumber(t), read_number(src[i]), src[i])
      assert.is_true(#t == 1 or t:sub(1, 1) ~= "0", t)
    end
  end)

  it("spells what numbers.tsv spells the same way, and millions in groups", function()
    local _, short_tgt = data.read_pairs("data/numbers.tsv")
    local short_src = data.read_pairs("data/numbers.tsv")
    local spelled = {}
    for i, t in ipairs(short_tgt) do spelled[t] = short_src[i] end
    local common = 0
    for i, t in ipairs(tgt) do
      if spelled[t] then
        assert.are.equal(spelled[t], src[i])
        common = common + 1
      end
    end
    assert.is_true(common > 1000, common .. " numbers below 10,000")
    -- hand-written: "and" before the last two digits after something bigger, none inside
    -- a group of thousands without hundreds
    local rules = {
      ["^%d+000000$"] = "^[a-z ]+ million$",              -- 67000000
      ["^%d+0000%d[1-9]$"] = " million and [a-z ]+$",      -- 67000007
      ["^%d+00[1-9]000$"] = " million [a-z]+ thousand$",   -- 67003000
      ["^%d+[1-9]%d[1-9]$"] = " hundred and [a-z ]+$",    -- 67003507
    }
    local hits = 0
    for i, t in ipairs(tgt) do
      for pattern, words in pairs(rules) do
        if #t >= 7 and t:match(pattern) then
          assert.matches(words, src[i])
          hits = hits + 1
        end
      end
    end
    assert.is_true(hits > 20, hits .. " lines under the hand-written rules")
  end)

  it("has about as many numbers of each length from 5 to 9 digits, and sources of 1 to 17 words", function()
    local count, longest = {}, 0
    for i, t in ipairs(tgt) do
      count[#t] = (count[#t] or 0) + 1
      local n = 0
      for _ in src[i]:gmatch("%S+") do n = n + 1 end
      longest = math.max(longest, n)
    end
    assert.are.equal(10, count[1])
    assert.are.equal(90, count[2])
    -- fewer of 3 and 4 digits: with the zeros, they repeat and no number is kept twice
    assert.is_true(count[3] > 700 and count[4] > 2000)
    for d = 5, 9 do assert.is_true(math.abs(count[d] - 3400) < 400, d .. " digits") end
    assert.are.equal(17, longest)
  end)
end)

describe("data/dates.tsv", function()
  local src, tgt = data.read_pairs("data/dates.tsv")
  local MONTH = {}
  for m, name in ipairs({"january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december"}) do
    MONTH[name], MONTH[name:sub(1, 3)] = m, m
  end
  local WEEKDAY = {sunday = 1, monday = 2, tuesday = 3, wednesday = 4, thursday = 5, friday = 6,
    saturday = 7}
  local ORDINAL = {first = 1, second = 2, third = 3, fourth = 4, fifth = 5, sixth = 6, seventh = 7,
    eighth = 8, ninth = 9, tenth = 10, eleventh = 11, twelfth = 12, thirteenth = 13,
    fourteenth = 14, fifteenth = 15, sixteenth = 16, seventeenth = 17, eighteenth = 18,
    nineteenth = 19, twentieth = 20, thirtieth = 30}
  local function day_words(w)
    local tens, unit = w:match("^(%a+) (%a+)$")
    if tens then return WORD_VALUE[tens] + ORDINAL[unit] end
    return ORDINAL[w]
  end
  local function year2(yy) yy = tonumber(yy); return yy < 50 and 2000 + yy or 1900 + yy end
  local function year_words(w)
    local yy = w:match("^nineteen (.+)$")
    if yy then return 1900 + read_number(yy) end
    yy = w:match("^twenty (.+)$")
    if yy then return 2000 + read_number(yy) end
    return read_number(w)
  end
  -- The forms the README lists, each a pattern and a reader -> y, m, d (, weekday).
  local FORMS = {
    {"^the (%d+)%a%a of (%a+) (%d%d%d%d)$", function(d, m, y) return y, MONTH[m], d end},
    {"^(%d%d)/(%d%d)/(%d%d)$", function(d, m, y) return year2(y), m, d end},
    {"^(%u%l+) (%d+), (%d%d%d%d)$", function(m, d, y) return y, MONTH[m:lower()], d end},
    {"^(%d+) (%l%l%l) (%d%d)$", function(d, m, y) return year2(y), MONTH[m], d end},
    {"^(%d%d%d%d)/(%d%d)/(%d%d)$", function(y, m, d) return y, m, d end},
    {"^(%d+) (%u%l+) (%d%d%d%d)$", function(d, m, y) return y, MONTH[m:lower()], d end},
    {"^the ([%a ]-) of (%a+) ([%a ]+)$", function(d, m, y) return year_words(y), MONTH[m], day_words(d) end},
    {"^(%d+)%.(%d+)%.(%d%d%d%d)$", function(d, m, y) return y, m, d end},
    {"^(%a+), (%d+) (%a+) (%d%d%d%d)$", function(w, d, m, y) return y, MONTH[m], d, WEEKDAY[w] end},
    {"^(%d%d)%-(%u%u%u)%-(%d%d%d%d)$", function(d, m, y) return y, MONTH[m:lower()], d end},
    {"^(%a+) the ([%a ]-), (%d%d%d%d)$", function(m, d, y) return y, MONTH[m], day_words(d) end},
    {"^(%a%a%a) (%d+)%a%a, '(%d%d)$", function(m, d, y) return year2(y), MONTH[m], d end},
  }

  it("holds 10,000 distinct sources in 12 forms, each read back to its target", function()
    assert.are.equal(10000, #src)
    local seen, per_form = {}, {}
    for i, s in ipairs(src) do
      assert.is_nil(seen[s], s .. " twice")
      seen[s] = true
      local read
      for f, form in ipairs(FORMS) do
        local caps = {s:match(form[1])}
        if caps[1] then
          assert.is_nil(read, s .. " reads as two forms")
          local y, m, d, w = form[2](table.unpack(caps))
          read = {string.format("%04d-%02d-%02d", y, m, d), w}
          per_form[f] = (per_form[f] or 0) + 1
        end
      end
      assert(read, "no form reads " .. s)
      assert.are.equal(tgt[i], read[1], s)
      if read[2] then   -- the weekday is the date's own (os.time's, not the generator's)
        local y, m, d = tgt[i]:match("^(%d+)-(%d+)-(%d+)$")
        local t = os.date("!*t", os.time{year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12})
        assert.are.equal(t.wday, read[2], s)
      end
    end
    for f = 1, #FORMS do assert.is_true((per_form[f] or 0) > 600, "form " .. f) end
  end)

  it("has real dates from 1950 to 2049 that spread over the century", function()
    local lo, hi = "9999", "0000"
    for _, t in ipairs(tgt) do
      local y, m, d = t:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
      local when = os.time{year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12}
      assert.are.equal(t, os.date("%Y-%m-%d", when))   -- no 31 April, no 29 February 1999
      lo, hi = math.min(lo, y), math.max(hi, y)
    end
    assert.are.same({1950, 2049}, {math.tointeger(lo), math.tointeger(hi)})
  end)

  it("writes the hand-checked forms of one date", function()
    -- lines of the file, looked up by source
    local target = {}
    for i, s in ipairs(src) do target[s] = tgt[i] end
    for s, t in pairs({["7 jul 61"] = "1961-07-07", ["january the thirtieth, 1984"] = "1984-01-30",
      ["tuesday, 27 january 1998"] = "1998-01-27", ["dec 3rd, '28"] = "2028-12-03",
      ["the twelfth of march twenty twenty seven"] = "2027-03-12", ["4.1.1976"] = "1976-01-04",
      ["06/05/79"] = "1979-05-06", ["30-OCT-2019"] = "2019-10-30"}) do
      assert.are.equal(t, target[s], s)
    end
  end)
end)
