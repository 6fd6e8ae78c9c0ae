-- recur.nn Module API, Linear, Embedding, Dropout and Sequential: PyTorch fixtures,
-- float64 gradient checks, state dicts and their errors, modes and dtypes.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

local fixture, T, max_abs_diff, err_of = helpers.nn_fixture, helpers.tensor,
  helpers.max_abs_diff, helpers.err_of

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

describe("Linear and Embedding", function()
  it("match PyTorch (embedding -> linear, forward and all gradients)", function()
    local fx = fixture("linear_embedding")
    local m = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 3))
    m:load_state_dict({["0.weight"] = T(fx.embedding_weight), ["1.weight"] = T(fx.linear_weight),
                       ["1.bias"] = T(fx.linear_bias)})
    local ids = T(fx.ids, "int64")
    local y = m:forward(ids)
    assert(max_abs_diff(y, T(fx.y)) < 1e-6)
    assert.is_nil(m:backward(ids, T(fx.gy)))
    local g = m:named_gradients()
    assert(max_abs_diff(g["0.weight"], T(fx.grad_embedding)) < 1e-6)
    assert(max_abs_diff(g["1.weight"], T(fx.grad_linear_weight)) < 1e-6)
    assert(max_abs_diff(g["1.bias"], T(fx.grad_linear_bias)) < 1e-6)
  end)

  it("Linear computes x W^T + b on (N,D) and (T,B,D) (hand-computed)", function()
    local l = nn.Linear(2, 1)
    l.weight:copy_(recur.tensor({{2, -1}}))
    l.bias:fill_(0.5)
    assert.are.same({{2.5}, {-0.5}}, l:forward(recur.tensor({{1, 0}, {0, 1}})):totable())
    local y = l:forward(recur.ones(3, 4, 2))
    assert.are.same({3, 4, 1}, y:size())
    assert.are.equal(1.5, y:get(3, 4, 1))
  end)

  it("Linear passes a float64 gradient check on 3-D input, with and without bias", function()
    recur.manual_seed(1)
    local r = recur.gradcheck(nn.Linear(4, 3), recur.randn(2, 5, 4))
    assert(r.max_error < 1e-7, tostring(r))
    assert.is_not_nil(r.params.bias)
    r = recur.gradcheck(nn.Linear(4, 3, {bias = false}), recur.randn(6, 4))
    assert(r.max_error < 1e-7, tostring(r))
    assert.is_nil(r.params.bias)
  end)

  it("Embedding passes a gradient check with repeated ids", function()
    recur.manual_seed(2)
    local e = nn.Embedding(5, 3)
    local r = recur.gradcheck(e, recur.tensor({{1, 5, 5}, {2, 1, 5}}, "int64"))
    assert(r.max_error < 1e-7, tostring(r))
    -- id 3 and 4 never occur: their rows get exactly zero gradient
    local g = e:named_gradients().weight
    assert.are.equal(0, g:select(1, 3):abs():max())
    assert(g:select(1, 5):abs():max() > 0)
  end)

  it("Embedding rejects out-of-range ids, naming the id and the vocabulary size", function()
    local e = nn.Embedding(10, 3)
    local msg = err_of(e.forward, e, recur.tensor({3, 11, 2}, "int64"))
    assert.matches("id 11", msg)
    assert.matches("vocabulary size 10", msg)
    assert.matches("id 0 ", err_of(e.forward, e, recur.tensor({0}, "int64")))
    assert.matches("int64", err_of(e.forward, e, recur.tensor({1, 2})))
  end)

  it("Embedding initialises weight ~ N(0,1) as PyTorch", function()
    recur.manual_seed(3)
    local w = nn.Embedding(200, 50).weight
    assert(math.abs(w:mean()) < 0.02)
    local var = (w * w):mean()
    assert(math.abs(var - 1) < 0.03)
  end)
end)

