-- recur.nn.GRU's two forms against a plain-Lua reference written out below (float64):
-- the classic GRU of Cho et al. (2014), reset_after = false,
--   n = tanh(W_in x + b_in + W_hn (r * h) + b_hn),
-- and PyTorch's reset-after form, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
-- Outputs and final states are compared directly; gradients with central differences
-- of the reference (independent of recur's backward). A gradient check alone passes
-- for either form, so the forms must also give different numbers on the same weights.
local recur = require "recur"
local nn = recur.nn

local function sigmoid(v) return 1 / (1 + math.exp(-v)) end

-- row i of the (G*H, n) matrix W (a Lua array of rows) times the vector v
local function dot(W, i, v)
  local s = 0
  for j = 1, #v do s = s + W[i][j] * v[j] end
  return s
end

-- One GRU layer over x (T,B,D) from h0 (B,H), all Lua arrays; weights p = {w_ih,
-- w_hh, b_ih, b_hh} in PyTorch's layout (gates r, z, n). Returns y (T,B,H), hn (B,H).
local function reference(p, x, h0, reset_after)
  local H = #h0[1]
  local y, h = {}, {}
  for b = 1, #h0 do h[b] = table.move(h0[b], 1, H, 1, {}) end
  for t = 1, #x do
    y[t] = {}
    for b = 1, #h do
      local xb, hb, new = x[t][b], h[b], {}
      local r, z = {}, {}
      for k = 1, H do
        r[k] = sigmoid(dot(p.w_ih, k, xb) + p.b_ih[k] + dot(p.w_hh, k, hb) + p.b_hh[k])
        z[k] = sigmoid(dot(p.w_ih, H + k, xb) + p.b_ih[H + k] + dot(p.w_hh, H + k, hb) + p.b_hh[H + k])
      end
      local rh = {}
      for k = 1, H do rh[k] = r[k] * hb[k] end
      for k = 1, H do
        local a = dot(p.w_ih, 2 * H + k, xb) + p.b_ih[2 * H + k]
        if reset_after then
          a = a + r[k] * (dot(p.w_hh, 2 * H + k, hb) + p.b_hh[2 * H + k])
        else
          a = a + dot(p.w_hh, 2 * H + k, rh) + p.b_hh[2 * H + k]
        end
        local n = math.tanh(a)
        new[k] = (1 - z[k]) * n + z[k] * hb[k]
      end
      h[b] = new
      y[t][b] = new
    end
  end
  return y, h
end

-- sum(y * gy) + sum(hn * ghn): the scalar whose gradient backward(x, gy, ghn) computes
local function objective(p, x, h0, gy, ghn, reset_after)
  local y, hn = reference(p, x, h0, reset_after)
  local s = 0
  for t = 1, #y do
    for b = 1, #y[t] do
      for k = 1, #y[t][b] do s = s + y[t][b][k] * gy[t][b][k] end
    end
  end
  for b = 1, #hn do
    for k = 1, #hn[b] do s = s + hn[b][k] * ghn[b][k] end
  end
  return s
end

-- Central differences of objective over every element of the nested array `a`
-- (perturbed in place and restored), as a flat array in row-major order.
local function numeric_grad(a, f)
  local out = {}
  local function walk(t)
    for i = 1, #t do
      if type(t[i]) == "table" then
        walk(t[i])
      else
        local v, eps = t[i], 1e-6
        t[i] = v + eps
        local fp = f()
        t[i] = v - eps
        local fm = f()
        t[i] = v
        out[#out + 1] = (fp - fm) / (2 * eps)
      end
    end
  end
  walk(a)
  return out
end

local function assert_close(got, want, tol, what)
  local flat = got:reshape(-1):totable()
  if type(want[1]) == "table" then want = recur.tensor(want, "float64"):reshape(-1):totable() end
  assert.are.equal(#want, #flat, what)
  local worst = 0
  for i = 1, #flat do worst = math.max(worst, math.abs(flat[i] - want[i])) end
  assert(worst <= tol, string.format("%s: max abs difference %.3e > %.1e", what, worst, tol))
end

local T, B, D, H = 3, 2, 2, 3

-- A float64 layer's weights as Lua arrays, and random inputs and output gradients.
local function setup(m, suffix)
  local p = {w_ih = m["weight_ih" .. suffix]:totable(), w_hh = m["weight_hh" .. suffix]:totable(),
             b_ih = m["bias_ih" .. suffix]:totable(), b_hh = m["bias_hh" .. suffix]:totable()}
  local x, h0 = recur.randn(T, B, D, "float64"), recur.randn(B, H, "float64")
  local gy, ghn = recur.randn(T, B, H, "float64"), recur.randn(B, H, "float64")
  return p, x, h0, gy, ghn
end

describe("GRU reset_after = false (classic, Cho et al. 2014)", function()
  it("outputs, final state and every gradient match the plain-Lua reference", function()
    recur.manual_seed(41)
    local m = nn.GRU(D, H, {reset_after = false, dtype = "float64"})
    local p, x, h0, gy, ghn = setup(m, "_l0")
    local y, hn = m:forward(x, h0:view(1, B, H))
    local ry, rhn = reference(p, x:totable(), h0:totable(), false)
    assert_close(y, ry, 1e-12, "y")
    assert_close(hn, rhn, 1e-12, "hn")

    local gx, gh0 = m:backward(x, gy, ghn:view(1, B, H))
    local xs, h0s, gys, ghns = x:totable(), h0:totable(), gy:totable(), ghn:totable()
    local function f() return objective(p, xs, h0s, gys, ghns, false) end
    local g = m:named_gradients()
    assert_close(g.weight_ih_l0, numeric_grad(p.w_ih, f), 1e-7, "grad weight_ih")
    assert_close(g.weight_hh_l0, numeric_grad(p.w_hh, f), 1e-7, "grad weight_hh")
    assert_close(g.bias_ih_l0, numeric_grad(p.b_ih, f), 1e-7, "grad bias_ih")
    assert_close(g.bias_hh_l0, numeric_grad(p.b_hh, f), 1e-7, "grad bias_hh")
    assert_close(gx, numeric_grad(xs, f), 1e-7, "gx")
    assert_close(gh0, numeric_grad(h0s, f), 1e-7, "gh0")
  end)

  it("reaches every layer: Recurrent, Stack (stack-wide and per layer), 2-layer GRU", function()
    recur.manual_seed(42)
    local function check(m, suffix)
      local p, x, h0 = setup(m, suffix)
      local ry = reference(p, x:totable(), h0:totable(), false)
      local y = m.forward(m, x, m.num_layers and h0:view(1, B, H) or h0)
      assert_close(y, ry, 1e-12, tostring(m))
    end
    check(nn.Recurrent("gru", D, H, {reset_after = false, dtype = "float64"}), "")
    check(nn.Stack(D, H, {"gru"}, {reset_after = false, dtype = "float64"}), "_l0")
    check(nn.Stack(D, H, {{cell = "gru", reset_after = false}}, {dtype = "float64"}), "_l0")
    -- the second layer's input is the first's output, so compare the top layer
    local m2 = nn.GRU(D, H, {num_layers = 2, reset_after = false, dtype = "float64"})
    local p0, x = setup(m2, "_l0")
    local p1 = setup(m2, "_l1")
    local zero = {}
    for b = 1, B do zero[b] = {0, 0, 0} end
    local y0 = reference(p0, x:totable(), zero, false)
    assert_close(m2:forward(x), (reference(p1, y0, zero, false)), 1e-12, "2-layer GRU")
    assert.is_false(m2.layers[2][1].reset_after)
  end)

  it("gives different numbers from reset_after = true on the same weights", function()
    recur.manual_seed(43)
    local classic = nn.GRU(D, H, {reset_after = false, dtype = "float64"})
    local after = nn.GRU(D, H, {dtype = "float64"})
    after:load_state_dict(classic:state_dict())
    local p, x, h0 = setup(after, "_l0")
    local h = h0:view(1, B, H)
    local y_after = after:forward(x, h):clone()
    assert_close(y_after, (reference(p, x:totable(), h0:totable(), true)), 1e-12, "reset_after = true")
    local y_classic = classic:forward(x, h)
    local diff = (y_classic - y_after):abs():max()
    assert(diff > 1e-3, "the two forms agree to " .. diff)
  end)
end)
