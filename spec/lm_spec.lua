-- The language-model job end to end: training lowers validation loss, a resumed run
-- continues exactly, a NaN stops training with the last good checkpoint intact,
-- checkpoints round-trip, generation streams text.
local helpers = require "spec.support.helpers"
local recur = require "recur"
local lm = recur.lm

-- Temporary directories, removed when the specs end.
local created_dirs = {}
local function tmpdir()
  local path = helpers.tmp_dir()
  created_dirs[#created_dirs + 1] = path
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

-- The whole text lm.generate emits.
local function generated(model, tokenizer, o)
  local parts = {}
  lm.generate(model, tokenizer, o, function(s) parts[#parts + 1] = s end)
  return table.concat(parts)
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
  teardown(function()
    for _, dir in ipairs(created_dirs) do os.execute("rm -rf '" .. dir .. "'") end
  end)

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
    assert.are.equal("train: loss is NaN at iteration 21; stopped, the last good checkpoint is kept", err)
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
      return generated(model, tokenizer, o)
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

  it("refuses a checkpoint of another kind, or without a tokenizer, with a clear message", function()
    local path = os.tmpname()
    recur.checkpoint.save(path, recur.models.Forecaster{input_size = 1, hidden = 2, layers = 1})
    assert.has_error(function() lm.load(path) end, "lm: '" .. path .. "' holds a forecast model, not a language model")
    recur.checkpoint.save(path, recur.models.LanguageModel{vocab_size = 3, embed = 2, hidden = 2, layers = 1})
    assert.has_error(function() lm.load(path) end, "lm: '" .. path .. "' has no tokenizer")
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

  it("checkpoints a diverging run whose perplexity overflows", function()
    local data = corpus(20000)
    local dir, log = tmpdir(), os.tmpname()
    local Trainer = recur.train.TrainerClass
    local original = Trainer.evaluate
    -- after the checkpoint at iteration 10, every token but id 1 costs about 2000 nats
    Trainer.evaluate = function(self, loss)
      local record = original(self, loss)
      if self.iter == 10 then
        self.model.decoder.bias:fill_(0)
        self.model.decoder.bias:set(1, 2000)
      end
      return record
    end
    local ok, err = pcall(lm.train, opts{data = data, max_iters = 20, checkpoint_dir = dir, log = log})
    Trainer.evaluate = original
    assert.is_true(ok, err)
    local _, _, rest = lm.load(dir .. "/last.safetensors")
    assert.are.equal(20, rest.train.iter)
    assert.is_true(rest.train.record.val_loss > 709.8)
    assert.are.equal(math.huge, rest.train.record.val_ppl)
    local records = read_lines(log)
    assert.are.equal(math.huge, records[2].val_ppl)
    -- the best checkpoint is still the good one of iteration 10
    local _, _, best = lm.load(dir .. "/best.safetensors")
    assert.are.equal(10, best.train.iter)
    os.remove(data); os.remove(log)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses options nobody reads", function()
    assert.has_error(function() lm.train{data = "x", hiden = 3} end)
    local ok, err = pcall(lm.train, {data = "x", hiden = 3})
    assert.is_false(ok)
    assert.matches("lm.train: unknown option 'hiden'", err)
    ok, err = pcall(recur.train.Trainer, {model = {parameters = function() end}, optimizer = {}, batcher = {}, max_epoch = 3})
    assert.is_false(ok)
    assert.matches("Trainer: unknown option 'max_epoch'", err)
    local model = recur.models.LanguageModel{vocab_size = 5, embed = 2, hidden = 3, layers = 1}
    local tok = recur.data.CharTokenizer.fit("abcde")
    ok, err = pcall(lm.generate, model, tok, {length = 3, topk = 2})
    assert.is_false(ok)
    assert.matches("lm.generate: unknown option 'topk'", err)
    for _, case in ipairs({
      {{beam = 2, temperature = 0.5}, "temperature (--temperature) does not apply to a beam search"},
      {{beam = 2, length_penalty = 0.5}, "length_penalty (--length-penalty) needs stop_id"},
      {{length_penalty = 0.5}, "length_penalty (--length-penalty) applies only to a beam search"},
      {{temperature = 0, top_k = 2}, "top_k (--top-k) does not apply at temperature 0"},
    }) do
      ok, err = pcall(lm.generate, model, tok, case[1])
      assert.is_false(ok)
      assert.are.equal("lm.generate: " .. case[2], err:sub(1, 13 + #case[2]))
    end
    assert.has_error(function() lm.evaluate_text(model, tok, "abcabc", {seqlen = 2}) end)
  end)

  it("searches greedily with a beam of width 1", function()
    recur.manual_seed(5)
    local model = recur.models.LanguageModel{vocab_size = 5, embed = 4, hidden = 6, layers = 1}
    local tok = recur.data.CharTokenizer.fit("abcde")
    local greedy = generated(model, tok, {length = 12, temperature = 0, prime = "ab"})
    assert.are.equal(greedy, generated(model, tok, {length = 12, beam = 1, prime = "ab"}))
  end)

  describe("word-level generation", function()
    -- Vocabulary: 1 <pad> 2 <unk> 3 <s> 4 </s> 5 cat 6 sat 7 the (ties in byte order).
    local tok = recur.data.WordTokenizer.fit("the cat sat\n")
    local UNK, EOS, CAT, SAT, THE = 2, 4, 5, 6, 7
    -- A first-order chain posing as a model: after token i, the ids of prefs[i] score
    -- 10, 8, 6, ... in that order and every other id 0; `fed` lists every input id.
    -- Its state is (1,K,1) for the beam search's reordering.
    local function chain(prefs)
      local model = {fed = {}}
      function model:evaluate() end
      function model:step(ids, _)
        local K = ids:numel()
        local rows, h = {}, recur.zeros({1, K, 1}, "float64")
        for k = 1, K do
          local id = ids:get(k)
          self.fed[#self.fed + 1] = id
          local row = {}
          for v = 1, tok:vocab_size() do row[v] = 0 end
          for rank, v in ipairs(prefs[id] or {}) do row[v] = 12 - 2 * rank end
          rows[k] = row
        end
        return recur.tensor(rows, "float64"), {h = h}
      end
      return model
    end
    local sentence = {[EOS] = {THE}, [THE] = {CAT}, [CAT] = {SAT}, [SAT] = {EOS}}

    it("joins the words with spaces and starts after </s> without a prime", function()
      local model = chain(sentence)
      assert.are.equal("the cat sat\nthe cat", generated(model, tok, {length = 6, temperature = 0}))
      assert.are.equal(EOS, model.fed[1]) -- the stream's line start (no <s>: bos is false)
      local with_bos = recur.data.WordTokenizer.fit("the cat sat\n", {bos = true})
      model = chain({[3] = {THE}, [THE] = {CAT}, [CAT] = {SAT}, [SAT] = {EOS}})
      assert.are.equal("the cat sat\n", generated(model, with_bos, {length = 4, temperature = 0}))
      assert.are.equal(3, model.fed[1])
      assert.are.equal("the cat sat\nthe", generated(chain(sentence), tok, {length = 5, beam = 2}))
    end)

    it("continues a prime instead of ending its line", function()
      local model = chain(sentence)
      assert.are.equal("the cat sat\n", generated(model, tok, {length = 3, temperature = 0, prime = "the"}))
      -- no </s> after the prime (its last id is fed), and no step after the last token
      assert.are.same({THE, CAT, SAT}, model.fed)
      assert.are.equal("the cat sat", generated(chain(sentence), tok, {length = 2, temperature = 0, prime = "the "}))
      assert.are.equal("the cat\nthe cat", generated(chain(sentence), tok, {length = 2, temperature = 0, prime = "the cat\n"}))
      assert.are.equal("the cat sat", generated(chain(sentence), tok, {length = 2, beam = 3, prime = "the"}))
    end)

    it("never emits <unk> with ban_unk", function()
      local prefs = {[EOS] = {UNK, THE}, [UNK] = {UNK, THE}, [THE] = {UNK, CAT}, [CAT] = {UNK, SAT}, [SAT] = {UNK, EOS}}
      assert.are.equal("<unk> <unk> <unk>", generated(chain(prefs), tok, {length = 3, temperature = 0}))
      assert.are.equal("the cat sat", generated(chain(prefs), tok, {length = 3, temperature = 0, ban_unk = true}))
      assert.are.equal("the cat sat", generated(chain(prefs), tok, {length = 3, beam = 2, ban_unk = true}))
      recur.manual_seed(1)
      local drawn = generated(chain(prefs), tok, {length = 300, temperature = 3, ban_unk = true})
      assert.is_nil(drawn:find("<unk>", 1, true))
      assert.is_truthy(drawn:find("the cat", 1, true))
    end)

    it("stops at </s> with stop_at_eos", function()
      local model = chain(sentence)
      local out = {}
      local ids = lm.generate(model, tok, {length = 10, temperature = 0, stop_at_eos = true},
        function(s) out[#out + 1] = s end)
      assert.are.equal("the cat sat\n", table.concat(out))
      assert.are.same({THE, CAT, SAT, EOS}, ids)
      assert.are.equal("the cat sat\n", generated(chain(sentence), tok, {length = 10, beam = 2, stop_at_eos = true}))
    end)

    it("masks </s> until min_length tokens were generated", function()
      -- a model that would end the line at once, every time
      local eager = {[EOS] = {EOS, THE}, [THE] = {EOS, CAT}, [CAT] = {EOS, SAT}, [SAT] = {EOS, THE}}
      local function gen(n, extra)
        local o = {length = 10, stop_at_eos = true, min_length = n}
        for k, v in pairs(extra or {temperature = 0}) do o[k] = v end
        return generated(chain(eager), tok, o)
      end
      assert.are.equal("\n", gen(0))
      assert.are.equal("the\n", gen(1))
      assert.are.equal("the cat\n", gen(2))
      assert.are.equal("the cat sat\n", gen(3))
      assert.are.equal("the cat\n", gen(2, {beam = 2}))
      assert.are.equal("the cat sat the\n", gen(4, {beam = 3}))
    end)

    it("refuses the marker options where they cannot act", function()
      local chars = recur.data.CharTokenizer.fit("abc")
      local model = chain({})
      for _, case in ipairs({
        {chars, {ban_unk = true}, "ban_unk (--ban-unk) needs a vocabulary with an unknown-word token"},
        {chars, {stop_at_eos = true}, "stop_at_eos (--stop-at-eos) needs a vocabulary whose lines end with </s>"},
        {recur.data.WordTokenizer.fit("a\n", {eos = false}), {stop_at_eos = true}, "stop_at_eos (--stop-at-eos) needs"},
        {tok, {min_length = 2}, "min_length (--min-length) needs an end token"},
        {tok, {min_length = 11, length = 10, stop_at_eos = true}, "min_length (--min-length) is 11, more than the 10 tokens"},
        {tok, {min_length = -1, stop_at_eos = true}, "min_length (--min-length) must be a non-negative integer"},
        {tok, {stop_at_eos = true, stop_id = 4}, "stop_at_eos (--stop-at-eos) and stop_id both"},
      }) do
        helpers.assert_fails_with(function() lm.generate(model, case[1], case[2]) end, "lm.generate: " .. case[3])
      end
    end)
  end)

  describe("every training option acts", function()
    local data
    setup(function() data = corpus(6000) end)
    teardown(function() os.remove(data) end)

    -- Trains in a fresh directory; returns the summary, the messages, the log records
    -- and the last checkpoint's model, tokenizer and rest.
    local function run(extra)
      local dir, log = tmpdir(), os.tmpname()
      local lines = {}
      local out = {write = function(self, ...) lines[#lines + 1] = table.concat({...}) return self end,
                   flush = function(self) return self end}
      local o = opts{data = data, checkpoint_dir = dir, log = log, quiet = false, out = out, max_iters = 8, eval_every = 4}
      for k, v in pairs(extra) do o[k] = v end
      if o.quiet == "yes" then o.quiet = true end
      local summary = lm.train(o)
      local model, tokenizer, rest = lm.load(dir .. "/last.safetensors")
      local records = read_lines(log)
      os.remove(log)
      os.execute("rm -rf '" .. dir .. "'")
      return summary, table.concat(lines), records, model, tokenizer, rest
    end

    it("architecture, batch shape, learning rate, seed, clip", function()
      local summary, _, records, model = run{layers = 2, hidden = 12, embed = 5, model = "gru", dropout = 0.25,
                                             batch = 3, seq_len = 7, lr = 1e-3, seed = 11}
      assert.are.same({vocab_size = model.config.vocab_size, embed = 5, hidden = 12, layers = 2, cell = "gru", dropout = 0.25},
        model.config)
      assert.are.equal(8 * 3 * 7, summary.tokens)
      assert.are.equal(1e-3, records[1].lr)
      local a = run{seed = 11}
      local b = run{seed = 12}
      local c = run{seed = 11, clip = 1e-4}
      assert.are_not.equal(a.train_loss, b.train_loss)
      assert.are_not.equal(a.train_loss, c.train_loss)
      assert.are.equal(a.train_loss, run{seed = 11}.train_loss)
    end)

    it("truncated backpropagation within a chunk", function()
      local full = run{seed = 11, seq_len = 12}
      local cut, _, _, model = run{seed = 11, seq_len = 12, bptt_truncate = 2}
      assert.are.equal(2, model.config.bptt_truncate)        -- and the checkpoint keeps it
      assert.are_not.equal(full.train_loss, cut.train_loss)   -- different gradients, different weights
      assert.are.equal(full.train_loss, run{seed = 11, seq_len = 12, bptt_truncate = 11}.train_loss) -- k >= T-1: none cut
    end)

    it("epochs and the learning-rate decay", function()
      local one = run{max_iters = false, epochs = 1, eval_every = 1000}
      local three = run{max_iters = false, epochs = 3, lr_decay = 0.5, lr_decay_after = 1, eval_every = 1000}
      assert.are.equal(3 * one.iterations, three.iterations)
      assert.are.equal(3, three.final.epoch)
      assert.are.equal(2e-3 * 0.5, three.final.lr) -- decayed once: after epoch 2, not after epoch 1
      local dir = tmpdir()
      local timed = lm.train(opts{data = data, checkpoint_dir = dir, max_seconds = 1e-9})
      assert.are.equal("time", timed.stop)
      assert.are.equal(0, timed.iterations)
    end)

    it("splits, evaluation interval, n-gram baseline, vocabulary, quiet", function()
      local _, said, records = run{val_frac = 0.2, test_frac = 0.1, eval_every = 2, ngram = 3}
      local text = recur.data.read_text(data)
      local _, val = recur.data.split(text, {val_frac = 0.2, test_frac = 0.1})
      assert.is_truthy(said:find(utf8.len(val) .. " validation tokens", 1, true), said)
      assert.is_truthy(said:find("test loss", 1, true), said)
      assert.is_truthy(said:find("3-gram baseline", 1, true), said)
      assert.are.equal(4, #records)
      local val_path = os.tmpname()
      local f = assert(io.open(val_path, "wb")); f:write(text:sub(1, 777)); f:close()
      local _, said2 = run{val_data = val_path, test_data = val_path}
      assert.is_truthy(said2:find("777 validation tokens", 1, true), said2)
      assert.is_truthy(said2:find("test loss", 1, true), said2)
      os.remove(val_path)
      local _, _, _, _, words = run{level = "word", max_vocab = 20}
      assert.are.equal(20 + 4, words:vocab_size()) -- and the four specials
      local _, _, _, _, frequent = run{level = "word", min_freq = 5}
      local _, _, _, _, all = run{level = "word"}
      assert.is_true(frequent:vocab_size() < all:vocab_size())
      local _, silent = run{quiet = "yes"}
      assert.are.equal("", silent)
    end)
  end)

  describe("the checkpoint directory", function()
    it("is created, probed and locked before training; stale temporaries go", function()
      local data = corpus(6000)
      local dir = tmpdir()
      local stale = dir .. "/last.safetensors.tmp-0000abcd"
      local f = assert(io.open(stale, "wb")); f:write("half a checkpoint"); f:close()
      local Trainer = recur.train.TrainerClass
      local original = Trainer.run
      Trainer.run = function() error("stopped before training", 0) end
      local ok, err = pcall(lm.train, opts{data = data, max_iters = 2, checkpoint_dir = dir})
      Trainer.run = original
      assert.are.equal("stopped before training", err)
      assert.is_nil(io.open(stale))
      local nested = dir .. "/a/b"
      lm.train(opts{data = data, max_iters = 2, checkpoint_dir = nested})
      assert.is_truthy(io.open(nested .. "/last.safetensors"))
      assert.is_nil(io.open(nested .. "/.probe.safetensors"))
      -- a second run on a locked directory is refused, naming the holder
      local lock = assert(recur.lock_file(nested .. "/train.lock"))
      ok, err = pcall(lm.train, opts{data = data, max_iters = 2, checkpoint_dir = nested})
      lock:unlock()
      assert.is_false(ok)
      assert.are.equal(string.format("lm: checkpoint directory '%s' is in use by process %s (lock '%s/train.lock'); "
        .. "wait for that run or choose another --checkpoint-dir", nested, assert(io.open(nested .. "/train.lock")):read("l"), nested), err)
      -- a run releases its lock when it ends, also by an error
      lm.train(opts{data = data, max_iters = 2, checkpoint_dir = nested})
      Trainer.run = function() error("boom", 0) end
      ok = pcall(lm.train, opts{data = data, max_iters = 2, checkpoint_dir = nested})
      Trainer.run = original
      assert.is_false(ok)
      assert(recur.lock_file(nested .. "/train.lock")):unlock() -- <close> released it at once
      -- the probe save fails: refused before training, with the directory named, lock released
      local save = recur.io.save
      recur.io.save = function(path) error("io.save: '" .. path .. "': No space left on device", 0) end
      ok, err = pcall(lm.train, opts{data = data, max_iters = 2, checkpoint_dir = nested})
      recur.io.save = save
      assert.are.equal("lm: cannot write checkpoints in '" .. nested .. "': io.save: '" .. nested
        .. "/.probe.safetensors': No space left on device", err)
      assert.is_truthy(recur.lock_file(nested .. "/train.lock"))
      os.remove(data)
      os.execute("rm -rf '" .. dir .. "'")
    end)
  end)
end)