describe("Dropout", function()
  it("zeroes a fraction p and scales survivors by 1/(1-p)", function()
    recur.manual_seed(4)
    local d = nn.Dropout(0.3)
    local y = d:forward(recur.ones(200, 500))
    local n = y:numel()
    local s = y:sum()
    -- every element is 0 or 1/0.7; the mean of y is the kept fraction / 0.7
    local keep_frac = s * 0.7 / n
    assert(math.abs(keep_frac - 0.7) < 0.005, "kept " .. keep_frac)
    assert(math.abs(y:max() - 1 / 0.7) < 1e-6)
    assert.are.equal(0, y:min())
    assert(math.abs(y:mean() - 1) < 0.01)   -- inverted dropout keeps the expectation
  end)

  it("is the identity in evaluate mode and with p = 0", function()
    local x = recur.randn(3, 4)
    local d = nn.Dropout(0.5):evaluate()
    assert.are.equal(x, d:forward(x))
    assert.are.equal(x, d:backward(x, x))
    assert.are.equal(x, nn.Dropout(0):forward(x))
  end)

  it("backward applies the forward mask (gradient check with a fixed seed)", function()
    local r = recur.gradcheck(nn.Dropout(0.4), recur.randn(5, 6))
    assert(r.max_error < 1e-7, tostring(r))
    recur.manual_seed(5)
    local d = nn.Dropout(0.5)
    local y = d:forward(recur.ones(10, 10))
    local g = d:backward(nil, recur.ones(10, 10))
    assert.are.equal(0, max_abs_diff(y, g))
  end)

  it("the same seed gives the same mask", function()
    recur.manual_seed(6)
    local a = nn.Dropout(0.5):forward(recur.ones(50))
    recur.manual_seed(6)
    local b = nn.Dropout(0.5):forward(recur.ones(50))
    assert.are.equal(0, max_abs_diff(a, b))
  end)

  it("rejects a probability outside [0, 1]", function()
    assert.matches("probability", err_of(nn.Dropout, 1.5))
  end)
end)

describe("output and gradient buffers", function()
  it("Linear overwrites its last output and input gradient on the next call of that shape", function()
    local l = nn.Linear(2, 1)
    l.weight:copy_(recur.tensor({{2, -1}}))
    l.bias:fill_(0.5)
    local y1 = l:forward(recur.tensor({{1, 0}, {0, 1}}))
    local kept = y1:clone()
    local y2 = l:forward(recur.tensor({{0, 0}, {1, 1}}))
    assert.is_true(y1:shares_storage(y2))            -- one buffer, as documented
    assert.are.same({{0.5}, {1.5}}, y1:totable())    -- y1 now reads the second result
    assert.are.same({{2.5}, {-0.5}}, kept:totable()) -- a clone keeps the first
    assert.is_false(l:forward(recur.ones(3, 2)):shares_storage(y2))   -- 3 rows: a new buffer
    local x = recur.ones(2, 2)
    local g1 = l:backward(x, recur.tensor({{1}, {2}}))
    assert.are.same({{2, -1}, {4, -2}}, g1:totable())
    local g2 = l:backward(x, recur.tensor({{-1}, {0}}))
    assert.is_true(g1:shares_storage(g2))
    assert.are.same({{-2, 1}, {0, 0}}, g1:totable())
  end)

  it("Linear fed its own output reads it before writing (a square layer applied twice)", function()
    local l = nn.Linear(2, 2)
    l.weight:copy_(recur.tensor({{1, 2}, {3, 4}}))
    l.bias:zero_()
    local a = l:forward(recur.tensor({{1, 1}}))       -- (3, 7)
    local b = l:forward(a)                             -- (3 + 14, 9 + 28)
    assert.are.same({{17, 37}}, b:totable())
    assert.are.same({{3, 7}}, a:totable())             -- the first result was not written over
  end)

  it("Embedding reuses its output for ids of the same shape", function()
    local e = nn.Embedding(3, 2)
    e.weight:copy_(recur.tensor({{1, 2}, {3, 4}, {5, 6}}))
    local y1 = e:forward(recur.tensor({{1, 2}}, "int64"))
    local y2 = e:forward(recur.tensor({{3, 3}}, "int64"))
    assert.is_true(y1:shares_storage(y2))
    assert.are.same({{{5, 6}, {5, 6}}}, y1:totable())
    assert.are.same({{1, 2}, {3, 4}}, e:forward(recur.tensor({1, 2}, "int64")):totable())
  end)

  it("Dropout never writes into its input, even after an identity forward", function()
    local d = nn.Dropout(0.5):evaluate()
    local x = recur.ones(100)
    assert.are.equal(x, d:forward(x))                  -- identity: the input itself
    d:train()
    local y1 = d:forward(x)
    assert.is_false(y1:shares_storage(x))
    assert.are.equal(100, x:sum())
    local y2 = d:forward(x)
    assert.is_true(y2:shares_storage(y1))              -- the training output is a buffer
    -- backward applies the mask of the last forward
    assert.are.equal(0, max_abs_diff(d:backward(x, recur.ones(100)), y2))
  end)
end)

