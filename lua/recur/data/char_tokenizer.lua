-- CharTokenizer: text <-> ids, one id per character, as char-rnn does.
--
-- Characters are UTF-8 code points (not bytes), so "é" or "—" is one token and Unicode
-- text round-trips; invalid UTF-8 is an error. The vocabulary is the sorted set of the
-- characters seen by fit() (byte order of their UTF-8 encoding = code point order), ids
-- 1..V: the same text always gives the same ids.
--
-- CharTokenizer.fit(text [, {unk=char}])   unk: a character (added to the vocabulary if
--                                          unseen) that encode() uses for characters not
--                                          in the vocabulary; without it they are an error
-- tok:encode(text) -> array of ids         tok:decode(ids) -> text (ids: array or tensor)
-- tok:encode_prefix(text), tok:decode(ids, prev_id), tok:start_ids(): WordTokenizer's
--   interface for continuing a text; characters have no joiner and no end marker, so
--   these are encode, decode and nil (a generator starts from a random character)
-- tok:vocab_size(), tok.vocab (a Vocab), tok:to_table(), CharTokenizer.from_table(t)
local util = require("recur.util")
local Vocab = require("recur.data.vocab")

local CharTokenizer = {}
CharTokenizer.__index = CharTokenizer

local function check_utf8(text, who)
  if type(text) ~= "string" then
    error(string.format("%s: expected a string, got %s", who, type(text)), 3)
  end
  local n, bad = utf8.len(text)
  if n == nil then
    error(string.format("%s: text is not valid UTF-8 (byte %d)", who, bad), 3)
  end
  return n
end

local function from_vocab(vocab)
  local self = setmetatable({ vocab = vocab }, CharTokenizer)
  -- Byte -> id for the one-byte (ASCII) characters: the fast path of encode().
  self.byte_id = {}
  for id, ch in ipairs(vocab.tokens) do
    if #ch == 1 then self.byte_id[ch:byte()] = id end
  end
  return self
end

function CharTokenizer.fit(text, opts)
  opts = util.check_opts("CharTokenizer.fit", opts, { unk = true })
  check_utf8(text, "CharTokenizer.fit")
  if #text == 0 then error("CharTokenizer.fit: empty text", 2) end
  local seen, chars = {}, {}
  local function add(ch)
    if not seen[ch] then seen[ch] = true; chars[#chars + 1] = ch end
  end
  if not text:find("[\128-\255]") then
    for b = 0, 127 do
      if text:find(string.char(b), 1, true) then add(string.char(b)) end
    end
  else
    for ch in text:gmatch(utf8.charpattern) do add(ch) end
  end
  if opts.unk ~= nil then
    if type(opts.unk) ~= "string" or utf8.len(opts.unk) ~= 1 then
      error("CharTokenizer.fit: unk must be a single character, got " .. tostring(opts.unk), 2)
    end
    add(opts.unk)
  end
  table.sort(chars)
  return from_vocab(Vocab.new(chars, { unk = opts.unk }))
end

function CharTokenizer:vocab_size() return self.vocab:size() end

local function unknown(self, ch, pos)
  if self.vocab.unk_id then return self.vocab.unk_id end
  error(string.format("CharTokenizer.encode: character '%s' (U+%04X) at character %d is not in the vocabulary",
    ch, utf8.codepoint(ch), pos), 3)
end

function CharTokenizer:encode(text)
  check_utf8(text, "CharTokenizer.encode")
  local out, n = {}, 0
  if not text:find("[\128-\255]") then
    -- ASCII: read the bytes a block at a time, far faster than one gmatch per char.
    local byte_id, N = self.byte_id, #text
    for i = 1, N, 4096 do
      local block = { text:byte(i, math.min(i + 4095, N)) }
      for j = 1, #block do
        local id = byte_id[block[j]]
        n = n + 1
        out[n] = id or unknown(self, string.char(block[j]), n)
      end
    end
  else
    local index = self.vocab.index
    for ch in text:gmatch(utf8.charpattern) do
      n = n + 1
      out[n] = index[ch] or unknown(self, ch, n)
    end
  end
  return out
end

function CharTokenizer:encode_prefix(text)
  return self:encode(text)
end

function CharTokenizer:start_ids() return nil end

-- prev_id changes nothing: characters are not joined by anything.
function CharTokenizer:decode(id_seq, prev_id)
  return table.concat(self.vocab:decode(id_seq))
end

function CharTokenizer:to_table()
  local t = self.vocab:to_table()
  t.type = "char"
  return t
end

function CharTokenizer.from_table(t)
  if type(t) ~= "table" or t.type ~= "char" then
    error("CharTokenizer.from_table: expected a table from CharTokenizer:to_table() (type = \"char\")", 2)
  end
  return from_vocab(Vocab.from_table(t))
end

return CharTokenizer
