-- float32 recurrent layers give the same bits whatever the thread count, and step()
-- gives the same bits as forward: every product of a training step (the per-step
-- ones, the input projection, dx and the weight gradients) runs on recur's kernels
-- (csrc/rnn_gemm.h), where each element is one FMA chain over k in order, however the
-- work is split. Needs the kernels (AVX2 and FMA); elsewhere BLAS runs and these
-- specs have nothing to check. Sizes: a batch split over two threads (B = 20), the
-- hidden units split over them (fewer than 16 sequences: B = 6 on packed panels of
-- w_hh, B = 1 and 3 straight from it), and no batch split with big products split by
-- rows.
local recur = require "recur"
local core = recur.core

local GATES = {lstm = 4, gru = 3, rnn_tanh = 1}

local function problem(cell, T, B, D, H)
  recur.manual_seed(5)
  local G = GATES[cell]
  local p = {cell = cell, T = T, B = B, D = D, H = H, G = G}
  p.x = recur.randn({T, B, D}, "float32")
  p.w_ih = recur.randn({G * H, D}, "float32"):mul(0.3)
  p.w_hh = recur.randn({G * H, H}, "float32"):mul(0.1)
  p.b_ih = recur.randn({G * H}, "float32"):mul(0.1)
  p.b_hh = recur.randn({G * H}, "float32"):mul(0.1)
  p.h0 = recur.randn({B, H}, "float32"):mul(0.5)
  p.c0 = cell == "lstm" and recur.randn({B, H}, "float32"):mul(0.5) or nil
  p.gy = recur.randn({T, B, H}, "float32")
  return p
end

local function run(p)
  local layer = core.rnn_layer(p.cell, p.D, p.H, {dtype = "float32"})
  local y, hn = layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, p.c0)
  local g = {w_ih = recur.zeros({p.G * p.H, p.D}, "float32"), w_hh = recur.zeros({p.G * p.H, p.H}, "float32"),
             b_ih = recur.zeros({p.G * p.H}, "float32"), b_hh = recur.zeros({p.G * p.H}, "float32")}
  local gx, gh0 = layer:backward(p.gy, nil, nil, g.w_ih, g.w_hh, g.b_ih, g.b_hh)
  return {y = y, hn = hn, gx = gx, gh0 = gh0, gw_ih = g.w_ih, gw_hh = g.w_hh, gb_ih = g.b_ih}
end

-- the kernels run where the CPU has AVX2 and FMA (csrc/rnn_gemm.c)
local function kernels()
  local f = io.open("/proc/cpuinfo")
  if not f then return false end
  local flags = f:read("a"):match("\nflags%s*:([^\n]*)") or ""
  f:close()
  return (" " .. flags .. " "):find(" avx2 ", 1, true) ~= nil and (" " .. flags .. " "):find(" fma ", 1, true) ~= nil
end

describe("float32 recurrent layers", function()
  local threads
  setup(function()
    threads = recur.get_num_threads()
    recur.thread_adapt(false) -- the thread counts below, not the controller's choice
  end)
  teardown(function()
    recur.thread_adapt(true)
    recur.set_num_threads(threads)
  end)

  for _, cell in ipairs({"lstm", "gru", "rnn_tanh"}) do
    -- the last size has w_ih above 8 MB: the input projection and dx run over all rows
    -- at once rather than in the steps (rnn_project_all in csrc/rnn.c); the one before,
    -- w_ih 1.2 MB, does so on two threads (10 rows each) and not on one (20 rows)
    for _, size in ipairs({{T = 5, B = 20, D = 7, H = 420 // GATES[cell]}, {T = 6, B = 6, D = 9, H = 37},
                           {T = 3, B = 16, D = 300, H = 700 // GATES[cell]},
                           {T = 3, B = 20, D = 700, H = 420 // GATES[cell]},
                           {T = 2, B = 16, D = 8300, H = 256 // GATES[cell]},
                           -- fewer than 4 sequences: the units split, w_hh read as stored
                           {T = 5, B = 1, D = 7, H = 600 // GATES[cell]},
                           {T = 4, B = 3, D = 9, H = 300 // GATES[cell]}}) do
      local label = string.format("%s (T,B,D,H) = (%d,%d,%d,%d)", cell, size.T, size.B, size.D, size.H)
      it(label .. ": the same bits on one thread and on two", function()
        if not kernels() then return end
        local p = problem(cell, size.T, size.B, size.D, size.H)
        recur.set_num_threads(1)
        local one = run(p)
        recur.set_num_threads(2)
        local two = run(p)
        for name, t in pairs(one) do
          assert.are.equal(0, (t - two[name]):abs():max(), name)
        end
      end)
    end

    -- from 4 sequences up step() runs the blocked kernel; below, step() and a forward of
    -- fewer than 16 rows (here 4 steps) both split the units and project x in the step
    -- (a longer forward projects all rows at once: the same to rounding)
    for _, case in ipairs({{B = 5, D = 6}, {B = 5, D = 8300}, {B = 4, D = 13}, {B = 3, D = 6},
                           {B = 1, D = 300}}) do
      local B, D = case.B, case.D
      it(cell .. ": step() gives forward's bits, B = " .. B .. ", D = " .. D, function()
        if not kernels() then return end
        local p = problem(cell, 4, B, D, 256 // GATES[cell])
        local layer = core.rnn_layer(cell, p.D, p.H, {dtype = "float32"})
        local y = layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.h0, p.c0)
        local h, c = p.h0:clone(), p.c0 and p.c0:clone()
        for t = 1, p.T do
          layer:step(p.x:select(1, t), p.w_ih, p.w_hh, p.b_ih, p.b_hh, h, c)
          assert.are.equal(0, (h - y:select(1, t)):abs():max(), "step " .. t)
        end
      end)
    end
  end
end)