describe("Sequential", function()
  it("chains modules and names children 0, 1, ... as PyTorch", function()
    recur.manual_seed(7)
    local m = nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.2), nn.Linear(5, 2))
    local _, names = m:named_parameters()
    assert.are.same({"0.weight", "0.bias", "2.weight", "2.bias"}, names)
    local r = recur.gradcheck(m, recur.randn(4, 3))
    assert(r.max_error < 1e-7, tostring(r))
  end)

  it("names nested modules with dots, e.g. rnn.weight_hh_l1_reverse", function()
    recur.manual_seed(8)
    local m = nn.Sequential():add(nn.Embedding(10, 4), "embed")
      :add(nn.LSTM(4, 3, {num_layers = 2, bidirectional = true}), "rnn"):add(nn.Linear(6, 10), "proj")
    local p = m:named_parameters()
    assert.is_not_nil(p["rnn.weight_hh_l1_reverse"])
    assert.is_not_nil(p["embed.weight"])
    assert.is_not_nil(p["proj.bias"])
    local ids = recur.tensor({{1, 2}, {3, 10}, {5, 5}}, "int64")
    local r = recur.gradcheck(m, ids)
    -- rounding in the deep chain reaches ~1e-6 here; a wrong gradient gives > 1e-2
    assert(r.max_error < 1e-4, tostring(r))
  end)

  it("refuses to mix dtypes among modules with parameters", function()
    local m = nn.Sequential(nn.Linear(2, 2))
    assert.matches("float64", err_of(m.add, m, nn.Linear(2, 2, {dtype = "float64"})))
  end)
end)

