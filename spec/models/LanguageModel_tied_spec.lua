-- LanguageModel tie_weights: decoder.weight is encoder.weight; its gradient is the sum
-- of the untied model's two gradients (explicitly, and by central differences through
-- recur.gradcheck); an optimizer steps the tensor once; the tie survives :double(),
-- state_dict and a safetensors round trip; the config is checked.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local LanguageModel = recur.models.LanguageModel

local V, H, T, B = 6, 4, 5, 2

local function model(tied, extra)
  local c = {vocab_size = V, embed = H, hidden = H, layers = 2, cell = "gru", tie_weights = tied}
  for k, v in pairs(extra or {}) do c[k] = v end
  return LanguageModel(c):double()
end

local function ids()
  local x = recur.zeros({T, B}, "int64")
  local vals = {1, 3, 6, 2, 2, 5, 4, 1, 6, 3}
  for i = 1, T * B do x:view(-1):set(i, vals[i]) end
  return x
end

-- f = sum(logits * R) for a fixed R (T,B,V); its gradient flows from glogits = R.
local function backward_once(m, x, R)
  m:zero_grad()
  m:forward(x)
  m:backward(x, R)
end

describe("LanguageModel tie_weights", function()
  it("makes decoder.weight the encoder's tensor, counted once", function()
    recur.manual_seed(1)
    local tied, untied = model(true), model(false)
    assert.are.equal(tied.encoder.weight, tied.decoder.weight)
    assert.are.equal(tied.encoder:gradient("weight"), tied.decoder:gradient("weight"))
    assert.are_not.equal(untied.encoder.weight, untied.decoder.weight)
    assert.are.equal(#untied:parameters() - 1, #tied:parameters())
    assert.are.equal(untied:num_parameters() - V * H, tied:num_parameters())
    -- state_dict keeps both names, as PyTorch's
    local sd = tied:state_dict()
    assert.are.equal(sd["encoder.weight"], sd["decoder.weight"])
    assert.is_true(tied.config.tie_weights)
    assert.is_false(untied.config.tie_weights)
  end)

  it("gives the sum of the untied model's encoder and decoder gradients", function()
    recur.manual_seed(2)
    local untied, tied = model(false), model(true)
    -- the same weights, the untied decoder starting from the embedding matrix
    untied.decoder.weight:copy_(untied.encoder.weight)
    tied:load_state_dict(untied:state_dict())
    local x, R = ids(), recur.randn({T, B, V}, "float64")
    backward_once(untied, x, R)
    backward_once(tied, x, R)
    local sum = untied.encoder:gradient("weight") + untied.decoder:gradient("weight")
    local g = tied.encoder:gradient("weight")
    assert.is_true(helpers.max_abs_diff(g, sum) < 1e-12)
    -- and neither use alone
    assert.is_true(helpers.max_abs_diff(g, untied.decoder:gradient("weight")) > 1e-3)
    assert.is_true(helpers.max_abs_diff(g, untied.encoder:gradient("weight")) > 1e-3)
    -- the other parameters see no difference
    local gu, gt = untied:named_gradients(), tied:named_gradients()
    assert.is_true(helpers.max_abs_diff(gu["rnn.weight_hh_l1"], gt["rnn.weight_hh_l1"]) < 1e-12)
  end)

  it("has the gradient that central differences give", function()
    recur.manual_seed(3)
    local report = recur.gradcheck(model(true), {ids()})
    assert.is_true(report.params["encoder.weight"] < 1e-6, tostring(report))
    assert.is_true(report.params["decoder.weight"] < 1e-6, tostring(report))
    assert.is_true(report.max_error < 1e-4, tostring(report))
  end)

  it("is stepped once by an optimizer", function()
    recur.manual_seed(4)
    local m = model(true)
    backward_once(m, ids(), recur.randn({T, B, V}, "float64"))
    local w0 = m.encoder.weight:clone()
    local g = m.encoder:gradient("weight"):clone()
    recur.optim.SGD(m, {lr = 0.5}):step()
    assert.is_true(helpers.max_abs_diff(m.encoder.weight, w0 - g * 0.5) < 1e-15)
    assert.are.equal(m.encoder.weight, m.decoder.weight)
  end)

  it("stays tied through :float(), state_dict and a safetensors file", function()
    recur.manual_seed(5)
    local m = model(true):float()
    assert.are.equal("float32", m.decoder.weight:dtype())
    assert.are.equal(m.encoder.weight, m.decoder.weight)
    assert.are.equal(m.encoder:gradient("weight"), m.decoder:gradient("weight"))
    local dir = helpers.tmp_dir()
    recur.io.save(dir .. "/m.safetensors", m:state_dict())
    local loaded = recur.io.load(dir .. "/m.safetensors")
    helpers.remove_dir(dir)
    local again = LanguageModel(m.config)
    again:load_state_dict(loaded)
    assert.are.equal(again.encoder.weight, again.decoder.weight)
    assert.are.equal(0, helpers.max_abs_diff(again.decoder.weight, m.encoder.weight))
  end)

  it("refuses an untied state with two different matrices", function()
    recur.manual_seed(6)
    local untied = model(false)
    helpers.assert_fails_with(function() model(true):load_state_dict(untied:state_dict()) end,
      "LanguageModel: load_state_dict: tie_weights, but the state's encoder.weight and decoder.weight differ")
  end)

  it("needs embed == hidden and a boolean", function()
    helpers.assert_fails_with(function()
      LanguageModel({vocab_size = V, embed = 3, hidden = 4, tie_weights = true})
    end, "LanguageModel: tie_weights needs embed == hidden (the decoder's weight is the embedding), got embed 3 and hidden 4")
    helpers.assert_fails_with(function()
      LanguageModel({vocab_size = V, embed = 4, hidden = 4, tie_weights = 1})
    end, "LanguageModel: option tie_weights must be a boolean, got 1")
    -- untied, any sizes
    assert.are.equal(3, LanguageModel({vocab_size = V, embed = 3, hidden = 4, tie_weights = false}).config.embed)
  end)
end)
