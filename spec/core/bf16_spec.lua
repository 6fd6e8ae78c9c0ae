-- bfloat16 inference kernels (csrc/bf16.c, csrc/bf16_rnn.c through csrc/lua_bf16.c):
-- the rounding against hand-computed values and a Lua implementation of round to
-- nearest even; the products against a Lua emulation of vdpbf16ps's arithmetic
-- (exact, bit for bit) and against float32 within the bound bfloat16's 8-bit
-- significand gives; the vector kernel (AVX-512 BF16, else AVX2) against the portable
-- one (exact; on a CPU with neither both are the portable one; bf16_avx2_spec.lua takes
-- the AVX2 kernel through the corners); the layer forward against the
-- float32 kernels fed the same rounded operands, step against forward, padded batches
-- and the reverse direction against their definitions, one thread against two; the
-- errors.
local recur = require "recur"
local core = recur.core

local F32 = "float32"

-- x rounded to float32 (C's conversion: to nearest, ties to even).
local function f32(x) return (string.unpack("f", string.pack("f", x))) end

-- x rounded to bfloat16 by its float32 bits, written independently of the C code.
local function bf16(x)
  x = f32(x)
  local u = string.unpack("<I4", string.pack("<f", x))
  if u & 0x7f800000 == 0 then u = u & 0x80000000 -- subnormals become zero
  else
    local lsb = (u >> 16) & 1
    u = ((u + 0x7fff + lsb) >> 16) << 16
  end
  return (string.unpack("<f", string.pack("<I4", u & 0xffffffff)))
end

-- y = x w^T + b as vdpbf16ps computes it: for each output, over the pairs (k, k+1) in
-- order, acc += a[k+1] w[k+1], then acc += a[k] w[k], each sum rounded to float32
-- (a product of two bfloat16 is exact in a double and in a float32).
local function emulated_linear(x, w, b)
  local M, K, N = x:size(1), x:size(2), w:size(1)
  local xt, wt, bt = x:totable(), w:totable(), b and b:totable()
  local y = {}
  for m = 1, M do
    y[m] = {}
    for n = 1, N do
      local acc = bt and bt[n] or 0
      for k = 1, K, 2 do
        if k + 1 <= K then acc = f32(acc + bf16(xt[m][k + 1]) * bf16(wt[n][k + 1])) end
        acc = f32(acc + bf16(xt[m][k]) * bf16(wt[n][k]))
      end
      y[m][n] = acc
    end
  end
  return recur.tensor(y, F32)
end

-- int8: the rounding of csrc/bf16_int8.c, (v * inv + 1.5*2^23) - 1.5*2^23 in float32
local ROUND = 12582912
local function q8_row(v)
  local m = 0
  for _, x in ipairs(v) do m = math.max(m, math.abs(x)) end
  local inv = m > 1e-30 and f32(127 / m) or 0
  local q = {}
  for k, x in ipairs(v) do q[k] = math.tointeger(f32(f32(f32(x * inv) + ROUND) - ROUND)) end
  return q, f32(m / 127)
end

-- y = x w^T + b as vpdpbusd computes it: integer sums of the rounded values, then
-- (s_w s_x) times the sum, added to the bias, in float32.
local function emulated_int8(x, w, b)
  local xt, wt, bt = x:totable(), w:totable(), b and b:totable()
  local qw, sw = {}, {}
  for n = 1, #wt do qw[n], sw[n] = q8_row(wt[n]) end
  local y = {}
  for m = 1, #xt do
    local qx, sx = q8_row(xt[m])
    y[m] = {}
    for n = 1, #wt do
      local sum = 0
      for k = 1, #qx do sum = sum + qx[k] * qw[n][k] end
      y[m][n] = f32((bt and bt[n] or 0) + f32(f32(sw[n] * sx) * sum))
    end
  end
  return recur.tensor(y, F32)
end

local function randn(size, scale) return recur.randn(size, F32):mul(scale or 1) end

local function max_abs(t) return t:abs():max() end

-- Runs f with the portable kernel, then switches the fast one back on (where there is one).
local function portable(f)
  local fast = core.bf16_fast()
  core.bf16_use_fast(false)
  local ok, a, b = pcall(f)
  core.bf16_use_fast(fast)
  assert(ok, a)
  return a, b
end

local GATES = {lstm = 4, gru = 3, rnn_tanh = 1, rnn_relu = 1, rnn_identity = 1}

-- A layer's weights, inputs and states.
local function layer_problem(cell, T, B, D, H, seed)
  recur.manual_seed(seed or 5)
  local G = GATES[cell]
  local p = {cell = cell, T = T, B = B, D = D, H = H}
  p.w_ih, p.w_hh = randn({G * H, D}, 0.3), randn({G * H, H}, 0.3)
  p.b_ih, p.b_hh = randn({G * H}, 0.2), randn({G * H}, 0.2)
  p.x = randn({T, B, D})
  p.h0 = randn({B, H}, 0.5)
  if cell == "lstm" then p.c0 = randn({B, H}, 0.5) end
  -- the kernel's operands: [w_ih w_hh] together, the gru's apart
  if cell == "gru" then p.m_ih, p.m_hh = core.bf16_matrix(p.w_ih), core.bf16_matrix(p.w_hh)
  else p.m_ih = core.bf16_matrix(p.w_ih, p.w_hh) end
  return p
end

-- The bf16 forward of p: y, hn, cn (new tensors).
local function bf16_forward(p, opts)
  opts = opts or {}
  local x = opts.x or p.x
  local h = (opts.h0 or p.h0):clone()
  local c = p.c0 and (opts.c0 or p.c0):clone() or nil
  local y = core.bf16_rnn_forward(p.cell, opts.reverse or false, x, p.m_ih, p.m_hh, p.b_ih, p.b_hh, h, c,
    opts.lengths)
  return y, h, c
end

describe("bf16 kernels", function()
  it("round to nearest bfloat16, ties to even", function()
    -- 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even one is 1; 1 + 3*2^-8
    -- halfway between 1 + 2^-7 and 1 + 2^-6: the even one is 1 + 2^-6
    local t = recur.tensor({1 + 2 ^ -8, 1 + 3 * 2 ^ -8, -(1 + 2 ^ -8 + 2 ^ -20), 3.0, 2 ^ -130, 1e30, -0.0}, F32)
    local r = core.bf16_round(t):totable()
    assert.are.same({1, 1 + 2 ^ -6, -(1 + 2 ^ -7), 3.0, 0, bf16(1e30), 0}, r)
    assert.are.equal(1 / 0, 1 / core.bf16_round(recur.tensor({0.0}, F32)):totable()[1])
    local x = randn({1000}, 3)
    local got, want = core.bf16_round(x):totable(), x:totable()
    for i = 1, #want do assert.are.equal(bf16(want[i]), got[i]) end
    -- NaN stays NaN, infinities stay
    local special = core.bf16_round(recur.tensor({0 / 0, 1 / 0, -1 / 0}, F32)):totable()
    assert.is_true(special[1] ~= special[1])
    assert.are.same({1 / 0, -1 / 0}, {special[2], special[3]})
  end)

  it("compute products exactly as vdpbf16ps does, on either kernel", function()
    -- sizes around the kernel's blocks: one row and six-row blocks, one to four panels
    -- of 32 columns and a ragged last one, odd and even inner sizes, one longer than the
    -- packing's chunks of 512
    for _, s in ipairs({{1, 5, 3}, {1, 130, 17}, {7, 33, 10}, {13, 70, 64}, {6, 64, 1}, {2, 250, 9}, {2, 3, 1101}}) do
      recur.manual_seed(s[1] * 1000 + s[2])
      local M, N, K = s[1], s[2], s[3]
      local x, w, b = randn({M, K}), randn({N, K}), randn({N})
      local m = core.bf16_matrix(w)
      local want = emulated_linear(x, w, b)
      local fast = core.bf16_linear(x, m, b)
      local slow = portable(function() return core.bf16_linear(x, m, b) end)
      assert.are.same(want:totable(), fast:totable(), string.format("(%d,%d,%d) fast", M, N, K))
      assert.are.same(want:totable(), slow:totable(), string.format("(%d,%d,%d) portable", M, N, K))
      -- without bias: the sums start from zero
      assert.are.same(emulated_linear(x, w, nil):totable(), core.bf16_linear(x, m, nil):totable())
    end
  end)

  it("take many rows in blocks and give each row what it gives alone, on 1 and 2 threads", function()
    -- rows of 1101 values (551 pairs) go 84 to a block of rows (192 KB, csrc/bf16.c):
    -- 200 rows are blocks of 84, 84 and 32; the rows taken a few at a time, which the
    -- spec above checks against the emulation, must give the same bits
    recur.manual_seed(5)
    local M, N, K = 200, 70, 1101
    local x, w, b = randn({M, K}), randn({N, K}), randn({N})
    local m = core.bf16_matrix(w)
    local threads = recur.get_num_threads()
    for _, n in ipairs({1, 2}) do
      recur.set_num_threads(n)
      local whole = core.bf16_linear(x, m, b)
      for r = 1, M, 7 do
        local rows = math.min(7, M - r + 1)
        local part = core.bf16_linear(x:narrow(1, r, rows):contiguous(), m, b)
        assert.are.same(part:totable(), whole:narrow(1, r, rows):totable(),
                        string.format("rows %d..%d on %d threads", r, r + rows - 1, n))
      end
    end
    recur.set_num_threads(threads)
  end)

  it("stay within bfloat16's rounding of the float32 product, and differ from it", function()
    -- each operand is rounded with a relative error of at most 2^-9, so each term
    -- a_k w_k with at most 2^-8 (plus 2^-18), and the sum is off by at most
    -- 2^-8 sum_k |a_k w_k| plus float32's own rounding (K 2^-24 of the same sum)
    recur.manual_seed(11)
    local M, N, K = 9, 300, 200
    local x, w = randn({M, K}), randn({N, K})
    local y = core.bf16_linear(x, core.bf16_matrix(w), nil):to("float64")
    local exact = x:to("float64"):matmul(w:to("float64"):t())
    local bound = x:to("float64"):abs():matmul(w:to("float64"):abs():t()):mul(2 ^ -8 + 2 ^ -18 + K * 2 ^ -24)
    local over = ((y - exact):abs() - bound):max()
    assert.is_true(over <= 0, "error above the bound by " .. over)
    assert.is_true(max_abs(y - exact) > 1e-3) -- bf16 is not float32
  end)

  it("compute int8 products exactly as vpdpbusd does, on either kernel, within int8's rounding", function()
    for _, sz in ipairs({{1, 5, 3}, {1, 130, 17}, {7, 70, 64}, {2, 64, 1}}) do
      recur.manual_seed(sz[2] + sz[3])
      local M, N, K = sz[1], sz[2], sz[3]
      local x, w, b = randn({M, K}), randn({N, K}), randn({N})
      local m = core.int8_matrix(w)
      local want = emulated_int8(x, w, b):totable()
      assert.are.same(want, core.int8_linear(x, m, b):totable(), string.format("(%d,%d,%d) fast", M, N, K))
      assert.are.same(want, portable(function() return core.int8_linear(x, m, b) end):totable())
      assert.are.same({N, K}, {m:size()})
    end
    -- each value is off by at most half a step of its row's scale: |a_k w_k| errors
    -- sum to at most (s_x sum|w_k| + s_w sum|a_k|) / 2 + s_x s_w K / 4
    local x, w = randn({3, 200}), randn({50, 200})
    local y = core.int8_linear(x, core.int8_matrix(w), nil):to("float64")
    local exact = x:to("float64"):matmul(w:to("float64"):t())
    local sx = x:abs():max(2):to("float64"):div(127)
    local sw = w:abs():max(2):to("float64"):div(127)
    local xa, wa = x:to("float64"):abs():sum(2), w:to("float64"):abs():sum(2)
    for i = 1, 3 do
      for n = 1, 50 do
        local bound = (sx:get(i) * wa:get(n) + sw:get(n) * xa:get(i)) / 2 + sx:get(i) * sw:get(n) * 200 / 4 + 1e-4
        assert.is_true(math.abs(y:get(i, n) - exact:get(i, n)) <= bound)
      end
    end
  end)

  it("repack a matrix in place, and report its size", function()
    local w1, w2 = randn({40, 12}), randn({40, 12})
    local m = core.bf16_matrix(w1)
    assert.are.same({40, 12}, {m:size()})
    local x = randn({3, 12})
    assert.are.same(emulated_linear(x, w1):totable(), core.bf16_linear(x, m, nil):totable())
    m:repack(w2)
    assert.are.same(emulated_linear(x, w2):totable(), core.bf16_linear(x, m, nil):totable())
    assert.has_error(function() m:repack(randn({12, 40})) end, "bf16_matrix.repack: weight expected (40x12), got (12x40)")
  end)

  it("pack a layer's two weights side by side, each padded to whole pairs", function()
    -- an identity rnn's step is binit + [x_t h] [w_ih w_hh]^T itself: exactly the
    -- emulated product over [x 0 h] and [w_ih 0 w_hh], x's odd length padded to a pair
    local p = layer_problem("rnn_identity", 1, 4, 5, 6)
    local h = p.h0:clone()
    core.bf16_rnn_forward("rnn_identity", false, p.x, p.m_ih, nil, p.b_ih, p.b_hh, h, nil, nil, false)
    local function cat(a, b, rows)
      local t = recur.zeros({rows, 12})
      t:narrow(2, 1, 5):copy_(a)
      t:narrow(2, 7, 6):copy_(b)
      return t
    end
    local xcat, wcat = cat(p.x:select(1, 1), p.h0, 4), cat(p.w_ih, p.w_hh, 6)
    assert.are.same(emulated_linear(xcat, wcat, p.b_ih + p.b_hh):totable(), h:totable())
    assert.are.same({6, 5, 6}, {p.m_ih:size()})
    assert.has_error(function() core.bf16_linear(randn({2, 5}), p.m_ih, nil) end)
  end)

  for _, cell in ipairs({"lstm", "gru", "rnn_tanh", "rnn_relu", "rnn_identity"}) do
    it(cell .. ": one step equals the float32 layer fed the same rounded operands", function()
      -- the products then differ only in the order of float32 sums; a batch of 5 runs
      -- as one loop, one of 20 split over the threads (and the gru projects its input
      -- in the step)
      for _, B in ipairs({5, 20}) do
        local p = layer_problem(cell, 1, B, 7, 6)
        p.x, p.h0 = core.bf16_round(p.x), core.bf16_round(p.h0)
        local layer = core.rnn_layer(cell, p.D, p.H)
        local y32, hn32, cn32 = layer:forward(p.x, core.bf16_round(p.w_ih), core.bf16_round(p.w_hh), p.b_ih,
          p.b_hh, p.h0, p.c0)
        local y, hn, cn = bf16_forward(p)
        assert.is_true(max_abs(y - y32) < 1e-5, "B = " .. B)
        assert.is_true(max_abs(hn - hn32) < 1e-5, "B = " .. B)
        if cn then assert.is_true(max_abs(cn - cn32) < 1e-5, "B = " .. B) end
      end
    end)

    it(cell .. ": a sequence, stepped or whole, close to float32 and not equal to it", function()
      local p = layer_problem(cell, 6, 4, 5, 8)
      local y, hn, cn = bf16_forward(p)
      local layer = core.rnn_layer(cell, p.D, p.H)
      local y32 = layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, p.c0)
      local d = max_abs(y - y32)
      assert.is_true(d > 0 and d < 0.05, "difference " .. d)
      -- T steps of one (the step path: no output tensor) give the forward's states
      local h, c = p.h0:clone(), p.c0 and p.c0:clone()
      for t = 1, p.T do
        local r = core.bf16_rnn_forward(cell, false, p.x:narrow(1, t, 1), p.m_ih, p.m_hh, p.b_ih, p.b_hh, h, c, nil, false)
        assert.are.equal(false, r)
        assert.are.same(y:select(1, t):totable(), h:totable())
      end
      assert.are.same(hn:totable(), h:totable())
      if cn then assert.are.same(cn:totable(), c:totable()) end
      -- the portable kernel gives the same numbers
      local y2, hn2 = portable(function() return bf16_forward(p) end)
      assert.are.same(y:totable(), y2:totable())
      assert.are.same(hn:totable(), hn2:totable())
    end)
  end

  it("run a padded batch and the reverse direction as their definitions", function()
    -- each sequence alone (one row: one loop, the gru projecting every step first)
    -- against the batch: 3 sequences in one loop, 17 split over the threads (the gru
    -- projecting in the steps)
    for _, case in ipairs({{"lstm", {5, 2, 4}}, {"gru", {5, 2, 4}}, {"lstm", {5, 1, 3, 4, 2, 5, 5, 3, 1, 4, 2, 5, 3, 4, 1, 2, 5}},
                           {"gru", {4, 5, 2, 1, 5, 3, 5, 2, 4, 1, 3, 5, 2, 5, 4, 1, 3}}}) do
      local cell, lengths = case[1], case[2]
      local B = #lengths
      for _, reverse in ipairs({false, true}) do
        local p = layer_problem(cell, 5, B, 4, 6, 9)
        local y, hn, cn = bf16_forward(p, {lengths = recur.tensor(lengths, "int64"), reverse = reverse})
        for b = 1, B do
          local L = lengths[b]
          local what = string.format("%s, B = %d, sequence %d, reverse %s", cell, B, b, tostring(reverse))
          -- sequence b alone, cut to its length
          local yb, hb, cb = bf16_forward(p, {x = p.x:narrow(1, 1, L):narrow(2, b, 1):contiguous(),
            h0 = p.h0:narrow(1, b, 1):contiguous(), c0 = p.c0 and p.c0:narrow(1, b, 1):contiguous(), reverse = reverse})
          assert.are.same(yb:select(2, 1):totable(), y:narrow(1, 1, L):select(2, b):totable(), what)
          assert.are.same(hb:select(1, 1):totable(), hn:select(1, b):totable(), what)
          if cn then assert.are.same(cb:select(1, 1):totable(), cn:select(1, b):totable(), what) end
          if L < 5 then assert.are.equal(0, max_abs(y:narrow(1, L + 1, 5 - L):select(2, b)), what) end
        end
      end
    end
  end)

  it("give the same numbers on one thread and on two", function()
    -- 40 sequences split by sequences; 5 and 7 (a step of at least 2^19 multiply-adds,
    -- H a whole number of 32-unit panels) split by units, reversed and padded too
    local threads, adapt = recur.get_num_threads(), recur.thread_adapt().enabled
    recur.thread_adapt(false) -- every call on the threads asked for
    for _, case in ipairs({{"gru", 4, 40, 24, 70}, {"lstm", 5, 5, 128, 128}, {"gru", 5, 7, 40, 192},
                           {"rnn_tanh", 5, 6, 400, 320}}) do
      local p = layer_problem(case[1], case[2], case[3], case[4], case[5], 3)
      local lengths = {}
      for b = 1, p.B do lengths[b] = b * 3 % p.T + 1 end
      for _, opts in ipairs({{}, {reverse = true, lengths = recur.tensor(lengths, "int64")}}) do
        recur.set_num_threads(1)
        local y1, h1, c1 = bf16_forward(p, opts)
        recur.set_num_threads(2)
        local y2, h2, c2 = bf16_forward(p, opts)
        local what = string.format("%s B = %d%s", p.cell, p.B, opts.reverse and ", reversed and padded" or "")
        assert.are.same(y1:totable(), y2:totable(), what)
        assert.are.same(h1:totable(), h2:totable(), what)
        if c1 then assert.are.same(c1:totable(), c2:totable(), what) end
      end
    end
    recur.set_num_threads(threads)
    recur.thread_adapt(adapt)
  end)

  it("refuse bad arguments with errors naming the operation", function()
    local p = layer_problem("lstm", 2, 3, 4, 5)
    local h, c = p.h0:clone(), p.c0:clone()
    local fwd = core.bf16_rnn_forward
    assert.has_error(function() fwd("gru", false, p.x, p.m_ih, p.m_hh, nil, nil, h, nil, nil) end)
    assert.has_error(function() fwd("lstm", false, p.x:narrow(3, 1, 3):contiguous(), p.m_ih, p.m_hh, nil, nil, h, c, nil) end,
      "bf16_rnn_forward: x expected (*x*x4), got (2x3x3)")
    assert.has_error(function() fwd("lstm", false, p.x, p.m_ih, p.m_hh, nil, nil, h, nil, nil) end,
      "bf16_rnn_forward: c expected a tensor for lstm, got nil")
    assert.has_error(function() fwd("lstm", false, p.x, p.m_ih, p.m_hh, nil, nil, h, c, recur.tensor({1, 3, 2}, "int64")) end,
      "bf16_rnn_forward: lengths[2] = 3 is outside 1..2")
    assert.has_error(function() fwd("lstm", false, p.x:double(), p.m_ih, p.m_hh, nil, nil, h, c, nil) end)
    assert.has_error(function() core.bf16_linear(randn({2, 3}), core.bf16_matrix(randn({4, 5})), nil) end,
      "bf16_linear: x expected (*x5), got (2x3)")
    assert.has_error(function() core.bf16_matrix(recur.randn({3, 3}, "float64")) end)
  end)
end)
