-- recur.data.series: standardisation fitted on the training part, windows and chunks
-- with targets one step ahead, the naive baselines; every value checked by hand.
local recur = require "recur"
local series = require "recur.data.series"

-- A tensor as nested Lua tables.
local function tbl(t) return t:totable() end

-- A batch table as the pair x, y (nil at the end of an epoch).
local function xy(batch)
  if batch then return batch.x, batch.y end
end

describe("recur.data.series", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  describe("tensor", function()
    it("takes numbers, rows and tensors and returns (N,D)", function()
      assert.are.same({{1}, {2}, {3}}, tbl(series.tensor({1, 2, 3})))
      assert.are.same({{1, 2}, {3, 4}}, tbl(series.tensor({{1, 2}, {3, 4}}, "float64")))
      assert.are.equal("float64", series.tensor({1, 2}, "float64"):dtype())
      local v = recur.tensor({5, 6, 7}, "float64")
      assert.are.same({3, 1}, series.tensor(v):size())
      assert.are.same({{5}, {6}}, tbl(series.tensor(recur.tensor({5, 6}, "int64"), "float64")))
      assert.are.equal("float64", series.tensor(v):dtype())
      assert.are.equal("float32", series.tensor(v, "float32"):dtype())
      assert.are.equal("float32", series.tensor({1, 2}):dtype())
    end)

    it("rejects ragged rows and non-numbers, naming the operation", function()
      assert.has_error(function() series.tensor({{1, 2}, {3}}) end,
        "series.tensor: row #2 must be an array of 2 numbers like row #1")
      assert.has_error(function() series.tensor({1, "x"}) end, "series.tensor: value #2 is a string, not a number")
      assert.has_error(function() series.tensor({}) end)
      assert.has_error(function() series.tensor({1}, "int64") end)
    end)
  end)

  describe("Scaler", function()
    -- 6 steps, 2 features; the last 2 steps are the validation part and must not count.
    local x = series.tensor({{1, 10}, {2, 10}, {3, 10}, {6, 10}, {100, -50}, {200, 70}}, "float64")
    local train, val = recur.data.split(x, {val_frac = 1 / 3})

    it("the time split keeps order and takes the validation part from the end", function()
      assert.are.same({{1, 10}, {2, 10}, {3, 10}, {6, 10}}, tbl(train))
      assert.are.same({{100, -50}, {200, 70}}, tbl(val))
    end)

    it("fits mean and population std on the training part only", function()
      local s = series.Scaler.fit(train)
      assert.are.same({3, 10}, tbl(s.mean))
      -- (1-3)^2 + (2-3)^2 + 0 + (6-3)^2 = 14 over 4 steps; the constant feature gets std 1
      assert.are.near(math.sqrt(3.5), s.std:get(1), 1e-15)
      assert.are.equal(1, s.std:get(2))
    end)

    it("transforms to exact values and inverts back", function()
      local s = series.Scaler.fit(train)
      local z = s:transform(val)
      local r = math.sqrt(3.5)
      assert.are.near(97 / r, z:get(1, 1), 1e-12)
      assert.are.near(197 / r, z:get(2, 1), 1e-12)
      assert.are.equal(-60, z:get(1, 2))
      assert.are.equal(60, z:get(2, 2))
      local back = s:inverse(z)
      assert.is_true((back - val):abs():max() < 1e-12)
      -- the training part standardises to mean 0 and std 1 per (non-constant) feature
      local zt = s:transform(train)
      assert.are.near(0, zt:select(2, 1):mean(), 1e-15)
      assert.are.near(1, zt:select(2, 1):mul(zt:select(2, 1)):mean(), 1e-15)
    end)

    it("works on (T,B,D) batches and other dtypes, and leaves its input alone", function()
      local s = series.Scaler.fit(train)
      local b = recur.tensor({{{3, 11}}, {{6, 9}}}, "float32")       -- (2,1,2)
      local before = b:clone()
      local z = s:transform(b)
      assert.are.equal("float32", z:dtype())
      assert.are.near(3 / math.sqrt(3.5), z:get(2, 1, 1), 1e-6)
      assert.are.equal(-1, z:get(2, 1, 2))
      assert.are.equal(0, (b - before):abs():max())
      assert.is_true((s:inverse(z) - b):abs():max() < 1e-5)
    end)

    it("refuses a feature count that does not match", function()
      local s = series.Scaler.fit(train)
      assert.has_error(function() s:transform(recur.zeros({3, 3}, "float64")) end,
        "Scaler:transform: expected a float tensor whose last dimension is the 2 features, got (3x3)")
      assert.has_error(function() series.Scaler.fit(recur.zeros({4}, "float64")) end)
    end)

    it("goes to a table of plain numbers and back, and checks a table it is given", function()
      local s = series.Scaler.fit(train)
      local t = s:to_table()
      assert.are.same({type = "scaler", mean = {3, 10}, std = {math.sqrt(3.5), 1}, dtype = "float64"}, t)
      local back = series.Scaler.from_table(recur.io.decode_meta(recur.io.encode_meta(t)))
      assert.are.equal("float64", back.mean:dtype())
      assert.are.equal(0, (back:transform(val) - s:transform(val)):abs():max())
      -- float32 values pass through JSON's doubles exactly; a missing dtype is float32
      local f = series.Scaler.from_table{type = "scaler", mean = {0.1}, std = {3}}
      assert.are.equal("float32", f.std:dtype())
      assert.are.same(f:to_table(), series.Scaler.from_table(recur.io.decode_meta(recur.io.encode_meta(f:to_table()))):to_table())
      for _, case in ipairs({
        {{type = "scaler", mean = {1, 2}, std = {1}}, "mean and std must be arrays of one number per feature, of the same length"},
        {{type = "scaler", mean = {}, std = {}}, "mean and std must be arrays"},
        {{type = "scaler", mean = {1}, std = {0}}, "std[1] must be a finite number > 0, got 0"},
        {{type = "scaler", mean = {"1"}, std = {1}}, "mean[1] must be a finite number, got 1"},
        {{type = "scaler", mean = {-math.huge}, std = {1}}, "mean[1] must be a finite number, got -inf"},
        {{type = "scaler", mean = {1, x = 2}, std = {1}}, "mean must be an array, has key x"},
        {{type = "char", mean = {1}, std = {1}}, "expected a table from Scaler:to_table()"},
      }) do
        local ok, err = pcall(series.Scaler.from_table, case[1])
        assert.is_false(ok)
        assert.is_truthy(err:find("Scaler.from_table: " .. case[2], 1, true), err)
      end
    end)
  end)

  describe("windows", function()
    it("cuts every stride-th window, time-major, and shifts by one for targets", function()
      local x = series.tensor({1, 2, 3, 4, 5, 6, 7}, "float64")
      local w = series.windows(x, 3, {stride = 2})            -- starts 1, 3, 5
      assert.are.same({3, 3, 1}, w:size())
      assert.are.same({{{1}, {3}, {5}}, {{2}, {4}, {6}}, {{3}, {5}, {7}}}, tbl(w))
      local inputs, targets = w:narrow(1, 1, 2), w:narrow(1, 2, 2)
      assert.are.same({{{1}, {3}, {5}}, {{2}, {4}, {6}}}, tbl(inputs))
      assert.are.same({{{2}, {4}, {6}}, {{3}, {5}, {7}}}, tbl(targets))
      assert.are.same({3, 5, 1}, series.windows(x, 3):size())   -- stride 1: 5 windows
    end)

    it("keeps the features of each step together", function()
      local x = series.tensor({{1, -1}, {2, -2}, {3, -3}}, "float64")
      assert.are.same({{{1, -1}, {2, -2}}, {{2, -2}, {3, -3}}}, tbl(series.windows(x, 2)))
    end)

    it("errors name the operation", function()
      local x = series.tensor({1, 2, 3})
      assert.has_error(function() series.windows(x, 4) end, "series.windows: a series of 3 steps holds no window of 4")
      assert.has_error(function() series.windows(x, 0) end, "series.windows: length must be a positive integer, got 0")
      assert.has_error(function() series.windows(x, 2, {step = 1}) end,
        "series.windows: unknown option 'step' (known: stride)")
      assert.has_error(function() series.windows(recur.zeros({2, 2, 2}), 1) end)
    end)
  end)

  describe("Batcher", function()
    -- 1..11 with a second feature 10 * v; B = 2 streams of L = 5: steps 1..6 and 6..11.
    local vals = {}
    for i = 1, 11 do vals[i] = {i, 10 * i} end
    local x = series.tensor(vals, "float64")

    it("serves contiguous streams in chunks with targets one step ahead", function()
      local b = series.Batcher.new(x, {batch_size = 2, seq_length = 3})
      assert.are.equal(2, b:num_batches())
      local x1, y1 = xy(b:next_batch())
      assert.are.same({{{1, 10}, {6, 60}}, {{2, 20}, {7, 70}}, {{3, 30}, {8, 80}}}, tbl(x1))
      assert.are.same({{{2, 20}, {7, 70}}, {{3, 30}, {8, 80}}, {{4, 40}, {9, 90}}}, tbl(y1))
      local x2, y2 = xy(b:next_batch())
      assert.are.same({{{4, 40}, {9, 90}}, {{5, 50}, {10, 100}}}, tbl(x2))
      assert.are.same({{{5, 50}, {10, 100}}, {{6, 60}, {11, 110}}}, tbl(y2))
      assert.is_nil(b:next_batch())
      b:reset()
      assert.are.same(tbl(x1), tbl((xy(b:next_batch()))))
    end)

    it("takes a target series of other features and drops a short last chunk", function()
      local target = x:narrow(2, 2, 1)
      local b = series.Batcher.new(x, {batch_size = 2, seq_length = 3, target = target, drop_last = true})
      assert.are.equal(1, b:num_batches())
      local x1, y1 = xy(b:get_batch(1))
      assert.are.same({3, 2, 2}, x1:size())
      assert.are.same({{{20}, {70}}, {{30}, {80}}, {{40}, {90}}}, tbl(y1))
    end)

    it("chunks are copies, and state/set_state resume the position", function()
      local b = series.Batcher.new(x, {batch_size = 2, seq_length = 3})
      local x1 = xy(b:next_batch())
      x1:fill_(0)
      local s = b:state()
      local x2 = xy(b:next_batch())
      b:reset()
      b:set_state(s)
      assert.are.same(tbl(x2), tbl((xy(b:next_batch()))))
      assert.are.same({{{1, 10}, {6, 60}}}, tbl((xy(b:get_batch(1))):narrow(1, 1, 1)))
      local other = series.Batcher.new(x, {batch_size = 1, seq_length = 3})
      assert.has_error(function() other:set_state(s) end,
        "series.Batcher:set_state: the state has batch_size = 2, this batcher has 1")
    end)

    it("errors name the operation", function()
      assert.has_error(function() series.Batcher.new(x, {batch_size = 2}) end,
        "series.Batcher.new: batch_size and seq_length are required")
      assert.has_error(function() series.Batcher.new(x, {batch_size = 11, seq_length = 2}) end,
        "series.Batcher.new: 11 steps are too few for batch_size 11 (need at least 12)")
      assert.has_error(function() series.Batcher.new(x, {batch_size = 2, seq_length = 3, target = x:narrow(1, 1, 5)}) end,
        "series.Batcher.new: target has 5 steps, the series 11")
      assert.has_error(function() series.Batcher.new(x, {batch_size = 2, seq_length = 9, drop_last = true}) end,
        "series.Batcher.new: streams of 5 steps hold no full chunk of seq_length 9 (drop_last)")
      assert.has_error(function() series.Batcher.new(x, {batch_size = 2, seq_len = 3}) end)
      local b = series.Batcher.new(x, {batch_size = 2, seq_length = 3})
      assert.has_error(function() b:get_batch(3) end, "series.Batcher:get_batch: batch 3 is outside 1..2")
    end)
  end)

  describe("baselines", function()
    it("naive_forecast repeats the last value, or the last season", function()
      local h = recur.tensor({1, 2, 3, 4}, "float64"):view(4, 1, 1)
      assert.are.same({{{4}}, {{4}}, {{4}}}, tbl(series.naive_forecast(h, 3)))
      assert.are.same({{{3}}, {{4}}, {{3}}, {{4}}, {{3}}}, tbl(series.naive_forecast(h, 5, {season = 2})))
      assert.are.same({{{2}}, {{3}}, {{4}}}, tbl(series.naive_forecast(h, 3, {season = 3})))
      assert.has_error(function() series.naive_forecast(h, 3, {season = 5}) end,
        "series.naive_forecast: season 5 needs a history of at least 5 steps, got 4")
      assert.has_error(function() series.naive_forecast(h, 0) end,
        "series.naive_forecast: horizon must be a positive integer, got 0")
    end)

    it("naive_mse is the last-value forecast's MSE over every chunk", function()
      -- one stream 0 1 3 6 10: steps of 1, 2, 3, 4 -> (1 + 4 + 9 + 16) / 4
      local b = series.Batcher.new(series.tensor({0, 1, 3, 6, 10}, "float64"), {batch_size = 1, seq_length = 3})
      assert.are.equal(2, b:num_batches())
      assert.are.equal(7.5, series.naive_mse(b))
      local x = series.tensor({{1, 2}, {3, 4}, {5, 6}})
      local f = series.Batcher.new(x, {batch_size = 1, seq_length = 2, target = x:narrow(2, 1, 1)})
      assert.has_error(function() series.naive_mse(f) end,
        "series.naive_mse: the last-value forecast needs targets of the input's 2 features, got 1")
    end)

    it("mse gives the overall and the per-step error", function()
      local p = recur.tensor({{{1, 2}}, {{3, 4}}}, "float64")
      local t = recur.tensor({{{1, 0}}, {{0, 4}}}, "float64")
      local all, by_step = series.mse(p, t)
      assert.are.equal((4 + 9) / 4, all)
      assert.are.same({2, 4.5}, by_step)
      assert.has_error(function() series.mse(p, t:narrow(1, 1, 1)) end,
        "series.mse: pred and target must be tensors of the same shape, got (2x1x2) and (1x1x2)")
    end)
  end)
end)
