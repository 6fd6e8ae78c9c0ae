-- bfloat16 (and int8) inference beside float32 and the peers, in one run (the machine is shared:
-- only same-run ratios mean anything):
--
--   lua5.4 bench/bf16.lua [--rounds 3] [--tokens 2000] [--threads 2] [--dnnl PATH] [--clock cpu]
--
-- generate: a 2-layer 512 LSTM language model (embedding 64, vocabulary 65, random
--   weights) producing tokens at batch 1, model:step + decode.choose at temperature 1,
--   as bench/run.lua's generate row: recur fp32, bf16 and int8, and PyTorch 1.13
--   (bench/peer_torch.py generate, /usr/bin/python3), tokens/s.
-- layer: one LSTM layer's inference forward at (T,B,D,H) = (100,64,512,512), the
--   state from zero: recur fp32 (nn.LSTM in evaluation mode), recur bf16, and oneDNN's
--   bf16 forward_inference when --dnnl names bench/dnnl_peer.c built (cc -O2 -fopenmp
--   bench/dnnl_peer.c -ldnnl -lm -o build/bench/dnnl_peer), ms (median of 5).
-- Each round runs every side once, rounds alternate the order; the median round of
-- each side is reported.
-- --clock cpu (with --threads 1) times CPU seconds instead of wall-clock ones, for a
-- machine other work keeps busy, where a wall clock measures the queue: recur's sides
-- by os.clock(), the peers' by /usr/bin/time over two runs of different lengths (N and
-- 2N tokens, or iterations), whose difference leaves out start-up and set-up.
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local argparse = require "argparse"
local suite = dofile(ROOT .. "/bench/suite.lua")
local LanguageModel = require "recur.models.LanguageModel"

local parser = argparse("bench/bf16.lua", "bf16 inference beside fp32, PyTorch and oneDNN")
parser:option("--rounds", "rounds (each side once per round)", 3):convert(tonumber)
parser:option("--tokens", "tokens per generation run", 2000):convert(tonumber)
parser:option("--threads", "threads for every side", 2):convert(tonumber)
parser:option("--dnnl", "bench/dnnl_peer.c built (oneDNN's bf16 layer)")
parser:option("--python", "the Python with PyTorch 1.13", "/usr/bin/python3")
parser:option("--clock", "wall or cpu (CPU seconds; with --threads 1)", "wall"):choices({"wall", "cpu"})
local a = parser:parse()
recur.set_num_threads(a.threads)
if a.clock == "cpu" and a.threads ~= 1 then parser:error("--clock cpu needs --threads 1") end
local clock = a.clock == "cpu" and os.clock or recur.now

-- CPU seconds (user + system) of a command, by /usr/bin/time.
local function cpu_seconds(argv)
  local p = assert(io.popen("/usr/bin/time -f 'CPU %U %S' " .. suite.command_line(argv) .. " 2>&1"))
  local out = p:read("a")
  p:close()
  local u, sy = out:match("CPU ([%d.]+) ([%d.]+)")
  if not u then error("no CPU time from " .. suite.command_line(argv) .. ":\n" .. out) end
  return tonumber(u) + tonumber(sy)
end

