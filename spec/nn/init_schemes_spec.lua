-- recur.nn initialisation schemes: bounds, moments, orthogonality, the forget-gate
-- bias, and reproducibility from the seeded generator.
local recur = require "recur"
local nn = recur.nn

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

local function max_abs(t) return t:abs():max() end

describe("default (PyTorch) uniform(-1/sqrt(H), 1/sqrt(H))", function()
  it("bounds every weight and bias and fills the range", function()
    recur.manual_seed(1)
    local H = 64
    local m = nn.LSTM(10, H, {num_layers = 2})
    local bound = 1 / math.sqrt(H)
    for name, p in pairs(m:named_parameters()) do
      assert(max_abs(p) <= bound, name)
      assert(max_abs(p) > 0.95 * bound, name)
      assert(math.abs(p:mean()) < 0.1 * bound, name)
    end
    -- variance of U(-b, b) is b^2/3
    local w = m.weight_hh_l0
    local var = (w * w):mean()
    assert(math.abs(var - bound * bound / 3) < 0.05 * bound * bound / 3)
  end)

  it("Linear uses 1/sqrt(in_features)", function()
    recur.manual_seed(2)
    local l = nn.Linear(100, 300)
    assert(max_abs(l.weight) <= 0.1 and max_abs(l.weight) > 0.099)
    assert(max_abs(l.bias) <= 0.1)
  end)

  it("is reproducible from recur.manual_seed", function()
    recur.manual_seed(3)
    local a = nn.GRU(4, 5, {bidirectional = true})
    recur.manual_seed(3)
    local b = nn.GRU(4, 5, {bidirectional = true})
    for name, p in pairs(a:named_parameters()) do
      assert.are.equal(0, max_abs(p - b:named_parameters()[name]), name)
    end
  end)
end)

describe("fan_in", function()
  it("bounds weight_ih by 1/sqrt(D), weight_hh by 1/sqrt(H), zeroes biases", function()
    recur.manual_seed(4)
    local D, H = 16, 100
    local m = nn.RNN(D, H, {init = "fan_in"})
    assert(max_abs(m.weight_ih_l0) <= 1 / math.sqrt(D))
    assert(max_abs(m.weight_ih_l0) > 0.95 / math.sqrt(D))
    assert(max_abs(m.weight_hh_l0) <= 1 / math.sqrt(H))
    assert(max_abs(m.weight_hh_l0) > 0.95 / math.sqrt(H))
    assert.are.equal(0, max_abs(m.bias_ih_l0))
    assert.are.equal(0, max_abs(m.bias_hh_l0))
  end)
end)

describe("orthogonal", function()
  it("makes every gate block of weight_hh orthogonal: W^T W = I", function()
    recur.manual_seed(5)
    local H = 24
    local m = nn.LSTM(7, H, {init = "orthogonal", num_layers = 2, bidirectional = true})
    local eye = recur.zeros(H, H, "float64")
    for i = 1, H do eye:set(i, i, 1) end
    for _, name in ipairs({"weight_hh_l0", "weight_hh_l1_reverse"}) do
      local w = m[name]:to("float64")
      for g = 1, 4 do
        local blk = w:narrow(1, (g - 1) * H + 1, H)
        local wtw = recur.matmul(blk, blk, true, false)
        assert(max_abs(wtw - eye) < 1e-5, name .. " block " .. g)
        local wwt = recur.matmul(blk, blk, false, true)
        assert(max_abs(wwt - eye) < 1e-5, name .. " block " .. g)
      end
      -- blocks are independent draws, not copies
      assert(max_abs(w:narrow(1, 1, H) - w:narrow(1, H + 1, H)) > 0.1)
    end
    -- weight_ih keeps the default bound
    assert(max_abs(m.weight_ih_l0) <= 1 / math.sqrt(H))
  end)

  it("orthogonal_ handles tall and wide matrices", function()
    recur.manual_seed(6)
    local tall = nn.init.orthogonal_(recur.zeros(8, 3, "float64"))
    local i3 = recur.matmul(tall, tall, true, false)
    local wide = nn.init.orthogonal_(recur.zeros(3, 8))
    local j3 = recur.matmul(wide, wide, false, true)
    for i = 1, 3 do
      for j = 1, 3 do
        local e = i == j and 1 or 0
        assert(math.abs(i3:get(i, j) - e) < 1e-12)
        assert(math.abs(j3:get(i, j) - e) < 1e-6)
      end
    end
  end)

  it("entries of a random orthogonal matrix have variance 1/H", function()
    recur.manual_seed(7)
    local H = 200
    local q = nn.init.orthogonal_(recur.zeros(H, H, "float64"))
    local var = (q * q):mean()
    assert(math.abs(var - 1 / H) < 1e-9)   -- exact: rows have unit norm
    assert(math.abs(q:mean()) < 0.01 / math.sqrt(H))
    -- not a permutation or sign matrix: the entries spread like N(0, 1/H)
    assert(max_abs(q) < 6 / math.sqrt(H))
  end)
end)

describe("forget_bias", function()
  it("sets the summed forget-gate bias of every LSTM layer and direction", function()
    recur.manual_seed(8)
    local H = 5
    local m = nn.LSTM(3, H, {forget_bias = 1, num_layers = 2, bidirectional = true})
    for _, sfx in ipairs({"_l0", "_l0_reverse", "_l1", "_l1_reverse"}) do
      local bi, bh = m["bias_ih" .. sfx], m["bias_hh" .. sfx]
      for j = H + 1, 2 * H do
        assert.are.equal(1, bi:get(j))
        assert.are.equal(0, bh:get(j))
      end
      -- the other gates keep the default initialisation
      assert(max_abs(bi:narrow(1, 1, H)) > 0)
      assert(max_abs(bi:narrow(1, 1, H)) <= 1 / math.sqrt(H))
    end
  end)

  it("applies per layer in a mixed Stack and is refused where it cannot apply", function()
    local m = nn.Stack(3, 4, {"gru", {cell = "lstm", forget_bias = 2}})
    assert.are.equal(2, m.bias_ih_l1:get(5))
    assert.has_error(function() nn.Stack(3, 4, {{cell = "gru", forget_bias = 1}}) end)
    assert.has_error(function() nn.LSTM(3, 4, {forget_bias = 1, bias = false}) end)
    assert.has_error(function() nn.LSTM(3, 4, {init = "xavier"}) end)
  end)
end)
