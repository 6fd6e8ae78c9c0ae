-- recur.tasks.levels: the vocabularies of the seq2seq and classify tasks, against ids
-- written out by hand.
local helpers = require "spec.support.helpers"
local levels = require "recur.tasks.levels"

describe("tasks.levels", function()
  it("fits a char vocabulary with U+FFFD for unseen characters, and the target markers first", function()
    local tok = levels.fit("t", "char", {"ba", "ac"})
    -- sorted by bytes: a b c, then U+FFFD (three bytes starting 0xEF)
    assert.are.same({"a", "b", "c", "\u{FFFD}"}, tok.vocab.tokens)
    assert.are.same({2, 1, 4, 3}, levels.encode(tok, "baxc"))
    assert.are.same({nil, nil, nil}, {levels.markers(tok)})
    local target = levels.fit("t", "char", {"ba", "ac"}, {markers = true})
    assert.are.same({"<pad>", "<s>", "</s>", "a", "b", "c", "\u{FFFD}"}, target.vocab.tokens)
    assert.are.same({1, 2, 3}, {levels.markers(target)})
    -- the end marker closes every encoded line; no text encodes to a marker
    assert.are.same({5, 4, 3}, levels.encode(target, "ba"))
    assert.are.same({7, 7, 7, 3}, levels.encode(target, "<s>"))
  end)

  it("fits a word vocabulary with its specials, ending each line with </s>", function()
    local tok = levels.fit("t", "word", {"b a b", "c b"}, {max_vocab = 2})
    -- <pad> <unk> <s> </s>, then by count: b (3), then a and c (1 each) by bytes: a
    assert.are.same({"<pad>", "<unk>", "<s>", "</s>", "b", "a"}, tok.vocab.tokens)
    assert.are.same({5, 2, 6, 4}, levels.encode(tok, "b c a"))
    assert.are.same({1, 3, 4}, {levels.markers(tok)})
  end)

  it("decodes up to the end marker with the tokenizer's joiner, dropping the markers", function()
    local chars = levels.fit("t", "char", {"12"}, {markers = true})  -- 4 "1", 5 "2"
    assert.are.equal("121", levels.decode(chars, {2, 4, 5, 1, 4, 3, 5, 5}))
    assert.are.equal("", levels.decode(chars, {3, 4}))
    local words = levels.fit("t", "word", {"le chat"})              -- 5 chat, 6 le (counts tie: bytes)
    assert.are.equal("le chat <unk>", levels.decode(words, {3, 6, 5, 2, 4, 6}))
  end)

  it("refuses the word-vocabulary options at the char level", function()
    helpers.assert_fails_with(function() levels.fit("classify", "char", {"a"}, {min_freq = 2}) end,
      "classify: --min-freq applies to --level word, not char")
    helpers.assert_fails_with(function() levels.fit("classify", "bytes", {"a"}) end,
      "classify: unknown level 'bytes' (char or word)")
  end)
end)
