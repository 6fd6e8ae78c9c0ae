-- recur.models.Forecaster's options: dropout acts where the header says, config
-- values are checked.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local Forecaster = recur.models.Forecaster

describe("Forecaster options", function()
  it("dropout acts between layers and before the head", function()
    local m = Forecaster{input_size = 2, dropout = 0.25}
    assert.are.equal(0.25, m.drop.p)
    assert.are.equal(0.25, m.rnn.dropout)
    assert.are.equal(0, Forecaster{input_size = 2, layers = 1, dropout = 0.25}.rnn.dropout)
    -- in training mode the predictions change with the draw; in evaluation they do not
    recur.manual_seed(3)
    local x = recur.randn(4, 2, 2)
    recur.manual_seed(1)
    local a = m:forward(x):clone()
    recur.manual_seed(2)
    assert(helpers.max_abs_diff(a, m:forward(x)) > 1e-4)
    m:evaluate()
    local e = m:forward(x):clone()
    assert.are.equal(0, helpers.max_abs_diff(e, m:forward(x)))
  end)

  it("output_size sets the head's width", function()
    assert.are.same({3, 64}, Forecaster{input_size = 2, output_size = 3}.head.weight:size())
    assert.are.same({2, 64}, Forecaster{input_size = 2}.head.weight:size())
  end)

  it("checks the type and range of its values", function()
    local cases = {
      {{dropout = "0.1"}, "option dropout must be a number"},
      {{hidden = -1}, "hidden must be a positive integer"},
      {{cell = "transformer"}, "unknown cell 'transformer'"},
      {{layer = 2}, "unknown option 'layer'"},
    }
    helpers.assert_option_errors("Forecaster", function(c)
      c.input_size = 2
      return Forecaster(c)
    end, cases)
  end)
end)
