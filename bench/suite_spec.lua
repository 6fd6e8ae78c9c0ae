-- Specs for the benchmark harness: the row list, the flop accounting, and each row
-- script end to end at toy sizes (field names, figures consistent with each other,
-- errors on bad flags). Run from the repository root:
--   busted --lua=lua5.4 bench/suite_spec.lua
local suite = dofile("bench/suite.lua")

local ENV = {"LUA_PATH=lua/?.lua;lua/?/init.lua;;", "LUA_CPATH=build/?.so;;"}
local LUA = "lua5.4"

local function have_torch()
  local p = io.popen("/usr/bin/python3 -c 'import torch' 2>/dev/null && echo yes")
  local out = p:read("a")
  p:close()
  return out:match("yes") ~= nil
end

describe("bench suite", function()
  it("runs on Lua 5.4", function()
    assert.equals("Lua 5.4", _VERSION)
  end)

  it("lists torch-rnn's 3x3 grid, the layer shapes for training and inference, generation in fp32, bf16 and int8, wordlm", function()
    local rows = suite.rows()
    assert.equals(31, #rows)
    local grid, shapes = {}, {}
    for _, r in ipairs(rows) do
      if r[1] == "protocol" then grid[r[3] .. "x" .. r[5]] = true end
      if r[1] == "layer" then
        local key = r[3] .. ":" .. table.concat({r[5], r[7], r[9], r[11]}, ",") .. ":"
          .. (suite.flag(r, "--mode") or "train") .. ":" .. (suite.flag(r, "--dtype") or "float32")
        shapes[key] = true
      end
    end
    for _, L in ipairs({1, 2, 3}) do
      for _, H in ipairs({128, 256, 512}) do assert.is_true(grid[L .. "x" .. H]) end
    end
    for _, shape in ipairs({"100,64,512,512", "50,32,1024,1024", "100,1,256,256"}) do
      for _, cell in ipairs({"lstm", "gru", "rnn"}) do assert.is_true(shapes[cell .. ":" .. shape .. ":train:float32"]) end
      for _, cell in ipairs({"lstm", "gru"}) do assert.is_true(shapes[cell .. ":" .. shape .. ":infer:float32"]) end
      assert.is_true(shapes["lstm:" .. shape .. ":infer:bfloat16"])
    end
    assert.same({"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000}, rows[28])
    assert.same({"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000, "--dtype", "bfloat16"}, rows[29])
    assert.same({"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000, "--dtype", "int8"}, rows[30])
    assert.same({"wordlm"}, rows[31])
    -- oneDNN measures the layer rows only
    assert.same({"recur", "torch", "onednn"}, suite.sides(rows[10]))
    assert.same({"recur", "torch"}, suite.sides(rows[31]))
    assert.is_nil(suite.flag(rows[10], "--mode"))
  end)

  it("has Zaremba et al.'s medium model as the wordlm defaults", function()
    assert.same({layers = 2, hidden = 650, vocab = 10000, batch = 20, seq = 35, dropout = 0.5, lr = 1, clip = 5},
      suite.WORDLM)
  end)

  it("overrides a flag already in a row instead of repeating it", function()
    local r = suite.with({"generate", "--tokens", 2000}, {"--threads", 2}, {"--tokens", 100})
    assert.same({"generate", "--tokens", 100, "--threads", 2}, r)
    assert.same({"a", "b", 1, 2}, suite.concat({"a", "b"}, {1, 2}))
  end)

  it("counts the layer's flops as its GEMMs add up", function()
    -- hand-computed: LSTM (100,64,512,512): 3 * 2 * 6400 * 512 * 2048 * 2
    assert.equals(80530636800, suite.layer_flops(100, 64, 512, 512, 4))
    -- inference: the forward alone, a third
    assert.equals(26843545600, suite.layer_flops(100, 64, 512, 512, 4, "infer"))
    for _, s in ipairs({{100, 64, 512, 512, 4}, {50, 32, 1024, 1024, 3}, {100, 1, 256, 256, 1}, {7, 3, 5, 11, 4}}) do
      for _, mode in ipairs({"train", "infer"}) do
        local total = 0
        for _, g in ipairs(suite.layer_gemms(s[1], s[2], s[3], s[4], s[5], mode)) do
          total = total + 2 * g[1] * g[2] * g[3] * g[6]
        end
        assert.equals(suite.layer_flops(s[1], s[2], s[3], s[4], s[5], mode), total)
      end
    end
  end)

  it("formats the rows of every side, with the fraction of the peak when given", function()
    local onednn = {row = "layer", impl = "onednn", cell = "lstm", mode = "train", dtype = "float32", T = 100, B = 64,
                    D = 512, H = 512, ms = 230, gflops = 350}
    assert.equals("lstm (100,64,512,512)", suite.describe(onednn))
    assert.equals("   230.0 ms   350 GF/s  78%pk", suite.format(onednn, 450))
    local recur = {row = "layer", cell = "gru", mode = "infer", dtype = "bfloat16", T = 1, B = 2, D = 3, H = 4, ms = 1.5,
                   gflops = 90, sgemm_gflops = 60, fraction_of_sgemm = 1.5}
    assert.equals("gru inf bf16 (1,2,3,4)", suite.describe(recur))
    assert.equals("     1.5 ms    90 GF/s  20%pk 150%sg", suite.format(recur, 450))
    assert.equals("     1.5 ms    90 GF/s 150%sg", suite.format(recur))
    local w = {row = "wordlm", layers = 2, hidden = 650, vocab = 10000, ms_per_iter = 350, tokens_per_s = 2000}
    assert.equals("wordlm 2x650 V=10000", suite.describe(w))
    assert.same({350, "ms/iter", false}, {suite.figure(w)})
    local pk = {row = "peak", threads = 2, gflops = 450}
    assert.equals("peak fma 2 thr", suite.describe(pk))
    assert.same({450, "GFLOP/s", true}, {suite.figure(pk)})
  end)

  it("runs a layer row and reports consistent figures", function()
    local r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "gru", "--T", 3, "--B", 2, "--D", 4, "--H", 5,
                              "--iters", 2, "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals("recur", r.impl)
    assert.equals("gru", r.cell)
    local flops = suite.layer_flops(3, 2, 4, 5, 3)
    assert.near(flops / (r.ms / 1000) / 1e9, r.gflops, 1e-6 * r.gflops)
    assert.near(r.gflops / r.sgemm_gflops, r.fraction_of_sgemm, 1e-9)
    assert.is_true(r.peak_rss_mb > 0)
  end)

  it("runs a protocol row on a given text", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    local f = assert(io.open(path, "w"))
    f:write(string.rep("to be or not to be, that is the question. ", 20))
    f:close()
    local r, err = suite.run({LUA, "bench/run.lua", "protocol", "--layers", 1, "--hidden", 8, "--iters", 3,
                              "--batch", 2, "--seq", 4, "--data", path, "--phases", "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals(15, r.vocab) -- t o b e r n , h a i s q u . and the space
    assert.equals(3, r.iters)
    assert.is_true(r.ms_per_iter > 0 and r.ms_min <= r.ms_per_iter)
    assert.is_true(r.ms_forward > 0 and r.ms_backward > 0)
    assert.is_true(r.final_loss > 0 and r.final_loss < 2 * math.log(15))
  end)

  it("runs a generate row", function()
    local r, err = suite.run({LUA, "bench/run.lua", "generate", "--layers", 1, "--hidden", 8, "--tokens", 10,
                              "--greedy", "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.is_true(r.greedy)
    assert.near(r.tokens / r.seconds, r.tokens_per_s, 1e-9 * r.tokens_per_s)
    assert.is_nil(r.us_step)
    -- --phases: the step and the rest of a token, which add up to the token
    r, err = suite.run({LUA, "bench/run.lua", "generate", "--layers", 1, "--hidden", 8, "--tokens", 10,
                        "--phases", "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.is_true(r.us_step > 0 and r.us_choose > 0)
    assert.near(r.us_per_token, r.us_step + r.us_choose, 1e-6 * r.us_per_token)
  end)

  it("runs a layer row in inference mode, counting the forward's flops", function()
    local r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "lstm", "--T", 3, "--B", 2, "--D", 4, "--H", 5,
                              "--mode", "infer", "--iters", 2, "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals("infer", r.mode)
    local flops = suite.layer_flops(3, 2, 4, 5, 4, "infer")
    assert.near(flops / (r.ms / 1000) / 1e9, r.gflops, 1e-6 * r.gflops)
  end)

  it("marks a bf16 layer row unsupported, or measures it, never fails it", function()
    local r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "lstm", "--T", 3, "--B", 2, "--D", 4, "--H", 5,
                              "--mode", "infer", "--dtype", "bfloat16", "--iters", 1, "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals("bfloat16", r.dtype)
    assert.is_true(type(r.unsupported) == "string" or r.ms > 0)
  end)

  it("marks a bf16 generate row unsupported, or measures it", function()
    local r, err = suite.run({LUA, "bench/run.lua", "generate", "--layers", 1, "--hidden", 8, "--tokens", 10,
                              "--dtype", "bfloat16", "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals("bfloat16", r.dtype)
    assert.is_true(type(r.unsupported) == "string" or r.tokens_per_s > 0)
  end)

  it("measures an int8 generate row on int8 weights", function()
    local r, err = suite.run({LUA, "bench/run.lua", "generate", "--layers", 1, "--hidden", 8, "--tokens", 10,
                              "--dtype", "int8", "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals("int8", r.dtype)
    assert.is_nil(r.unsupported)
    assert.is_true(r.tokens_per_s > 0)
  end)

  it("runs a wordlm row at toy sizes", function()
    local r, err = suite.run({LUA, "bench/run.lua", "wordlm", "--hidden", 8, "--vocab", 20, "--batch", 2, "--seq", 3,
                              "--iters", 2, "--threads", 1}, ENV)
    assert.is_nil(err)
    assert.equals(0.5, r.dropout)
    assert.near(2 * 3 / (r.ms_per_iter / 1000), r.tokens_per_s, 1e-9 * r.tokens_per_s)
    assert.is_true(r.final_loss > 0 and r.final_loss < 2 * math.log(20))
  end)

  it("times a wordlm iteration's parts with --phases, and they fit in the iteration", function()
    local r, err = suite.run({LUA, "bench/run.lua", "wordlm", "--hidden", 8, "--vocab", 20, "--batch", 2, "--seq", 3,
                              "--iters", 3, "--threads", 1, "--phases"}, ENV)
    assert.is_nil(err)
    local sum = 0
    for _, part in ipairs({"rnn_forward", "decoder_forward", "loss_forward", "loss_backward", "decoder_backward",
                           "rnn_backward", "clip", "sgd"}) do
      local ms = r["ms_" .. part]
      assert.is_true(type(ms) == "number" and ms > 0, part)
      sum = sum + ms
    end
    assert.is_true(sum <= r.ms_mean * 1.5, "the parts add up to more than an iteration")
    -- the same iteration: the wrapped calls change no result
    local plain = suite.run({LUA, "bench/run.lua", "wordlm", "--hidden", 8, "--vocab", 20, "--batch", 2, "--seq", 3,
                             "--iters", 3, "--threads", 1}, ENV)
    assert.equals(plain.final_loss, r.final_loss)
  end)

  it("builds and runs the FMA peak", function()
    local root = os.tmpname()
    os.remove(root)
    finally(function() os.execute("rm -rf " .. root) end)
    assert.is_true(os.execute("mkdir -p " .. root .. "/bench && cp bench/peak.c " .. root .. "/bench/"))
    local bin = assert(suite.tool(root, "peak"))
    local p = io.popen(bin .. " --threads 1,2 --ms 5 --repeat 1")
    local lines = {}
    for line in p:lines() do lines[#lines + 1] = require("cjson").decode(line) end
    p:close()
    assert.equals(2, #lines)
    assert.equals(1, lines[1].threads)
    assert.equals(2, lines[2].threads)
    assert.is_true(lines[1].gflops > 0 and lines[1].gflops <= lines[1].gflops_max)
    local _, _, code = os.execute(bin .. " --threads 0 2>/dev/null")
    assert.equals(1, code)
  end)

  it("says why oneDNN's peer is missing when it cannot be built", function()
    local root = os.tmpname()
    os.remove(root)
    finally(function() os.execute("rm -rf " .. root) end)
    assert.is_true(os.execute("mkdir -p " .. root .. "/bench && cp bench/dnnl_peer.c " .. root .. "/bench/"))
    local bin, err = suite.tool(root, "dnnl_peer", "false")
    assert.is_nil(bin)
    assert.matches("apt-get install libdnnl-dev", err, 1, true)
  end)

  it("gets the layer row's fields from oneDNN's side, when libdnnl is installed", function()
    local bin = suite.tool(".", "dnnl_peer")
    if not bin then
      pending("libdnnl-dev is not installed (oneDNN is a peer, not a dependency)")
      return
    end
    for _, c in ipairs({{"lstm", "train", "float32", 4}, {"gru", "train", "float32", 3}, {"rnn", "infer", "float32", 1},
                        {"lstm", "infer", "bfloat16", 4}}) do
      local r, err = suite.run({bin, "layer", "--cell", c[1], "--T", 3, "--B", 2, "--D", 4, "--H", 5, "--mode", c[2],
                                "--dtype", c[3], "--iters", 2, "--threads", 1, "--seed", 7})
      assert.is_nil(err)
      assert.equals("onednn", r.impl)
      assert.equals(c[1], r.cell)
      assert.equals(c[3], r.dtype)
      if r.unsupported then
        -- oneDNN has no bf16 kernel without AVX-512 (a Zen 3): a row peer.lua prints n/a
        assert.equals("bfloat16", c[3])
      else
        local flops = suite.layer_flops(3, 2, 4, 5, c[4], c[2])
        assert.near(flops, r.gflops * (r.ms / 1000) * 1e9, 1e-3 * flops)
        assert.is_true(r.ms_forward <= r.ms + 1e-9 and r.peak_rss_mb > 0)
      end
    end
    local r, err = suite.run({bin, "layer", "--cell", "lstm", "--T", 3, "--B", 2, "--D", 4})
    assert.is_nil(r)
    assert.matches("--H are required", err, 1, true)
    r, err = suite.run({bin, "layer", "--cell", "lstm", "--T", 3, "--B", 2, "--D", 4, "--H", 5, "--dtype", "bfloat16"})
    assert.is_nil(r)
    assert.matches("for --mode infer only", err, 1, true)
  end)

  it("measures a row quiet and with one core busy", function()
    local out = io.popen("lua5.4 bench/busy.lua --only generate --quick --threads 1 --output /dev/null 2>&1"):read("a")
    assert.matches("generate L=2 H=512%s+recur%s+1 .* tok/s .* tok/s .*x", out)
    assert.matches("results in /dev/null", out, 1, true)
  end)

  it("fails with a message naming a missing or bad flag", function()
    local r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "lstm", "--T", 3}, ENV)
    assert.is_nil(r)
    assert.matches("%-%-B", err)
    r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "lstm", "--T", 0, "--B", 1, "--D", 1, "--H", 1}, ENV)
    assert.is_nil(r)
    assert.matches("--T must be an integer >= 1", err, 1, true)
    r, err = suite.run({LUA, "bench/run.lua", "layer", "--cell", "lstx", "--T", 1, "--B", 1, "--D", 1, "--H", 1}, ENV)
    assert.is_nil(r)
    assert.matches("lstx", err, 1, true)
  end)

  it("gets the same fields from PyTorch's side", function()
    if not have_torch() then
      pending("PyTorch is not installed at /usr/bin/python3")
      return
    end
    local argv = {"layer", "--cell", "lstm", "--T", 3, "--B", 2, "--D", 4, "--H", 5, "--iters", 1, "--threads", 1}
    local r = assert(suite.run(suite.concat({LUA, "bench/run.lua"}, argv), ENV))
    local t = assert(suite.run(suite.concat({"/usr/bin/python3", "bench/peer_torch.py"}, argv)))
    assert.equals("torch", t.impl)
    for _, k in ipairs({"ms", "gflops", "sgemm_gflops", "fraction_of_sgemm", "peak_rss_mb", "T", "B", "D", "H"}) do
      assert.is_number(r[k], "recur lacks " .. k)
      assert.is_number(t[k], "torch lacks " .. k)
    end
    local flops = suite.layer_flops(3, 2, 4, 5, 4)
    assert.near(flops, t.gflops * (t.ms / 1000) * 1e9, 1e-6 * flops)
    assert.equals("train", t.mode)
    argv = {"wordlm", "--hidden", 8, "--vocab", 20, "--batch", 2, "--seq", 3, "--iters", 1, "--threads", 1}
    r = assert(suite.run(suite.concat({LUA, "bench/run.lua"}, argv), ENV))
    t = assert(suite.run(suite.concat({"/usr/bin/python3", "bench/peer_torch.py"}, argv)))
    for _, k in ipairs({"ms_per_iter", "tokens_per_s", "final_loss", "peak_rss_mb", "batch", "seq", "vocab"}) do
      assert.is_number(r[k], "recur lacks " .. k)
      assert.is_number(t[k], "torch lacks " .. k)
    end
  end)
end)
