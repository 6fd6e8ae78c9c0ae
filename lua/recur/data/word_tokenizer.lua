-- WordTokenizer: text <-> word ids, with a vocabulary built from the training text.
--
-- Words are maximal runs of non-space characters (%S+); one sentence per line. Ids:
--   1 <pad>   padding in sentence batches
--   2 <unk>   any word not in the vocabulary
--   3 <s>     start of a line (only when bos = true)
--   4 </s>    end of a line (eos = true, the default): PyTorch's word_language_model
--             appends <eos> to every line, empty lines included, and so do we
--   5..V      the words of the training text with count >= min_freq, by descending
--             count, ties in byte order; max_size caps how many (specials not counted)
-- The special strings appearing in the text (PTB writes "<unk>" itself) map to their
-- special ids and are not counted as words.
--
-- WordTokenizer.fit(text, {min_freq=1, max_size=nil, bos=false, eos=true})
-- tok:encode(text) -> flat array of ids ([<s>] words [</s>] for each line)
-- tok:encode_prefix(text) -> the ids of a text to be continued (a prime): as encode,
--   but a last line not ended by "\n" gets no </s>, so what follows continues it
-- tok:encode_lines(text) -> one id array per line (for SentenceBatcher)
-- tok:decode(ids [, prev_id]) -> text: words joined by one space, </s> -> "\n", <s>
--   and <pad> dropped. So decode(encode(t)) == t for text with single spaces between
--   words and a "\n" ending every line (with eos = true); other spacing comes back
--   normalised. prev_id is the id decoded just before ids (a stream decoded token by
--   token): after a word, the text starts with the space that joins the next word.
-- tok:start_ids() -> the ids a text starts after, as the training stream has them
--   before every line: {<s>} with bos, else {</s>} with eos, else nil (no marker)
-- tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok:vocab_size(), tok.vocab,
-- tok:to_table() (JSON-able), WordTokenizer.from_table(t)
local ids = require("recur.data.ids")
local util = require("recur.util")
local Vocab = require("recur.data.vocab")

local WordTokenizer = {}
WordTokenizer.__index = WordTokenizer

local PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
WordTokenizer.specials = { PAD, UNK, BOS, EOS }

local function check_text(text, who)
  if type(text) ~= "string" then
    error(string.format("%s: expected a string, got %s", who, type(text)), 3)
  end
end

local function from_vocab(vocab, bos, eos)
  local self = setmetatable({ vocab = vocab, bos = bos, eos = eos }, WordTokenizer)
  self.pad_id, self.unk_id = vocab.index[PAD], vocab.index[UNK]
  self.bos_id, self.eos_id = vocab.index[BOS], vocab.index[EOS]
  return self
end

function WordTokenizer.fit(text, opts)
  local who = "WordTokenizer.fit"
  opts = util.check_opts(who, opts, { min_freq = true, max_size = true, bos = true, eos = true })
  check_text(text, who)
  local bos = util.opt_bool(who, opts, "bos", false)
  local eos = util.opt_bool(who, opts, "eos", true)
  local counts = {}
  for w in text:gmatch("%S+") do counts[w] = (counts[w] or 0) + 1 end
  local vocab = Vocab.build(counts, {
    specials = WordTokenizer.specials, unk = UNK,
    min_freq = opts.min_freq, max_size = opts.max_size,
  })
  return from_vocab(vocab, bos, eos)
end

function WordTokenizer:vocab_size() return self.vocab:size() end

-- Calls fn(line) for each line; a final "\n" does not start another (empty) line.
local function each_line(text, fn)
  if #text == 0 then return end
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("([^\n]*)\n") do fn(line) end
end

-- Appends the ids of one line to out (from position n+1); returns the new length.
local function encode_line(self, line, out, n)
  local index, unk_id = self.vocab.index, self.unk_id
  if self.bos then n = n + 1; out[n] = self.bos_id end
  for w in line:gmatch("%S+") do
    n = n + 1
    out[n] = index[w] or unk_id
  end
  if self.eos then n = n + 1; out[n] = self.eos_id end
  return n
end

function WordTokenizer:encode(text)
  check_text(text, "WordTokenizer.encode")
  local out, n = {}, 0
  each_line(text, function(line) n = encode_line(self, line, out, n) end)
  return out
end

function WordTokenizer:encode_prefix(text)
  check_text(text, "WordTokenizer.encode_prefix")
  local out, n = {}, 0
  each_line(text, function(line) n = encode_line(self, line, out, n) end)
  if self.eos and n > 0 and text:sub(-1) ~= "\n" then
    out[n] = nil -- the open last line's </s>
  end
  return out
end

function WordTokenizer:start_ids()
  if self.bos then return {self.bos_id} end
  if self.eos then return {self.eos_id} end
  return nil
end

function WordTokenizer:encode_lines(text)
  check_text(text, "WordTokenizer.encode_lines")
  local lines = {}
  each_line(text, function(line)
    local out = {}
    encode_line(self, line, out, 0)
    lines[#lines + 1] = out
  end)
  return lines
end

function WordTokenizer:decode(id_seq, prev_id)
  local arr = ids.as_array(id_seq, "WordTokenizer.decode")
  local tokens, V = self.vocab.tokens, #self.vocab.tokens
  if prev_id ~= nil and tokens[prev_id] == nil then
    error(string.format("WordTokenizer.decode: prev_id is %s, outside 1..%d", tostring(prev_id), V), 2)
  end
  local out, n = {}, 0
  -- a word joins what came before it with a space, unless that starts a line
  local line_start = prev_id == nil or prev_id == self.eos_id or prev_id == self.bos_id
  for i = 1, #arr do
    local id = arr[i]
    local tok = tokens[id]
    if tok == nil then
      error(string.format("WordTokenizer.decode: id #%d is %s, outside 1..%d", i, tostring(id), V), 2)
    end
    if id == self.eos_id then
      n = n + 1; out[n] = "\n"
      line_start = true
    elseif id ~= self.bos_id and id ~= self.pad_id then
      if not line_start then n = n + 1; out[n] = " " end
      n = n + 1; out[n] = tok
      line_start = false
    end
  end
  return table.concat(out, "", 1, n)
end

function WordTokenizer:to_table()
  local t = self.vocab:to_table()
  t.type, t.bos, t.eos = "word", self.bos, self.eos
  return t
end

function WordTokenizer.from_table(t)
  if type(t) ~= "table" or t.type ~= "word" then
    error("WordTokenizer.from_table: expected a table from WordTokenizer:to_table() (type = \"word\")", 2)
  end
  for i, s in ipairs(WordTokenizer.specials) do
    if t.tokens == nil or t.tokens[i] ~= s then
      error(string.format("WordTokenizer.from_table: token %d must be '%s'", i, s), 2)
    end
  end
  return from_vocab(Vocab.from_table(t), t.bos == true, t.eos ~= false)
end

return WordTokenizer
