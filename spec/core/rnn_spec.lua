-- The fused recurrent kernels behind core.rnn_layer (csrc/rnn.c): forward against a
-- plain-Lua implementation of the equations, every gradient against central finite
-- differences in float64, truncated BPTT against its definition, step() against
-- forward, float32 against float64, the memory formula, and the errors.
local recur = require "recur"
local core = recur.core

local F64 = "float64"
local GATES = {lstm = 4, gru = 3, rnn_tanh = 1, rnn_relu = 1, rnn_identity = 1}

local function randn(size, scale, dtype)
  return recur.randn(size, dtype or F64):mul(scale or 1)
end

local function zeros_like(t) return recur.zeros(t:size(), t:dtype()) end

local function max_abs(t) return t:abs():max() end

-- max |a - b| relative to the larger of the two tensors' largest entries
local function rel_err(a, b)
  local scale = math.max(max_abs(a), max_abs(b), 1e-12)
  return max_abs(a - b) / scale
end

-- lengths as an int64 tensor, or nil
local function lengths_tensor(list) return list and recur.tensor(list, "int64") or nil end

-- A problem: a layer, its inputs and parameters, and the upstream gradients of the
-- loss sum(y*gy) + sum(hn*ghn) + sum(cn*gcn).
-- c = {cell=, reset_after=, reverse=, T=, B=, D=, H=, bias=true (false: none, "ih" or "hh":
--      that one only), h0=, c0=, lengths={...}, gy=true, ghn=, gcn=}
local function problem(c)
  recur.manual_seed(c.seed or 7)
  local T, B, D, H = c.T or 5, c.B or 3, c.D or 3, c.H or 4
  local G = GATES[c.cell]
  local opts = {dtype = F64, reverse = c.reverse}
  if c.cell == "gru" then opts.reset_after = c.reset_after ~= false end
  local p = {cell = c.cell, opts = opts, T = T, B = B, D = D, H = H, lstm = c.cell == "lstm"}
  p.layer = core.rnn_layer(c.cell, D, H, opts)
  p.x = randn({T, B, D})
  p.w_ih = randn({G * H, D}, 0.6)
  p.w_hh = randn({G * H, H}, 0.6)
  if c.bias ~= false and c.bias ~= "hh" then p.b_ih = randn({G * H}, 0.3) end
  if c.bias ~= false and c.bias ~= "ih" then p.b_hh = randn({G * H}, 0.3) end
  if c.h0 then p.h0 = randn({B, H}, 0.5) end
  if c.c0 and p.lstm then p.c0 = randn({B, H}, 0.5) end
  p.lengths = lengths_tensor(c.lengths)
  if c.gy ~= false then p.gy = randn({T, B, H}) end
  if c.ghn then p.ghn = randn({B, H}) end
  if c.gcn and p.lstm then p.gcn = randn({B, H}) end
  return p
end

local function forward(p)
  return p.layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, p.c0, p.lengths)
end

local function loss(p)
  local y, hn, cn = forward(p)
  local l = 0
  if p.gy then l = l + (y * p.gy):sum() end
  if p.ghn then l = l + (hn * p.ghn):sum() end
  if p.gcn then l = l + (cn * p.gcn):sum() end
  return l
end

-- Analytic gradients: one forward, one backward into fresh zero gradients.
local function analytic(p, k)
  forward(p)
  local g = {w_ih = zeros_like(p.w_ih), w_hh = zeros_like(p.w_hh)}
  if p.b_ih then g.b_ih = zeros_like(p.b_ih) end
  if p.b_hh then g.b_hh = zeros_like(p.b_hh) end
  g.x, g.h0, g.c0 = p.layer:backward(p.gy, p.ghn, p.gcn, g.w_ih, g.w_hh, g.b_ih, g.b_hh, k)
  return g
end

-- Central differences of loss(p) with respect to every element of p[name]. Leaves
-- p[name] as it found it.
local function numeric(p, name, eps)
  eps = eps or 1e-6
  local t = p[name]
  local flat = t:view(-1)
  local g = zeros_like(t)
  local gflat = g:view(-1)
  for i = 1, flat:numel() do
    local v = flat:get(i)
    flat:set(i, v + eps)
    local lp = loss(p)
    flat:set(i, v - eps)
    local lm = loss(p)
    flat:set(i, v)
    gflat:set(i, (lp - lm) / (2 * eps))
  end
  return g
end

-- Checks every gradient of p against finite differences; returns the worst error.
local function check_gradients(p)
  local g = analytic(p)
  local names = {"x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0"}
  local worst = 0
  for _, name in ipairs(names) do
    if p[name] then
      local want = numeric(p, name)
      local got = g[name]
      assert(got, "no analytic gradient for " .. name)
      local err = rel_err(got, want)
      assert(err < 1e-6, string.format("%s %s: relative error %.3g", p.cell, name, err))
      assert(max_abs(want) > 1e-3, name .. ": the loss should depend on it")
      worst = math.max(worst, err)
    end
  end
  -- without h0/c0 the kernels still return their gradient (of the zero initial state)
  if not p.h0 then
    p.h0 = zeros_like(g.h0)
    local err = rel_err(g.h0, numeric(p, "h0"))
    assert(err < 1e-6, string.format("%s implicit h0: relative error %.3g", p.cell, err))
    p.h0 = nil
  end
  return worst
end

-- The cells and variants every check runs over.
local CELLS = {
  {cell = "lstm"},
  {cell = "gru", reset_after = true},
  {cell = "gru", reset_after = false},
  {cell = "rnn_tanh"},
  {cell = "rnn_relu"},
  {cell = "rnn_identity"},
}

local function label(c)
  if c.cell == "gru" then return c.reset_after and "gru (reset_after)" or "gru (classic)" end
  return c.cell
end

local function with(base, extra)
  local c = {}
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

