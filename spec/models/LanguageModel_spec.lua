-- recur.models.LanguageModel's config: bptt_truncate acts (against a reference built
-- from a full-BPTT model run on short detached windows), every other key is checked,
-- and the keys recur.lm stores in its checkpoints keep loading.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local LanguageModel = recur.models.LanguageModel

local err_of = helpers.err_of

local V, T, B = 7, 6, 2

local function config(extra)
  local c = {vocab_size = V, embed = 4, hidden = 5, layers = 1, cell = "lstm"}
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- Gradients of train_step's loss (mean over T*B tokens) as name -> Lua array.
local function grads_of(model)
  local out = {}
  for name, g in pairs(model:named_gradients()) do out[name] = g:reshape(-1):totable() end
  return out
end

local function max_diff(a, b)
  local worst = 0
  for name, ga in pairs(a) do
    for i = 1, #ga do worst = math.max(worst, math.abs(ga[i] - b[name][i])) end
  end
  return worst
end

-- The truncated gradient from its definition (one layer: in a stack each layer truncates
-- on its own, so the reach adds up over layers): the loss at step t reaches back through
-- steps t-k..t only, so it is the full-BPTT gradient of that one loss term on the
-- window x[t-k..t] started from the state the earlier steps leave (a constant:
-- LanguageModel:backward drops the state's gradient). Summed over t.
local function truncated_reference(model, x, y, k)
  model:zero_grad()
  local ce = recur.nn.CrossEntropy{reduction = "sum"}
  for t = 1, T do
    local first = math.max(1, t - k)
    local state
    if first > 1 then _, state = model:forward(x:narrow(1, 1, first - 1)) end
    local xw, yw = x:narrow(1, first, t - first + 1):contiguous(), y:narrow(1, first, t - first + 1):contiguous()
    local logits = model:forward(xw, state)
    local mask = recur.zeros(t - first + 1, B, "float64")
    mask:select(1, t - first + 1):fill_(1)           -- only the loss at step t
    ce:forward(logits, yw, mask)
    model:backward(xw, ce:backward(logits, yw, mask):mul(1 / (T * B)))
  end
  return grads_of(model)
end

describe("LanguageModel bptt_truncate", function()
  local function case(cell, k)
    recur.manual_seed(7)
    local trunc = LanguageModel(config{cell = cell, bptt_truncate = k}):double()
    local full = LanguageModel(config{cell = cell}):double()
    full:load_state_dict(trunc:state_dict())
    local x = recur.tensor({{1, 2}, {3, 4}, {5, 6}, {7, 1}, {2, 3}, {4, 5}}, "int64")
    local y = recur.tensor({{3, 4}, {5, 6}, {7, 1}, {2, 3}, {4, 5}, {6, 7}}, "int64")
    trunc:zero_grad()
    trunc:train_step({x = x, y = y})
    full:zero_grad()
    full:train_step({x = x, y = y})
    return grads_of(trunc), grads_of(full), truncated_reference(full, x, y, k)
  end

  for _, cell in ipairs({"lstm", "gru"}) do
    it(cell .. ": k = 2 gives the gradient of windows of k + 1 steps, not full BPTT", function()
      local g_trunc, g_full, g_ref = case(cell, 2)
      local d_ref, d_full = max_diff(g_trunc, g_ref), max_diff(g_trunc, g_full)
      assert(d_ref < 1e-12, "truncated vs reference: " .. d_ref)
      assert(d_full > 1e-6, "truncated equals full BPTT: " .. d_full)
    end)
  end

  it("k >= T - 1 is full BPTT", function()
    local g_trunc, g_full = case("lstm", T - 1)
    assert(max_diff(g_trunc, g_full) < 1e-12)
  end)

  it("reaches every layer of the stacked rnn", function()
    local m = LanguageModel(config{bptt_truncate = 3, layers = 3})
    for k = 1, 3 do assert.are.equal(3, m.rnn.layers[k][1].bptt_truncate) end
    assert.is_nil(LanguageModel(config()).rnn.layers[1][1].bptt_truncate)
  end)
end)

describe("LanguageModel config", function()
  it("rejects unknown keys, naming the model and the key", function()
    assert.matches("LanguageModel: unknown option 'bptt_truncat'", err_of(LanguageModel, config{bptt_truncat = 4}))
    assert.matches("LanguageModel: unknown option 'hiden'", err_of(LanguageModel, config{hiden = 4}))
  end)

  it("checks the type and range of every value", function()
    local cases = {
      {{vocab_size = "7"}, "vocab_size must be a positive integer, got \"7\""},
      {{embed = 0}, "embed must be a positive integer"},
      {{hidden = 2.5}, "hidden must be a positive integer"},
      {{layers = -1}, "layers must be a positive integer"},
      {{cell = "lstmm"}, "unknown cell 'lstmm'"},
      {{dropout = 1}, "dropout must be a number in %[0, 1%)"},
      {{dropout = "0.1"}, "dropout must be a number"},
      {{bptt_truncate = -1}, "bptt_truncate must be an integer >= 0"},
      {{bptt_truncate = 1.5}, "bptt_truncate must be an integer >= 0"},
    }
    helpers.assert_option_errors("LanguageModel", function(c) return LanguageModel(config(c)) end, cases)
    assert.matches("vocab_size is required", err_of(LanguageModel, {embed = 4}))
    assert.matches("expected a config table", err_of(LanguageModel, 7))
  end)

  it("takes integers that JSON handed back as floats, and dropout with one layer", function()
    local m = LanguageModel{vocab_size = 7.0, embed = 4, hidden = 5, layers = 1, cell = "gru", dropout = 0.25}
    assert.matches("unknown option 'level'", err_of(LanguageModel, config{level = "word"})) -- the tokenizer's, not the model's
    assert.are.equal(7, m.config.vocab_size)
    assert.are.equal(0.25, m.drop_in.p)
    assert.are.equal(0, m.rnn.dropout)
    local two = LanguageModel(config{layers = 2, dropout = 0.25})
    assert.are.equal(0.25, two.rnn.dropout)
    assert.are.equal(0.25, two.drop_out.p)
  end)
end)
