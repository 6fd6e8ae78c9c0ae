-- recur.models.ConditionedGenerator's options: generate's sampling options against
-- a loop of recur.decode.choose written out here, pad_id against a masked
-- cross-entropy, dropout at every place the header names, config value checks.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local decode = require "recur.decode"
local ConditionedGenerator = recur.models.ConditionedGenerator

local V, Z = 9, 3

local function model(extra)
  local c = {cond_size = Z, vocab_size = V, start_id = 1, end_id = 2, embed = 4, hidden = 6}
  for k, v in pairs(extra or {}) do c[k] = v end
  return ConditionedGenerator(c)
end

-- The sequence generate must produce for one z (1,Z): step, choose, feed back.
local function reference(m, z, opts, length)
  local state = m:initial_state(z)
  local ids, out = recur.full({1}, m.config.start_id, "int64"), {}
  for i = 1, length do
    local id = decode.choose(m:step(ids, state):select(1, 1), opts)
    out[i] = id
    if id == m.config.end_id then break end
    ids:set(1, id)
  end
  return out
end

describe("ConditionedGenerator:generate", function()
  -- a hot temperature makes the draws spread over the vocabulary, so that each
  -- option changes the sequence
  local cases = {
    {"temperature", {temperature = 3}},
    {"top_k", {temperature = 3, top_k = 2}},
    {"top_p", {temperature = 3, top_p = 0.3}},
    {"banned", {temperature = 3, banned = {[3] = true, [4] = true, [5] = true}}},
  }
  for _, c in ipairs(cases) do
    it("passes " .. c[1] .. " on to recur.decode.choose", function()
      recur.manual_seed(5)
      local m = model()
      m:evaluate()
      local z = recur.randn(1, Z)
      recur.manual_seed(77)
      local got = m:generate(z, {length = 30, temperature = c[2].temperature, top_k = c[2].top_k,
                                 top_p = c[2].top_p, banned = c[2].banned})[1]
      recur.manual_seed(77)
      assert.are.same(reference(m, z, c[2], 30), got)
      -- and without the option the sequence is another one
      local without = {}
      for k, v in pairs(c[2]) do if k ~= c[1] then without[k] = v end end
      if c[1] == "temperature" then without.temperature = 0 end
      recur.manual_seed(77)
      assert.are_not.same(reference(m, z, without, 30), got)
    end)
  end
end)

describe("ConditionedGenerator:generate min_length", function()
  it("bans end_id for the first min_length tokens of every row", function()
    recur.manual_seed(6)
    local m = model()
    m:evaluate()
    -- end_id (2) outscores everything: without min_length every row ends at once
    m.decoder.bias:set(2, 50)
    local z = recur.randn(3, Z)
    assert.are.same({{2}, {2}, {2}}, m:generate(z, {length = 10}))
    for _, n in ipairs({1, 3}) do
      local out = m:generate(z, {length = 10, min_length = n})
      for b = 1, 3 do
        assert.are.equal(n + 1, #out[b])
        assert.are.equal(2, out[b][n + 1])
        for i = 1, n do assert.are_not.equal(2, out[b][i]) end
      end
    end
  end)
end)

describe("ConditionedGenerator config", function()
  it("pad_id: targets equal to it are not scored", function()
    recur.manual_seed(6)
    local m = model{pad_id = 9}
    local z = recur.randn(2, Z)
    local targets = recur.tensor({{3, 4}, {2, 9}, {9, 9}}, "int64")
    local loss = m:train_step({z = z, y = targets})
    local logits = m:forward(z, m:shift(targets))
    local mask = recur.tensor({{1, 1}, {1, 0}, {0, 0}})
    local want = recur.nn.CrossEntropy():forward(logits, targets, mask)
    assert.are.near(want, loss, 1e-6)
  end)

  it("dropout acts on the embeddings, between layers and on the outputs", function()
    local m = model{dropout = 0.25, layers = 2}
    assert.are.equal(0.25, m.drop_in.p)
    assert.are.equal(0.25, m.drop_out.p)
    assert.are.equal(0.25, m.rnn.dropout)
    assert.are.equal(0, model{dropout = 0.25}.rnn.dropout)   -- one layer: nothing between
  end)

  it("checks the type and range of its values", function()
    local cases = {
      {{condition_cell = "no"}, "option condition_cell must be a boolean"},
      {{condition_cell = false, cell = "gru"}, "condition_cell applies to the LSTM's cell state"},
      {{dropout = 1}, "option dropout must be a number in %[0, 1%)"},
      {{hidden = "6"}, "hidden must be a positive integer"},
      {{end_id = 10}, "end_id must be a token id in 1..9"},
    }
    helpers.assert_option_errors("ConditionedGenerator", model, cases)
    local m = model()
    assert.matches("ConditionedGenerator:beam_search: unknown option 'beam'",
      helpers.err_of(m.beam_search, m, recur.randn(1, Z), {beam = 3}))
  end)
end)
