-- recur.dist and data-parallel training (README-mpi.md): N ranks under mpirun, each on
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
  or not have_dist and "recur.dist is not built (no mpicc; make deps-test installs libopenmpi-dev)"
  or not have_mpirun and "mpirun is absent (make deps-test installs openmpi-bin)"

-- mpirun as root needs Open MPI's consent; --oversubscribe runs more ranks than cores.
local function mpirun(np, args)
  local root = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
  local paths = string.format("LUA_PATH=%s LUA_CPATH=%s ", q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"))
  return sh(root .. paths .. "timeout 120 mpirun --oversubscribe -np " .. np .. " lua5.4 spec/dist/equivalence.lua " .. args)
end

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

  -- B = 6 streams, 8 iterations with Adam and clipping; the ranks other than 0 start
  -- from other weights, so the start's broadcast is checked too.
  local function one_process(B)
    local ok, out = sh(string.format("LUA_PATH=%s LUA_CPATH=%s lua5.4 spec/dist/equivalence.lua %s %d 8 single",
      q("lua/?.lua;lua/?/init.lua;;"), q("build/?.so;;"), q(single), B))
    assert(ok, out)
    return numbers(single)
  end

  for _, np in ipairs({2, 3}) do
    it(np .. " ranks with B/" .. np .. " streams each end where one process with B does", function()
      local want = one_process(6)
      local ok, out = mpirun(np, q(multi) .. " 6 8 dist")
      assert(ok, out)
      local got = numbers(multi)
      assert.is_true(#got > 1000)
      assert.is_true(max_abs_diff(want, got) < 1e-5, "max abs diff " .. max_abs_diff(want, got))
    end)
  end

  it("the comparison can fail: a process with batch 3 ends elsewhere", function()
    local want = one_process(6)
    local other = one_process(3)
    assert.is_true(max_abs_diff(want, other) > 1e-3)
  end)

  it("refuses a batch that the ranks do not divide", function()
    local ok, out = mpirun(4, q(multi) .. " 6 2 dist")
    assert.is_falsy(ok)
    assert.matches("batch size 6 is not divisible by 4 ranks", out, 1, true)
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
end)
