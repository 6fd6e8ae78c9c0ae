-- recur.checkpoint: every model kind saves and loads to the same outputs; each class's
-- parameter_shapes lists exactly the parameters its models register; hostile files
-- (edited from good ones) are refused with a message naming the problem, before any
-- model is built; a "recur-lm" file written by lm.save before issue 12 still loads.
local recur = require "recur"
local checkpoint = recur.checkpoint
local models = recur.models
local rio = recur.io

-- Every file a spec here makes is removed when the file's specs end (edited copies
-- included), whatever happened in between.
local made = {}
local function tmpfile()
  made[#made + 1] = os.tmpname()
  return made[#made]
end
teardown(function() for _, p in ipairs(made) do os.remove(p) end end)

local function shapes_of(model)
  local got = {}
  for name, t in pairs(model:state_dict()) do got[name] = t:size() end
  return got
end

-- The largest absolute difference of two tensors of one shape.
local function max_diff(a, b)
  assert.are.same(a:size(), b:size())
  return (a:to("float64") - b:to("float64")):abs():max()
end

-- Fresh copies of the metadata tables and tensors of a checkpoint, edited by `edit`,
-- saved to a new file.
local function edited(path, edit)
  local tensors, meta = rio.load(path)
  local decoded = {}
  for key, s in pairs(meta) do decoded[key] = rio.decode_meta(s) end
  edit(decoded, tensors)
  local out_meta = {}
  for key, v in pairs(decoded) do out_meta[key] = rio.encode_meta(v) end
  local out = tmpfile()
  rio.save(out, tensors, out_meta)
  return out
end

describe("Class.parameter_shapes", function()
  -- For every cell, 1..3 layers and the options that change the parameters.
  local function configs(base, extra)
    local list = {}
    for _, cell in ipairs(recur.nn.cells) do
      for layers = 1, 3 do
        local c = {}
        for k, v in pairs(base) do c[k] = v end
        c.cell, c.layers = cell, layers
        list[#list + 1] = c
        if extra then
          for _, e in ipairs(extra) do
            local c2 = {}
            for k, v in pairs(c) do c2[k] = v end
            for k, v in pairs(e) do c2[k] = v end
            if not (c2.condition_cell ~= nil and cell ~= "lstm") then list[#list + 1] = c2 end
          end
        end
      end
    end
    return list
  end

  local cases = {
    {models.LanguageModel, configs({vocab_size = 7, embed = 3, hidden = 5})},
    {models.Seq2Seq, configs({src_vocab_size = 7, tgt_vocab_size = 9, embed = 3, hidden = 5})},
    {models.SequenceClassifier, configs({vocab_size = 7, num_classes = 4, embed = 3, hidden = 5},
      {{bidirectional = true}, {vocab_size = false, embed = false, input_size = 6},
       {vocab_size = false, embed = false, input_size = 6, bidirectional = true}})},
    {models.Forecaster, configs({input_size = 3, hidden = 5}, {{output_size = 2}})},
    {models.ConditionedGenerator, configs({cond_size = 4, vocab_size = 7, start_id = 1, embed = 3, hidden = 5},
      {{condition_cell = false}})},
  }

  it("equals the shapes of the model's state_dict, same names, for every kind", function()
    local count = 0
    for _, case in ipairs(cases) do
      local Class = case[1]
      for _, config in ipairs(case[2]) do
        for k, v in pairs(config) do if v == false and k ~= "condition_cell" and k ~= "bidirectional" then config[k] = nil end end
        local model = Class(config)
        assert.are.same(shapes_of(model), Class.parameter_shapes(model.config))
        -- the config as given, defaults not merged, lists the same
        assert.are.same(shapes_of(model), Class.parameter_shapes(config))
        count = count + 1
      end
    end
    assert.is_true(count >= 5 * 9 + 9 * 3 + 9 + 3)
  end)

  it("checks the keys and sizes it reads", function()
    assert.has_error(function() models.LanguageModel.parameter_shapes{vocab_size = 5, bogus = 1} end)
    assert.has_error(function() models.Forecaster.parameter_shapes{input_size = 0} end)
    assert.has_error(function() models.Seq2Seq.parameter_shapes{src_vocab_size = 5, tgt_vocab_size = 5, cell = "lstn"} end)
    assert.has_error(function() models.SequenceClassifier.parameter_shapes{num_classes = 2, input_size = 3, bidirectional = "yes"} end)
  end)
end)

describe("checkpoint.save and recur.load", function()
  local paths = {}
  local function path()
    paths[#paths + 1] = tmpfile()
    return paths[#paths]
  end
  teardown(function() for _, p in ipairs(paths) do os.remove(p) end end)

  local ids = function(rows) return recur.tensor(rows, "int64") end

  -- The same outputs from the saved and the loaded model (evaluation mode), and the
  -- loaded one is of the saved one's class and config.
  local function round_trip(model, opts, run)
    recur.manual_seed(11)
    model:evaluate()
    local want = run(model):clone()
    local p = path()
    checkpoint.save(p, model, opts)
    local back, info = recur.load(p)
    back:evaluate()
    assert.are.equal(getmetatable(model), getmetatable(back))
    assert.are.same(model.config, back.config)
    assert.are.same(model.config, info.config)
    assert.are.equal(model.kind, info.kind)
    assert.are.equal(0, max_diff(want, run(back)))
    return back, info
  end

  it("round-trips a language model with its tokenizer, optimizer state, hidden state and loop state", function()
    recur.manual_seed(1)
    local tok = recur.data.CharTokenizer.fit("abcab\n")
    local model = models.LanguageModel{vocab_size = tok:vocab_size(), embed = 3, hidden = 4, layers = 2, cell = "lstm"}
    local opt = recur.optim.Adam(model, {lr = 0.01})
    local x = ids({{1, 2}, {3, 4}, {2, 1}})
    model:zero_grad()
    local _, state = model:forward(x)
    model:backward(x, recur.randn(3, 2, tok:vocab_size()))
    opt:step()
    local _, info = round_trip(model, {data = {tokenizer = tok}, optimizer = opt, train = {iter = 3, epoch = 1},
      tensors = {["hidden.h"] = state.h, ["hidden.c"] = state.c}}, function(m) return (m:forward(x)) end)
    assert.are.same(tok:to_table(), info.data.tokenizer:to_table())
    assert.are.equal(3, info.train.iter)
    assert.are.equal(1, info.train.optimizer.step)
    assert.are.equal(0, max_diff(state.h, info.tensors["hidden.h"]))
    assert.are.equal(0, max_diff(state.c, info.tensors["hidden.c"]))
    local otensors = opt:state_dict()
    local n = 0
    for name, t in pairs(otensors) do
      assert.are.equal(0, max_diff(t, info.optim_tensors[name]))
      n = n + 1
    end
    local m = 0
    for _ in pairs(info.optim_tensors) do m = m + 1 end
    assert.are.equal(2 * 11, n)
    assert.are.equal(n, m)
  end)

  it("round-trips a language model with tied weights, and refuses a tied one whose two matrices differ", function()
    recur.manual_seed(7)
    local model = models.LanguageModel{vocab_size = 5, embed = 4, hidden = 4, layers = 1, cell = "rnn_relu",
      tie_weights = true}
    local x = ids({{1, 2}, {3, 4}})
    local back = round_trip(model, nil, function(m) return (m:forward(x)) end)
    assert.are.equal(back.encoder.weight, back.decoder.weight)
    local p = path()
    checkpoint.save(p, model)
    local bad = edited(p, function(_, t) t["model.decoder.weight"] = t["model.decoder.weight"]:clone():add_(1) end)
    assert.has_error(function() recur.load(bad) end, "checkpoint: '" .. bad .. "': LanguageModel: load_state_dict: "
      .. "tie_weights, but the state's encoder.weight and decoder.weight differ (a state of an untied model?)")
    os.remove(bad)
  end)

  it("round-trips a translator with its source and target tokenizers", function()
    recur.manual_seed(2)
    local src = recur.data.CharTokenizer.fit("abc")
    local tgt = recur.data.WordTokenizer.fit("le chat\n", {bos = true})
    local model = models.Seq2Seq{src_vocab_size = src:vocab_size(), tgt_vocab_size = tgt:vocab_size(), embed = 3,
      hidden = 4, layers = 2, cell = "gru", pad_id = 1, bos_id = 3, eos_id = 4}
    local _, info = round_trip(model, {data = {source = src, target = tgt}},
      function(m) return (m:forward(ids({{1, 2}, {3, 1}}), ids({{3, 3}, {5, 6}, {4, 4}}), ids({2, 1}))) end)
    assert.are.same(src:to_table(), info.data.source:to_table())
    assert.are.same(tgt:to_table(), info.data.target:to_table())
    assert.are.same({}, info.train)
  end)

  it("round-trips a bidirectional classifier of token ids with its labels", function()
    recur.manual_seed(3)
    local tok = recur.data.WordTokenizer.fit("good bad movie\n")
    local model = models.SequenceClassifier{vocab_size = tok:vocab_size(), num_classes = 3, embed = 3, hidden = 4,
      layers = 2, bidirectional = true, cell = "rnn"}
    local _, info = round_trip(model, {data = {tokenizer = tok, labels = {"neg", "pos", "neutral"}}},
      function(m) return (m:forward(ids({{5, 6}, {7, 5}, {6, 1}}), ids({3, 2}))) end)
    assert.are.same({"neg", "pos", "neutral"}, info.data.labels)
  end)

  it("round-trips a classifier of real features", function()
    recur.manual_seed(4)
    local model = models.SequenceClassifier{input_size = 2, num_classes = 2, hidden = 3, layers = 1}
    local x = recur.randn(4, 2, 2)
    round_trip(model, {data = {labels = {"a", "b"}}}, function(m) return (m:forward(x, ids({4, 2}))) end)
  end)

  it("round-trips a forecaster with its scaler and column names", function()
    recur.manual_seed(5)
    local series = recur.data.series.tensor({{1, 10}, {2, 30}, {4, 20}, {3, 25}})
    local scaler = recur.data.series.Scaler.fit(series)
    local model = models.Forecaster{input_size = 2, output_size = 2, hidden = 4, layers = 3, cell = "gru"}
    local x = scaler:transform(series):view(4, 1, 2)
    local _, info = round_trip(model, {data = {scaler = scaler, columns = {"temp", "wind"}}},
      function(m) return (m:forward(x)) end)
    assert.are.same(scaler.mean:totable(), info.data.scaler.mean:totable())
    assert.are.same(scaler.std:totable(), info.data.scaler.std:totable())
    assert.are.equal("float32", info.data.scaler.std:dtype())
    assert.are.same({"temp", "wind"}, info.data.columns)
    -- the scaler's values survive JSON exactly: the same inverse transform
    assert.are.equal(0, max_diff(scaler:inverse(x), info.data.scaler:inverse(x)))
  end)

  it("round-trips conditioned generators with and without a conditioned cell state", function()
    for _, config in ipairs({
      {cond_size = 3, vocab_size = 6, start_id = 1, end_id = 2, embed = 3, hidden = 4, layers = 2},
      {cond_size = 3, vocab_size = 6, start_id = 1, embed = 3, hidden = 4, layers = 1, condition_cell = false},
      {cond_size = 3, vocab_size = 6, start_id = 1, embed = 3, hidden = 4, layers = 2, cell = "gru"},
    }) do
      recur.manual_seed(6)
      local z = recur.randn(2, 3)
      round_trip(models.ConditionedGenerator(config), nil,
        function(m) return (m:forward(z, ids({{1, 1}, {3, 4}, {5, 6}}))) end)
    end
  end)

  it("refuses to save what load would refuse", function()
    local model = models.SequenceClassifier{vocab_size = 5, num_classes = 2, embed = 2, hidden = 2}
    local p = path()
    for _, case in ipairs({
      {{data = {labels = {"a", "a"}}}, "label \"a\" appears twice (1 and 2)"},
      {{data = {labels = {"a", "b", "c"}}}, "data entry 'labels' has 3 labels, the config's num_classes is 2"},
      {{data = {scaler = recur.data.series.Scaler.fit(recur.ones(3, 2))}}, "data has an unknown entry 'scaler'"},
      {{tensors = {["hidden.h"] = recur.zeros(1, 1, 2)}}, "unexpected tensor 'hidden.h'"},
    }) do
      local ok, err = pcall(checkpoint.save, p, model, case[1])
      assert.is_false(ok)
      assert.is_truthy(err:find(case[2], 1, true), err)
    end
    assert.has_error(function() checkpoint.save(p, recur.nn.Linear(2, 2)) end,
      "checkpoint.save: expected a model of recur.models (with a kind and a config), got table")
  end)
end)

describe("checkpoint.load on hostile files", function()
  local good, good_classify, good_forecast
  local files = {}
  setup(function()
    recur.manual_seed(9)
    local tok = recur.data.CharTokenizer.fit("abcde\n")
    good = tmpfile()
    checkpoint.save(good, models.LanguageModel{vocab_size = tok:vocab_size(), embed = 4, hidden = 8, layers = 1},
      {data = {tokenizer = tok}})
    good_classify = tmpfile()
    checkpoint.save(good_classify, models.SequenceClassifier{vocab_size = tok:vocab_size(), num_classes = 2, embed = 3,
      hidden = 4}, {data = {tokenizer = tok, labels = {"no", "yes"}}})
    good_forecast = tmpfile()
    checkpoint.save(good_forecast, models.Forecaster{input_size = 2, hidden = 4, layers = 1},
      {data = {scaler = recur.data.series.Scaler.fit(recur.tensor({{1, 2}, {3, 5}}))}})
  end)
  teardown(function()
    for _, p in ipairs({good, good_classify, good_forecast}) do os.remove(p) end
    for _, p in ipairs(files) do os.remove(p) end
  end)

  -- Every constructor call is counted: a hostile file must be refused before one.
  local built = 0
  local inits = {}
  before_each(function()
    built = 0
    for _, Class in pairs(models) do
      inits[Class] = rawget(Class, "__init")
      Class.__init = function(...)
        built = built + 1
        return inits[Class](...)
      end
    end
  end)
  after_each(function()
    for Class, init in pairs(inits) do Class.__init = init end
  end)

  -- The file `edit` makes from `from` is refused with "checkpoint: '<file>': message",
  -- no model built; returns the seconds the refusal took.
  local function refused(from, edit, message, allow_build)
    local bad = edited(from, edit)
    files[#files + 1] = bad
    local started = recur.now()
    local ok, err = pcall(recur.load, bad)
    local seconds = recur.now() - started
    assert.is_false(ok)
    assert.are.equal("checkpoint: '" .. bad .. "': " .. message, err:sub(1, #bad + 16 + #message))
    if not allow_build then assert.are.equal(0, built, "a model was built before the file was refused") end
    return seconds
  end

  it("loads the unedited files (the edits below are what is wrong)", function()
    for _, p in ipairs({good, good_classify, good_forecast}) do
      local model = recur.load(edited(p, function() end))
      assert.is_truthy(model.kind)
    end
    assert.are.equal(3, built)
  end)

  it("refuses files that are not checkpoints, or of an unknown kind or format", function()
    refused(good, function(m) m.recur = nil end, "is not a recur checkpoint (no 'recur' metadata)")
    refused(good, function(m) m.recur.format = "other" end, "holds a 'other', not a recur checkpoint")
    refused(good, function(m) m.recur.kind = "lmx" end,
      "unknown model kind \"lmx\" (classify, forecast, generator, lm, seq2seq)")
    refused(good, function(m) m.config = {1, 2} end, "config keys must be strings, got 1")
  end)

  it("refuses a config of another kind, or with an unknown key or a bad value", function()
    refused(good, function(m) m.recur.kind = "seq2seq" end, "config: Seq2Seq: unknown option 'vocab_size'")
    refused(good, function(m) m.config.bogus = 1 end, "config: LanguageModel: unknown option 'bogus'")
    refused(good, function(m) m.config.hidden = -8 end,
      "config: LanguageModel: config.hidden must be a positive integer, got -8")
    refused(good, function(m) m.config.hidden = 2.5 end,
      "config: LanguageModel: config.hidden must be a positive integer, got 2.5")
    refused(good, function(m) m.config.vocab_size = "7" end,
      "config: LanguageModel: config.vocab_size must be a positive integer, got \"7\"")
    refused(good, function(m) m.config.cell = "lstn" end, "config: LanguageModel: unknown cell 'lstn'")
    refused(good, function(m) m.config.embed = {4} end, "config embed must be a number, string or boolean, got a table")
    refused(good, function(m) m.config.dropout = math.huge end, "config dropout is inf")
    -- a value only the constructor checks: refused by it, after the tensors matched
    refused(good, function(m) m.config.dropout = 1 end,
      "config: LanguageModel: option dropout must be a number in [0, 1), got 1", true)
  end)

  it("compares the config with the file's tensors before allocating anything", function()
    -- a model of 100000 hidden units would need 160 GB; a million layers, 4 million shapes
    local s1 = refused(good, function(m) m.config.hidden = 100000 end,
      "model tensor 'decoder.weight' is float32 [6,8], the config needs float [6,100000]")
    local s2 = refused(good, function(m) m.config.layers = 1000000 end,
      "config (1000000 layers) needs more model tensors than the file's 7")
    assert.is_true(s1 < 0.5 and s2 < 0.5, s1 .. " s, " .. s2 .. " s")
    refused(good, function(m) m.config.layers = 2 end, "config (2 layers) needs 11 model tensors, the file has 7")
    refused(good, function(m) m.config.cell = "gru" end,
      "model tensor 'rnn.bias_hh_l0' is float32 [32], the config needs float [24]")
    refused(good, function(_, t) t["model.rnn.bias_hh_l0"] = recur.zeros(31) end,
      "model tensor 'rnn.bias_hh_l0' is float32 [31], the config needs float [32]")
    refused(good, function(_, t) t["model.rnn.bias_hh_l0"] = recur.zeros({32}, "int64") end,
      "model tensor 'rnn.bias_hh_l0' is int64 [32], the config needs float [32]")
    refused(good, function(_, t) t["model.rnn.extra_l0"], t["model.rnn.bias_hh_l0"] = t["model.rnn.bias_hh_l0"], nil end,
      "model tensor 'rnn.bias_hh_l0' is missing")
    refused(good, function(_, t) t["model.rnn.extra_l0"] = recur.zeros(1) end,
      "config (1 layers) needs 7 model tensors, the file has 8")
    -- a classifier's shapes depend on bidirectional: a bidirectional config needs 8 more
    refused(good_classify, function(m) m.config.bidirectional = true end,
      "config (1 layers) needs 11 model tensors, the file has 7")
  end)

  it("checks the tokenizer, the labels and the scaler, and their sizes against the config", function()
    refused(good, function(m) m.data.tokenizer.type = "bytes" end,
      "data entry 'tokenizer' must have type char or word, got \"bytes\"")
    refused(good, function(m) m.data.tokenizer.tokens[2] = m.data.tokenizer.tokens[1] end, "bad char 'tokenizer': ")
    refused(good, function(m) m.data.tokenizer.tokens[7] = "z" end,
      "data entry 'tokenizer' has 7 tokens, the config's vocab_size is 6")
    refused(good, function(m) m.data.source = m.data.tokenizer end,
      "data has an unknown entry 'source' (a lm checkpoint has tokenizer)")
    refused(good_classify, function(m) m.data.labels.labels = {"no", "no"} end,
      "bad labels 'labels': label \"no\" appears twice (1 and 2)")
    refused(good_classify, function(m) m.data.labels.labels = {"no", ""} end,
      "bad labels 'labels': label 2 must be a non-empty string, got \"\"")
    refused(good_classify, function(m) m.data.labels.labels = {"no", 2} end,
      "bad labels 'labels': label 2 must be a non-empty string, got 2")
    refused(good_classify, function(m) m.data.labels.labels = {} end,
      "bad labels 'labels': labels must be a non-empty array of strings")
    refused(good_classify, function(m) m.data.labels.labels = {"no", "yes", "maybe"} end,
      "data entry 'labels' has 3 labels, the config's num_classes is 2")
    refused(good_classify, function(m) m.data.labels = {type = "char", tokens = {"a", "b"}} end,
      "data entry 'labels' must have type labels, got \"char\"")
    refused(good_forecast, function(m) m.data.scaler.std[2] = 0 end,
      "bad scaler 'scaler': Scaler.from_table: std[2] must be a finite number > 0, got 0")
    refused(good_forecast, function(m) m.data.scaler.std[1] = -1 end,
      "bad scaler 'scaler': Scaler.from_table: std[1] must be a finite number > 0, got -1")
    refused(good_forecast, function(m) m.data.scaler.mean[1] = 0 / 0 end,
      "bad scaler 'scaler': Scaler.from_table: mean[1] must be a finite number, got")
    refused(good_forecast, function(m) m.data.scaler.mean[2] = math.huge end,
      "bad scaler 'scaler': Scaler.from_table: mean[2] must be a finite number, got inf")
    refused(good_forecast, function(m) m.data.scaler.mean[3] = 1 end,
      "bad scaler 'scaler': Scaler.from_table: mean and std must be arrays of one number per feature, of the same length")
    refused(good_forecast, function(m) m.data.scaler.mean[3], m.data.scaler.std[3] = 1, 1 end,
      "data entry 'scaler' has 3 scaled columns, the config's input_size is 2")
    refused(good_forecast, function(m) m.data.scaler.dtype = "int64" end,
      "bad scaler 'scaler': Scaler.from_table: dtype must be 'float32' or 'float64', got int64")
  end)

  it("accepts only a stream model's hidden state as extra tensors", function()
    refused(good, function(_, t) t["hidden.h"] = recur.zeros(2, 3, 8) end,
      "tensor 'hidden.h' float32 [2,3,8] is not a hidden state (1 layers x batch x 8)")
    refused(good, function(_, t) t["hidden.h"], t["hidden.c"] = recur.zeros(1, 3, 8), recur.zeros(1, 2, 8) end,
      "tensor 'hidden.")
    refused(good, function(_, t) t["hidden.x"] = recur.zeros(1, 3, 8) end,
      "tensor 'hidden.x' float32 [1,3,8] is not a hidden state (1 layers x batch x 8)")
    refused(good, function(_, t) t["stray"] = recur.zeros(1) end, "unexpected tensor 'stray'")
    refused(good_classify, function(_, t) t["hidden.h"] = recur.zeros(1, 3, 4) end, "unexpected tensor 'hidden.h'")
    local model, info = recur.load(edited(good_forecast, function(_, t) t["hidden.h"] = recur.ones(1, 3, 4) end))
    assert.are.equal("forecast", model.kind)
    assert.are.same({1, 3, 4}, info.tensors["hidden.h"]:size())
  end)
end)

-- spec/fixtures/checkpoint/legacy_lm.safetensors was written by lm.save at commit
-- 542a831 (format "recur-lm"): recur.manual_seed(5), CharTokenizer.fit("hello world\n"),
-- LanguageModel{vocab_size = 9, embed = 3, hidden = 4, layers = 2, cell = "gru"}, one
-- Adam step (lr 0.01) of train_step(x, y) with x = {{1, 2}, {3, 4}, {5, 6}},
-- y = {{2, 3}, {4, 5}, {6, 7}}, saved with the optimizer, train = {iter = 1, epoch = 1}
-- and the step's state as hidden.h. LOGITS are that model's (evaluation mode) logits at
-- the third step of forward(x), as it printed them.
describe("checkpoints of the recur-lm format", function()
  local FIXTURE = "spec/fixtures/checkpoint/legacy_lm.safetensors"
  local LOGITS = {
    {0.415512711, 0.135271639, 0.0794623643, -0.246380597, 0.154991761, 0.252707183, -0.0358894318, 0.335609108, -0.246011421},
    {0.372478455, -0.112665594, 0.0744473338, -0.307440996, 0.0396651775, 0.333892703, 0.106846631, 0.42901805, -0.413372278},
  }

  it("load as language models with their tokenizer, optimizer, loop and hidden state", function()
    local model, info = recur.load(FIXTURE)
    assert.are.equal("lm", info.kind)
    assert.are.same({vocab_size = 9, embed = 3, hidden = 4, layers = 2, cell = "gru", dropout = 0}, info.config)
    assert.are.same({"\n", " ", "d", "e", "h", "l", "o", "r", "w"}, info.data.tokenizer:to_table().tokens)
    assert.are.equal("char", info.data.tokenizer:to_table().type)
    assert.are.equal(1, info.train.iter)
    assert.are.equal(1, info.train.optimizer.step)
    assert.are.same({2, 2, 4}, info.tensors["hidden.h"]:size())
    local n = 0
    for _ in pairs(info.optim_tensors) do n = n + 1 end
    assert.are.equal(22, n)
    model:evaluate()
    local logits = model:forward(recur.tensor({{1, 2}, {3, 4}, {5, 6}}, "int64")):select(1, 3):totable()
    for b = 1, 2 do
      for v = 1, 9 do assert.is_true(math.abs(logits[b][v] - LOGITS[b][v]) < 1e-7, b .. "," .. v) end
    end
  end)

  it("drop the level older files kept in the config, and refuse one that disagrees with the tokenizer", function()
    local old = edited(FIXTURE, function(m) m.config.level = "char" end)
    local model, info = recur.load(old)
    assert.is_nil(model.config.level)
    -- saved again (as lm.save does), in today's format, the config holds the model's keys only
    recur.lm.save(old, model, info.data.tokenizer)
    local _, meta = rio.load(old)
    assert.are.same({format = "recur-checkpoint", version = recur.version, kind = "lm"}, rio.decode_meta(meta.recur))
    assert.are.same({cell = "gru", dropout = 0, embed = 3, hidden = 4, layers = 2, vocab_size = 9},
      rio.decode_meta(meta.config))
    assert.are.same({tokenizer = {type = "char", tokens = {"\n", " ", "d", "e", "h", "l", "o", "r", "w"}}},
      rio.decode_meta(meta.data))
    os.remove(old)
    local wrong = edited(FIXTURE, function(m) m.config.level = "word" end)
    assert.has_error(function() recur.load(wrong) end,
      "checkpoint: '" .. wrong .. "': config level 'word' disagrees with the tokenizer's 'char'")
    os.remove(wrong)
  end)
end)
