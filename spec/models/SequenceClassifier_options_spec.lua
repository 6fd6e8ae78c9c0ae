-- recur.models.SequenceClassifier's options: bidirectional and dropout act where the
-- header says, and config values are checked.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local SequenceClassifier = recur.models.SequenceClassifier

local function model(extra)
  local c = {vocab_size = 6, num_classes = 3, embed = 4, hidden = 5}
  for k, v in pairs(extra or {}) do c[k] = v end
  return SequenceClassifier(c)
end

describe("SequenceClassifier options", function()
  it("bidirectional: the head reads both directions' final states", function()
    recur.manual_seed(4)
    local m = model{bidirectional = true}
    assert.are.same({3, 10}, m.fc.weight:size())
    local x = recur.tensor({{1, 2}, {3, 4}, {5, 6}}, "int64")
    local logits = m:forward(x):clone()
    -- by hand: the last layer's forward and reverse rows of hn, concatenated, then fc
    local _, hn = m.rnn:forward(m.embedding:forward(x))
    local rep = recur.zeros(2, 10)
    rep:narrow(2, 1, 5):copy_(hn:select(1, 1))
    rep:narrow(2, 6, 5):copy_(hn:select(1, 2))
    assert(helpers.max_abs_diff(logits, m.fc:forward(rep)) < 1e-6)
  end)

  it("dropout acts between layers and on the representation", function()
    local m = model{dropout = 0.25, layers = 2}
    assert.are.equal(0.25, m.drop.p)
    assert.are.equal(0.25, m.rnn.dropout)
    assert.are.equal(0, model{dropout = 0.25}.rnn.dropout)   -- one layer: nothing between
  end)

  it("checks the type and range of its values", function()
    local cases = {
      {{bidirectional = "yes"}, "option bidirectional must be a boolean"},
      {{dropout = -0.5}, "option dropout must be a number in %[0, 1%)"},
      {{num_classes = 0}, "num_classes must be a positive integer"},
      {{bidirectonal = true}, "unknown option 'bidirectonal'"},
    }
    helpers.assert_option_errors("SequenceClassifier", model, cases)
    assert.matches("^SequenceClassifier: embed applies to token ids", helpers.err_of(SequenceClassifier,
      {input_size = 3, num_classes = 2, embed = 4}))
  end)
end)
