-- recur.tasks.examples: the validation lines of the seq2seq and classify tasks and
-- predict's one output per line, against lines written out by hand.
local levels = require "recur.tasks.levels"
local examples = require "recur.tasks.examples"

describe("tasks.examples", function()
  local function file_of(text)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
    return path
  end

  it("draws the validation lines with the seed, the same lines every time", function()
    local lines = {}
    for i = 1, 20 do lines[i] = "l" .. i .. "\tt" .. i end
    local path = file_of(table.concat(lines, "\n") .. "\n")
    local read = require("recur.data.tabular").read_pairs
    local train, val = examples.split("t", {data = path, val_frac = 0.25}, 7, read)
    assert.are.equal(15, #train[1])
    assert.are.equal(5, #val[1])
    -- the columns stay paired, and every line lands in one part
    local seen = {}
    for _, part in ipairs({train, val}) do
      for i, s in ipairs(part[1]) do
        assert.are.equal(s:gsub("^l", "t"), part[2][i])
        seen[s] = (seen[s] or 0) + 1
      end
    end
    for i = 1, 20 do assert.are.equal(1, seen["l" .. i]) end
    local _, again = examples.split("t", {data = path, val_frac = 0.25}, 7, read)
    assert.are.same(val, again)
    local _, other = examples.split("t", {data = path, val_frac = 0.25}, 8, read)
    assert.are_not.same(val, other)
    -- not the file's last lines: a sorted file's end is no sample of it
    assert.are_not.same({"l16", "l17", "l18", "l19", "l20"}, val[1])
    os.remove(path)
  end)

  it("writes one output per line, empty for a blank line, with the picked input encoded", function()
    local tok = levels.fit("t", "char", {"ab"})
    local path = file_of("ab\tx\n\n  \nba\r\nb")
    local got, out = nil, {}
    examples.predict_lines(path, function(line) return line:match("^([^\t]*)") end, tok,
      function(seqs) got = seqs; return {"first", "second", "third"} end,
      function(s) out[#out + 1] = s end)
    assert.are.same({{1, 2}, {2, 1}, {2}}, got)
    assert.are.same({"first\n", "\n", "\n", "second\n", "third\n"}, out)
    os.remove(path)
  end)
end)
