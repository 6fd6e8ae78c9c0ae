-- The `recur` command: every error a user can cause is one line and a non-zero exit.
local recur = require "recur"

-- Runs bin/recur with arguments; returns exit status, stdout and stderr.
local function run(args)
  local err_path = os.tmpname()
  local p = io.popen("lua5.4 bin/recur " .. args .. " 2>" .. err_path)
  local out = p:read("a")
  local _, _, status = p:close()
  local f = io.open(err_path)
  local err = f:read("a")
  f:close()
  os.remove(err_path)
  return status, out, err
end

local function assert_one_line_error(args, pattern)
  local status, _, err = run(args)
  assert.are_not.equal(0, status, args)
  local _, lines = err:gsub("\n", "")
  assert.are.equal(1, lines, "expected one line, got: " .. err)
  assert.is_nil(err:find("traceback", 1, true))
  assert.is_truthy(err:find(pattern), "'" .. err .. "' does not match " .. pattern)
end

describe("recur command", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("reports user errors in one line", function()
    assert_one_line_error("train --data /nonexistent.txt", "^recur: read_text: cannot open '/nonexistent.txt': No such file or directory")
    local empty = os.tmpname()
    assert_one_line_error("train --data " .. empty, "^recur: read_text: '" .. empty .. "' is empty")
    assert_one_line_error("train --data x --bogus 3", "unknown option '%-%-bogus'")
    assert_one_line_error("train --data x --layers zero", "%-%-layers must be a positive integer")
    assert_one_line_error("frobnicate", "unknown command 'frobnicate'")
    assert_one_line_error("sample --checkpoint /nonexistent.safetensors", "^recur: io.load: '/nonexistent.safetensors'")
    local other = os.tmpname()
    recur.io.save(other, {w = recur.ones(2)})
    assert_one_line_error("sample --checkpoint " .. other, "is not a recur language%-model checkpoint")
    assert_one_line_error("eval --checkpoint " .. other .. " --data " .. empty, "is not a recur language%-model checkpoint")
    assert_one_line_error("plot --log /nonexistent.jsonl", "^recur: plot: cannot open '/nonexistent.jsonl'")
    os.remove(empty); os.remove(other)
  end)

  it("trains, samples, evaluates and plots", function()
    local text = recur.data.read_text("data/tinyshakespeare.txt"):sub(1, 20000)
    local data = os.tmpname()
    local f = assert(io.open(data, "wb")); f:write(text); f:close()
    local dir, log = os.tmpname(), os.tmpname()
    os.remove(dir); os.remove(log)
    local status, _, err = run(string.format(
      "train --data %s --layers 1 --hidden 32 --embed 16 --batch 8 --seq-len 16 --max-iters 20 --eval-every 10 --checkpoint-dir %s --log %s --threads 1",
      data, dir, log))
    assert.are.equal(0, status, err)
    assert.is_truthy(err:find("stopped after 20 iterations", 1, true))
    local records = recur.plot.read_log(log)
    assert.are.equal(2, #records)
    local out
    status, out = run("sample --checkpoint " .. dir .. "/best.safetensors --length 40 --prime 'First' --seed 4")
    assert.are.equal(0, status)
    assert.are.equal("First", out:sub(1, 5))
    assert.are.equal(46, utf8.len(out)) -- prime, 40 characters, newline
    local beam_out
    status, beam_out = run("sample --checkpoint " .. dir .. "/best.safetensors --length 40 --prime 'First' --beam 3")
    assert.are.equal(0, status)
    assert.are.equal("First", beam_out:sub(1, 5))
    assert.are.equal(46, utf8.len(beam_out))
    -- a search, not a draw: another seed gives the same text
    assert.are.equal(beam_out, select(2, run("sample --checkpoint " .. dir ..
      "/best.safetensors --length 40 --prime 'First' --beam 3 --seed 9")))
    status, out = run("eval --checkpoint " .. dir .. "/best.safetensors --data " .. data)
    assert.are.equal(0, status)
    assert.is_truthy(out:find("perplexity %d"))
    local svg = os.tmpname()
    status = run("plot --log " .. log .. " --out " .. svg)
    assert.are.equal(0, status)
    assert.is_truthy(assert(io.open(svg)):read("a"):find("<polyline", 1, true))
    os.remove(data); os.remove(log); os.remove(svg)
  end)
end)
