-- The data sets under data/ (data/README.md): data/generate.lua rewrites them byte for
-- byte, and their contents are what the README says, checked on hand-written lines and
-- on counts and means computed here.
local data = require("recur.data")
local helpers = require("spec.support.helpers")

describe("data/generate.lua", function()
  it("writes the committed files byte for byte", function()
    local dir = helpers.tmp_dir()
    assert(os.execute("lua5.4 data/generate.lua '" .. dir .. "' > /dev/null"))
    for _, name in ipairs({ "numbers.tsv", "sentiment.tsv", "temperature.csv" }) do
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
