-- The `cell` option of every model (nn.cells, nn.stack_class): the variants reach each
-- model's recurrent layers; rnn_identity and rnn_relu give hand-computed forwards;
-- gru_classic differs from gru and equals nn.GRU{reset_after = false} with the same weights.
local recur = require "recur"
local nn = recur.nn
local models = recur.models
local helpers = require "spec.support.helpers"

-- One config per model, small; `cell` is added by each test.
local CONFIGS = {
  LanguageModel = {vocab_size = 5, embed = 3, hidden = 4, layers = 2},
  Seq2Seq = {src_vocab_size = 5, tgt_vocab_size = 6, embed = 3, hidden = 4, layers = 2},
  Forecaster = {input_size = 2, hidden = 4, layers = 2},
  SequenceClassifier = {vocab_size = 5, num_classes = 3, embed = 3, hidden = 4, layers = 2},
  ConditionedGenerator = {cond_size = 2, vocab_size = 5, start_id = 1, embed = 3, hidden = 4, layers = 2},
}

local function build(name, cell)
  local c = {cell = cell}
  for k, v in pairs(CONFIGS[name]) do c[k] = v end
  return models[name](c)
end

-- Every recurrent layer of a model, whatever the model calls its stacks.
local function layers_of(model)
  local out = {}
  for _, key in ipairs({"rnn", "encoder", "decoder"}) do
    local s = model[key]
    if s and s.cells then
      for _, per_dir in ipairs(s.layers) do
        for _, layer in ipairs(per_dir) do out[#out + 1] = layer end
      end
    end
  end
  return out
end

-- A one-layer Forecaster in float64, D = 1, H = 2, F = 1, with the weights of the
-- hand computations below.
local function tiny_forecaster(cell)
  local m = models.Forecaster({input_size = 1, hidden = 2, layers = 1, cell = cell}):double()
  local p = {}
  for name, t in pairs(m:named_parameters()) do p[name] = t end
  p["rnn.weight_ih_l0"]:copy_(recur.tensor({{1}, {-2}}, "float64"))
  p["rnn.weight_hh_l0"]:copy_(recur.tensor({{0.5, 0}, {1, 0.5}}, "float64"))
  p["rnn.bias_ih_l0"]:copy_(recur.tensor({0, 1}, "float64"))
  p["rnn.bias_hh_l0"]:zero_()
  p["head.weight"]:copy_(recur.tensor({{1, 1}}, "float64"))
  p["head.bias"]:copy_(recur.tensor({0.5}, "float64"))
  return m
end

local x = recur.tensor({1, 2, -1}, "float64"):view(3, 1, 1)

describe("nn.cells", function()
  it("lists the six cells", function()
    assert.are.same({"lstm", "gru", "gru_classic", "rnn", "rnn_relu", "rnn_identity"}, nn.cells)
  end)

  it("reach the recurrent layers of every model", function()
    local want = {
      lstm = {"lstm"}, gru = {"gru", true}, gru_classic = {"gru", false}, rnn = {"rnn_tanh"},
      rnn_relu = {"rnn_relu"}, rnn_identity = {"rnn_identity"},
    }
    for name in pairs(CONFIGS) do
      for _, cell in ipairs(nn.cells) do
        local layers = layers_of(build(name, cell))
        assert.is_true(#layers >= 2, name)
        for _, layer in ipairs(layers) do
          assert.are.equal(want[cell][1], layer.cell, name .. " " .. cell)
          assert.are.equal(want[cell][2], layer.reset_after, name .. " " .. cell)
        end
      end
    end
  end)

  it("refuse an unknown cell and a variant's option set the other way", function()
    helpers.assert_fails_with(function() build("Forecaster", "rnn_tanh") end,
      "Forecaster: unknown cell 'rnn_tanh' (lstm, gru, gru_classic, rnn, rnn_relu, rnn_identity)")
    helpers.assert_fails_with(function() nn.stack_class("M", "gru_classic")(2, 3, {reset_after = true}) end,
      "M: cell 'gru_classic' sets reset_after = false, got true")
    -- the same value is no conflict
    assert.is_false(nn.stack_class("M", "gru_classic")(2, 3, {reset_after = false}).layers[1][1].reset_after)
  end)
end)

describe("cell rnn_identity", function()
  it("gives the hand-computed forward of the linear RNN", function()
    -- h_t = W_ih x_t + b_ih + W_hh h_(t-1), W_ih = (1, -2), b_ih = (0, 1),
    -- W_hh = ((0.5, 0), (1, 0.5)), h_0 = 0, x = 1, 2, -1:
    --   h1 = (1, -1); h2 = (2, -3) + (0.5, 0.5) = (2.5, -2.5); h3 = (-1, 3) + (1.25, 1.25) = (0.25, 4.25)
    -- pred_t = h_t1 + h_t2 + 0.5 = 0.5, 0.5, 5
    local pred = tiny_forecaster("rnn_identity"):forward(x)
    assert.are.same({0.5, 0.5, 5}, helpers.flat(pred))
  end)
end)

describe("cell rnn_relu", function()
  it("gives the hand-computed forward with relu", function()
    --   h1 = relu(1, -1) = (1, 0); h2 = relu((2, -3) + (0.5, 1)) = (2.5, 0);
    --   h3 = relu((-1, 3) + (1.25, 2.5)) = (0.25, 5.5); pred = 1.5, 3, 6.25
    local pred = tiny_forecaster("rnn_relu"):forward(x)
    assert.are.same({1.5, 3, 6.25}, helpers.flat(pred))
  end)
end)

describe("cell gru_classic", function()
  it("differs from gru and equals nn.GRU{reset_after = false} with the same weights", function()
    recur.manual_seed(7)
    local classic = build("Forecaster", "gru_classic"):double()
    local modern = build("Forecaster", "gru"):double()
    modern:load_state_dict(classic:state_dict())
    local xs = recur.randn({5, 3, 2}, "float64")
    local y_classic = classic:forward(xs):clone()
    local y_modern = modern:forward(xs):clone()
    assert.is_true(helpers.max_abs_diff(y_classic, y_modern) > 1e-3)

    local gru = nn.GRU(2, 4, {num_layers = 2, reset_after = false, dtype = "float64"})
    local sd = {}
    for name, t in pairs(classic:state_dict()) do
      local rest = name:match("^rnn%.(.*)")
      if rest then sd[rest] = t end
    end
    gru:load_state_dict(sd)
    local h = gru:forward(xs)
    local by_hand = classic.head:forward(h)
    assert.is_true(helpers.max_abs_diff(y_classic, by_hand) < 1e-15)
  end)
end)
