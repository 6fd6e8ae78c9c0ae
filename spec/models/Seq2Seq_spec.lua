-- Seq2Seq: finite-difference gradients of the whole loss with padded sources and
-- targets, the loss against a hand-assembled one, scheduled sampling at p = 0, 1 and
-- in between, greedy against beam search and recur.beam, a short training run on a
-- reversal task, and errors that name the operation.
local recur = require "recur"
local Seq2Seq = require "recur.models.Seq2Seq"
local support = require "spec.support.seq2seq"
local columns, lengths_of, LossOf = support.columns, support.lengths_of, support.LossOf

local PAD, BOS, EOS = 1, 2, 3

local function expect_error(fn, fragment)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error containing: " .. fragment)
  assert.is_truthy(tostring(err):find(fragment, 1, true),
    "error '" .. tostring(err) .. "' does not contain '" .. fragment .. "'")
end

local function grads_of(model)
  local map, names = model:named_gradients()
  local copy = {}
  for _, name in ipairs(names) do copy[name] = map[name]:clone() end
  return copy, names
end

-- Sources of different lengths (padded with PAD, which then appears only in padding)
-- and targets ending with EOS, padded with PAD.
local SRC = {{4, 5, 6, 4}, {6, 5}, {5, 4, 6}}
local TGT = {{5, 4, EOS}, {4, 6, 5, 6, EOS}, {EOS}}

