-- The language-model job end to end: training lowers validation loss, a resumed run
-- continues exactly, a NaN stops training with the last good checkpoint intact,
-- checkpoints round-trip, generation streams text.
local recur = require "recur"
local lm = recur.lm

local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p '" .. path .. "'"))
  return path
end

-- A slice of the shipped corpus keeps the spec fast.
local function corpus(chars)
  local text = recur.data.read_text("data/tinyshakespeare.txt"):sub(1, chars)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path, text
end

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do lines[#lines + 1] = require("cjson").decode(line) end
  return lines
end

local SMALL = {level = "char", layers = 1, hidden = 32, embed = 16, batch = 8, seq_len = 16,
               eval_every = 10, quiet = true, seed = 7}

local function opts(extra)
  local t = {}
  for k, v in pairs(SMALL) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

describe("language model job", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("trains: validation loss falls well below the uniform model's", function()
    local data = corpus(40000)
    local dir, log = tmpdir(), os.tmpname()
    local summary = lm.train(opts{data = data, max_iters = 120, checkpoint_dir = dir, log = log, layers = 2, hidden = 48})
    local records = read_lines(log)
    assert.are.equal(12, #records)
    local first, last = records[1], records[#records]
    assert.is_true(last.val_loss < first.val_loss - 0.3, "val loss did not fall enough")
    assert.is_true(last.val_loss < math.log(summary.tokenizer:vocab_size()) - 0.8)
    for _, key in ipairs({"iter", "seconds", "train_loss", "val_loss", "val_ppl"}) do
      assert.is_number(last[key], key)
    end
    assert.are.near(math.exp(last.val_loss), last.val_ppl, 1e-6 * last.val_ppl)
    -- the best checkpoint reproduces the best validation loss
    local model, tokenizer = lm.load(dir .. "/best.safetensors")
    local best = math.huge
    for _, r in ipairs(records) do best = math.min(best, r.val_loss) end
    local text = recur.data.read_text(data)
    local _, val = recur.data.split(text, {val_frac = 0.05})
    local loss = model:evaluate_batches(recur.data.LMBatcher.new(tokenizer:encode(val),
      {batch_size = 8, seq_length = 16}))
    assert.are.near(best, loss, 1e-5)
    os.remove(data); os.remove(log)
  end)

  it("resumes from a checkpoint exactly as an uninterrupted run continues", function()
    local data = corpus(20000)
    local dir_a, dir_b, log_a, log_b = tmpdir(), tmpdir(), os.tmpname(), os.tmpname()
    local dropout = {dropout = 0.2, layers = 2}   -- draws from the generator between checkpoints
    lm.train(opts{data = data, max_iters = 40, checkpoint_dir = dir_a, log = log_a, dropout = 0.2, layers = 2})
    lm.train(opts{data = data, max_iters = 20, checkpoint_dir = dir_b, log = log_b, dropout = dropout.dropout, layers = 2})
    lm.train(opts{data = data, max_iters = 40, checkpoint_dir = dir_b, log = log_b, dropout = 0.2, layers = 2,
                  resume = dir_b .. "/last.safetensors"})
    local a, b = read_lines(log_a), read_lines(log_b)
    assert.are.equal(#a, #b)
    for i = 1, #a do
      assert.are.equal(a[i].iter, b[i].iter)
      assert.are.equal(a[i].train_loss, b[i].train_loss)
      assert.are.equal(a[i].val_loss, b[i].val_loss)
    end
    local ta = recur.io.load(dir_a .. "/last.safetensors")
    local tb = recur.io.load(dir_b .. "/last.safetensors")
    for name, t in pairs(ta) do
      assert.is_true(recur.allclose(t, tb[name], 0, 0), name .. " differs after resume")
    end
    os.remove(data); os.remove(log_a); os.remove(log_b)
  end)

  it("stops on a NaN loss and keeps the last good checkpoint", function()
    local data = corpus(20000)
    local dir = tmpdir()
    local Trainer = recur.train.TrainerClass
    local original = Trainer.evaluate
    -- poison the weights right after the checkpoint at iteration 20 is written
    Trainer.evaluate = function(self, loss)
      local record = original(self, loss)
      if self.iter == 20 then self.model.decoder.weight:fill_(0 / 0) end
      return record
    end
    local ok, err = pcall(lm.train, opts{data = data, max_iters = 40, checkpoint_dir = dir})
    Trainer.evaluate = original
    assert.is_false(ok)
    assert.are.equal("train: loss is nan at iteration 21; stopped, the last good checkpoint is kept",
      (tostring(err):gsub("%-nan", "nan")))
    local model, _, rest = lm.load(dir .. "/last.safetensors")
    assert.are.equal(20, rest.train.iter)
    assert.is_true(model.decoder.weight:norm() == model.decoder.weight:norm())
    os.remove(data)
  end)

  it("samples reproducibly from a seed, greedy at temperature 0, and primes", function()
    local data = corpus(20000)
    local dir = tmpdir()
    lm.train(opts{data = data, max_iters = 30, checkpoint_dir = dir})
    local model, tokenizer = lm.load(dir .. "/last.safetensors")
    local function sample(o)
      recur.manual_seed(3)
      local parts = {}
      lm.generate(model, tokenizer, o, function(s) parts[#parts + 1] = s end)
      return table.concat(parts)
    end
    local a = sample{length = 60, temperature = 0.8, prime = "ROMEO:"}
    assert.are.equal(a, sample{length = 60, temperature = 0.8, prime = "ROMEO:"})
    assert.are.equal("ROMEO:", a:sub(1, 6))
    assert.are.equal(66, utf8.len(a))
    local g1, g2 = sample{length = 30, temperature = 0, prime = "The "}, sample{length = 30, temperature = 0, prime = "The "}
    assert.are.equal(g1, g2)
    assert.are_not.equal(a, sample{length = 60, temperature = 1.5, prime = "ROMEO:"})
    -- beam search: the prime, then the best hypothesis of recur.beam, whole
    local b = sample{length = 20, beam = 4, prime = "The "}
    local best = recur.beam.search(model, tokenizer:encode("The "), {beam_size = 4, length = 20})[1]
    assert.are.equal("The " .. tokenizer:decode(best.ids), b)
    assert.are.equal(24, utf8.len(b))
    os.remove(data)
  end)

  it("steps one token at a time exactly as forward runs the whole sequence", function()
    recur.manual_seed(4)
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      local model = recur.models.LanguageModel{vocab_size = 11, embed = 6, hidden = 8, layers = 2, cell = cell}
      model:evaluate()
      local ids = recur.tensor({{3, 1}, {7, 2}, {11, 5}, {4, 4}}, "int64")   -- (T=4, B=2)
      local logits = model:forward(ids)
      local state, step_logits, previous
      for t = 1, 4 do
        local given = state
        step_logits, state = model:step(ids:select(1, t):contiguous(), state)
        if given then assert.are.equal(given, state) end   -- advanced in place
        -- each step's logits overwrite the last step's (the decoder's buffer), and
        -- leave forward's logits of another shape alone
        if previous then assert.is_true(previous:shares_storage(step_logits)) end
        assert.is_true(recur.allclose(logits:select(1, t), step_logits, 1e-5, 1e-6), cell)
        previous = step_logits
      end
    end
  end)

  it("refuses a checkpoint of another kind with a clear message", function()
    local path = os.tmpname()
    recur.io.save(path, {w = recur.ones(2)})
    assert.has_error(function() lm.load(path) end,
      "lm: '" .. path .. "' is not a recur language-model checkpoint (no 'recur' metadata)")
    recur.io.save(path, {w = recur.ones(2)}, {recur = recur.io.encode_meta({format = "other"})})
    assert.has_error(function() lm.load(path) end, "lm: '" .. path .. "' holds a 'other', not a language model")
    os.remove(path)
  end)

  it("trains a word-level model with <unk> and sentence markers", function()
    local data = corpus(30000)
    local dir = tmpdir()
    local summary = lm.train(opts{data = data, level = "word", min_freq = 2, max_iters = 20, checkpoint_dir = dir})
    local tok = summary.tokenizer
    assert.are.equal(2, tok.unk_id)
    local ids = tok:encode("zzzunseen the\n")
    assert.are.same({tok.unk_id, tok.vocab:id("the"), tok.eos_id}, ids)
    local model = lm.load(dir .. "/last.safetensors")
    assert.are.equal(tok:vocab_size(), model.config.vocab_size)
    os.remove(data)
  end)
end)
