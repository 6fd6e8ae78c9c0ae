-- recur.nn recurrent layers: PyTorch fixtures (spec/fixtures/generate_nn.py), float64
-- gradient checks of every variant, and the option and shape errors.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

local fixture, T, max_abs_diff = helpers.nn_fixture, helpers.tensor, helpers.max_abs_diff

local function close(a, b, tol, what)
  local d = max_abs_diff(a, b)
  assert(d <= tol, string.format("%s: max abs difference %.3e > %.1e", what or "tensor", d, tol))
end

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

describe("PyTorch fixtures, float32, 2-layer bidirectional", function()
  local cases = {
    {"lstm_2layer_bidir", function(D, H) return nn.LSTM(D, H, {num_layers = 2, bidirectional = true}) end},
    {"gru_2layer_bidir", function(D, H) return nn.GRU(D, H, {num_layers = 2, bidirectional = true}) end},
    {"rnn_tanh_2layer_bidir", function(D, H) return nn.RNN(D, H, {num_layers = 2, bidirectional = true}) end},
    {"rnn_relu_2layer_bidir", function(D, H)
      return nn.RNN(D, H, {num_layers = 2, bidirectional = true, nonlinearity = "relu"}) end},
    {"lstm_2layer_bidir_lengths", function(D, H) return nn.LSTM(D, H, {num_layers = 2, bidirectional = true}) end},
    {"gru_2layer_bidir_lengths", function(D, H) return nn.GRU(D, H, {num_layers = 2, bidirectional = true}) end},
  }
  for _, case in ipairs(cases) do
    it(case[1] .. ": outputs, final states and every named gradient match to 1e-5", function()
      local fx = fixture(case[1])
      local m = case[2](fx.D, fx.H)
      local sd = {}
      for k, v in pairs(fx.state_dict) do sd[k] = T(v) end
      m:load_state_dict(sd)
      local x, h0 = T(fx.x), T(fx.h0)
      local c0 = fx.c0 and T(fx.c0) or nil
      local lengths = fx.lengths and recur.tensor(fx.lengths, "int64") or nil
      local y, hn, cn = m:forward(x, h0, c0, lengths)
      close(y, T(fx.y), 1e-5, "y")
      close(hn, T(fx.hn), 1e-5, "hn")
      if fx.cn then close(cn, T(fx.cn), 1e-5, "cn") else assert.is_nil(cn) end
      local gx, gh0, gc0 = m:backward(x, T(fx.gy), T(fx.ghn), fx.gcn and T(fx.gcn) or nil)
      close(gx, T(fx.gx), 1e-5, "gx")
      close(gh0, T(fx.gh0), 1e-5, "gh0")
      if fx.gc0 then close(gc0, T(fx.gc0), 1e-5, "gc0") else assert.is_nil(gc0) end
      local grads, names = m:named_gradients()
      local count = 0
      for name, g in pairs(fx.grads) do
        assert.is_not_nil(grads[name], "missing gradient " .. name)
        close(grads[name], T(g), 1e-5, name)
        count = count + 1
      end
      assert.are.equal(count, #names)
    end)
  end

  it("the options-table form of forward gives the same results", function()
    local fx = fixture("lstm_2layer_bidir_lengths")
    local m = nn.LSTM(fx.D, fx.H, {num_layers = 2, bidirectional = true})
    local sd = {}
    for k, v in pairs(fx.state_dict) do sd[k] = T(v) end
    m:load_state_dict(sd)
    local y, hn, cn = m:forward(T(fx.x), {h0 = T(fx.h0), c0 = T(fx.c0), lengths = recur.tensor(fx.lengths, "int64")})
    close(y, T(fx.y), 1e-5, "y")
    close(hn, T(fx.hn), 1e-5, "hn")
    close(cn, T(fx.cn), 1e-5, "cn")
  end)

  it("batch_first takes and returns (B,T,.) with the same numbers", function()
    local fx = fixture("gru_2layer_bidir")
    local m = nn.GRU(fx.D, fx.H, {num_layers = 2, bidirectional = true, batch_first = true})
    local sd = {}
    for k, v in pairs(fx.state_dict) do sd[k] = T(v) end
    m:load_state_dict(sd)
    local x = T(fx.x):transpose(1, 2):contiguous()
    local y, hn = m:forward(x, T(fx.h0))
    close(y, T(fx.y):transpose(1, 2), 1e-5, "y")
    close(hn, T(fx.hn), 1e-5, "hn")
    local gx = m:backward(x, T(fx.gy):transpose(1, 2):contiguous(), T(fx.ghn))
    close(gx, T(fx.gx):transpose(1, 2), 1e-5, "gx")
  end)
end)

describe("RNN nonlinearity = 'identity'", function()
  -- h_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh layer after layer, in plain Lua over
  -- the module's own parameters: the reference for the kernels' identity cell.
  local function linear_rnn(sd, L, x, h0)
    local y = x
    local hn = {}
    for l = 0, L - 1 do
      local w_ih, w_hh = sd["weight_ih_l" .. l], sd["weight_hh_l" .. l]
      local b_ih, b_hh = sd["bias_ih_l" .. l], sd["bias_hh_l" .. l]
      local out = {}
      local h = h0[l + 1]
      for t = 1, #y do
        out[t] = {}
        for b = 1, #y[t] do
          local nh = {}
          for j = 1, #w_hh do
            local v = b_ih[j] + b_hh[j]
            for k = 1, #w_ih[j] do v = v + w_ih[j][k] * y[t][b][k] end
            for k = 1, #w_hh[j] do v = v + w_hh[j][k] * h[b][k] end
            nh[j] = v
          end
          out[t][b] = nh
        end
        h = out[t]
      end
      hn[l + 1] = h
      y = out
    end
    return y, hn
  end

  it("computes the linear recurrence of a plain-Lua loop, and differs from tanh", function()
    local D, H, L = 3, 4, 2
    recur.manual_seed(12)
    local m = nn.RNN(D, H, {num_layers = L, nonlinearity = "identity", dtype = "float64"})
    assert.are.equal("identity", m.nonlinearity)
    local x, h0 = recur.randn(5, 2, D, "float64"), recur.randn(L, 2, H, "float64")
    local y, hn = m:forward(x, h0)
    local sd = {}
    for k, v in pairs(m:state_dict()) do sd[k] = v:totable() end
    local ry, rhn = linear_rnn(sd, L, x:totable(), h0:totable())
    close(y, recur.tensor(ry, "float64"), 1e-12, "y")
    close(hn, recur.tensor(rhn, "float64"), 1e-12, "hn")
    -- the same weights under tanh give other numbers
    local mt = nn.RNN(D, H, {num_layers = L, dtype = "float64"})
    mt:load_state_dict(m:state_dict())
    local yt = mt:forward(x, h0)
    assert.is_true(max_abs_diff(y, yt) > 1e-2)
  end)
end)

describe("parameter names and shapes", function()
  it("are PyTorch's for a 2-layer bidirectional LSTM", function()
    local m = nn.LSTM(3, 5, {num_layers = 2, bidirectional = true})
    local params, names = m:named_parameters()
    assert.are.same({
      "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
      "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
      "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
    }, names)
    assert.are.same({20, 3}, params.weight_ih_l0:size())
    assert.are.same({20, 10}, params.weight_ih_l1:size())
    assert.are.same({20, 5}, params.weight_hh_l1_reverse:size())
    assert.are.same({20}, params.bias_hh_l1_reverse:size())
    local grads, gnames = m:named_gradients()
    assert.are.same(names, gnames)
    for _, n in ipairs(names) do assert.are.same(params[n]:size(), grads[n]:size()) end
  end)

  it("bias = false leaves out the biases", function()
    local _, names = nn.GRU(3, 2, {bias = false}):named_parameters()
    assert.are.same({"weight_ih_l0", "weight_hh_l0"}, names)
  end)

  it("a mixed Stack names its layers like PyTorch's stacks", function()
    local m = nn.Stack(3, 4, {"gru", {cell = "lstm"}, "rnn_relu"})
    local p, names = m:named_parameters()
    assert.are.equal(12, #names)
    assert.are.same({12, 3}, p.weight_ih_l0:size())
    assert.are.same({16, 4}, p.weight_ih_l1:size())
    assert.are.same({4, 4}, p.weight_hh_l2:size())
  end)
end)

describe("gradient checks (float64)", function()
  local B, Tn, D, H = 3, 5, 3, 4
  local function inputs(L, with_c, lengths)
    recur.manual_seed(7)
    return {recur.randn(Tn, B, D, "float64"), recur.randn(L, B, H, "float64"),
            with_c and recur.randn(L, B, H, "float64") or nil,
            lengths and recur.tensor(lengths, "int64") or nil}
  end
  local function check(m, args, tol)
    local report = recur.gradcheck(m, args)
    assert(report.max_error < (tol or 1e-5), tostring(report))
    return report
  end

  for _, cell in ipairs({"LSTM", "GRU", "RNN"}) do
    it(cell .. ": 2 layers, bidirectional, with lengths, h0" .. (cell == "LSTM" and ", c0" or ""), function()
      recur.manual_seed(1)
      local m = nn[cell](D, H, {num_layers = 2, bidirectional = true, dropout = 0})
      local r = check(m, inputs(4, cell == "LSTM", {5, 2, 4}))
      assert.is_not_nil(r.params.weight_hh_l1_reverse)
      assert.is_not_nil(r.inputs[1])
      assert.is_not_nil(r.inputs[2])
      if cell == "LSTM" then assert.is_not_nil(r.inputs[3]) end
    end)
  end

  it("RNN relu, 2 layers, unidirectional, no initial state", function()
    recur.manual_seed(2)
    local m = nn.RNN(D, H, {num_layers = 2, nonlinearity = "relu"})
    recur.manual_seed(3)
    check(m, recur.randn(Tn, B, D, "float64"))
  end)

  it("RNN identity (the linear RNN), 2 layers, bidirectional, lengths, h0", function()
    recur.manual_seed(9)
    local m = nn.RNN(D, H, {num_layers = 2, bidirectional = true, nonlinearity = "identity"})
    check(m, inputs(4, false, {5, 2, 4}))
  end)

  it("classic GRU (reset_after = false), bidirectional, lengths", function()
    recur.manual_seed(4)
    local m = nn.GRU(D, H, {num_layers = 2, bidirectional = true, reset_after = false})
    check(m, inputs(4, false, {1, 5, 3}))
  end)

  it("without biases, batch_first", function()
    recur.manual_seed(5)
    local m = nn.LSTM(D, H, {bias = false, batch_first = true})
    recur.manual_seed(6)
    check(m, recur.randn(B, Tn, D, "float64"))
  end)

  it("a mixed Stack (GRU under LSTM under RNN) with dropout between layers", function()
    recur.manual_seed(8)
    local m = nn.Stack(D, H, {"gru", "lstm", "rnn_tanh"}, {bidirectional = true, dropout = 0.3})
    local r = check(m, inputs(6, true, {5, 3, 1}))
    assert.is_not_nil(r.inputs[3])
  end)

  it("a single Recurrent layer in reverse, with h0, c0 and lengths", function()
    recur.manual_seed(9)
    local m = nn.Recurrent("lstm", D, H, {reverse = true})
    recur.manual_seed(10)
    check(m, {recur.randn(Tn, B, D, "float64"), recur.randn(B, H, "float64"),
              recur.randn(B, H, "float64"), recur.tensor({2, 5, 4}, "int64")})
  end)
end)

describe("stacks", function()
  it("an LSTM layer over a GRU layer equals the two layers run by hand", function()
    recur.manual_seed(11)
    local m = nn.Stack(3, 4, {"gru", "lstm"})
    local x = recur.randn(5, 2, 3)
    local y, hn, cn = m:forward(x)
    local l0, l1 = m.layers[1][1], m.layers[2][1]
    local y0, h0n = l0:forward(x)
    local y1, h1n, c1n = l1:forward(y0)
    assert(max_abs_diff(y, y1) < 1e-6)
    assert(max_abs_diff(hn:select(1, 1), h0n) < 1e-6)
    assert(max_abs_diff(hn:select(1, 2), h1n) < 1e-6)
    assert(max_abs_diff(cn:select(1, 2), c1n) < 1e-6)
    assert.are.equal(0, cn:select(1, 1):abs():max())   -- the GRU layer has no cell state
  end)

  it("step() reproduces forward one time step at a time", function()
    recur.manual_seed(12)
    local m = nn.Stack(3, 4, {"lstm", "gru", "rnn_tanh"})
    local x = recur.randn(6, 2, 3)
    local y, hn, cn = m:forward(x)
    local h, c = recur.zeros(3, 2, 4), recur.zeros(3, 2, 4)
    for t = 1, 6 do
      local yt = m:step(x:select(1, t):contiguous(), h, c)
      assert(max_abs_diff(yt, y:select(1, t)) < 1e-5)
    end
    assert(max_abs_diff(h, hn) < 1e-5)
    assert(max_abs_diff(c, cn) < 1e-5)
  end)

  it("a bidirectional stack reuses its output buffer and reads it safely as an input", function()
    recur.manual_seed(13)
    local m = nn.GRU(4, 2, {bidirectional = true})   -- 2H = D: its output can be its input
    local x = recur.randn(5, 3, 4)
    local y1 = m:forward(x)
    local first = y1:clone()
    local twice = m:forward(y1:clone()):clone()      -- f(f(x)) from a separate tensor
    assert.are.equal(0, max_abs_diff(y1, twice))      -- y1 was the buffer: overwritten
    local y3 = m:forward(x)
    assert.is_true(y3:shares_storage(y1))
    assert.are.equal(0, max_abs_diff(y3, first))
    assert.are.equal(0, max_abs_diff(m:forward(y3), twice))   -- its own buffer as the input
  end)

  it("dropout between layers is active in training and off in evaluate mode", function()
    recur.manual_seed(13)
    local m = nn.LSTM(3, 8, {num_layers = 2, dropout = 0.5})
    local x = recur.randn(4, 2, 3)
    m:evaluate()
    local y1 = m:forward(x):clone()   -- outputs are the module's buffers: keep copies
    local y2 = m:forward(x):clone()
    assert.are.equal(0, max_abs_diff(y1, y2))
    m:train()
    local y3 = m:forward(x):clone()
    assert(max_abs_diff(y1, y3) > 1e-3)
  end)

  it("gradients accumulate over backward calls until zero_grad", function()
    recur.manual_seed(14)
    local m = nn.GRU(3, 4)
    local x, gy = recur.randn(5, 2, 3), recur.randn(5, 2, 4)
    m:forward(x); m:backward(x, gy)
    local g1 = m:named_gradients().weight_hh_l0:clone()
    m:forward(x); m:backward(x, gy)
    assert(max_abs_diff(m:named_gradients().weight_hh_l0, g1 * 2) < 1e-5)
    m:zero_grad()
    assert.are.equal(0, m:named_gradients().weight_hh_l0:abs():max())
  end)
end)

  it("a layer writes y and gx into its buffers, refills gx from zero and keeps states apart", function()
    recur.manual_seed(15)
    local m = nn.Recurrent("lstm", 4, 4)
    local x, gy = recur.randn(6, 3, 4), recur.randn(6, 3, 4)
    local y1, h1 = m:forward(x)
    local y1_copy, h1_copy = y1:clone(), h1:clone()
    local gx1 = m:backward(x, gy)
    local gx1_copy = gx1:clone()
    local y2, h2 = m:forward(x, h1)          -- the carried state is read, not overwritten
    assert.is_true(y2:shares_storage(y1))
    assert.is_false(h2:shares_storage(h1))
    assert.are.equal(0, max_abs_diff(h1, h1_copy))
    local gx2 = m:backward(x, gy)
    assert.is_true(gx2:shares_storage(gx1))
    local y3 = m:forward(x)                  -- the same input again: the same numbers
    assert.are.equal(0, max_abs_diff(y3, y1_copy))
    local gx3 = m:backward(x, gy)            -- not added onto the previous gx
    assert.are.equal(0, max_abs_diff(gx3, gx1_copy))
    -- its own output as its input (D = H): y goes to a new block, x stays intact
    local x_is_y = m:forward(x)
    local y4 = m:forward(x_is_y)
    assert.is_false(y4:shares_storage(x_is_y))
    assert.are.equal(0, max_abs_diff(x_is_y, y1_copy))
    local expect = nn.Recurrent("lstm", 4, 4)
    expect:load_state_dict(m:state_dict())
    assert(max_abs_diff(y4, expect:forward(y1_copy)) < 1e-6)
  end)

describe("truncated BPTT (bptt_truncate)", function()
  it("k = 0 keeps each output's gradient at its own step (hand-computed, tanh RNN)", function()
    recur.manual_seed(15)
    local Tn, B, D, H = 4, 2, 2, 3
    local m = nn.RNN(D, H, {bptt_truncate = 0, dtype = "float64"})
    local x, gy = recur.randn(Tn, B, D, "float64"), recur.randn(Tn, B, H, "float64")
    local y = m:forward(x)
    local gx = m:backward(x, gy)
    -- dpre_t = gy_t (1 - h_t^2); nothing flows to h_{t-1}
    local dpre = gy:mul(y:mul(y):neg():add(1)):view(Tn * B, H)
    local hprev = recur.zeros(Tn, B, H, "float64")
    hprev:narrow(1, 2, Tn - 1):copy_(y:narrow(1, 1, Tn - 1))
    local g = m:named_gradients()
    assert(max_abs_diff(g.weight_hh_l0, recur.matmul(dpre, hprev:view(Tn * B, H), true, false)) < 1e-12)
    assert(max_abs_diff(g.weight_ih_l0, recur.matmul(dpre, x:view(Tn * B, D), true, false)) < 1e-12)
    assert(max_abs_diff(g.bias_hh_l0, dpre:sum(1)) < 1e-12)
    assert(max_abs_diff(gx:view(Tn * B, D), recur.matmul(dpre, m.weight_ih_l0)) < 1e-12)
  end)

  it("k >= T - 1 equals full BPTT; a small k differs", function()
    recur.manual_seed(16)
    local full = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true, dtype = "float64"})
    local trunc = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true, dtype = "float64", bptt_truncate = 5})
    local short = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true, dtype = "float64", bptt_truncate = 1})
    trunc:load_state_dict(full:state_dict())
    short:load_state_dict(full:state_dict())
    local x, gy = recur.randn(6, 2, 3, "float64"), recur.randn(6, 2, 8, "float64")
    local gx = {}
    for i, m in ipairs({full, trunc, short}) do
      m:forward(x)
      gx[i] = m:backward(x, gy)
    end
    assert(max_abs_diff(gx[1], gx[2]) < 1e-12)
    assert(max_abs_diff(full:named_gradients().weight_hh_l0, trunc:named_gradients().weight_hh_l0) < 1e-12)
    assert(max_abs_diff(full:named_gradients().weight_hh_l0, short:named_gradients().weight_hh_l0) > 1e-4)
  end)

  it("rejects a negative or fractional k", function()
    assert.matches("bptt_truncate", select(2, pcall(nn.GRU, 3, 4, {bptt_truncate = -1})))
    assert.matches("bptt_truncate", select(2, pcall(nn.GRU, 3, 4, {bptt_truncate = 1.5})))
  end)