describe("Seq2Seq", function()
  support.one_thread(setup, teardown)

  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("has the gradient of finite differences for its whole loss, with padding", function()
    local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)
    for _, cfg in ipairs({{cell = "lstm", layers = 2}, {cell = "gru", layers = 1}}) do
      recur.manual_seed(11)
      local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 3, hidden = 4,
                            layers = cfg.layers, cell = cfg.cell}
      -- eps 1e-4: the encoder's first-layer gradients are ~1e-7, where rounding in
      -- the loss (~1e-16) would dominate the difference quotient of a smaller eps
      local r = recur.gradcheck(LossOf(model), {src, tgt, len}, {eps = 1e-4})
      assert(r.max_error < 2e-5, tostring(r))
      assert.are.equal(#model:parameters(), #r.names)
      -- the padding id of the sources is never read: its embedding gets no gradient
      assert.are.equal(0, model.src_embed:gradient("weight"):select(1, PAD):abs():max())
    end
  end)

  it("computes the loss of its parts: encoder per source, decoder from its state, masked CE", function()
    recur.manual_seed(12)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 7, embed = 5, hidden = 6, layers = 2}
    model:to("float64")
    local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)
    local loss, count = model:loss(src, tgt, len)
    local total, n = 0, 0
    for b, s in ipairs(SRC) do
      -- the source alone, unpadded, through the encoder; its final state starts the decoder
      local x = model.src_embed:forward(columns({s}, PAD)):clone()
      local _, h, c = model.encoder:forward(x)
      local inputs = {BOS}
      for t = 1, #TGT[b] - 1 do inputs[t + 1] = TGT[b][t] end
      local y = model.decoder:forward(model.tgt_embed:forward(columns({inputs}, PAD)):clone(), h, c)
      local logits = model.generator:forward(y):totable()
      for t, target in ipairs(TGT[b]) do
        local row = logits[t][1]
        local max = -math.huge
        for _, v in ipairs(row) do max = math.max(max, v) end
        local z = 0
        for _, v in ipairs(row) do z = z + math.exp(v - max) end
        total = total - (row[target] - max - math.log(z))
        n = n + 1
      end
    end
    assert.are.equal(n, count)   -- 9 real targets; the padding counts for nothing
    assert.are.near(total / n, loss, 1e-12)
  end)

  it("steps one token at a time as the decoder's sequence forward", function()
    recur.manual_seed(13)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 5, hidden = 6, layers = 2, cell = "gru"}
    local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)
    local dec_in = model:shift(tgt)
    local logits = model:forward(src, dec_in, len):clone()
    local state = model:encode(src, len)
    for t = 1, dec_in:size(1) do
      local step_logits = model:step(dec_in:select(1, t):contiguous(), state)
      assert.is_true(recur.allclose(logits:select(1, t), step_logits, 1e-5, 1e-6))
    end
  end)

  describe("scheduled sampling", function()
    local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)
    local T, B = tgt:size(1), tgt:size(2)

    local function model_of(seed)
      recur.manual_seed(seed)
      return Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 2}
    end

    -- The argmax prediction of every step when the decoder is fed dec_in, by hand.
    local function predictions(model, dec_in)
      local state = model:encode(src, len)
      local pred = {}
      for t = 1, T do
        pred[t] = model:step(dec_in:select(1, t):contiguous(), state):argmax(2):totable()
      end
      return pred
    end

    it("with p = 0 is teacher forcing exactly: same loss, same gradients", function()
      local model = model_of(21)
      model:zero_grad()
      local loss, _, _, dec_in = model:train_step({x = src, y = tgt, lengths = len}, nil, {sampling_prob = 0})
      local g = grads_of(model)
      assert.are.same(model:shift(tgt):totable(), dec_in:totable())
      assert.are.same({BOS, BOS, BOS}, dec_in:select(1, 1):totable())
      model:zero_grad()
      local logits = model:forward(src, model:shift(tgt), len)
      assert.are.equal(loss, model.criterion:forward(logits, tgt))
      model:backward(src, model.criterion:backward(logits, tgt))
      local g2, names = grads_of(model)
      for _, name in ipairs(names) do
        assert.is_true(recur.allclose(g[name], g2[name], 0, 0), name)
      end
    end)

    it("with p = 1 feeds the model's own greedy outputs, and differentiates those inputs", function()
      local model = model_of(22)
      model:zero_grad()
      local loss, _, _, dec_in = model:train_step({x = src, y = tgt, lengths = len}, nil, {sampling_prob = 1})
      local g = grads_of(model)
      local pred = predictions(model, dec_in)
      for t = 1, T - 1 do
        for b = 1, B do assert.are.equal(pred[t][b], dec_in:get(t + 1, b)) end
      end
      -- the same run as greedy decoding that does not stop at the end token
      local greedy = model:greedy(src, len, {max_length = T - 1})
      for b = 1, B do
        for t, id in ipairs(greedy[b]) do assert.are.equal(id, dec_in:get(t + 1, b)) end
      end
      -- the gradient is the teacher-forced gradient of the chosen inputs
      model:zero_grad()
      local logits = model:forward(src, dec_in, len)
      assert.are.equal(loss, model.criterion:forward(logits, tgt))
      model:backward(src, model.criterion:backward(logits, tgt))
      local g2, names = grads_of(model)
      for _, name in ipairs(names) do
        assert.is_true(recur.allclose(g[name], g2[name], 0, 0), name)
      end
    end)

    it("config.sampling_prob is train_step's default p (and model.sampling_prob sets it)", function()
      local by_call = model_of(24)
      local _, _, _, want = by_call:train_step({x = src, y = tgt, lengths = len}, nil, {sampling_prob = 1})
      recur.manual_seed(24)
      local by_config = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 2,
                                sampling_prob = 1}
      local _, _, _, got = by_config:train_step({x = src, y = tgt, lengths = len})
      assert.are.same(want:totable(), got:totable())
      assert.are_not.same(by_config:shift(tgt):totable(), got:totable())
      by_config.sampling_prob = 0
      local _, _, _, teacher = by_config:train_step({x = src, y = tgt, lengths = len})
      assert.are.same(by_config:shift(tgt):totable(), teacher:totable())
    end)

    it("with p = 0.5 mixes gold tokens and predictions, reproducibly from the seed", function()
      local model = model_of(23)
      local gold, sampled = 0, 0
      local fed = {}
      for round = 1, 4 do
        recur.manual_seed(100 + round)
        local dec_in = model:decoder_inputs(src, tgt, len, 0.5)
        recur.manual_seed(100 + round)
        assert.are.same(dec_in:totable(), model:decoder_inputs(src, tgt, len, 0.5):totable())
        fed[round] = dec_in:totable()
        local pred = predictions(model, dec_in)
        for t = 1, T - 1 do
          for b = 1, B do
            local id, g, p = dec_in:get(t + 1, b), tgt:get(t, b), pred[t][b]
            assert.is_true(id == g or id == p)
            if g ~= p then
              if id == g then gold = gold + 1 else sampled = sampled + 1 end
            end
          end
        end
      end
      assert.is_true(gold > 0 and sampled > 0, gold .. " gold, " .. sampled .. " sampled")
    end)

    it("follows the paper's schedules", function()
      local p = Seq2Seq.sampling_probability
      assert.are.near(0.3, p(3, {schedule = "linear", c = 0.1}), 1e-12)
      assert.are.near(0.8, p(20, {schedule = "linear", c = 0.1, epsilon = 0.2}), 1e-12)
      assert.are.equal(0, p(0, {schedule = "linear", c = 0.1}))
      assert.are.near(1 - 0.81, p(2, {schedule = "exponential", k = 0.9}), 1e-12)
      assert.are.near(1 - 5 / 6, p(0, {schedule = "inverse_sigmoid", k = 5}), 1e-12)
      assert.are.near(1 - 5 / (5 + math.exp(2)), p(10, {schedule = "inverse_sigmoid", k = 5}), 1e-12)
    end)
  end)

  it("beam search of size 1 is greedy; decoder_for drives recur.beam.search unchanged", function()
    recur.manual_seed(31)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 2}
    local src, len = columns(SRC, PAD), lengths_of(SRC)
    local greedy = model:greedy(src, len, {max_length = 7})
    local best = model:beam_search(src, len, {beam_size = 1, max_length = 7})
    assert.are.same(greedy, best)
    local best3, all3 = model:beam_search(src, len, {beam_size = 3, max_length = 7})
    for b, s in ipairs(SRC) do
      local hyps = recur.beam.search(model:decoder_for(columns({s}, PAD)), {BOS},
        {beam_size = 3, length = 7, end_id = EOS})
      assert.are.same(hyps[1].ids, best3[b])
      assert.are.equal(3, #all3[b])
      assert.is_true(all3[b][1].score >= all3[b][2].score)
    end
  end)

  it("greedy refuses a NaN logit instead of taking it for a token", function()
    recur.manual_seed(33)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 1}
    local src, len = columns(SRC, PAD), lengths_of(SRC)
    model.generator.bias:set(5, 0 / 0)
    expect_error(function() model:greedy(src, len, {max_length = 4}) end, "decode: score 5 is NaN, not a finite number")
    expect_error(function() model:greedy(src, len, {max_length = 4, temperature = 1}) end, "score 5 is NaN")
    -- greedy by default: a sampling option without a temperature would do nothing
    expect_error(function() model:greedy(src, len, {top_k = 2}) end, "top_k does not apply at temperature 0")
  end)

  it("greedy samples with temperature, top_k, top_p, banned and min_length as recur.decode.generate", function()
    recur.manual_seed(34)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 1}
    -- a large generator so that the end token and every other get real probability
    model.generator.weight:mul_(4)
    local src, len = columns(SRC, PAD), lengths_of(SRC)
    local cases = {
      {temperature = 1}, {temperature = 2, top_k = 3}, {temperature = 2, top_p = 0.8},
      {temperature = 2, banned = {[4] = true}}, {temperature = 2, min_length = 3},
    }
    for _, o in ipairs(cases) do
      recur.manual_seed(7)
      local want = recur.decode.generate(model, model:encode(src, len), {BOS, BOS, BOS},
        {length = 6, end_id = EOS, temperature = o.temperature, top_k = o.top_k, top_p = o.top_p,
         banned = o.banned, min_length = o.min_length})
      recur.manual_seed(7)
      local got = model:greedy(src, len, {max_length = 6, temperature = o.temperature, top_k = o.top_k,
        top_p = o.top_p, banned = o.banned, min_length = o.min_length})
      assert.are.same(want, got)
      for b = 1, #got do
        for i, id in ipairs(got[b]) do
          if o.banned then assert.are_not.equal(4, id) end
          if o.min_length and i <= o.min_length then assert.are_not.equal(EOS, id) end
        end
      end
    end
    -- sampling is not greedy: over a few seeds some sequence differs from the argmax one
    local greedy, differs = model:greedy(src, len, {max_length = 6}), false
    for seed = 1, 5 do
      recur.manual_seed(seed)
      local sampled = model:greedy(src, len, {max_length = 6, temperature = 1})
      for b = 1, #greedy do
        if table.concat(sampled[b], " ") ~= table.concat(greedy[b], " ") then differs = true end
      end
    end
    assert.is_true(differs)
  end)

  it("beam_search passes length_penalty, n_best and banned on to recur.beam.search", function()
    recur.manual_seed(32)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 2}
    local src, len = columns(SRC, PAD), lengths_of(SRC)
    -- each option away from its default, so that dropping it changes the hypotheses:
    -- length_penalty 2 changes every score, n_best 2 the count, a banned token the ids
    -- (the banned token is the first of the unconstrained best hypothesis)
    local ban = model:beam_search(src, len, {beam_size = 3, max_length = 6})[1][1]
    local opts = {beam_size = 3, max_length = 6, length_penalty = 2, n_best = 2, banned = {[ban] = true}}
    local _, all = model:beam_search(src, len, opts)
    for b, s in ipairs(SRC) do
      local want = recur.beam.search(model:decoder_for(columns({s}, PAD)), {BOS},
        {beam_size = 3, length = 6, end_id = EOS, length_penalty = 2, n_best = 2, banned = {[ban] = true}})
      assert.are.equal(2, #all[b])
      for i = 1, 2 do
        assert.are.same(want[i].ids, all[b][i].ids)
        assert.are.near(want[i].score, all[b][i].score, 1e-6)
        assert.are.near(all[b][i].logprob / (#all[b][i].ids) ^ 2, all[b][i].score, 1e-12)
        for _, id in ipairs(all[b][i].ids) do assert.are_not.equal(ban, id) end
      end
    end
  end)

  it("beam_search passes min_length on: no hypothesis ends before it", function()
    recur.manual_seed(32)
    local model = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 2}
    local src = recur.tensor({{4, 5}, {5, 6}, {6, 4}}, "int64")
    local _, free = model:beam_search(src, nil, {beam_size = 3, max_length = 6})
    local _, held = model:beam_search(src, nil, {beam_size = 3, max_length = 6, min_length = 4})
    local short = 0
    for b = 1, 2 do
      for i = 1, #free[b] do if free[b][i].ended and #free[b][i].ids < 5 then short = short + 1 end end
      for i = 1, #held[b] do
        -- four tokens, then the end token
        assert.is_true(not held[b][i].ended or #held[b][i].ids >= 5)
      end
    end
    assert.is_true(short > 0)   -- without it, these hypotheses do end early
  end)

  it("learns to reverse digit strings in a few seconds", function()
    recur.manual_seed(5)
    -- ids 4..9 are six digits; targets are the reversed source, then EOS
    local function example()
      local n = 1 + math.floor(recur.random_uniform() * 5)
      local s, t = {}, {}
      for i = 1, n do s[i] = 4 + math.floor(recur.random_uniform() * 6) end
      for i = 1, n do t[i] = s[n + 1 - i] end
      t[n + 1] = EOS
      return s, t
    end
    local function batch(n)
      local ss, ts = {}, {}
      for i = 1, n do ss[i], ts[i] = example() end
      return ss, ts
    end
    local model = Seq2Seq{src_vocab_size = 9, tgt_vocab_size = 9, embed = 16, hidden = 64,
                          layers = 1, cell = "gru"}
    local opt = recur.optim.Adam(model, {lr = 1e-2})
    for _ = 1, 800 do
      local ss, ts = batch(32)
      model:zero_grad()
      model:train_step({x = columns(ss, PAD), y = columns(ts, PAD), lengths = lengths_of(ss)})
      recur.optim.clip_grad_norm(model, 5)
      opt:step()
    end
    model:evaluate()
    local ss, ts = batch(100)
    local greedy = model:greedy(columns(ss, PAD), lengths_of(ss), {max_length = 8})
    local beamed = model:beam_search(columns(ss, PAD), lengths_of(ss), {beam_size = 3, max_length = 8})
    local right_g, right_b = 0, 0
    for i = 1, #ss do
      if table.concat(greedy[i], " ") == table.concat(ts[i], " ") then right_g = right_g + 1 end
      if table.concat(beamed[i], " ") == table.concat(ts[i], " ") then right_b = right_b + 1 end
    end
    -- greedy reached 88..98 over seeds 1..8 (this seed 98). Training amplifies the
    -- last bits of every kernel (600 steps gave 82..96 and moved with a change of the
    -- softmax's exp), so the bar leaves room for another CPU's rounding; an untrained
    -- model gets none right.
    assert.is_true(right_g >= 75, "greedy exact match " .. right_g .. "/100")
    assert.is_true(right_b >= 75, "beam exact match " .. right_b .. "/100")
  end)

  it("refuses bad options and shapes with messages naming the operation", function()
    local ok_cfg = {src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 5, layers = 1}
    local function cfg(extra)
      local c = {}
      for k, v in pairs(ok_cfg) do c[k] = v end
      for k, v in pairs(extra) do c[k] = v end
      return c
    end
    expect_error(function() Seq2Seq{tgt_vocab_size = 6} end, "Seq2Seq: config.src_vocab_size is required")
    expect_error(function() Seq2Seq(cfg{hiden = 5}) end, "Seq2Seq: unknown option 'hiden'")
    expect_error(function() Seq2Seq(cfg{cell = "transformer"}) end, "Seq2Seq: unknown cell 'transformer' (lstm, gru, gru_classic, rnn, rnn_relu, rnn_identity)")
    expect_error(function() Seq2Seq(cfg{eos_id = 7}) end, "Seq2Seq: config.eos_id must be a target id in 1..6, got 7")
    expect_error(function() Seq2Seq(cfg{pad_id = 3}) end, "Seq2Seq: config.pad_id must differ from bos_id and eos_id")
    expect_error(function() Seq2Seq(cfg{sampling_prob = 1.5}) end, "Seq2Seq: config.sampling_prob must be a number in [0, 1], got 1.5")
    expect_error(function() Seq2Seq(cfg{hidden = 0}) end, "Seq2Seq: config.hidden must be a positive integer, got 0")

    local model = Seq2Seq(ok_cfg)
    local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)
    expect_error(function() model:train_step({x = src:to("float32"), y = tgt, lengths = len}) end,
      "Seq2Seq:train_step: src must be an int64 tensor of ids, got float32")
    expect_error(function() model:train_step({x = src, y = tgt:narrow(2, 1, 2), lengths = len}) end,
      "Seq2Seq:train_step: tgt has shape (5x2) but the source batch has 3 sequences")
    expect_error(function() model:train_step({x = src:select(2, 1), y = tgt, lengths = len}) end,
      "Seq2Seq:train_step: src must be 2-D (T,B), got (4)")
    expect_error(function() model:train_step({x = src, y = tgt, lengths = len}, nil, {p = 0.5}) end,
      "Seq2Seq:train_step: unknown option 'p'")
    expect_error(function() model:train_step({x = src, y = tgt, lengths = len}, nil, {sampling_prob = -1}) end,
      "Seq2Seq:train_step: sampling_prob must be a number in [0, 1], got -1")
    expect_error(function() model:forward(src, model:shift(tgt), recur.tensor({4, 5, 1}, "int64")) end,
      "Seq2Seq:forward: src_lengths must be in 1..4 (the source length S), got 1..5")
    expect_error(function() model:loss(src, tgt, recur.tensor({4, 2}, "int64")) end,
      "Seq2Seq:loss: src_lengths must be an int64 tensor of 3 lengths (one per source)")
    expect_error(function() model:greedy(src, len, {max_length = 0}) end,
      "Seq2Seq:greedy: max_length must be a positive integer, got 0")
    expect_error(function() model:beam_search(src, len, {beam = 2}) end,
      "Seq2Seq:beam_search: unknown option 'beam'")
    expect_error(function() model:step(recur.full({3}, BOS, "int64")) end,
      "Seq2Seq:step: needs the state {h =, c =} from encode")
    expect_error(function() model:step(recur.full({2}, BOS, "int64"), model:encode(src, len)) end,
      "Seq2Seq:step: state.h has shape (1x3x5), expected (1x2x5)")
    expect_error(function() model:decoder_for(src, len) end,
      "Seq2Seq:decoder_for: expects one source (S,1), got (4x3)")
    expect_error(function() model:train_step({x = src, y = columns({{7}, {1}, {1}}, PAD), lengths = len}) end,
      "target 7 (at position 1) is out of range for 6 classes")
    expect_error(function() Seq2Seq.sampling_probability(1, {schedule = "cosine"}) end,
      "Seq2Seq.sampling_probability: schedule must be 'linear', 'exponential' or 'inverse_sigmoid', got cosine")
    expect_error(function() Seq2Seq.sampling_probability(1, {schedule = "exponential", k = 2}) end,
      "Seq2Seq.sampling_probability: exponential needs k in (0, 1)")
    -- NaN passes a test written as "x < lo": every bound is written so that it fails it
    local nan = 0 / 0
    expect_error(function() Seq2Seq.sampling_probability(nan, {schedule = "linear", c = 0.1}) end,
      "Seq2Seq.sampling_probability: the step i must be a number >= 0")
    expect_error(function() Seq2Seq.sampling_probability(1, {schedule = "linear", c = nan}) end,
      "Seq2Seq.sampling_probability: linear needs numbers k (default 1) and c >= 0")
    expect_error(function() Seq2Seq.sampling_probability(1, {schedule = "linear", c = 0.1, epsilon = nan}) end,
      "Seq2Seq.sampling_probability: epsilon must be a number in [0, 1]")
    expect_error(function() Seq2Seq.sampling_probability(1, {schedule = "inverse_sigmoid", k = nan}) end,
      "Seq2Seq.sampling_probability: inverse_sigmoid needs k >= 1")
  end)
end)
