-- recur.data on the real corpus: tiny Shakespeare through the char and word tokenizers
-- and the LM batcher (the n-gram losses are checked in spec/data/ngram_spec.lua).
local data = require("recur.data")

-- A batch table as the pair x, y (nil at the end of an epoch).
local function xy(batch)
  if batch then return batch.x, batch.y end
end

describe("tiny Shakespeare", function()
  local text = data.read_text("data/tinyshakespeare.txt")

  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("char-tokenizes to 65 ids and back", function()
    local tok = data.CharTokenizer.fit(text)
    assert.are.equal(65, tok:vocab_size())
    -- "\n" < " " < "!" ... < "z": the char-rnn order
    assert.are.same({ "\n", " ", "!" }, { tok.vocab.tokens[1], tok.vocab.tokens[2], tok.vocab.tokens[3] })
    assert.are.equal("z", tok.vocab.tokens[65])
    local ids = tok:encode(text)
    assert.are.same({ 19, 48, 57, 58, 59 }, { table.unpack(ids, 1, 5) })  -- "First"
    assert.are.equal(text, tok:decode(ids))
  end)

  it("batches the char stream into columns that continue across chunks", function()
    local tok = data.CharTokenizer.fit(text)
    local ids = tok:encode(text)
    local B, T = 50, 64
    local b = data.LMBatcher.new(ids, { batch_size = B, seq_length = T })
    local L = (#ids - 1) // B
    assert.are.equal(22307, L)
    assert.are.equal((L + T - 1) // T, b:num_batches())
    local x1, y1 = xy(b:next_batch())
    local x2 = xy(b:next_batch())
    assert.are.same({ T, B }, x1:size())
    -- column 7 of chunk 2 starts where column 7 of chunk 1 ended
    assert.are.equal(ids[6 * L + T + 1], x2:get(1, 7))
    assert.are.equal(y1:get(T, 7), x2:get(1, 7))
    assert.are.equal(tok:decode({ table.unpack(ids, 6 * L + 1, 6 * L + T) }),
      tok:decode(x1:select(2, 7):contiguous()))
    local _, ylast = xy(b:get_batch(b:num_batches()))
    assert.are.equal(L % T, ylast:size(1))
    assert.are.equal(ids[B * L + 1], ylast:get(L % T, B))
  end)

  it("word-tokenizes and round-trips the whitespace-normalised text", function()
    local tok = data.WordTokenizer.fit(text)
    local ids = tok:encode(text)
    local norm = {}
    for line in text:gmatch("([^\n]*)\n") do
      local words = {}
      for w in line:gmatch("%S+") do words[#words + 1] = w end
      norm[#norm + 1] = table.concat(words, " ") .. "\n"
    end
    assert.are.equal(table.concat(norm), tok:decode(ids))
    assert.are.equal("the", tok.vocab.tokens[5])
  end)
end)