end)

describe("errors", function()
  it("name unknown options, cells and nonlinearities", function()
    assert.has_error(function() nn.LSTM(3, 4, {bidirectonal = true}) end)
    assert.matches("unknown option 'bidirectonal'", select(2, pcall(nn.LSTM, 3, 4, {bidirectonal = true})))
    assert.matches("nonlinearity", select(2, pcall(nn.RNN, 3, 4, {nonlinearity = "sigmoid"})))
    assert.matches("unknown cell 'lstn'", select(2, pcall(nn.Stack, 3, 4, {"lstn"})))
    assert.matches("forget_bias", select(2, pcall(nn.Stack, 3, 4, {"gru"}, {forget_bias = 1})))
    assert.matches("reset_after", select(2, pcall(nn.Stack, 3, 4, {"lstm"}, {reset_after = false})))
    assert.matches("dropout", select(2, pcall(nn.GRU, 3, 4, {dropout = 2, num_layers = 2})))
    assert.matches("single layer", select(2, pcall(nn.GRU, 3, 4, {dropout = 0.5})))
  end)

  it("name wrong input and state shapes", function()
    local m = nn.LSTM(3, 4, {num_layers = 2})
    assert.matches("expected input size 3", select(2, pcall(m.forward, m, recur.zeros(5, 2, 7))))
    assert.matches("h0 has shape %(1x2x4%), expected %(2x2x4%)",
      select(2, pcall(m.forward, m, recur.zeros(5, 2, 3), recur.zeros(1, 2, 4))))
    assert.matches("float64 but the module is float32",
      select(2, pcall(m.forward, m, recur.zeros(5, 2, 3, "float64"))))
    local g = nn.GRU(3, 4)
    assert.matches("no LSTM layer", select(2, pcall(g.forward, g, recur.zeros(5, 2, 3), nil, recur.zeros(1, 2, 4))))
    assert.matches("lengths", select(2, pcall(g.forward, g, recur.zeros(5, 2, 3), nil, nil, recur.zeros(3))))
  end)

  it("step refuses a bidirectional network", function()
    local m = nn.GRU(3, 4, {bidirectional = true})
    assert.matches("unidirectional", select(2, pcall(m.step, m, recur.zeros(2, 3), recur.zeros(2, 2, 4))))
  end)
end)
