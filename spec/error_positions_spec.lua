-- Errors raised for a caller's mistake carry the caller's file and line, not a line
-- inside recur: each case below fails in this file, so its message must start with it.
local recur = require "recur"
local models = recur.models

local HERE = "^spec/error_positions_spec%.lua:%d+: "

local function raised_here(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert.matches(HERE .. pattern, tostring(err))
end

describe("errors at the caller's line", function()
  it("Forecaster:forward with the wrong dtype or width", function()
    local m = models.Forecaster{input_size = 2, hidden = 3, layers = 1}
    raised_here(function() m:forward(recur.zeros({2, 1, 2}, "float64")) end, "Forecaster:forward: input is float64")
    raised_here(function() m:forward(recur.zeros(2, 1, 3)) end, "Forecaster:forward: input has shape")
  end)

  it("Trainer:set_state with a damaged state", function()
    local model = models.LanguageModel{vocab_size = 3, embed = 2, hidden = 2, layers = 1}
    local t = recur.train.Trainer{model = model, optimizer = recur.optim.SGD(model, {lr = 0.1}),
      batcher = recur.data.LMBatcher.new({1, 2, 3, 1, 2}, {batch_size = 1, seq_length = 2})}
    raised_here(function() t:set_state({}, {iter = -1}) end, "Trainer:set_state: iter must be")
  end)

  it("SentenceBatcher:get_batch and get_batch_tables out of range", function()
    local b = recur.data.SentenceBatcher.new({{1}, {2, 3}}, {batch_size = 1})
    raised_here(function() b:get_batch(9) end, "SentenceBatcher:get_batch: batch 9 is outside 1..2")
    raised_here(function() b:get_batch_tables(0) end, "SentenceBatcher:get_batch_tables: batch 0 is outside 1..2")
  end)

  it("stream batchers over data too short for their layout", function()
    raised_here(function() recur.data.LMBatcher.new({1, 2, 3}, {batch_size = 4, seq_length = 2}) end,
      "LMBatcher.new: 3 ids are too few for batch_size 4")
    raised_here(function() recur.data.series.Batcher.new(recur.zeros(9, 1), {batch_size = 2, seq_length = 5, drop_last = true}) end,
      "series.Batcher.new: streams of 4 steps hold no full chunk of seq_length 5")
  end)

  it("read_pairs and read_labeled of a missing file", function()
    raised_here(function() recur.data.read_pairs("/nonexistent/pairs.tsv") end, "read_pairs")
    raised_here(function() recur.data.read_labeled("/nonexistent/labels.tsv") end, "read_labeled")
    raised_here(function() recur.data.read_csv("/nonexistent/values.csv") end, "read_csv")
    local blank = os.tmpname()
    finally(function() os.remove(blank) end)
    local f = assert(io.open(blank, "w"))
    f:write("\n  \n")
    f:close()
    raised_here(function() recur.data.read_pairs(blank) end, "read_pairs: '.*' has only blank lines")
    raised_here(function() recur.data.read_csv(blank) end, "read_csv: '.*' has only blank lines")
  end)

  it("SequenceClassifier:accuracy with targets of the wrong count", function()
    local m = models.SequenceClassifier{vocab_size = 3, num_classes = 2, hidden = 2}
    local x = recur.tensor({{1, 2}}, "int64")
    raised_here(function() m:accuracy(x, recur.tensor({1}, "int64")) end, "SequenceClassifier: accuracy needs")
  end)
end)