local function median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  return s[(#s + 1) // 2]
end

recur.manual_seed(1)
local model = LanguageModel{vocab_size = 65, embed = 64, hidden = 512, layers = 2, cell = "lstm", dropout = 0}
model:evaluate()

local function generate(precision)
  model:set_precision(precision)
  local ids = recur.zeros({1}, "int64")
  ids:set(1, 1)
  local state, t0
  for i = 1, 20 + a.tokens do
    if i == 21 then t0 = clock() end
    local logits
    logits, state = model:step(ids, state)
    ids:set(1, recur.decode.choose(logits:select(1, 1), {temperature = 1}))
  end
  return a.tokens / (clock() - t0)
end

local T, B, D, H = 100, 64, 512, 512
local layer = recur.nn.LSTM(D, H):evaluate()
local x = recur.randn({T, B, D})

local function forward(precision)
  layer:set_precision(precision)
  layer:forward(x) -- the bf16 weights are packed here, outside the timing
  local times = {}
  for i = 1, 5 do
    local t0 = clock()
    layer:forward(x)
    times[i] = (clock() - t0) * 1e3
  end
  return median(times)
end

local function torch_generate()
  if a.clock == "cpu" then
    local function argv(n)
      return {a.python, ROOT .. "/bench/peer_torch.py", "generate", "--layers", 2, "--hidden", 512, "--tokens", n,
        "--threads", 1}
    end
    return a.tokens / (cpu_seconds(argv(2 * a.tokens)) - cpu_seconds(argv(a.tokens)))
  end
  local row, err = suite.run({a.python, ROOT .. "/bench/peer_torch.py", "generate", "--layers", 2, "--hidden", 512,
    "--tokens", a.tokens, "--threads", a.threads})
  if not row then error(err) end
  return row.tokens_per_s
end

local function dnnl_layer()
  if a.clock == "cpu" then
    local function argv(n)
      return {a.dnnl, "layer", "--cell", "lstm", "--T", T, "--B", B, "--D", D, "--H", H, "--mode", "infer",
        "--dtype", "bfloat16", "--threads", 1, "--iters", n}
    end
    return (cpu_seconds(argv(10)) - cpu_seconds(argv(5))) / 5 * 1e3
  end
  local row, err = suite.run({a.dnnl, "layer", "--cell", "lstm", "--T", T, "--B", B, "--D", D, "--H", H,
    "--mode", "infer", "--dtype", "bfloat16", "--threads", a.threads, "--iters", 5})
  if not row then error(err) end
  return row.ms
end

local sides = {
  {"generate recur fp32", function() return generate("fp32") end, "tok/s"},
  {"generate recur bf16", function() return generate("bf16") end, "tok/s"},
  {"generate recur int8", function() return generate("int8") end, "tok/s"},
  {"generate PyTorch", torch_generate, "tok/s"},
  {"layer recur fp32", function() return forward("fp32") end, "ms"},
  {"layer recur bf16", function() return forward("bf16") end, "ms"},
}
if a.dnnl then sides[#sides + 1] = {"layer oneDNN bf16", dnnl_layer, "ms"} end

local results = {}
for r = 1, a.rounds do
  local order = {}
  for i = 1, #sides do order[i] = r % 2 == 1 and i or #sides + 1 - i end
  for _, i in ipairs(order) do
    results[i] = results[i] or {}
    table.insert(results[i], sides[i][2]())
  end
  io.stderr:write(string.format("round %d done\n", r))
end

local m = {}
print(string.format("bf16 inference, %d threads, %d rounds, %s seconds (median; all rounds in brackets)", a.threads,
  a.rounds, a.clock == "cpu" and "CPU" or "wall-clock"))
for i, s in ipairs(sides) do
  m[s[1]] = median(results[i])
  local all = {}
  for _, v in ipairs(results[i]) do all[#all + 1] = string.format("%.1f", v) end
  print(string.format("%-22s %10.1f %-6s [%s]", s[1], m[s[1]], s[3], table.concat(all, " ")))
end
local flops = 2 * T * B * (D + H) * 4 * H
print(string.format("generation: bf16 %.2fx fp32, %.2fx PyTorch; int8 %.2fx bf16, %.2fx PyTorch",
  m["generate recur bf16"] / m["generate recur fp32"], m["generate recur bf16"] / m["generate PyTorch"],
  m["generate recur int8"] / m["generate recur bf16"], m["generate recur int8"] / m["generate PyTorch"]))
print(string.format("layer (100,64,512,512) forward: bf16 %.1f ms (%.0f GFLOP/s), %.2fx fp32%s",
  m["layer recur bf16"], flops / m["layer recur bf16"] / 1e6, m["layer recur fp32"] / m["layer recur bf16"],
  a.dnnl and string.format(", %.2fx oneDNN bf16 (%.1f ms)", m["layer oneDNN bf16"] / m["layer recur bf16"],
    m["layer oneDNN bf16"]) or ""))
