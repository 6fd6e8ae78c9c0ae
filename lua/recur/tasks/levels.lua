-- Lines of text read at a level, char or word: the tokenizers of the seq2seq and
-- classify tasks, fitted on the training lines, and the lines as id arrays.
--
--   levels.fit(level, lines, {min_freq, max_vocab, markers}) -> tokenizer
--   levels.encode(tokenizer, line) -> ids, ending with the end marker when the
--                                     tokenizer has one
--   levels.markers(tokenizer) -> pad_id, bos_id, eos_id (nil when it has none)
--   levels.decode(tokenizer, ids) -> text: the ids up to the end marker, joined by the
--                                    tokenizer's joiner (a space for words, nothing
--                                    for characters), markers dropped
--
-- A char tokenizer is fitted with an unknown character (U+FFFD), so that text met
-- after training (eval, predict, --init-from on new data) is read, not refused. With
-- `markers` it also holds <pad> <s> </s> as ids 1..3, the ids Seq2Seq's target side
-- needs and WordTokenizer has as 1, 3, 4; no text encodes to them, as no character is
-- five bytes long.
local data = require "recur.data"

local levels = {}

local UNK_CHAR = "\u{FFFD}"
local MARKERS = {"<pad>", "<s>", "</s>"}

local function char_tokenizer(lines, markers)
  local seen = {[UNK_CHAR] = true}
  local chars = {UNK_CHAR}
  for _, line in ipairs(lines) do
    for ch in line:gmatch(utf8.charpattern) do
      if not seen[ch] then seen[ch] = true; chars[#chars + 1] = ch end
    end
  end
  table.sort(chars) -- the same lines always give the same ids
  local tokens = markers and {table.unpack(MARKERS)} or {}
  for _, ch in ipairs(chars) do tokens[#tokens + 1] = ch end
  return data.CharTokenizer.from_table{type = "char", tokens = tokens, unk = UNK_CHAR}
end

-- who: the task, for errors. opts: min_freq, max_vocab (word level only), markers.
function levels.fit(who, level, lines, opts)
  opts = opts or {}
  if level == "char" then
    if opts.min_freq or opts.max_vocab then
      error(string.format("%s: --%s applies to --level word, not char", who,
        opts.min_freq and "min-freq" or "max-vocab"), 0)
    end
    for i, line in ipairs(lines) do
      if utf8.len(line) == nil then error(string.format("%s: line %d is not valid UTF-8", who, i), 0) end
    end
    return char_tokenizer(lines, opts.markers)
  elseif level == "word" then
    return data.WordTokenizer.fit(table.concat(lines, "\n"), {min_freq = opts.min_freq, max_size = opts.max_vocab})
  end
  error(string.format("%s: unknown level '%s' (char or word)", who, tostring(level)), 0)
end

function levels.level(tokenizer) return tokenizer:to_table().type end

function levels.markers(tokenizer)
  local index = tokenizer.vocab.index
  return index["<pad>"], index["<s>"], index["</s>"]
end

function levels.encode(tokenizer, line)
  local ids = tokenizer:encode(line)
  local _, _, eos = levels.markers(tokenizer)
  -- a word tokenizer ends every line with </s> itself
  if eos and ids[#ids] ~= eos then ids[#ids + 1] = eos end
  return ids
end

function levels.decode(tokenizer, ids)
  local pad, bos, eos = levels.markers(tokenizer)
  local kept = {}
  for _, id in ipairs(ids) do
    if id == eos then break end
    if id ~= pad and id ~= bos then kept[#kept + 1] = id end
  end
  return tokenizer:decode(kept)
end

return levels
