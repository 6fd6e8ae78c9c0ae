-- The rows of the benchmark suite and how to run and print them; shared by
-- bench/run.lua (recur alone) and bench/peer.lua (recur beside PyTorch).
--
-- A row is an argv tail for `bench/run.lua` / `bench/peer_torch.py`, such as
-- {"protocol", "--layers", 2, "--hidden", 256}. Every row script prints one JSON line.
local cjson = require "cjson"

local suite = {}

-- The three layer shapes (T,B,D,H) of issue 6.
suite.SHAPES = {{100, 64, 512, 512}, {50, 32, 1024, 1024}, {100, 1, 256, 256}}

-- A batch-1 row takes 1-4 ms an iteration: at the sides' default 5 or 10 iterations its
-- median moved by a third between runs, so every side runs it 100 times.
local function layer_row(cell, shape, ...)
  local row = suite.concat({"layer", "--cell", cell, "--T", shape[1], "--B", shape[2], "--D", shape[3], "--H", shape[4]},
    {...})
  return shape[2] == 1 and suite.concat(row, {"--iters", 100}) or row
end

-- torch-rnn's grid; the three layer shapes for each cell, training (forward +
-- backward), then inference (forward alone) for the LSTM and GRU and bf16 LSTM
-- inference; batch-1 generation in fp32, bf16 and int8; Zaremba et al.'s medium
-- word-level model.
function suite.rows()
  local rows = {}
  for _, L in ipairs({1, 2, 3}) do
    for _, H in ipairs({128, 256, 512}) do
      rows[#rows + 1] = {"protocol", "--layers", L, "--hidden", H}
    end
  end
  for _, shape in ipairs(suite.SHAPES) do
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do rows[#rows + 1] = layer_row(cell, shape) end
  end
  for _, shape in ipairs(suite.SHAPES) do
    for _, cell in ipairs({"lstm", "gru"}) do rows[#rows + 1] = layer_row(cell, shape, "--mode", "infer") end
    rows[#rows + 1] = layer_row("lstm", shape, "--mode", "infer", "--dtype", "bfloat16")
  end
  rows[#rows + 1] = {"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000}
  rows[#rows + 1] = {"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000, "--dtype", "bfloat16"}
  rows[#rows + 1] = {"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000, "--dtype", "int8"}
  rows[#rows + 1] = {"wordlm"}
  return rows
end

-- The value of a flag in a row (an argv tail), or nil.
function suite.flag(row, name)
  for i = 2, #row - 1 do
    if row[i] == name then return row[i + 1] end
  end
  return nil
end

-- The implementations that measure a row: recur and PyTorch every row, oneDNN (the
-- second peer, bench/dnnl_peer.c) the layer rows.
function suite.sides(row)
  if row[1] == "layer" then return {"recur", "torch", "onednn"} end
  return {"recur", "torch"}
end

-- The GEMMs of one recurrent layer's forward and backward as {M, N, K, trans_a,
-- trans_b, count}, as the fused kernel (csrc/rnn_generic.h) issues them: the input
-- projection of all steps at once, one recurrent product per step; backward, one
-- recurrent product per step, then dx, dW_ih, dW_hh each over all T*B rows.
-- (The classic GRU splits the recurrent product in two; the flops are the same.)
function suite.layer_gemms(T, B, D, H, G, mode)
  local GH = G * H
  local gemms = {
    {T * B, GH, D, false, true, 1},   -- x (TB,D) @ W_ih^T (D,GH)
    {B, GH, H, false, true, T},       -- h_{t-1} (B,H) @ W_hh^T (H,GH), per step
    {B, H, GH, false, false, T},      -- dG_t (B,GH) @ W_hh (GH,H), per step
    {T * B, D, GH, false, false, 1},  -- dx = dG (TB,GH) @ W_ih (GH,D)
    {GH, D, T * B, true, false, 1},   -- dW_ih += dG^T (GH,TB) @ x (TB,D)
    {GH, H, T * B, true, false, 1},   -- dW_hh += dG^T (GH,TB) @ h (TB,H)
  }
  if mode == "infer" then return {gemms[1], gemms[2]} end -- forward alone
  return gemms
end

-- The flops the layer row counts: forward 2TB*D*GH + 2TB*H*GH, backward twice that
-- (mode "infer": the forward alone).
function suite.layer_flops(T, B, D, H, G, mode)
  local forward = 2.0 * T * B * D * G * H + 2.0 * T * B * H * G * H
  return mode == "infer" and forward or 3 * forward
end

-- Zaremba et al. (2014)'s medium PTB model, the wordlm row's defaults: 2 LSTM layers
-- of 650, embedding 650, vocabulary 10000, batch 20 x 35 steps, dropout 0.5, plain SGD
-- (lr 1) with the gradient norm clipped at 5.
suite.WORDLM = {layers = 2, hidden = 650, vocab = 10000, batch = 20, seq = 35, dropout = 0.5, lr = 1, clip = 5}

-- Flags that make a row a smoke test rather than a measurement.
suite.QUICK = {protocol = {"--iters", 3}, layer = {"--iters", 1}, generate = {"--tokens", 100},
               wordlm = {"--iters", 2}}

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
  if r.row == "layer" then
    local mode = (r.mode == "infer" and " inf" or "") .. (r.dtype == "bfloat16" and " bf16" or "")
    return string.format("%s%s (%d,%d,%d,%d)", r.cell, mode, r.T, r.B, r.D, r.H)
  end
  if r.row == "wordlm" then return string.format("wordlm %dx%d V=%d", r.layers, r.hidden, r.vocab) end
  if r.row == "peak" then return string.format("peak fma %d thr", r.threads) end
  return string.format("generate L=%d H=%d%s", r.layers, r.hidden,
    r.dtype == "bfloat16" and " bf16" or r.dtype == "int8" and " int8" or "")
end

-- The row's headline figure as a number, its unit, and whether more is better.
function suite.figure(r)
  if r.row == "protocol" then return r.ms_per_iter, "ms/iter", false end
  if r.row == "layer" then return r.ms, "ms", false end
  if r.row == "wordlm" then return r.ms_per_iter, "ms/iter", false end
  if r.row == "peak" then return r.gflops, "GFLOP/s", true end
  return r.tokens_per_s, "tok/s", true
end

-- peak: the FMA peak row of the same run at the row's thread count (fraction of peak
-- is printed when given).
function suite.format(r, peak)
  if r.row == "protocol" then return string.format("%9.1f ms/iter", r.ms_per_iter) end
  if r.row == "layer" then
    local s = string.format("%8.1f ms %5.0f GF/s", r.ms, r.gflops)
    if peak then s = s .. string.format(" %3.0f%%pk", 100 * r.gflops / peak) end
    if r.sgemm_gflops then s = s .. string.format(" %3.0f%%sg", 100 * r.fraction_of_sgemm) end
    return s
  end
  if r.row == "wordlm" then return string.format("%7.1f ms/iter %6.0f tok/s", r.ms_per_iter, r.tokens_per_s) end
  if r.row == "peak" then return string.format("%7.1f GFLOP/s", r.gflops) end
  return string.format("%9.0f tokens/s", r.tokens_per_s)
end

-- A C program of bench/ (peak.c, pingpong.c, dnnl_peer.c) compiled into root/build/bench/ when its
-- binary is missing or older than its source. Returns the binary's path, or nil and
-- why not (for dnnl_peer.c: libdnnl-dev is not installed; oneDNN is a peer, never a
-- dependency). cc: the compiler (default $CC or cc).
suite.TOOLS = {peak = {"-O2", "-pthread"}, pingpong = {"-O2", "-pthread"}, dnnl_peer = {"-O2", "-fopenmp", "LIBS", "-ldnnl", "-lm"}}
function suite.tool(root, name, cc)
  local flags = assert(suite.TOOLS[name], "suite.tool: unknown tool " .. tostring(name))
  local src, bin = root .. "/bench/" .. name .. ".c", root .. "/build/bench/" .. name
  local fresh = os.execute(string.format("test -x %s && ! test %s -nt %s", bin, src, bin))
  if fresh then return bin end
  local pre, libs, into = {}, {}, nil
  for _, f in ipairs(flags) do
    if f == "LIBS" then into = libs elseif into then into[#into + 1] = f else pre[#pre + 1] = f end
  end
  os.execute("mkdir -p " .. root .. "/build/bench")
  local cmd = suite.command_line(suite.concat({cc or os.getenv("CC") or "cc"}, pre, {src}, libs, {"-o", bin}))
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  if not p:close() then
    return nil, string.format("'%s' failed%s:\n%s", cmd,
      name == "dnnl_peer" and " (oneDNN is not installed? apt-get install libdnnl-dev)" or "", out)
  end
  return bin
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
