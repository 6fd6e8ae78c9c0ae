-- The AVX2 kernels of csrc/bf16.c and csrc/bf16_int8.c against the portable C ones,
-- bit for bit (the sign of zero included), on the sizes around their blocks (one row,
-- the two-row blocks and an odd row left over; inner sizes odd, of one pair, not whole
-- quads; columns not whole panels) and on the values that make the arithmetic's corners
-- show: sums near FLT_MIN that ftz flushes, negative zeros, products that overflow, and
-- exponents on either side of the range where the bf16 kernel fuses its multiply-adds.
-- Where the CPU has AVX-512 BF16, core.bf16_use_fast("avx2") selects the AVX2 kernel all
-- the same; without AVX2 the specs are pending.
local recur = require "recur"
local core = recur.core

local F32 = "float32"
local FLT_MIN, FLT_MAX = 2 ^ -126, (2 - 2 ^ -23) * 2 ^ 127

-- The float32 bits of every value of t, so that -0 and 0 differ.
local function bits(t)
  local out = {}
  for i, v in ipairs(t:contiguous():view(-1):totable()) do out[i] = string.unpack("<I4", string.pack("<f", v)) end
  return out
end

-- Switches back to the kernel named (core.bf16_kernel()'s name).
local function restore(kernel)
  if kernel == "avx512" then core.bf16_use_fast(true)
  elseif kernel == "avx2" then core.bf16_use_fast("avx2")
  else core.bf16_use_fast(false) end
end

-- Runs f on the AVX2 kernel and on the portable one; the kernel that ran before runs again after.
local function both(f)
  local before = core.bf16_kernel()
  assert(core.bf16_use_fast("avx2"))
  local ok, avx2 = pcall(f)
  core.bf16_use_fast(false)
  local ok2, portable = pcall(f)
  restore(before)
  assert(ok, avx2)
  assert(ok2, portable)
  return avx2, portable
end

local function randn(size, scale) return recur.randn(size, F32):mul(scale or 1) end

-- A (rows, cols) tensor of +-v, the signs at random.
local function signs(rows, cols, v)
  local t = recur.randn({rows, cols}, F32):totable()
  for _, row in ipairs(t) do
    for k, u in ipairs(row) do row[k] = u < 0 and -v or v end
  end
  return recur.tensor(t, F32)
end

-- Asserts the two kernels' bits equal for y = x w^T + bias, or, given start (a scale),
-- y = out + x w^T accumulated onto random values of that scale.
local function same_bf16(x, w, bias, start, what)
  local m = core.bf16_matrix(w)
  local out = start and randn({x:size(1), w:size(1)}, start)
  local avx2, portable = both(function()
    return core.bf16_linear(x, m, bias, out and out:clone(), out ~= nil)
  end)
  local a, p = bits(avx2), bits(portable)
  for i = 1, #p do
    if a[i] ~= p[i] then
      assert.are.equal(string.format("%08x", p[i]), string.format("%08x", a[i]), what .. ": element " .. i)
    end
  end
end

local SIZES = {}
for _, M in ipairs({1, 2, 5, 7, 64}) do
  for _, NK in ipairs({{1, 1}, {33, 3}, {64, 2}, {65, 7}, {100, 64}, {130, 129}}) do
    SIZES[#SIZES + 1] = {M, NK[1], NK[2]}
  end
end

local kernel = core.bf16_kernel()
local avx2 = core.bf16_use_fast("avx2")
restore(kernel)
local it_avx2 = avx2 and it or pending

describe("bf16 AVX2 kernel", function()
  it_avx2("gives the portable kernel's bits on every size, with a bias, from zero, accumulating", function()
    for _, s in ipairs(SIZES) do
      local M, N, K = s[1], s[2], s[3]
      recur.manual_seed(M * 1000 + N + K)
      local x, w = randn({M, K}), randn({N, K}, 0.3)
      local what = string.format("(%d,%d,%d)", M, N, K)
      same_bf16(x, w, randn({N}), nil, what .. " bias")
      same_bf16(x, w, nil, nil, what .. " from zero")
      same_bf16(x, w, nil, 1, what .. " accumulating")
    end
  end)

  it_avx2("flushes sums below FLT_MIN to zero of their sign, as the portable kernel", function()
    -- products near 2^-126 (operands near 2^-63), biases of a few FLT_MIN: many sums
    -- fall below FLT_MIN, with either sign; some cancel to exact zeros
    for _, s in ipairs(SIZES) do
      local M, N, K = s[1], s[2], s[3]
      recur.manual_seed(M + N * 7 + K * 13)
      local x, w = randn({M, K}, 2 ^ -63), randn({N, K}, 2 ^ -63)
      local what = string.format("(%d,%d,%d) tiny", M, N, K)
      same_bf16(x, w, randn({N}, 2 * FLT_MIN), nil, what .. " bias")
      same_bf16(x, w, nil, nil, what)
      same_bf16(x, w, nil, 2 * FLT_MIN, what .. " accumulating")
    end
    -- by hand: 1.5 FLT_MIN - FLT_MIN is 0.5 FLT_MIN, flushed to +0; its negative to -0
    local x = recur.tensor({{1, 0}}, F32)
    local m = core.bf16_matrix(recur.tensor({{-FLT_MIN, 0}, {FLT_MIN, 0}}, F32))
    local a, p = both(function() return core.bf16_linear(x, m, recur.tensor({1.5 * FLT_MIN, -1.5 * FLT_MIN}, F32)) end)
    assert.are.same({0x00000000, 0x80000000}, bits(a))
    assert.are.same(bits(p), bits(a))
  end)

  it_avx2("keeps negative zeros as the portable kernel", function()
    -- -0 + (-0) w is -0 for w > 0 and +0 for w < 0; rows of -0 against either sign
    for _, K in ipairs({1, 2, 3, 8}) do
      local x = recur.zeros({3, K}, F32):mul(-1)
      x:narrow(1, 3, 1):fill_(0)
      local w = randn({40, K})
      same_bf16(x, w, recur.zeros({40}, F32):mul(-1), nil, "-0 rows, -0 bias K=" .. K)
      same_bf16(x, w, nil, nil, "-0 rows K=" .. K)
      same_bf16(x, w, nil, 1, "-0 rows accumulating K=" .. K)
      -- zero products onto starts below FLT_MIN: the first sum is flushed
      same_bf16(x, w, randn({40}, 2 * FLT_MIN), nil, "-0 rows, tiny bias K=" .. K)
      same_bf16(x, w, nil, 2 * FLT_MIN, "-0 rows accumulating onto tiny K=" .. K)
    end
    -- by hand (a whole pair: an odd K's padding would add +0 products)
    local x = recur.tensor({{-0.0, -0.0}}, F32)
    local m = core.bf16_matrix(recur.tensor({{2, 2}, {-2, -2}}, F32))
    local a, p = both(function() return core.bf16_linear(x, m, recur.tensor({-0.0, -0.0}, F32)) end)
    assert.are.same({0x80000000, 0x00000000}, bits(a))
    assert.are.same(bits(p), bits(a))
  end)

  it_avx2("gives the portable bits at the edges of the exponent range it fuses", function()
    -- products of exponent -111 (fused) and -112 (not), sums cancelling down to them;
    -- products of exponent 126 and 127 (overflowing) against biases of -FLT_MAX, where
    -- a fused sum would be finite and the portable kernel's is infinite
    for _, e in ipairs({-111, -112, 126, 127, 128}) do
      for _, s in ipairs({{1, 64, 7}, {5, 65, 10}}) do
        local M, N, K = s[1], s[2], s[3]
        recur.manual_seed(e + 1000 + M)
        local ea = e // 2
        local x, w = signs(M, K, 2 ^ ea * 1.5), signs(N, K, 2 ^ (e - ea))
        local bias = signs(1, N, e > 0 and FLT_MAX or 2 ^ (e + 3)):view(N)
        local what = string.format("(%d,%d,%d) exponent %d", M, N, K, e)
        same_bf16(x, w, bias, nil, what)
        same_bf16(x, w, nil, nil, what .. " from zero")
      end
    end
    -- the one-pair case: 1.5 2^64 2^64 = 1.5 2^128 overflows to inf before -FLT_MAX is added
    local m = core.bf16_matrix(recur.tensor({{2 ^ 64}}, F32))
    local a, p = both(function() return core.bf16_linear(recur.tensor({{1.5 * 2 ^ 64}}, F32), m,
      recur.tensor({-FLT_MAX}, F32)) end)
    assert.are.same({0x7f800000}, bits(a))
    assert.are.same(bits(p), bits(a))
  end)

  it_avx2("runs a layer's forward as the portable kernel, one row and a batch", function()
    for _, B in ipairs({1, 64}) do
      recur.manual_seed(B)
      local D, H = 33, 40
      local w_ih, w_hh = randn({4 * H, D}, 0.3), randn({4 * H, H}, 0.3)
      local b_ih, b_hh = randn({4 * H}, 0.2), randn({4 * H}, 0.2)
      local m = core.bf16_matrix(w_ih, w_hh)
      local x, h0, c0 = randn({5, B, D}), randn({B, H}, 0.5), randn({B, H}, 0.5)
      local function run()
        local h, c = h0:clone(), c0:clone()
        local y = core.bf16_rnn_forward("lstm", false, x, m, nil, b_ih, b_hh, h, c, nil)
        return {bits(y), bits(h), bits(c)}
      end
      local a, p = both(run)
      assert.are.same(p, a)
    end
  end)
end)

describe("int8 AVX2 kernel", function()
  -- y = bias + x w^T through int8 rows on either kernel
  local function same_int8(x, w, bias, what)
    local m = core.int8_matrix(w)
    local a, p = both(function() return core.int8_linear(x, m, bias) end)
    assert.are.same(bits(p), bits(a), what)
  end

  it_avx2("gives the portable kernel's bits on every size (inner sizes not whole quads)", function()
    for _, M in ipairs({1, 2, 5, 7, 64}) do
      for _, NK in ipairs({{1, 1}, {17, 2}, {64, 3}, {65, 5}, {100, 64}, {130, 130}}) do
        local N, K = NK[1], NK[2]
        recur.manual_seed(M * 100 + N + K)
        local x, w = randn({M, K}), randn({N, K})
        local what = string.format("(%d,%d,%d)", M, N, K)
        same_int8(x, w, randn({N}), what)
        same_int8(x, w, nil, what .. " no bias")
      end
    end
  end)

  it_avx2("gives the portable bits at the ends of the int8 range, on zero and -0 rows", function()
    -- rows whose values are +-max (q = +-127, the row's uint8 1 and 255), all zero, -0,
    -- and one large value among small ones (the others round to 0)
    local K, N = 37, 70
    recur.manual_seed(3)
    local x = signs(6, K, 1)
    x:narrow(1, 2, 1):fill_(0)
    x:narrow(1, 3, 1):copy_(recur.zeros({1, K}, F32):mul(-1))
    x:narrow(1, 4, 1):copy_(randn({1, K}, 1e-3))
    x:set(4, 5, 100)
    local w = signs(N, K, 3)
    w:narrow(1, 1, 1):fill_(0)
    same_int8(x, w, randn({N}), "extremes")
    same_int8(x, w:mul(-1), nil, "extremes, weights negated")
  end)
end)
