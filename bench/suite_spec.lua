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

  it("lists torch-rnn's 3x3 grid, three shapes for each cell, and generation", function()
    local rows = suite.rows()
    assert.equals(19, #rows)
    local grid, shapes = {}, {}
    for _, r in ipairs(rows) do
      if r[1] == "protocol" then grid[r[3] .. "x" .. r[5]] = true end
      if r[1] == "layer" then shapes[r[3] .. ":" .. table.concat({r[5], r[7], r[9], r[11]}, ",")] = true end
    end
    for _, L in ipairs({1, 2, 3}) do
      for _, H in ipairs({128, 256, 512}) do assert.is_true(grid[L .. "x" .. H]) end
    end
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      assert.is_true(shapes[cell .. ":100,64,512,512"])
      assert.is_true(shapes[cell .. ":50,32,1024,1024"])
      assert.is_true(shapes[cell .. ":100,1,256,256"])
    end
    assert.same({"generate", "--layers", 2, "--hidden", 512, "--tokens", 2000}, rows[19])
  end)

  it("overrides a flag already in a row instead of repeating it", function()
    local r = suite.with({"generate", "--tokens", 2000}, {"--threads", 2}, {"--tokens", 100})
    assert.same({"generate", "--tokens", 100, "--threads", 2}, r)
    assert.same({"a", "b", 1, 2}, suite.concat({"a", "b"}, {1, 2}))
  end)

  it("counts the layer's flops as its GEMMs add up", function()
    -- hand-computed: LSTM (100,64,512,512): 3 * 2 * 6400 * 512 * 2048 * 2
    assert.equals(80530636800, suite.layer_flops(100, 64, 512, 512, 4))
    for _, s in ipairs({{100, 64, 512, 512, 4}, {50, 32, 1024, 1024, 3}, {100, 1, 256, 256, 1}, {7, 3, 5, 11, 4}}) do
      local total = 0
      for _, g in ipairs(suite.layer_gemms(table.unpack(s))) do total = total + 2 * g[1] * g[2] * g[3] * g[6] end
      assert.equals(suite.layer_flops(table.unpack(s)), total)
    end
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
  end)
end)
