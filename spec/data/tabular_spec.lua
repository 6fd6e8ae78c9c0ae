-- recur.data.tabular: read_pairs, read_labeled, read_csv on temporary files written
-- here, against the arrays and tensors the file contents spell out by hand.
local data = require("recur.data")
local helpers = require("spec.support.helpers")

local dir
local count = 0

-- A new file under the spec's temporary directory holding `contents` (bytes as given).
local function file(contents)
  count = count + 1
  local path = dir .. "/f" .. count
  local f = assert(io.open(path, "wb"))
  f:write(contents)
  f:close()
  return path
end

local function fails_with(text, fn, ...)
  local msg = helpers.err_of(fn, ...)
  assert(msg:find(text, 1, true), "message was: " .. msg)
end

setup(function() dir = helpers.tmp_dir() end)
teardown(function() helpers.remove_dir(dir) end)

describe("read_pairs", function()
  it("splits each line at its tab, keeping spaces and UTF-8 bytes", function()
    local p = file("three hundred and twelve\t312\n  café \t\xE2\x82\xAC 5\n")
    local src, tgt = data.read_pairs(p)
    assert.are.same({ "three hundred and twelve", "  café " }, src)
    assert.are.same({ "312", "\xE2\x82\xAC 5" }, tgt)
  end)

  it("skips blank lines, tolerates CRLF, a missing final newline and a BOM", function()
    local p = file("\xEF\xBB\xBFa\tb\r\n\r\n   \nc\td")
    local src, tgt = data.read_pairs(p)
    assert.are.same({ "a", "c" }, src)
    assert.are.same({ "b", "d" }, tgt)
  end)

  it("names the file and the line (blank lines counted) of a line without a tab", function()
    local p = file("a\tb\n\nno tab here\n")
    fails_with("read_pairs: " .. p .. ":3: expected source<TAB>target, found no tab", data.read_pairs, p)
  end)

  it("refuses a line with two tabs", function()
    local p = file("a\tb\nc\td\te\n")
    fails_with("read_pairs: " .. p .. ":2: expected source<TAB>target, found 2 tabs", data.read_pairs, p)
  end)

  it("refuses an empty source or target", function()
    fails_with(":1: the source (before the tab) is empty", data.read_pairs, file("\tx\n"))
    fails_with(":2: the target (after the tab) is empty", data.read_pairs, file("a\tb\nx\t \n"))
  end)

  it("refuses a missing, empty or blank file under its own name", function()
    fails_with("read_pairs: cannot open '" .. dir .. "/missing'", data.read_pairs, dir .. "/missing")
    local empty = file("")
    fails_with("read_pairs: '" .. empty .. "' is empty", data.read_pairs, empty)
    local p = file("\n \r\n")
    fails_with("read_pairs: '" .. p .. "' has only blank lines", data.read_pairs, p)
  end)
end)

describe("read_labeled", function()
  it("returns labels and texts, a label being any non-empty string", function()
    local p = file("pos\tI loved it\nneg\tawful.\n3 stars\tok\n")
    local labels, texts = data.read_labeled(p)
    assert.are.same({ "pos", "neg", "3 stars" }, labels)
    assert.are.same({ "I loved it", "awful.", "ok" }, texts)
  end)

  it("names the label or the text in its errors", function()
    local p = file("pos\tgood\n\tbad\n")
    fails_with("read_labeled: " .. p .. ":2: the label (before the tab) is empty", data.read_labeled, p)
    p = file("pos\n")
    fails_with("read_labeled: " .. p .. ":1: expected label<TAB>text, found no tab", data.read_labeled, p)
  end)
end)

describe("read_csv", function()
  it("reads a header and the rows as a float64 (N,D) tensor", function()
    local p = file("hour,temp\r\n0,1.5\r\n1,-2e-1\r\n2, .25 \r\n")
    local x, names = data.read_csv(p)
    assert.are.same({ "hour", "temp" }, names)
    assert.are.equal("float64", x:dtype())
    assert.are.same({ 3, 2 }, x:size())
    assert.are.same({ 0, 1.5, 1, -0.2, 2, 0.25 }, helpers.flat(x))
  end)

  it("takes a first row of numbers for data and names the columns 1..D", function()
    local x, names = data.read_csv(file("1,2,3\n4,5,6\n"))
    assert.are.same({ "1", "2", "3" }, names)
    assert.are.same({ 2, 3 }, x:size())
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, helpers.flat(x))
  end)

  it("takes a first row with any non-number for a header, quotes removed", function()
    local x, names = data.read_csv(file('"t",2\n1,2\n'))
    assert.are.same({ "t", "2" }, names)
    assert.are.same({ 1, 2 }, x:size())
  end)

  it("reads one column into (N,1) and float32 when asked", function()
    local x = data.read_csv(file("v\n0.5\n\n1.5\n"), { dtype = "float32" })
    assert.are.equal("float32", x:dtype())
    assert.are.same({ 2, 1 }, x:size())
    assert.are.same({ 0.5, 1.5 }, helpers.flat(x))
  end)

  it("names the line and the column of a cell that is not a finite number", function()
    local p = file("a,b\n1,2\n3,x\n")
    fails_with('read_csv: ' .. p .. ':3: column 2 (b): "x" is not a finite number', data.read_csv, p)
    fails_with(':2: column 1 (1): "1e999" is not a finite number', data.read_csv, file("1,2\n1e999,2\n"))
    fails_with(':2: column 2 (b): "nan" is not a finite number', data.read_csv, file("a,b\n1,nan\n"))
    fails_with(':2: column 1 (a): "0x10" is not a finite number', data.read_csv, file("a,b\n0x10,1\n"))
    fails_with(':2: column 2 (b): "" is not a finite number', data.read_csv, file("a,b\n1,\n"))
  end)

  it("refuses rows of another length than the first", function()
    local p = file("a,b\n1,2\n\n1,2,3\n")
    fails_with("read_csv: " .. p .. ":4: 3 columns, expected 2 like line 1", data.read_csv, p)
    fails_with(":2: 1 columns, expected 2", data.read_csv, file("1,2\n3\n"))
  end)

  it("refuses a header with no rows, an unnamed or a repeated column", function()
    local p = file("a,b\n")
    fails_with("read_csv: '" .. p .. "' has a header and no rows of numbers", data.read_csv, p)
    fails_with(":1: column 2 of the header has no name", data.read_csv, file("a, ,c\n1,2,3\n"))
    fails_with(":1: the header names column 'a' twice (columns 1 and 3)", data.read_csv,
      file("a,b,a\n1,2,3\n"))
  end)

  it("checks its options", function()
    fails_with("read_csv: unknown option 'dtyp'", data.read_csv, file("1\n"), { dtyp = "float32" })
    fails_with("read_csv: option dtype must be one of float32, float64", data.read_csv, file("1\n"),
      { dtype = "int64" })
  end)
end)
