-- recur.data: Vocab, CharTokenizer, WordTokenizer.
local data = require("recur.data")
local Vocab, CharTokenizer, WordTokenizer = data.Vocab, data.CharTokenizer, data.WordTokenizer
local cjson = require("cjson")

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

describe("Vocab", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("orders specials, then descending count, ties by byte order", function()
    local counts = { the = 5, cat = 2, a = 2, dog = 1, ["<unk>"] = 7, zebra = 2 }
    local v = Vocab.build(counts, { specials = { "<pad>", "<unk>" }, unk = "<unk>" })
    assert.are.same({ "<pad>", "<unk>", "the", "a", "cat", "zebra", "dog" }, v.tokens)
    assert.are.equal(7, #v)
    assert.are.equal(3, v:id("the"))
    assert.are.equal(2, v:id("unseen"))
    assert.are.equal("zebra", v:token(6))
    assert.truthy(err_of(v.token, v, 8):find("Vocab.token: id 8 is outside 1..7", 1, true))
  end)

  it("applies min_freq and max_size (specials not counted)", function()
    local counts = { the = 5, cat = 2, a = 2, dog = 1, zebra = 2 }
    local v = Vocab.build(counts, { specials = { "<unk>" }, unk = "<unk>", min_freq = 2 })
    assert.are.same({ "<unk>", "the", "a", "cat", "zebra" }, v.tokens)
    v = Vocab.build(counts, { specials = { "<unk>" }, unk = "<unk>", max_size = 2 })
    assert.are.same({ "<unk>", "the", "a" }, v.tokens)
    v = Vocab.build(counts, { specials = { "<unk>" }, unk = "<unk>", min_freq = 3, max_size = 2 })
    assert.are.same({ "<unk>", "the" }, v.tokens)
  end)

  it("round-trips through to_table and JSON", function()
    local v = Vocab.build({ b = 1, a = 1, c = 3 }, { specials = { "<unk>" }, unk = "<unk>" })
    local w = Vocab.from_table(cjson.decode(cjson.encode(v:to_table())))
    assert.are.same(v.tokens, w.tokens)
    assert.are.equal(v:id("nope"), w:id("nope"))
  end)

  it("raises on duplicates, a missing unk and unknown tokens without unk", function()
    assert.truthy(err_of(Vocab.new, { "a", "b", "a" }):find("Vocab.new: token 'a' appears twice (ids 1 and 3)", 1, true))
    assert.truthy(err_of(Vocab.new, { "a" }, { unk = "<unk>" }):find("unk token '<unk>' is not in the vocabulary", 1, true))
    local v = Vocab.new({ "a", "b" })
    assert.truthy(err_of(v.id, v, "c"):find("Vocab.id: token 'c' is not in the vocabulary", 1, true))
  end)
end)

describe("CharTokenizer", function()
  it("numbers the sorted set of characters 1..V", function()
    local tok = CharTokenizer.fit("hello world")
    -- sorted: " " d e h l o r w
    assert.are.same({ " ", "d", "e", "h", "l", "o", "r", "w" }, tok.vocab.tokens)
    assert.are.equal(8, tok:vocab_size())
    assert.are.same({ 4, 3, 5, 5, 6, 1, 8, 6, 7, 5, 2 }, tok:encode("hello world"))
    assert.are.equal("hello world", tok:decode({ 4, 3, 5, 5, 6, 1, 8, 6, 7, 5, 2 }))
  end)

  it("tokenizes UTF-8 code points, not bytes, and round-trips", function()
    local s = "naïve — café ☃ naïve\n"
    local tok = CharTokenizer.fit(s)
    local ids = tok:encode(s)
    assert.are.equal(utf8.len(s), #ids)
    assert.are.equal(s, tok:decode(ids))
    -- Code point order: "\n" < " " < a..v < "ï" (U+EF) < "—" (U+2014) < "☃" (U+2603)
    local t = tok.vocab.tokens
    assert.are.same({ "\n", " " }, { t[1], t[2] })
    assert.are.same({ "ï", "—", "☃" }, { t[#t - 2], t[#t - 1], t[#t] })
    assert.are.equal(3, #tok:encode("é—☃"))
  end)

  it("gives the same ids for the same text (determinism)", function()
    local s = "the quick brown fox jumps over the lazy dog"
    assert.are.same(CharTokenizer.fit(s):encode(s), CharTokenizer.fit(s):encode(s))
  end)

  it("raises on unknown characters unless an unk character is set", function()
    local tok = CharTokenizer.fit("abc")
    local e = err_of(tok.encode, tok, "abd")
    assert.truthy(e:find("CharTokenizer.encode: character 'd' (U+0064) at character 3 is not in the vocabulary", 1, true), e)
    e = err_of(tok.encode, tok, "aé")
    assert.truthy(e:find("character 'é' (U+00E9) at character 2", 1, true), e)
    tok = CharTokenizer.fit("abc", { unk = "?" })
    assert.are.same({ "?", "a", "b", "c" }, tok.vocab.tokens)
    assert.are.same({ 2, 1, 4, 1 }, tok:encode("axcé"))
    assert.truthy(err_of(CharTokenizer.fit, "abc", { unk = "??" }):find("unk must be a single character", 1, true))
  end)

  it("raises on invalid UTF-8 and on empty text", function()
    assert.truthy(err_of(CharTokenizer.fit, "ab\200c"):find("CharTokenizer.fit: text is not valid UTF-8 (byte 3)", 1, true))
    assert.truthy(err_of(CharTokenizer.fit, ""):find("CharTokenizer.fit: empty text", 1, true))
  end)

  it("serialises to a JSON-able table", function()
    local tok = CharTokenizer.fit("héllo", { unk = "_" })
    local t2 = CharTokenizer.from_table(cjson.decode(cjson.encode(tok:to_table())))
    assert.are.same(tok:encode("hé?lo"), t2:encode("hé?lo"))
    assert.truthy(err_of(CharTokenizer.from_table, { tokens = {} }):find("expected a table from CharTokenizer:to_table()", 1, true))
  end)

  it("decodes an int64 tensor", function()
    local recur = require("recur")
    local tok = CharTokenizer.fit("abc")
    assert.are.equal("cab", tok:decode(recur.tensor({ 3, 1, 2 }, "int64")))
    assert.truthy(err_of(tok.decode, tok, { 1, 4 }):find("id #2 is 4, outside 1..3", 1, true))
  end)
end)

describe("WordTokenizer", function()
  local train = "the cat sat on the mat\nthe dog sat\n\na cat\n"
  -- counts: the 3, cat 2, sat 2, a 1, dog 1, mat 1, on 1

  it("puts the specials first, then words by count, ties by byte order", function()
    local tok = WordTokenizer.fit(train)
    assert.are.same({ "<pad>", "<unk>", "<s>", "</s>", "the", "cat", "sat", "a", "dog", "mat", "on" },
      tok.vocab.tokens)
    assert.are.same({ 1, 2, 3, 4 }, { tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id })
  end)

  it("encodes with </s> after every line (empty lines too) and round-trips", function()
    local tok = WordTokenizer.fit(train)
    local ids = tok:encode(train)
    assert.are.same({ 5, 6, 7, 11, 5, 10, 4, 5, 9, 7, 4, 4, 8, 6, 4 }, ids)
    assert.are.equal(train, tok:decode(ids))
  end)

  it("adds <s> when bos = true and decode drops it", function()
    local tok = WordTokenizer.fit(train, { bos = true })
    assert.are.same({ 3, 8, 6, 4, 3, 5, 4 }, tok:encode("a cat\nthe"))
    assert.are.equal("a cat\nthe\n", tok:decode(tok:encode("a cat\nthe")))
    tok = WordTokenizer.fit(train, { eos = false })
    assert.are.same({ 8, 6, 5 }, tok:encode("a cat\nthe\n"))
    assert.are.equal("a cat the", tok:decode(tok:encode("a cat\nthe\n")))
  end)

  it("maps unknown words (and the literal <unk>) to <unk>, normalising spaces", function()
    local tok = WordTokenizer.fit(train)
    assert.are.same({ 5, 2, 7, 2, 4 }, tok:encode("the  bird sat\t<unk>"))
    assert.are.equal("the <unk> sat <unk>\n", tok:decode(tok:encode("the  bird sat\t<unk>")))
    -- a text containing "<unk>" does not count it as a word
    local t2 = WordTokenizer.fit("<unk> <unk> x\n")
    assert.are.same({ "<pad>", "<unk>", "<s>", "</s>", "x" }, t2.vocab.tokens)
  end)

  it("applies min_freq and max_size", function()
    local tok = WordTokenizer.fit(train, { min_freq = 2 })
    assert.are.same({ "<pad>", "<unk>", "<s>", "</s>", "the", "cat", "sat" }, tok.vocab.tokens)
    assert.are.same({ 5, 6, 7, 2, 5, 2, 4 }, tok:encode("the cat sat on the mat"))
    tok = WordTokenizer.fit(train, { max_size = 4 })
    assert.are.same({ "<pad>", "<unk>", "<s>", "</s>", "the", "cat", "sat", "a" }, tok.vocab.tokens)
    assert.truthy(err_of(WordTokenizer.fit, train, { min_freq = 0 }):find("option min_freq must be an integer >= 1", 1, true))
    assert.truthy(err_of(WordTokenizer.fit, train, { minfreq = 2 }):find("unknown option 'minfreq'", 1, true))
  end)

  it("encodes one id array per line", function()
    local tok = WordTokenizer.fit(train)
    assert.are.same({ { 5, 6, 4 }, { 4 }, { 8, 2, 4 } }, tok:encode_lines("the cat\n\na zebra"))
  end)

  it("encodes a prefix to be continued: no </s> after an open last line", function()
    local tok = WordTokenizer.fit(train)
    assert.are.same({ 8, 6 }, tok:encode_prefix("a cat"))
    assert.are.same({ 8, 6, 4 }, tok:encode_prefix("a cat\n"))       -- a closed line keeps it
    assert.are.same({ 8, 6, 4, 5 }, tok:encode_prefix("a cat\nthe"))
    assert.are.same({}, tok:encode_prefix(""))
    local bos = WordTokenizer.fit(train, { bos = true })
    assert.are.same({ 3, 8, 6 }, bos:encode_prefix("a cat"))
    assert.are.same({ 3, 2 }, CharTokenizer.fit("a cat"):encode_prefix("ca")) -- " ", a, c, t
  end)

  it("decodes token by token with the joiner between words, none after a line's end", function()
    local tok = WordTokenizer.fit(train)
    local ids, parts, prev = tok:encode("a cat\nthe cat\n"), {}, nil
    for i, id in ipairs(ids) do
      parts[i] = tok:decode({ id }, prev)
      prev = id
    end
    assert.are.same({ "a", " cat", "\n", "the", " cat", "\n" }, parts)
    assert.are.equal(" the cat", tok:decode({ 5, 6 }, 8))
    assert.are.equal("the", tok:decode({ 5 }, 3)) -- after <s>
    assert.truthy(err_of(tok.decode, tok, { 5 }, 99):find("prev_id is 99, outside 1..11", 1, true))
    local chars = CharTokenizer.fit("ab")
    assert.are.equal("b", chars:decode({ 2 }, 1)) -- characters have no joiner
  end)

  it("starts a text after the marker its training stream has before each line", function()
    assert.are.same({ 3 }, WordTokenizer.fit(train, { bos = true }):start_ids())
    assert.are.same({ 4 }, WordTokenizer.fit(train):start_ids())
    assert.is_nil(WordTokenizer.fit(train, { eos = false }):start_ids())
    assert.is_nil(CharTokenizer.fit("ab"):start_ids())
  end)

  it("is deterministic and serialises to a JSON-able table", function()
    local a, b = WordTokenizer.fit(train, { bos = true }), WordTokenizer.fit(train, { bos = true })
    assert.are.same(a.vocab.tokens, b.vocab.tokens)
    local c = WordTokenizer.from_table(cjson.decode(cjson.encode(a:to_table())))
    assert.are.same(a.vocab.tokens, c.vocab.tokens)
    assert.are.same(a:encode("the owl sat\n"), c:encode("the owl sat\n"))
    assert.is_true(c.bos)
    assert.truthy(err_of(WordTokenizer.from_table, { type = "word", tokens = { "a" } }):find("token 1 must be '<pad>'", 1, true))
  end)
end)
