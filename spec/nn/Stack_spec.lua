-- recur.nn.Stack: options given in a layer's spec act on that layer only, and option
-- values of the wrong type are refused with the stack's name and the option's.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

describe("Stack layer specs", function()
  it("a layer's init overrides the stack-wide init for that layer only", function()
    recur.manual_seed(3)
    -- "fan_in" sets the biases to exactly 0; "default" draws them from U(-1/sqrt(H), 1/sqrt(H))
    local m = nn.Stack(3, 4, {"gru", {cell = "gru", init = "fan_in"}, "lstm"})
    assert.is_true(m.bias_ih_l0:abs():max() > 0)
    assert.are.equal(0, m.bias_ih_l1:abs():max())
    assert.are.equal(0, m.bias_hh_l1:abs():max())
    assert.is_true(m.bias_ih_l2:abs():max() > 0)
    local w = nn.Stack(3, 4, {"gru", {cell = "rnn_tanh", init = "default"}}, {init = "fan_in"})
    assert.are.equal(0, w.bias_ih_l0:abs():max())
    assert.is_true(w.bias_ih_l1:abs():max() > 0)
  end)
end)

describe("Stack option values", function()
  local cases = {
    {{bidirectional = "yes"}, "option bidirectional must be a boolean"},
    {{batch_first = 1}, "option batch_first must be a boolean"},
    {{dropout = 1}, "option dropout must be a number in %[0, 1%)"},
    {{dropout = -0.1}, "option dropout must be a number in %[0, 1%)"},
    {{dropout = "0.2"}, "option dropout must be a number"},
    {{bias = "false"}, "option bias must be a boolean"},
    {{bptt_truncate = "3"}, "option bptt_truncate must be an integer >= 0"},
    {{init = 3}, "unknown init '3'"},
    {{reset_after = "no"}, "option reset_after must be a boolean"},
  }
  for _, c in ipairs(cases) do
    it(next(c[1]) .. " = " .. tostring(select(2, next(c[1]))), function()
      local msg = helpers.err_of(nn.Stack, 3, 4, {"gru", "gru"}, c[1])
      assert.matches("^Stack: ", msg)
      assert.matches(c[2], msg)
    end)
  end

  it("GRU and Recurrent name themselves, the C layer its own options", function()
    assert.matches("^GRU: option bidirectional must be a boolean",
      helpers.err_of(nn.GRU, 3, 4, {bidirectional = 1}))
    -- the C layer's own options are checked once, by core.rnn_layer
    assert.matches("rnn_layer: option reverse must be a boolean, got number",
      helpers.err_of(nn.Recurrent, "lstm", 3, 4, {reverse = 1}))
    assert.matches("rnn_layer: option reset_after applies only to the gru cell, not lstm",
      helpers.err_of(nn.Recurrent, "lstm", 3, 4, {reset_after = false}))
  end)
end)

describe("Stack buffers", function()
  -- as its header says: y and gx are kept and overwritten, the states are new
  it("overwrites y and gx with the next call of the same shape, uni- and bidirectional", function()
    for _, bidirectional in ipairs({false, true}) do
      local m = recur.nn.Stack(3, 4, {"gru", "lstm"}, {bidirectional = bidirectional})
      local x = recur.randn(5, 2, 3)
      local y1, hn1 = m:forward(x)
      local gy = recur.ones(5, 2, bidirectional and 8 or 4)
      local gx1 = m:backward(x, gy)
      local y2, hn2 = m:forward(x)
      local gx2 = m:backward(x, gy)
      assert.is_true(y1:shares_storage(y2))
      assert.is_true(gx1:shares_storage(gx2))
      assert.is_false(hn1:shares_storage(hn2))
    end
  end)
end)
