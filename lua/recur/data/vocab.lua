-- Vocab: a fixed bijection between tokens (strings) and ids 1..V.
--
-- Vocab.new(tokens [, {unk=token}])  tokens in id order (tokens[i] has id i); unk, when
--                                    given, must be one of them and is the id returned
--                                    for tokens not in the vocabulary
-- Vocab.build(counts, opts)          from a {token = count} map: opts.specials (array,
--                                    ids 1..#specials, in that order), then the other
--                                    tokens with count >= min_freq (default 1) by
--                                    descending count, ties by byte order of the token
--                                    (so the ids never depend on pairs() order); max_size
--                                    caps the number of non-special tokens (as torchtext).
-- v:size() / #v, v:id(token), v:token(id), v:has(token), v:encode(tokens), v:decode(ids)
-- v:to_table() -> {tokens = {...}, unk = token or nil}: plain strings only, JSON-able,
-- meant for checkpoint metadata; Vocab.from_table(t) rebuilds the same vocabulary.
local ids = require("recur.data.ids")
local util = require("recur.util")

local Vocab = {}
Vocab.__index = Vocab

function Vocab.new(tokens, opts)
  opts = util.check_opts("Vocab.new", opts, { unk = true })
  if type(tokens) ~= "table" then
    error("Vocab.new: expected an array of tokens, got " .. type(tokens), 2)
  end
  local self = setmetatable({ tokens = {}, index = {} }, Vocab)
  for i = 1, #tokens do
    local tok = tokens[i]
    if type(tok) ~= "string" then
      error(string.format("Vocab.new: token #%d is a %s, not a string", i, type(tok)), 2)
    end
    if self.index[tok] then
      error(string.format("Vocab.new: token '%s' appears twice (ids %d and %d)", tok, self.index[tok], i), 2)
    end
    self.tokens[i] = tok
    self.index[tok] = i
  end
  if opts.unk ~= nil then
    if self.index[opts.unk] == nil then
      error(string.format("Vocab.new: unk token '%s' is not in the vocabulary", tostring(opts.unk)), 2)
    end
    self.unk = opts.unk
    self.unk_id = self.index[opts.unk]
  end
  return self
end

function Vocab.build(counts, opts)
  local who = "Vocab.build"
  opts = util.check_opts(who, opts, { specials = true, min_freq = true, max_size = true, unk = true })
  local min_freq = util.opt_int(who, opts, "min_freq", 1, 1)
  local max_size = util.opt_int(who, opts, "max_size", nil, 0)
  local specials = opts.specials or {}
  if type(specials) ~= "table" then
    error(who .. ": option specials must be an array of tokens, got " .. type(specials), 2)
  end
  local is_special = {}
  for _, s in ipairs(specials) do is_special[s] = true end

  local words = {}
  for tok, c in pairs(counts) do
    if type(tok) ~= "string" or math.type(c) ~= "integer" then
      error(string.format("%s: counts must map strings to integers, got %s = %s", who, tostring(tok), tostring(c)), 2)
    end
    if c >= min_freq and not is_special[tok] then words[#words + 1] = tok end
  end
  table.sort(words, function(a, b)
    local ca, cb = counts[a], counts[b]
    if ca ~= cb then return ca > cb end
    return a < b
  end)

  local tokens = table.move(specials, 1, #specials, 1, {})
  local n = #words
  if max_size and max_size < n then n = max_size end
  table.move(words, 1, n, #tokens + 1, tokens)
  return Vocab.new(tokens, { unk = opts.unk })
end

function Vocab:size() return #self.tokens end
Vocab.__len = Vocab.size

function Vocab:has(token) return self.index[token] ~= nil end

-- The id of a token; unknown tokens get the unk id, or raise when there is no unk.
function Vocab:id(token)
  local i = self.index[token]
  if i then return i end
  if self.unk_id then return self.unk_id end
  error(string.format("Vocab.id: token '%s' is not in the vocabulary (and it has no unk token)", tostring(token)), 2)
end

function Vocab:token(id)
  local tok = self.tokens[id]
  if tok == nil then
    error(string.format("Vocab.token: id %s is outside 1..%d", tostring(id), #self.tokens), 2)
  end
  return tok
end

function Vocab:encode(tokens)
  local out, index, unk_id = {}, self.index, self.unk_id
  for i = 1, #tokens do
    local id = index[tokens[i]] or unk_id
    if id == nil then
      error(string.format("Vocab.encode: token '%s' is not in the vocabulary (and it has no unk token)", tostring(tokens[i])), 2)
    end
    out[i] = id
  end
  return out
end

function Vocab:decode(id_seq)
  local arr = ids.as_array(id_seq, "Vocab.decode")
  local out, tokens, V = {}, self.tokens, #self.tokens
  for i = 1, #arr do
    local tok = tokens[arr[i]]
    if tok == nil then
      error(string.format("Vocab.decode: id #%d is %s, outside 1..%d", i, tostring(arr[i]), V), 2)
    end
    out[i] = tok
  end
  return out
end

function Vocab:to_table()
  return { tokens = table.move(self.tokens, 1, #self.tokens, 1, {}), unk = self.unk }
end

function Vocab.from_table(t)
  if type(t) ~= "table" or type(t.tokens) ~= "table" then
    error("Vocab.from_table: expected a table with a tokens array (from Vocab:to_table())", 2)
  end
  return Vocab.new(t.tokens, { unk = t.unk })
end

return Vocab
