-- recur.dist and data-parallel training (README, "Data-parallel training"): N ranks under mpirun, each on
-- B/N of the batch's streams, end with the parameters of one process trained on the
-- whole batch B, up to float rounding (spec/dist/equivalence.lua trains both); a rank
-- that fails makes mpirun exit non-zero at once instead of leaving the others waiting.
-- Pending where recur.dist is not built (no mpicc) or mpirun is absent, and under
-- `make sanitize` (mpirun and its ranks would all run with the ASan runtime preloaded).
local helpers = require "spec.support.helpers"
local q, sh = helpers.q, helpers.sh

local have_dist = pcall(require, "recur.dist")
local have_mpirun = os.execute("command -v mpirun >/dev/null 2>&1")
local why_not = os.getenv("RECUR_SANITIZE") and "MPI runs are not checked under make sanitize (ASan preloaded into mpirun)"
  or not have_dist and "recur.dist is not built (no mpicc; make deps installs libopenmpi-dev)"
  or not have_mpirun and "mpirun is absent (make deps installs openmpi-bin)"

-- mpirun as root needs Open MPI's consent; --oversubscribe runs more ranks than cores.
local function mpirun_command(np, args)
  local root = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
  local paths = string.format("LUA_PATH=%s LUA_CPATH=%s ", q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"))
  return root .. paths .. "timeout 120 mpirun --oversubscribe -np " .. np .. " lua5.4 spec/dist/equivalence.lua " .. args
end
local function mpirun(np, args) return sh(mpirun_command(np, args)) end

local function numbers(path)
  local xs = {}
  for line in io.lines(path) do xs[#xs + 1] = tonumber(line) end
  return xs
end

local function max_abs_diff(a, b)
  assert.are.equal(#a, #b)
  local m = 0
  for i = 1, #a do m = math.max(m, math.abs(a[i] - b[i])) end
  return m
end

describe("data-parallel training under mpirun", function()
  if why_not then
    pending(why_not)
    return
  end

  local single, multi
  before_each(function() single, multi = os.tmpname(), os.tmpname() end)
  after_each(function() os.remove(single); os.remove(multi) end)

  -- 8 iterations with Adam and clipping, evaluating every 3; the ranks other than 0
  -- start from other weights, so the start's broadcast is checked too.
  local function one_process(B, kind)
    local ok, out = sh(string.format("LUA_PATH=%s LUA_CPATH=%s lua5.4 spec/dist/equivalence.lua %s %d 8 single %s",
      q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"), q(single), B, kind or "lm"))
    assert(ok, out)
    return numbers(single)
  end

  -- parameters, then "val" (nil), then the validation losses
  local function check_same(want, got)
    assert.are.equal(#want, #got)
    assert.is_true(#got > 100)
    assert.is_true(max_abs_diff(want, got) < 1e-5, "max abs diff " .. max_abs_diff(want, got))
  end

  -- B = 6 divides among 2 and 3 ranks; 5 among 2 and 3 and 6 among 4 do not, so the
  -- ranks' shares of the batch (and their target counts) differ.
  for _, case in ipairs({{2, 6}, {3, 6}, {2, 5}, {4, 6}}) do
    local np, B = case[1], case[2]
    it(np .. " ranks sharing a batch of " .. B .. " streams end where one process does, with its validation losses", function()
      local want = one_process(B)
      local ok, out = mpirun(np, q(multi) .. " " .. B .. " 8 dist")
      assert(ok, out)
      check_same(want, numbers(multi))
    end)
  end

  -- padded sequences of many lengths: the ranks' shares hold different numbers of
  -- targets, and the last batch of 27 sequences in 5s (2) leaves the third rank none
  for _, kind in ipairs({"classify", "seq2seq", "forecast", "generator"}) do
    for _, np in ipairs({2, 3}) do
      it(kind .. ": " .. np .. " ranks end where one process does", function()
        local want = one_process(5, kind)
        local ok, out = mpirun(np, q(multi) .. " 5 8 dist " .. kind)
        assert(ok, out)
        check_same(want, numbers(multi))
      end)
    end
  end

  it("the comparison can fail: a process with batch 3 ends elsewhere", function()
    local want = one_process(6)
    local other = one_process(3)
    assert.is_true(max_abs_diff(want, other) > 1e-3)
  end)

  it("refuses a stream batch smaller than the number of ranks", function()
    local ok, out = mpirun(3, q(multi) .. " 2 2 dist")
    assert.is_falsy(ok)
    assert.matches("a batch of 2 streams leaves rank 2 of 3 without one", out, 1, true)
  end)

  it("mpirun -np 2 recur train logs the validation losses of one process; rank 0 alone writes", function()
    local dir = helpers.tmp_dir()
    finally(function() helpers.remove_dir(dir) end)
    local text = {}
    for i = 1, 400 do text[i] = "the quick brown fox " .. i .. " jumps over the lazy dog\n" end
    local f = assert(io.open(dir .. "/t.txt", "w"))
    f:write(table.concat(text))
    f:close()
    local paths = string.format("LUA_PATH=%s LUA_CPATH=%s ", q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"))
    local function train(launch, name, iters, more)
      local ok, out = sh(paths .. launch .. " lua5.4 bin/recur train --data " .. q(dir .. "/t.txt") ..
        " --batch 4 --seq-len 16 --hidden 16 --max-iters " .. (iters or 12) .. " --eval-every 4 --lr 0.05 --threads 1 --checkpoint-dir " ..
        q(dir .. "/" .. name) .. " --log " .. q(dir .. "/" .. name .. ".jsonl") .. (more or ""))
      assert(ok, out)
      local losses = {}
      for line in io.lines(dir .. "/" .. name .. ".jsonl") do
        losses[#losses + 1] = tonumber(line:match('"val_loss":([^,}]+)'))
      end
      return losses, out
    end
    local want = train("", "one")
    local two = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun --oversubscribe -np 2"
    local got, out = train(two, "two")
    assert.are.equal(3, #want)
    assert.are.equal(#want, #got)
    for i = 1, #want do assert.is_true(math.abs(want[i] - got[i]) < 1e-5, want[i] .. " vs " .. got[i]) end
    -- one rank speaks: the summary line once
    local _, lines = out:gsub("stopped after 12 iterations", "")
    assert.are.equal(1, lines)
    -- resumed at iteration 8 with the same N: the checkpoint holds both ranks' carried
    -- state, and each rank takes its streams back
    train(two, "resumed", 8)
    local resumed = train(two, "resumed", 12, " --resume " .. q(dir .. "/resumed/last.safetensors"))
    assert.are.equal(3, #resumed)
    for i = 1, #want do assert.is_true(math.abs(want[i] - resumed[i]) < 1e-5, want[i] .. " vs " .. resumed[i]) end
  end)

  it("a rank that fails ends the job with a non-zero status, without a hang", function()
    local start = os.time()
    local ok, out = mpirun(2, q(multi) .. " 6 8 fail")
    assert.is_falsy(ok)
    assert.matches("rank 1 fails on purpose", out, 1, true)
    assert.is_true(os.time() - start < 60, "took " .. (os.time() - start) .. " s")
  end)

  it("recur train passes --dist-timeout to the ranks", function()
    local dir = helpers.tmp_dir()
    finally(function() helpers.remove_dir(dir) end)
    local paths = string.format("LUA_PATH=%s LUA_CPATH=%s ", q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"))
    -- a microsecond: the two ranks start milliseconds apart, so the first collective
    -- (the start's broadcast) cannot be answered in time
    local ok, out = sh(paths .. "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun --oversubscribe -np 2 " ..
      "lua5.4 bin/recur train --data data/tinyshakespeare.txt --max-iters 2 --threads 1 --dist-timeout 0.000001 --checkpoint-dir " .. q(dir .. "/c"))
    assert.is_falsy(ok)
    assert.matches("no answer from the other ranks in 1e-06 s", out, 1, true)
  end)

  it("a rank that hangs makes the others stop at the timeout, and the job ends", function()
    local start = os.time()
    local ok, out = sh("RECUR_DIST_TIMEOUT=2 " .. mpirun_command(2, q(multi) .. " 6 8 hang"))
    assert.is_falsy(ok)
    assert.matches("no answer from the other ranks in 2 s", out, 1, true)
    -- the hanging rank spins 60 s: the job must end well before
    assert.is_true(os.time() - start < 30, "took " .. (os.time() - start) .. " s")
  end)
end)