local VARIANTS = {
  {"zero initial state, loss on y", {}},
  {"h0/c0 given, gradients of the final states", {h0 = true, c0 = true, ghn = true, gcn = true}},
  {"padded lengths", {h0 = true, c0 = true, ghn = true, gcn = true, lengths = {5, 2, 4}}},
  {"reverse", {reverse = true, h0 = true, c0 = true, ghn = true, gcn = true}},
  {"reverse with padded lengths", {reverse = true, h0 = true, c0 = true, ghn = true, gcn = true,
                                   lengths = {3, 5, 1}}},
  {"no bias, all lengths below T", {bias = false, h0 = true, c0 = true, ghn = true,
                                    lengths = {4, 2, 3}}},
  {"loss on the final states only", {gy = false, ghn = true, gcn = true, h0 = true, c0 = true}},
  -- the kernels share one pass of column sums between the two bias gradients
  {"bias_ih only", {bias = "ih", h0 = true, c0 = true, ghn = true}},
  {"bias_hh only", {bias = "hh", h0 = true, c0 = true, ghn = true}},
}

---------------------------------------------------------------------------------------
-- Plain-Lua forward: the equations of include/recur/rnn.h written out over Lua tables.

local function tanh(v)
  local e = math.exp(-2 * math.abs(v))
  local r = (1 - e) / (1 + e)
  return v < 0 and -r or r
end
local function sigmoid(v) return 1 / (1 + math.exp(-v)) end

local function reference_forward(cell, reset_after, reverse, x, w_ih, w_hh, b_ih, b_hh, h0, c0,
                                 lengths)
  local T, B, D = #x, #x[1], #x[1][1]
  local GH, H = #w_ih, #w_hh[1]
  local y, hn, cn = {}, {}, {}
  for t = 1, T do
    y[t] = {}
    for b = 1, B do
      y[t][b] = {}
      for j = 1, H do y[t][b][j] = 0 end
    end
  end
  local function affine(w, v, bias, row)
    local s = bias and bias[row] or 0
    for m = 1, #v do s = s + w[row][m] * v[m] end
    return s
  end
  for b = 1, B do
    local h, c = {}, {}
    for j = 1, H do
      h[j] = h0 and h0[b][j] or 0
      c[j] = c0 and c0[b][j] or 0
    end
    local L = lengths and lengths[b] or T
    for s = 1, L do
      local t = reverse and L - s + 1 or s
      local gi, gh = {}, {}
      for k = 1, GH do
        gi[k] = affine(w_ih, x[t][b], b_ih, k)
        gh[k] = affine(w_hh, h, b_hh, k)
      end
      local nh = {}
      if cell == "lstm" then
        for j = 1, H do
          local i = sigmoid(gi[j] + gh[j])
          local f = sigmoid(gi[H + j] + gh[H + j])
          local g = tanh(gi[2 * H + j] + gh[2 * H + j])
          local o = sigmoid(gi[3 * H + j] + gh[3 * H + j])
          c[j] = f * c[j] + i * g
          nh[j] = o * tanh(c[j])
        end
      elseif cell == "gru" then
        local r, z, rh = {}, {}, {}
        for j = 1, H do
          r[j] = sigmoid(gi[j] + gh[j])
          z[j] = sigmoid(gi[H + j] + gh[H + j])
          rh[j] = r[j] * h[j]
        end
        for j = 1, H do
          local n
          if reset_after then
            n = tanh(gi[2 * H + j] + r[j] * gh[2 * H + j])
          else
            n = tanh(gi[2 * H + j] + affine(w_hh, rh, b_hh, 2 * H + j))
          end
          nh[j] = (1 - z[j]) * n + z[j] * h[j]
        end
      else
        for j = 1, H do
          local v = gi[j] + gh[j]
          if cell == "rnn_tanh" then nh[j] = tanh(v)
          elseif cell == "rnn_relu" then nh[j] = math.max(v, 0)
          else nh[j] = v end -- rnn_identity
        end
      end
      h = nh
      for j = 1, H do y[t][b][j] = h[j] end
    end
    hn[b], cn[b] = h, c
  end
  return y, hn, cn
end

local function totable(t) return t and t:totable() end