describe("Module API", function()
  it("parameters() and named_gradients() list the same tensors in the same order", function()
    local m = nn.GRU(3, 4, {num_layers = 2})
    local params, grads = m:parameters()
    local p, names = m:named_parameters()
    local g = m:named_gradients()
    assert.are.equal(#names, #params)
    for i, n in ipairs(names) do
      assert.are.equal(p[n], params[i])
      assert.are.equal(g[n], grads[i])
      assert.are.equal(g[n], m:gradient(n))
    end
    assert.are.equal((12 * 3 + 12 * 4 + 24) + (12 * 4 + 12 * 4 + 24), m:num_parameters())
  end)

  it("train() and evaluate() reach every child", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.LSTM(2, 2, {num_layers = 2, dropout = 0.5}))
    m:evaluate()
    assert.is_false(m.modules[2].training)
    assert.is_false(m.modules[3].dropouts[1].training)
    m:train()
    assert.is_true(m.modules[3].dropouts[1].training)
  end)

  it("to('float64') converts parameters and gradients and keeps the values", function()
    recur.manual_seed(9)
    local m = nn.LSTM(3, 4, {num_layers = 2})
    local before = m.weight_hh_l1:clone()
    m:to("float64")
    assert.are.equal("float64", m.weight_hh_l1:dtype())
    assert.are.equal("float64", m:named_gradients().weight_hh_l1:dtype())
    assert.are.equal(0, max_abs_diff(before, m.weight_hh_l1))
    local y = m:forward(recur.randn(2, 1, 3, "float64"))
    assert.are.equal("float64", y:dtype())
    m:to("float32")
    assert.are.equal("float32", m:forward(recur.randn(2, 1, 3)):dtype())
    assert.matches("dtype", err_of(m.to, m, "int64"))
  end)

  it("state_dict round-trips into a fresh module", function()
    recur.manual_seed(10)
    local a = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true})
    local b = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true})
    local x = recur.randn(5, 2, 3)
    b:load_state_dict(a:state_dict())
    assert.are.equal(0, max_abs_diff(a:forward(x), b:forward(x)))
    -- copies, not shared tensors
    a.weight_ih_l0:fill_(0)
    assert(b.weight_ih_l0:abs():max() > 0)
  end)

  it("load_state_dict names a missing, an unexpected and a mis-shaped entry", function()
    local m = nn.LSTM(3, 4, {num_layers = 2})
    local sd = {}
    for k, v in pairs(m:state_dict()) do sd[k] = v:clone() end
    sd.bias_hh_l1 = nil
    local msg = err_of(m.load_state_dict, m, sd)
    assert.matches("missing entry 'bias_hh_l1'", msg)
    sd.bias_hh_l1 = recur.zeros(16)
    sd.weight_ih_l2 = recur.zeros(16, 4)
    assert.matches("unexpected entry 'weight_ih_l2'", err_of(m.load_state_dict, m, sd))
    sd.weight_ih_l2 = nil
    sd.weight_hh_l0 = recur.zeros(16, 5)
    assert.matches("entry 'weight_hh_l0' has shape %(16x5%), expected %(16x4%)",
      err_of(m.load_state_dict, m, sd))
    -- a failed load changes nothing
    assert(m.bias_hh_l1:abs():max() > 0)
    sd.weight_hh_l0 = "not a tensor"
    assert.matches("'weight_hh_l0' is a string", err_of(m.load_state_dict, m, sd))
  end)

  it("load_state_dict with strict = false skips missing and unexpected entries", function()
    local m = nn.Linear(2, 3)
    local missing, unexpected = m:load_state_dict({weight = recur.ones(3, 2), extra = recur.ones(1)},
      {strict = false})
    assert.are.same({"bias"}, missing)
    assert.are.same({"extra"}, unexpected)
    assert.are.equal(1, m.weight:min())
    assert.matches("shape", err_of(m.load_state_dict, m, {weight = recur.ones(2, 3)}, {strict = false}))
  end)

  it("load_state_dict converts float64 entries into float32 parameters", function()
    local m = nn.Linear(2, 1)
    m:load_state_dict({weight = recur.tensor({{0.25, 0.5}}, "float64"), bias = recur.tensor({1}, "float64")})
    assert.are.equal("float32", m.weight:dtype())
    assert.are.equal(0.5, m.weight:get(1, 2))
  end)

  it("methods come through plain tables; inlined children's parameters read as fields", function()
    assert.are.equal("table", type(getmetatable(nn.Linear(2, 2)).__index))
    local m = nn.LSTM(3, 2, {num_layers = 2})
    assert.are.equal(m:named_parameters().weight_hh_l1, m.weight_hh_l1)
    assert.are.equal(nn.LSTM.forward, m.forward)
    assert.is_nil(m.no_such_field)
    m:to("float64")                       -- replaces the layers' tensors: the field follows
    assert.are.equal("float64", m.weight_ih_l0:dtype())
    assert.matches("LSTM", tostring(m))
  end)

  it("parameters() lists a tensor shared under two names once; named_parameters both", function()
    local a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    local s = nn.Sequential(a, b)
    b.weight, b._grads.weight = a.weight, a._grads.weight     -- tied, as LanguageModel ties
    local params, grads = s:parameters()
    assert.are.same({a.weight, a.bias, b.bias}, params)
    assert.are.same({a:gradient("weight"), a:gradient("bias"), b:gradient("bias")}, grads)
    local named, names = s:named_parameters()
    assert.are.equal(4, #names)
    assert.are.equal(named[names[1]], named[names[3]])
    assert.are.equal(3 * 3 + 3 + 3, s:num_parameters())
  end)

  it("classes are callable and print their name", function()
    assert.matches("Linear", tostring(nn.Linear(2, 2)))
    assert.matches("unknown option 'biass'", err_of(nn.Linear, 2, 2, {biass = false}))
    assert.matches("positive integer", err_of(nn.Linear, 0, 2))
  end)
end)
