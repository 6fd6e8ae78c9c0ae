-- The rows of the benchmark suite and how to run and print them; shared by
-- bench/run.lua (recur alone) and bench/peer.lua (recur beside PyTorch).
--
-- A row is an argv tail for `bench/run.lua` / `bench/peer_torch.py`, such as
-- {"protocol", "--layers", 2, "--hidden", 256}. Every row script prints one JSON line.
local cjson = require "cjson"

local suite = {}

-- torch-rnn's grid, the three layer shapes for each cell, batch-1 generation.
function suite.rows()
  local rows = {}
  for _, L in ipairs({1, 2, 3}) do
    for _, H in ipairs({128, 256, 512}) do
      rows[#rows + 1] = {"protocol", "--layers", L, "--hidden", H}
    end
  end
  for _, shape in ipairs({{100, 64, 512, 512}, {50, 32, 1024, 1024}, {100, 1, 256, 256}}) do
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      rows[#rows + 1] = {"layer", "--cell", cell, "--T", shape[1], "--B", shape[2], "--D", shape[3], "--H", shape[4]}
    end
  end
  rows[#rows + 1] = {"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000}
  return rows
end

-- The GEMMs of one recurrent layer's forward and backward as {M, N, K, trans_a,
-- trans_b, count}, as the fused kernel (csrc/rnn_generic.h) issues them: the input
-- projection of all steps at once, one recurrent product per step; backward, one
-- recurrent product per step, then dx, dW_ih, dW_hh each over all T*B rows.
-- (The classic GRU splits the recurrent product in two; the flops are the same.)
function suite.layer_gemms(T, B, D, H, G)
  local GH = G * H
  return {
    {T * B, GH, D, false, true, 1},   -- x (TB,D) @ W_ih^T (D,GH)
    {B, GH, H, false, true, T},       -- h_{t-1} (B,H) @ W_hh^T (H,GH), per step
    {B, H, GH, false, false, T},      -- dG_t (B,GH) @ W_hh (GH,H), per step
    {T * B, D, GH, false, false, 1},  -- dx = dG (TB,GH) @ W_ih (GH,D)
    {GH, D, T * B, true, false, 1},   -- dW_ih += dG^T (GH,TB) @ x (TB,D)
    {GH, H, T * B, true, false, 1},   -- dW_hh += dG^T (GH,TB) @ h (TB,H)
  }
end

-- The flops the layer row counts: forward 2TB*D*GH + 2TB*H*GH, backward twice that.
function suite.layer_flops(T, B, D, H, G)
  return 3 * (2.0 * T * B * D * G * H + 2.0 * T * B * H * G * H)
end

-- Flags that make a row a smoke test rather than a measurement.
suite.QUICK = {protocol = {"--iters", 3}, layer = {"--iters", 1}, generate = {"--tokens", 100}}

-- The lists one after the other (an argv from pieces).
function suite.concat(...)
  local out = {}
  for _, list in ipairs({...}) do table.move(list, 1, #list, #out + 1, out) end
  return out
end

-- A copy of row with flag-value pairs added; a flag already there gets the new value
-- (a flag given twice is an error for argparse).
function suite.with(row, ...)
  local out = table.move(row, 1, #row, 1, {})
  for _, extra in ipairs({...}) do
    for i = 1, #extra, 2 do
      local at = nil
      for j = 1, #out do if out[j] == extra[i] then at = j end end
      if at then out[at + 1] = extra[i + 1] else out[#out + 1], out[#out + 2] = extra[i], extra[i + 1] end
    end
  end
  return out
end

local function shell_quote(s)
  s = tostring(s)
  if s:match("^[%w%-%./_=:,]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function suite.command_line(argv)
  local parts = {}
  for i, v in ipairs(argv) do parts[i] = shell_quote(v) end
  return table.concat(parts, " ")
end

-- The OpenBLAS kernels recur runs, as a line to print and as environment entries
-- (NAME=value) that make a peer's OpenBLAS run the same ones: on a CPU newer than
-- Debian's OpenBLAS, loading recur switches its own OpenBLAS from the fallback kernels
-- (csrc/blas_core.c) without touching the environment, so the peer is told explicitly.
function suite.same_blas_kernels()
  local blas = require("recur").blas_info()
  if not blas.core_repaired then return "OpenBLAS kernels: " .. blas.core, {} end
  return string.format("OpenBLAS kernels: %s (chosen by recur for a CPU this OpenBLAS predates;"
    .. " the peer gets OPENBLAS_CORETYPE=%s)", blas.core, blas.core), {"OPENBLAS_CORETYPE=" .. blas.core}
end

-- Runs argv (with `env`, a list of NAME=value, in front) and returns the decoded
-- last JSON line of its output, or nil and a message.
function suite.run(argv, env)
  local cmd = suite.command_line(argv)
  if env and #env > 0 then cmd = "env " .. suite.command_line(env) .. " " .. cmd end
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, how, code = p:close()
  local row
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then
      local good, t = pcall(cjson.decode, line)
      if good and type(t) == "table" then row = t end
    end
  end
  if not ok or not row then
    return nil, string.format("'%s' failed (%s %s):\n%s", cmd, tostring(how), tostring(code), out)
  end
  return row
end

function suite.describe(r)
  if r.row == "protocol" then return string.format("protocol L=%d H=%d", r.layers, r.hidden) end
  if r.row == "layer" then return string.format("%s (%d,%d,%d,%d)", r.cell, r.T, r.B, r.D, r.H) end
  return string.format("generate L=%d H=%d", r.layers, r.hidden)
end

-- The row's headline figure as a number, its unit, and whether more is better.
function suite.figure(r)
  if r.row == "protocol" then return r.ms_per_iter, "ms/iter", false end
  if r.row == "layer" then return r.ms, "ms", false end
  return r.tokens_per_s, "tok/s", true
end

function suite.format(r)
  if r.row == "protocol" then return string.format("%9.1f ms/iter", r.ms_per_iter) end
  if r.row == "layer" then
    return string.format("%9.1f ms %6.1f GFLOP/s, sgemm %6.1f: %3.0f%%", r.ms, r.gflops, r.sgemm_gflops,
      100 * r.fraction_of_sgemm)
  end
  return string.format("%9.0f tokens/s", r.tokens_per_s)
end

-- Fraction of the machine's CPU time that was idle over the next `seconds` (from
-- /proc/stat; nil where there is none).
function suite.idle_fraction(seconds)
  local function sample()
    local f = io.open("/proc/stat", "r")
    if not f then return nil end
    local line = f:read("l")
    f:close()
    local total, idle, i = 0, 0, 0
    for n in line:gmatch("%d+") do
      i = i + 1
      total = total + tonumber(n)
      if i == 4 or i == 5 then idle = idle + tonumber(n) end -- idle, iowait
    end
    return total, idle
  end
  local t0, i0 = sample()
  if not t0 then return nil end
  os.execute("sleep " .. seconds)
  local t1, i1 = sample()
  if t1 == t0 then return 1 end
  return (i1 - i0) / (t1 - t0)
end

-- Waits (up to max_wait seconds) until the machine is at least min_idle idle over a
-- 2-second window; the machine is shared and 2-thread timings are only meaningful
-- when the other cores' users are quiet. Returns the last idle fraction seen.
function suite.wait_idle(max_wait, min_idle)
  local waited, idle = 0, suite.idle_fraction(2)
  while idle and idle < min_idle and waited < max_wait do
    waited = waited + 2
    idle = suite.idle_fraction(2)
  end
  return idle, waited
end

function suite.write_json(path, t)
  local f = assert(io.open(path, "w"))
  f:write(cjson.encode(t), "\n")
  f:close()
end

return suite