local function max_table_diff(a, b)
  if type(a) == "number" then return math.abs(a - b) end
  local m = 0
  assert(#a == #b, "shape mismatch")
  for i = 1, #a do m = math.max(m, max_table_diff(a[i], b[i])) end
  return m
end

---------------------------------------------------------------------------------------
-- Truncated BPTT by its definition: for every output, a separate forward from the
-- (detached) state k+1 steps earlier and a full backward of that one output, summed.

local function truncated_reference(p, k)
  local T, B, H = p.T, p.B, p.H
  local reverse = p.opts.reverse
  local layer = core.rnn_layer(p.cell, p.D, H, p.opts)
  local g = {w_ih = zeros_like(p.w_ih), w_hh = zeros_like(p.w_hh), x = zeros_like(p.x),
             h0 = recur.zeros({B, H}, F64)}
  if p.b_ih then g.b_ih = zeros_like(p.b_ih) end
  if p.b_hh then g.b_hh = zeros_like(p.b_hh) end
  if p.lstm then g.c0 = recur.zeros({B, H}, F64) end
  for b = 1, B do
    local L = p.lengths and p.lengths:get(b) or T
    local xb = p.x:narrow(2, b, 1)
    local h0b = p.h0 and p.h0:narrow(1, b, 1):contiguous()
    local c0b = p.c0 and p.c0:narrow(1, b, 1):contiguous()
    for q = 0, L - 1 do -- the output of the q-th processed step
      local lo = math.max(0, q - k)
      local n = q - lo + 1
      -- 1-based first time of the chunk (positions lo..q) and of the prefix (0..lo-1)
      local chunk_t, prefix_t, out_i
      if reverse then
        chunk_t, prefix_t, out_i = L - q, L - lo + 1, 1
      else
        chunk_t, prefix_t, out_i = lo + 1, 1, n
      end
      local hs, cs = h0b, c0b
      if lo > 0 then
        local _, hp, cp = layer:forward(xb:narrow(1, prefix_t, lo), p.w_ih, p.w_hh, p.b_ih,
                                        p.b_hh, h0b, c0b)
        hs, cs = hp, cp
      end
      local chunk = xb:narrow(1, chunk_t, n)
      layer:forward(chunk, p.w_ih, p.w_hh, p.b_ih, p.b_hh, hs, cs)
      local gy = recur.zeros({n, 1, H}, F64)
      local out_t = chunk_t + out_i - 1
      if p.gy then gy:narrow(1, out_i, 1):copy_(p.gy:narrow(1, out_t, 1):narrow(2, b, 1)) end
      local ghn, gcn
      if q == L - 1 then -- the final state is an output of the last step
        ghn = p.ghn and p.ghn:narrow(1, b, 1):contiguous()
        gcn = p.gcn and p.gcn:narrow(1, b, 1):contiguous()
      end
      local gx, gh0, gc0 = layer:backward(gy, ghn, gcn, g.w_ih, g.w_hh, g.b_ih, g.b_hh)
      g.x:narrow(1, chunk_t, n):narrow(2, b, 1):add_(gx)
      if lo == 0 then
        g.h0:narrow(1, b, 1):add_(gh0)
        if p.lstm then g.c0:narrow(1, b, 1):add_(gc0) end
      end
    end
  end
  return g
end

---------------------------------------------------------------------------------------

describe("rnn_layer", function()
  it("runs under Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("describes itself", function()
    local l = core.rnn_layer("lstm", 3, 5)
    assert.are.equal("lstm", l:cell())
    local D, H, G = l:sizes()
    assert.are.same({3, 5, 4}, {D, H, G})
    assert.are.equal("gru", core.rnn_layer("gru", 2, 2, {reset_after = false}):cell())
    assert.matches("reset_after=false", tostring(core.rnn_layer("gru", 2, 2, {reset_after = false})))
    assert.are.equal("rnn_relu", core.rnn_layer("rnn_relu", 2, 2):cell())
    assert.are.equal("rnn_identity", core.rnn_layer("rnn_identity", 2, 2):cell())
    assert.matches("rnn_identity, 2 %-> 3", tostring(core.rnn_layer("rnn_identity", 2, 3)))
  end)

  describe("forward matches the equations written out in Lua", function()
    for _, base in ipairs(CELLS) do
      for _, v in ipairs(VARIANTS) do
        it(label(base) .. ", " .. v[1], function()
          local p = problem(with(base, v[2]))
          local y, hn, cn = forward(p)
          local lens = p.lengths and p.lengths:totable()
          local ry, rhn, rcn = reference_forward(p.cell, base.reset_after ~= false, p.opts.reverse,
            p.x:totable(), p.w_ih:totable(), p.w_hh:totable(), totable(p.b_ih), totable(p.b_hh),
            totable(p.h0), totable(p.c0), lens)
          assert.is_true(max_table_diff(y:totable(), ry) < 1e-12)
          assert.is_true(max_table_diff(hn:totable(), rhn) < 1e-12)
          if p.lstm then assert.is_true(max_table_diff(cn:totable(), rcn) < 1e-12)
          else assert.is_nil(cn) end
        end)
      end
    end

    it("classic gru, one step computed by hand", function()
      -- D = 1, H = 1, B = 1: r = s(0.5*1 + 0.2 + -0.4*0.3 + 0.1) = s(0.68),
      -- z = s(-0.3 + 0 + 0.6*0.3 + 0) = s(-0.12), n = tanh(1*1 + 0.1 + 0.7*(r*0.3) + -0.2)
      local l = core.rnn_layer("gru", 1, 1, {reset_after = false, dtype = F64})
      local x = recur.tensor({{{1}}}, F64)
      local w_ih = recur.tensor({{0.5}, {-0.3}, {1}}, F64)
      local w_hh = recur.tensor({{-0.4}, {0.6}, {0.7}}, F64)
      local b_ih = recur.tensor({0.2, 0, 0.1}, F64)
      local b_hh = recur.tensor({0.1, 0, -0.2}, F64)
      local h0 = recur.tensor({{0.3}}, F64)
      local y, hn = l:forward(x, w_ih, w_hh, b_ih, b_hh, h0)
      local r = 1 / (1 + math.exp(-0.68))
      local z = 1 / (1 + math.exp(0.12))
      local n = tanh(0.9 + 0.7 * r * 0.3)
      local want = (1 - z) * n + z * 0.3
      assert.is_true(math.abs(hn:get(1, 1) - want) < 1e-15)
      assert.is_true(math.abs(y:get(1, 1, 1) - want) < 1e-15)
      -- with one unit and no bias the two GRU forms coincide; with two units,
      -- W_hn (r*h) and r*(W_hn h) differ:
      local la = core.rnn_layer("gru", 1, 2, {dtype = F64})
      local lc = core.rnn_layer("gru", 1, 2, {dtype = F64, reset_after = false})
      recur.manual_seed(3)
      local W_ih, W_hh = randn({6, 1}), randn({6, 2}, 2)
      local x2, h2 = randn({1, 1, 1}), randn({1, 2})
      local ya = la:forward(x2, W_ih, W_hh, nil, nil, h2)
      local yc = lc:forward(x2, W_ih, W_hh, nil, nil, h2)
      assert.is_true(max_abs(ya - yc) > 1e-2)
    end)
  end)

  describe("the identity cell (the linear RNN)", function()
    -- D = 1, H = 2, B = 1, two steps, every weight chosen by hand:
    --   h_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh with no nonlinearity
    local function two_steps(cell)
      local l = core.rnn_layer(cell, 1, 2, {dtype = F64})
      local x = recur.tensor({{{1}}, {{-2}}}, F64)
      local w_ih = recur.tensor({{0.5}, {-1}}, F64)
      local w_hh = recur.tensor({{2, 0}, {1, -1}}, F64)
      local b_ih = recur.tensor({0.25, 0}, F64)
      local b_hh = recur.tensor({0, 0.5}, F64)
      local h0 = recur.tensor({{1, 3}}, F64)
      return l:forward(x, w_ih, w_hh, b_ih, b_hh, h0)
    end

    it("computes the linear recurrence, by hand", function()
      -- t = 1: (0.5 + 0.25 + 2*1 + 0,   -1 + 0 + (1 - 3) + 0.5)   = (2.75, -2.5)
      -- t = 2: (-1 + 0.25 + 2*2.75,     2 + (2.75 + 2.5) + 0.5)   = (4.75, 7.75)
      local y, hn = two_steps("rnn_identity")
      assert.are.same({{{2.75, -2.5}}, {{4.75, 7.75}}}, y:totable())
      assert.are.same({{4.75, 7.75}}, hn:totable())
      -- a plain step from the same state agrees
      local l = core.rnn_layer("rnn_identity", 1, 2, {dtype = F64})
      local h = recur.tensor({{2.75, -2.5}}, F64)
      l:step(recur.tensor({{-2}}, F64), recur.tensor({{0.5}, {-1}}, F64),
             recur.tensor({{2, 0}, {1, -1}}, F64), recur.tensor({0.25, 0}, F64),
             recur.tensor({0, 0.5}, F64), h)
      assert.are.same({{4.75, 7.75}}, h:totable())
    end)

    it("differs from tanh and relu on the same weights", function()
      local yi = two_steps("rnn_identity")
      local yt = two_steps("rnn_tanh")
      local yr = two_steps("rnn_relu")
      -- tanh bounds every output by 1; relu zeroes the negative one
      assert.is_true(max_abs(yt) < 1)
      assert.are.equal(0, yr:get(1, 1, 2))
      assert.is_true(max_abs(yi - yt) > 1)
      assert.is_true(max_abs(yi - yr) > 1)
    end)

    it("passes its gradient through unchanged: dh0 = W_hh^T dhn for one step", function()
      local l = core.rnn_layer("rnn_identity", 1, 2, {dtype = F64})
      local w_ih, w_hh = recur.tensor({{0.5}, {-1}}, F64), recur.tensor({{2, 0}, {1, -1}}, F64)
      -- a large state, where tanh would saturate and relu cut the negative unit
      l:forward(recur.tensor({{{3}}}, F64), w_ih, w_hh, nil, nil, recur.tensor({{10, -20}}, F64))
      local gw_ih, gw_hh = recur.zeros({2, 1}, F64), recur.zeros({2, 2}, F64)
      local gx, gh0 = l:backward(nil, recur.tensor({{1, 1}}, F64), nil, gw_ih, gw_hh)
      assert.are.same({{3, -1}}, gh0:totable())   -- (2 + 1, 0 - 1)
      assert.are.same({{{-0.5}}}, gx:totable())   -- 0.5 - 1
      assert.are.same({{3}, {3}}, gw_ih:totable())
      assert.are.same({{10, -20}, {10, -20}}, gw_hh:totable())
    end)
  end)

  describe("gradients match finite differences (float64)", function()
    for _, base in ipairs(CELLS) do
      for _, v in ipairs(VARIANTS) do
        it(label(base) .. ", " .. v[1], function()
          check_gradients(problem(with(base, v[2])))
        end)
      end
    end

    it("a longer batch with T=4, B=2 and every option at once (lstm, relu)", function()
      for _, cell in ipairs({"lstm", "rnn_relu"}) do
        check_gradients(problem({cell = cell, T = 4, B = 2, D = 3, H = 4, h0 = true, c0 = true,
                                 ghn = true, gcn = true, lengths = {4, 3}, reverse = true,
                                 seed = 11}))
      end
    end)
  end)

  describe("padding", function()
    it("freezes the state and zeroes the outputs past each length", function()
      for _, base in ipairs(CELLS) do
        local p = problem(with(base, {h0 = true, c0 = true, lengths = {5, 2, 4}}))
        local y, hn = forward(p)
        -- sequence 2 stops after step 2: its outputs at t = 3..5 are zero and hn is y[2]
        assert.are.equal(0, max_abs(y:narrow(1, 3, 3):narrow(2, 2, 1)))
        assert.are.equal(0, max_abs(hn:narrow(1, 2, 1) - y:select(1, 2):narrow(1, 2, 1)))
        -- and the same sequence alone, unpadded, gives the same numbers
        local l1 = core.rnn_layer(p.cell, p.D, p.H, p.opts)
        local y1, hn1 = l1:forward(p.x:narrow(1, 1, 2):narrow(2, 2, 1), p.w_ih, p.w_hh, p.b_ih,
                                   p.b_hh, p.h0:narrow(1, 2, 1), p.c0 and p.c0:narrow(1, 2, 1))
        assert.is_true(max_abs(y1 - y:narrow(1, 1, 2):narrow(2, 2, 1)) < 1e-15)
        assert.is_true(max_abs(hn1 - hn:narrow(1, 2, 1)) < 1e-15)
      end
    end)

    it("reverse runs each sequence from its own last step", function()
      local p = problem({cell = "lstm", reverse = true, h0 = true, c0 = true, lengths = {3, 5, 1}})
      local y, hn = forward(p)
      local l1 = core.rnn_layer("lstm", p.D, p.H, p.opts)
      local y1, hn1 = l1:forward(p.x:narrow(1, 1, 3):narrow(2, 1, 1), p.w_ih, p.w_hh, p.b_ih,
                                 p.b_hh, p.h0:narrow(1, 1, 1), p.c0:narrow(1, 1, 1))
      assert.is_true(max_abs(y1 - y:narrow(1, 1, 3):narrow(2, 1, 1)) < 1e-15)
      assert.is_true(max_abs(hn1 - hn:narrow(1, 1, 1)) < 1e-15)
      -- reversed, the final state is the output at t = 1
      assert.are.equal(0, max_abs(hn - y:select(1, 1)))
    end)
  end)

  describe("bptt_truncate", function()
    local CASES = {
      {"forward", {h0 = true, c0 = true, ghn = true, gcn = true}},
      {"reverse", {reverse = true, h0 = true, c0 = true, ghn = true, gcn = true}},
      {"padded lengths", {h0 = true, c0 = true, ghn = true, gcn = true, lengths = {5, 2, 4}}},
      {"reverse, padded lengths", {reverse = true, h0 = true, c0 = true, ghn = true, gcn = true,
                                   lengths = {3, 5, 1}}},
    }
    for _, base in ipairs(CELLS) do
      for _, case in ipairs(CASES) do
        it(label(base) .. ", " .. case[1] .. ", matches its definition for k = 0..3", function()
          local p = problem(with(base, case[2]))
          local full = analytic(p)
          for k = 0, 3 do
            local got = analytic(p, k)
            local want = truncated_reference(p, k)
            for _, name in ipairs({"x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0"}) do
              if want[name] then
                local err = rel_err(got[name], want[name])
                assert(err < 1e-12, string.format("k=%d %s: relative error %.3g", k, name, err))
              end
            end
            -- the truncation must change something, or this test proves nothing
            assert.is_true(rel_err(got.w_hh, full.w_hh) > 1e-6)
          end
        end)
      end
    end

    it("truncates nothing when k >= T-1", function()
      for _, base in ipairs(CELLS) do
        local p = problem(with(base, {h0 = true, c0 = true, ghn = true, gcn = true}))
        local full = analytic(p)
        for _, k in ipairs({4, 5, 100}) do
          local got = analytic(p, k)
          assert.is_true(rel_err(got.w_hh, full.w_hh) < 1e-14)
          assert.is_true(rel_err(got.x, full.x) < 1e-14)
          assert.is_true(rel_err(got.h0, full.h0) < 1e-14)
        end
        -- and with k = T-2 the gradient of h0 loses the contribution of the last output
        local got = analytic(p, 3)
        assert.is_true(rel_err(got.h0, full.h0) > 1e-6)
      end
    end)
  end)

  describe("at sizes where the time loops run on several threads", function()
    -- B*G*H >= 16384 (RNN_OMP_MIN in csrc/rnn.c): with B = 23 the batch is split over the
    -- threads (at least 8 sequences each, RNN_MIN_ROWS), with B = 15 one loop covers it
    -- and the pointwise passes are OpenMP loops over rows
    for _, base in ipairs(CELLS) do
      -- (the one-loop case only for the gated cells: G = 1 would need H > 1000)
      for _, B in ipairs(GATES[base.cell] > 1 and {23, 15} or {23}) do
        it(label(base) .. ", B = " .. B .. ": sampled finite differences and truncation", function()
          local H = math.ceil(17000 / (B * GATES[base.cell]))
          local lengths = {}
          for b = 1, B do lengths[b] = (b * 7) % 3 + 1 end
          local p = problem(with(base, {T = 3, B = B, D = 4, H = H, h0 = true, c0 = true,
                                        ghn = true, gcn = true, seed = 5, lengths = lengths}))
          local g = analytic(p)
          for _, name in ipairs({"x", "w_hh", "h0"}) do
            local flat, gflat = p[name]:view(-1), g[name]:view(-1)
            local scale = max_abs(g[name])
            for s = 1, 3 do
              local i = (s * 7919 * 104729) % flat:numel() + 1
              local v = flat:get(i)
              flat:set(i, v + 1e-6)
              local lp = loss(p)
              flat:set(i, v - 1e-6)
              local lm = loss(p)
              flat:set(i, v)
              local err = math.abs((lp - lm) / 2e-6 - gflat:get(i)) / scale
              assert(err < 1e-6, string.format("%s[%d]: relative error %.3g", name, i, err))
            end
          end
          -- the reference is many small runs: one thread keeps it quick on a busy machine
          local threads = recur.get_num_threads()
          recur.set_num_threads(1)
          local want = truncated_reference(p, 1)
          recur.set_num_threads(threads)
          local got = analytic(p, 1)
          for _, name in ipairs({"x", "w_ih", "w_hh", "b_hh", "h0", "c0"}) do
            if want[name] then assert(rel_err(got[name], want[name]) < 1e-12, name) end
          end
        end)
      end
    end
  end)

  describe("gradient accumulation", function()
    it("adds into the parameter gradients, so chunks can be summed", function()
      local p = problem({cell = "gru", h0 = true, ghn = true})
      forward(p)
      local gw_ih, gw_hh = zeros_like(p.w_ih), zeros_like(p.w_hh)
      local gb_ih, gb_hh = zeros_like(p.b_ih), zeros_like(p.b_hh)
      p.layer:backward(p.gy, p.ghn, nil, gw_ih, gw_hh, gb_ih, gb_hh)
      local once = gw_hh:clone()
      local gx2 = p.layer:backward(p.gy, p.ghn, nil, gw_ih, gw_hh, gb_ih, gb_hh)
      assert.is_true(max_abs(gw_hh - once * 2) < 1e-14)
      assert.is_true(max_abs(gx2) > 0)
    end)

    it("carries state and gradients across chunks exactly like one long sequence", function()
      -- forward T=6 in one go versus chunks of 4 and 2 with the state handed over; the
      -- backward of the second chunk feeds gh0 into ghn of the first.
      local p = problem({cell = "lstm", T = 6, B = 2, h0 = true, c0 = true, ghn = true, gcn = true})
      local full = analytic(p)
      local l1 = core.rnn_layer("lstm", p.D, p.H, p.opts)
      local l2 = core.rnn_layer("lstm", p.D, p.H, p.opts)
      local _, h4, c4 = l1:forward(p.x:narrow(1, 1, 4), p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, p.c0)
      l2:forward(p.x:narrow(1, 5, 2), p.w_ih, p.w_hh, p.b_ih, p.b_hh, h4, c4)
      local g = {w_ih = zeros_like(p.w_ih), w_hh = zeros_like(p.w_hh), b_ih = zeros_like(p.b_ih),
                 b_hh = zeros_like(p.b_hh)}
      local gx2, gh4, gc4 = l2:backward(p.gy:narrow(1, 5, 2), p.ghn, p.gcn, g.w_ih, g.w_hh, g.b_ih,
                                        g.b_hh)
      local gx1, gh0, gc0 = l1:backward(p.gy:narrow(1, 1, 4), gh4, gc4, g.w_ih, g.w_hh, g.b_ih,
                                        g.b_hh)
      for _, name in ipairs({"w_ih", "w_hh", "b_ih", "b_hh"}) do
        assert.is_true(rel_err(g[name], full[name]) < 1e-13, name)
      end
      assert.is_true(rel_err(gx1, full.x:narrow(1, 1, 4)) < 1e-13)
      assert.is_true(rel_err(gx2, full.x:narrow(1, 5, 2)) < 1e-13)
      assert.is_true(rel_err(gh0, full.h0) < 1e-13)
      assert.is_true(rel_err(gc0, full.c0) < 1e-13)
    end)
  end)

  describe("step", function()
    for _, base in ipairs(CELLS) do
      it(label(base) .. " matches forward one step at a time", function()
        local p = problem(with(base, {h0 = true, c0 = true}))
        local y, hn, cn = forward(p)
        local h = p.h0:clone()
        local c = p.lstm and p.c0:clone() or nil
        local hh, cc
        for t = 1, p.T do
          hh, cc = p.layer:step(p.x:select(1, t), p.w_ih, p.w_hh, p.b_ih, p.b_hh, h, c)
          assert.are.equal(h, hh) -- updated in place and returned
          assert.is_true(max_abs(h - y:select(1, t)) < 1e-14)
        end
        assert.is_true(max_abs(h - hn) < 1e-14)
        if p.lstm then
          assert.are.equal(c, cc)
          assert.is_true(max_abs(c - cn) < 1e-14)
        else
          assert.is_nil(cc)
        end
      end)
    end

    it("starts from zeros when h (and c) are nil", function()
      local p = problem({cell = "lstm"})
      local y = forward(p)
      local h, c = p.layer:step(p.x:select(1, 1), p.w_ih, p.w_hh, p.b_ih, p.b_hh)
      assert.is_true(max_abs(h - y:select(1, 1)) < 1e-14)
      assert.are.same({p.B, p.H}, c:size())
    end)

    it("does not disturb a pending backward", function()
      local p = problem({cell = "gru", h0 = true})
      local before = analytic(p)
      forward(p)
      p.layer:step(p.x:select(1, 1), p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0:clone())
      local g = {w_ih = zeros_like(p.w_ih), w_hh = zeros_like(p.w_hh), b_ih = zeros_like(p.b_ih),
                 b_hh = zeros_like(p.b_hh)}
      p.layer:backward(p.gy, nil, nil, g.w_ih, g.w_hh, g.b_ih, g.b_hh)
      assert.are.equal(0, max_abs(g.w_hh - before.w_hh))
    end)
  end)

  describe("float32", function()
    for _, base in ipairs(CELLS) do
      it(label(base) .. " agrees with float64", function()
        local p = problem(with(base, {h0 = true, c0 = true, ghn = true, gcn = true,
                                      lengths = {5, 3, 4}}))
        local y, hn, cn = forward(p)
        local g = analytic(p)
        local opts32 = {reverse = p.opts.reverse, reset_after = p.opts.reset_after}
        local l32 = core.rnn_layer(p.cell, p.D, p.H, opts32)
        local function f(t) return t and t:to("float32") end
        local y32, hn32, cn32 = l32:forward(f(p.x), f(p.w_ih), f(p.w_hh), f(p.b_ih), f(p.b_hh),
                                            f(p.h0), f(p.c0), p.lengths)
        assert.are.equal("float32", y32:dtype())
        assert.is_true(max_abs(y32:to("float64") - y) < 1e-5)
        assert.is_true(max_abs(hn32:to("float64") - hn) < 1e-5)
        if p.lstm then assert.is_true(max_abs(cn32:to("float64") - cn) < 1e-5) end
        local gw_ih, gw_hh = recur.zeros(p.w_ih:size()), recur.zeros(p.w_hh:size())
        local gb_ih, gb_hh = recur.zeros(p.b_ih:size()), recur.zeros(p.b_hh:size())
        local gx = l32:backward(f(p.gy), f(p.ghn), f(p.gcn), gw_ih, gw_hh, gb_ih, gb_hh)
        assert.is_true(rel_err(gw_hh:to("float64"), g.w_hh) < 1e-5)
        assert.is_true(rel_err(gb_ih:to("float64"), g.b_ih) < 1e-5)
        assert.is_true(rel_err(gx:to("float64"), g.x) < 1e-5)
      end)
    end

    -- p (a float64 problem with w_hh in its working range) run in float32, forward and
    -- backward with truncation k: every output and gradient within 1e-5 of float64's
    local function float32_agrees(p, k, context)
      local y, hn, cn = forward(p)
      local g = analytic(p, k or nil)
      local l32 = core.rnn_layer(p.cell, p.D, p.H, {reverse = p.opts.reverse,
                                                    reset_after = p.opts.reset_after})
      local function f(t) return t and t:to("float32") end
      local y32, hn32, cn32 = l32:forward(f(p.x), f(p.w_ih), f(p.w_hh), f(p.b_ih), f(p.b_hh),
                                          f(p.h0), f(p.c0), p.lengths)
      local gw_ih, gw_hh = recur.zeros(p.w_ih:size()), recur.zeros(p.w_hh:size())
      local gb_ih, gb_hh = recur.zeros(p.b_ih:size()), recur.zeros(p.b_hh:size())
      local gx, gh0, gc0 = l32:backward(f(p.gy), f(p.ghn), f(p.gcn), gw_ih, gw_hh, gb_ih, gb_hh,
                                        k or nil)
      local compared = {y = {y32, y}, hn = {hn32, hn}, w_ih = {gw_ih, g.w_ih}, w_hh = {gw_hh, g.w_hh},
                        b_ih = {gb_ih, g.b_ih}, b_hh = {gb_hh, g.b_hh}, x = {gx, g.x}, h0 = {gh0, g.h0}}
      if p.lstm then compared.cn, compared.c0 = {cn32, cn}, {gc0, g.c0} end
      for name, pair in pairs(compared) do
        local err = rel_err(pair[1]:to("float64"), pair[2])
        assert(err < 1e-5, string.format("%s, k = %s, %s: relative error %.3g", context, tostring(k),
                                         name, err))
      end
    end

    -- float32 runs its steps on a packed copy of w_hh (csrc/rnn_gemm.c) from 4 rows per
    -- product, and splits the batch over threads from B*G*H >= 16384; float64 keeps to
    -- BLAS. Sizes off the kernels' 16 and 32-column panels, an odd batch, and truncation.
    for _, base in ipairs(CELLS) do
      for _, threads in ipairs({1, 2}) do
        it(label(base) .. " with packed steps, " .. threads .. " thread(s), agrees with float64", function()
          local G = GATES[base.cell]
          local B = 17
          local H = math.ceil(16384 / (B * G)) + 3
          local saved_threads = recur.get_num_threads()
          recur.set_num_threads(threads)
          for _, k in ipairs({false, 2}) do
            local p = problem(with(base, {T = 6, B = B, D = 5, H = H, h0 = true, c0 = true, ghn = true,
                                          gcn = true, reverse = k and true or nil,
                                          lengths = {6, 3, 5, 6, 1, 6, 2, 6, 6, 4, 6, 6, 5, 6, 6, 3, 6}}))
            p.w_hh = p.w_hh:mul(2 / math.sqrt(H)) -- gates in their working range, not saturated
            float32_agrees(p, k, threads .. " thread(s)")
          end
          recur.set_num_threads(saved_threads)
        end)
      end
    end

    -- Below 16 sequences float32 splits the hidden units over the threads instead (from
    -- B*G*H*H >= 32768 multiply-adds a step), each thread multiplying h by its own rows
    -- of w_hh (and dG by its columns; from 4 sequences on, its panels of a copy packed
    -- per gate) and meeting the others once a step (rnn_generic.h). H off the 32-unit
    -- groups of a share and off the kernels' 16 lanes.
    for _, base in ipairs(CELLS) do
      for _, B in ipairs({1, 3, 6}) do
        it(label(base) .. " splitting the units, B = " .. B .. ", on 1 and 2 threads, agrees with float64", function()
          local G = GATES[base.cell]
          local H = math.ceil(math.sqrt(32768 / (B * G))) + 3
          local saved_threads = recur.get_num_threads()
          for _, threads in ipairs({1, 2}) do
            recur.set_num_threads(threads)
            for _, k in ipairs({false, 2}) do
              local p = problem(with(base, {T = 6, B = B, D = 5, H = H, h0 = true, c0 = true, ghn = true,
                                            gcn = true, reverse = k and true or nil,
                                            lengths = B == 3 and {6, 2, 5} or B == 6 and {6, 1, 6, 4, 6, 6} or nil}))
              p.w_hh = p.w_hh:mul(2 / math.sqrt(H)) -- gates in their working range
              float32_agrees(p, k, threads .. " thread(s)")
            end
          end
          recur.set_num_threads(saved_threads)
        end)
      end
    end
  end)

  describe("memory", function()
    it("keeps T*B*H*(G + E + 1) elements for backward, as rnn.h documents", function()
      -- E: lstm keeps c_{t-1}, gru W_hn h + b_hn (or r*h); rnn keeps nothing extra
      local per_unit = {lstm = 6, gru = 5, rnn_tanh = 2, rnn_relu = 2, rnn_identity = 2}
      local T, B, H = 7, 3, 5
      for cell, n in pairs(per_unit) do
        for _, dtype in ipairs({"float32", "float64"}) do
          local l = core.rnn_layer(cell, 4, H, {dtype = dtype})
          local G = GATES[cell]
          l:forward(recur.zeros({T, B, 4}, dtype), recur.zeros({G * H, 4}, dtype),
                    recur.zeros({G * H, H}, dtype))
          local saved = l:memory()
          local bytes = T * B * H * n * (dtype == "float32" and 4 or 8)
          assert.are.equal(math.ceil(bytes / 64) * 64, saved)
        end
      end
    end)

    it("reuses its buffers: a smaller call allocates nothing new", function()
      local p = problem({cell = "lstm"})
      analytic(p)
      local s1, w1 = p.layer:memory()
      p.x = p.x:narrow(1, 1, 2)
      p.gy = p.gy:narrow(1, 1, 2)
      analytic(p)
      local s2, w2 = p.layer:memory()
      assert.are.same({s1, w1}, {s2, w2})
    end)
  end)

  describe("accepts", function()
    it("non-contiguous inputs, with the same result", function()
      local p = problem({cell = "gru", h0 = true})
      local y = forward(p)
      local xt = p.x:transpose(1, 2):contiguous():transpose(1, 2) -- same values, other strides
      assert.is_false(xt:is_contiguous())
      local wt = p.w_hh:t():contiguous():t()
      local y2 = p.layer:forward(xt, p.w_ih, wt, p.b_ih, p.b_hh, p.h0)
      assert.are.equal(0, max_abs(y2 - y))
      -- and backward reads the contiguous copies it kept
      local g = analytic(p)
      p.layer:forward(xt, p.w_ih, wt, p.b_ih, p.b_hh, p.h0)
      local gw = zeros_like(p.w_hh)
      p.layer:backward(p.gy, nil, nil, zeros_like(p.w_ih), gw, zeros_like(p.b_ih), zeros_like(p.b_hh))
      assert.are.equal(0, max_abs(gw - g.w_hh))
    end)
  end)

  describe("errors", function()
    local function p32()
      local l = core.rnn_layer("lstm", 3, 4)
      local x = recur.zeros(5, 2, 3)
      local w_ih, w_hh = recur.zeros(16, 3), recur.zeros(16, 4)
      return l, x, w_ih, w_hh
    end

    it("on bad construction", function()
      assert.has_error(function() core.rnn_layer("lstn", 3, 4) end)
      assert.has_error(function() core.rnn_layer("lstm", 0, 4) end,
        "rnn_layer: input_size and hidden_size must be >= 1, got 0 and 4")
      -- the one place that checks these options (nn.Recurrent passes them on)
      assert.has_error(function() core.rnn_layer("lstm", 3, 4, {reset_after = false}) end,
        "rnn_layer: option reset_after applies only to the gru cell, not lstm")
      assert.has_error(function() core.rnn_layer("gru", 3, 4, {reset_afterr = false}) end,
        "rnn_layer: unknown option 'reset_afterr' (known: dtype, reset_after, reverse)")
      assert.has_error(function() core.rnn_layer("gru", 3, 4, {reverse = "yes"}) end,
        "rnn_layer: option reverse must be a boolean, got string")
      assert.are.equal("rnn_layer(gru reset_after=false, 3 -> 4, reverse, float32)",
        tostring(core.rnn_layer("gru", 3, 4, {reset_after = false, reverse = true})))
      assert.has_error(function() core.rnn_layer("gru", 3, 4, {dtype = "int64"}) end,
        'rnn_layer: option dtype must be "float32" or "float64", got int64')
    end)

    it("on wrong shapes and dtypes", function()
      local l, x, w_ih, w_hh = p32()
      assert.has_error(function() l:forward(x, w_ih, recur.zeros(4, 16)) end,
        "rnn_layer.forward: weight_hh expected (16x4), got (4x16)")
      assert.has_error(function() l:forward(recur.zeros(5, 2, 4), w_ih, w_hh) end,
        "rnn_layer.forward: x expected (*x*x3), got (5x2x4)")
      assert.has_error(function() l:forward(x:to("float64"), w_ih, w_hh) end,
        "rnn_layer.forward: x expected dtype float32, got float64")
      assert.has_error(function() l:forward(x, w_ih, w_hh, recur.zeros(15)) end,
        "rnn_layer.forward: bias_ih expected (16), got (15)")
      assert.has_error(function() l:forward(x, w_ih, w_hh, nil, nil, recur.zeros(3, 4)) end,
        "rnn_layer.forward: h0 expected (2x4), got (3x4)")
      assert.has_error(function() l:forward(x, w_ih, w_hh, nil, nil, nil, nil, recur.tensor({1, 2})) end,
        "rnn_layer.forward: lengths expected dtype int64, got float32")
      assert.has_error(function()
        l:forward(x, w_ih, w_hh, nil, nil, nil, nil, recur.tensor({1, 6}, "int64"))
      end, "rnn_layer.forward: lengths[2] = 6 is outside 1..T (T = 5)")
      assert.has_error(function()
        l:forward(x, w_ih, w_hh, nil, nil, nil, nil, recur.tensor({0, 2}, "int64"))
      end, "rnn_layer.forward: lengths[1] = 0 is outside 1..T (T = 5)")
      assert.has_error(function() l:forward("x", w_ih, w_hh) end,
        "rnn_layer.forward: x expected a tensor, got string")
      local g = core.rnn_layer("gru", 3, 4)
      assert.has_error(function()
        g:forward(x, recur.zeros(12, 3), recur.zeros(12, 4), nil, nil, nil, recur.zeros(2, 4))
      end, "rnn_layer.forward: c0 is only for lstm, this layer is gru")
    end)

    it("on backward before forward and on bad gradients", function()
      local l, x, w_ih, w_hh = p32()
      local gw_ih, gw_hh = recur.zeros(16, 3), recur.zeros(16, 4)
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih, gw_hh) end,
        "rnn_layer.backward: no forward to go back through (call forward first)")
      l:forward(x, w_ih, w_hh)
      assert.has_error(function() l:backward(recur.zeros(5, 2, 3), nil, nil, gw_ih, gw_hh) end,
        "rnn_layer.backward: gy expected (5x2x4), got (5x2x3)")
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih) end,
        "rnn_layer.backward: grad_weight_hh expected a tensor, got nil")
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih, gw_hh, recur.zeros(16)) end,
        "rnn_layer.backward: grad_bias_ih given but forward had no bias_ih")
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih, recur.zeros(4, 16):t()) end,
        "rnn_layer.backward: grad_weight_hh must be contiguous")
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih, gw_hh, nil, nil, -1) end,
        "rnn_layer.backward: bptt_truncate must be nil or an integer >= 0, got -1")
      l:forward(x, w_ih, w_hh, recur.zeros(16), recur.zeros(16))
      assert.has_error(function() l:backward(nil, nil, nil, gw_ih, gw_hh) end,
        "rnn_layer.backward: grad_bias_ih expected a tensor, got nil")
    end)

    it("a forward that fails its checks leaves the previous one usable", function()
      local l, x, w_ih, w_hh = p32()
      l:forward(x, w_ih, w_hh)
      assert.has_error(function()
        l:forward(x, w_ih, w_hh, nil, nil, nil, nil, recur.tensor({9, 1}, "int64"))
      end)
      -- the checks run before anything is touched, so the earlier forward still stands
      local gw_ih, gw_hh = recur.zeros(16, 3), recur.zeros(16, 4)
      assert.has_no.errors(function() l:backward(recur.ones(5, 2, 4), nil, nil, gw_ih, gw_hh) end)
    end)

    it("on step with bad state", function()
      local l, x, w_ih, w_hh = p32()
      assert.has_error(function() l:step(x, w_ih, w_hh) end,
        "rnn_layer.step: x expected (*x3), got (5x2x3)")
      assert.has_error(function() l:step(x:select(1, 1), w_ih, w_hh, nil, nil, recur.zeros(2, 5)) end,
        "rnn_layer.step: h expected (2x4), got (2x5)")
      local r = core.rnn_layer("rnn_tanh", 3, 4)
      assert.has_error(function()
        r:step(x:select(1, 1), recur.zeros(4, 3), recur.zeros(4, 4), nil, nil, recur.zeros(2, 4),
               recur.zeros(2, 4))
      end, "rnn_layer.step: c is only for lstm, this layer is rnn_tanh")
    end)
  end)
end)
