-- recur.data: read_text, read_splits, split.
local data = require("recur.data")

local function tmpfile(contents)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(contents)
  f:close()
  return path
end

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

describe("recur.data", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("is reachable as require('recur').data", function()
    assert.are.equal(data, require("recur").data)
  end)
end)

describe("read_text", function()
  it("returns the bytes of the file", function()
    local p = tmpfile("héllo\nworld\n")
    finally(function() os.remove(p) end)
    assert.are.equal("héllo\nworld\n", data.read_text(p))
  end)

  it("names a missing file and the reason", function()
    local e = err_of(data.read_text, "/nonexistent/x.txt")
    assert.truthy(e:find("read_text: cannot open '/nonexistent/x.txt': No such file or directory", 1, true), e)
  end)

  it("rejects an empty file", function()
    local p = tmpfile("")
    finally(function() os.remove(p) end)
    local e = err_of(data.read_text, p)
    assert.truthy(e:find("read_text: '" .. p .. "' is empty", 1, true), e)
  end)

  it("rejects a directory and a non-string path", function()
    local e = err_of(data.read_text, "/tmp")
    assert.truthy(e:find("read_text: cannot read '/tmp'", 1, true), e)
    e = err_of(data.read_text, 42)
    assert.truthy(e:find("read_text: expected a file path (string), got number", 1, true), e)
  end)
end)

describe("split", function()
  it("takes validation then test from the end of an array", function()
    local a = {}
    for i = 1, 20 do a[i] = i end
    local tr, va, te = data.split(a, { val_frac = 0.1, test_frac = 0.25 })
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 }, tr)
    assert.are.same({ 14, 15 }, va)
    assert.are.same({ 16, 17, 18, 19, 20 }, te)
  end)

  it("defaults to val_frac = 0.05 and no test part", function()
    local a = {}
    for i = 1, 40 do a[i] = i end
    local tr, va, te = data.split(a)
    assert.are.equal(38, #tr)
    assert.are.same({ 39, 40 }, va)
    assert.are.same({}, te)
  end)

  it("cuts a string in UTF-8 characters, not bytes", function()
    -- 10 characters, 13 bytes: "é" and "—" are multi-byte.
    local s = "abcdéfgh—i"
    local tr, va, te = data.split(s, { val_frac = 0.2, test_frac = 0.1 })
    assert.are.equal("abcdéfg", tr)
    assert.are.equal("h—", va)
    assert.are.equal("i", te)
    assert.are.equal(s, tr .. va .. te)
  end)

  it("splits a 1-D tensor into views", function()
    local recur = require("recur")
    local t = recur.arange(1, 11, 1, "int64")
    local tr, va, te = data.split(t, { val_frac = 0.3 })
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, tr:totable())
    assert.are.same({ 8, 9, 10 }, va:totable())
    assert.are.equal(0, te:numel())
    assert.are.equal("int64", te:dtype())
  end)

  it("raises on bad fractions and empty parts", function()
    local a = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }
    assert.truthy(err_of(data.split, a, { val_frac = 1 }):find("split: val_frac must be a number in [0, 1)", 1, true))
    assert.truthy(err_of(data.split, a, { val_frac = 0 / 0 }):find("split: val_frac must be a number in [0, 1)", 1, true))
    assert.truthy(err_of(data.split, a, { test_frac = 0 / 0 }):find("split: test_frac must be a number in [0, 1)", 1, true))
    assert.truthy(err_of(data.split, a, { val_frac = 0.01 }):find("gives an empty validation part", 1, true))
    assert.truthy(err_of(data.split, a, { val_frac = 0.5, test_frac = 0.5 }):find("leave no training data", 1, true))
    assert.truthy(err_of(data.split, a, { valfrac = 0.1 }):find("split: unknown option 'valfrac'", 1, true))
    assert.truthy(err_of(data.split, "a\255b"):find("split: text is not valid UTF-8 (byte 2)", 1, true))
  end)
end)

describe("read_splits", function()
  it("cuts one file by fractions", function()
    local p = tmpfile("0123456789")
    finally(function() os.remove(p) end)
    local tr, va, te = data.read_splits({ path = p, val_frac = 0.2, test_frac = 0.1 })
    assert.are.same({ "0123456", "78", "9" }, { tr, va, te })
  end)

  it("reads separate files, val and test optional", function()
    local a, b = tmpfile("train text\n"), tmpfile("valid text\n")
    finally(function() os.remove(a); os.remove(b) end)
    local tr, va, te = data.read_splits({ train = a, val = b })
    assert.are.equal("train text\n", tr)
    assert.are.equal("valid text\n", va)
    assert.is_nil(te)
    local e = err_of(data.read_splits, { train = a, val = "/nonexistent/v.txt" })
    assert.truthy(e:find("read_text: cannot open '/nonexistent/v.txt'", 1, true), e)
    e = err_of(data.read_splits, { train = a, path = b })
    assert.truthy(e:find("read_splits: give either path", 1, true), e)
    e = err_of(data.read_splits, { train = a, val_frac = 0.1 })
    assert.truthy(e:find("read_splits: val_frac/test_frac apply to path=", 1, true), e)
  end)
end)
