-- Seq2Seq with attention (Bahdanau; Luong's dot, general and concat scores with input
-- feeding) and a bidirectional, stacked encoder: finite-difference gradients of the
-- whole loss on a padded batch, the masking of padded sources (a padded batch scores
-- each source as it scores alone), the stepping decoder against the step-wise training
-- forward, greedy and beam search (whose hypotheses score what teacher forcing gives
-- them), scheduled sampling, the attention weights greedy reports, checkpoints that
-- record the choice, and errors. The PyTorch comparison is Seq2Seq_attention_torch_spec.
local recur = require "recur"
local Seq2Seq = require "recur.models.Seq2Seq"
local support = require "spec.support.seq2seq"
local columns, lengths_of, LossOf = support.columns, support.lengths_of, support.LossOf
local helpers = require "spec.support.helpers"

local PAD, EOS = 1, 3
local FORMS = {"bahdanau", "luong-dot", "luong-general", "luong-concat"}

-- Sources of different lengths (the padding id PAD appears only in padding).
local SRC = {{4, 5, 6, 4}, {6, 5}, {5, 4, 6}}
local TGT = {{5, 4, EOS}, {4, 6, 5, 6, EOS}, {EOS}}

local function model_of(seed, attention, extra)
  recur.manual_seed(seed)
  local c = {src_vocab_size = 6, tgt_vocab_size = 6, embed = 3, hidden = 4, layers = 2,
             attention = attention, bidirectional = true}
  for k, v in pairs(extra or {}) do c[k] = v end
  return Seq2Seq(c)
end

describe("Seq2Seq with attention", function()
  support.one_thread(setup, teardown)

  local src, len, tgt = columns(SRC, PAD), lengths_of(SRC), columns(TGT, PAD)

  for _, form in ipairs(FORMS) do
    describe(form, function()
      it("has the gradient of finite differences for its whole loss (padded, bidirectional, 2 layers)", function()
        for _, cell in ipairs({"lstm", "gru"}) do
          local model = model_of(11, form, {cell = cell})
          -- eps 1e-3: the smallest gradients (~1e-7) are lost in rounding at smaller steps;
          -- the O(eps^2) error of central differences stays far below the bound
          local r = recur.gradcheck(LossOf(model), {src, tgt, len}, {eps = 1e-3})
          assert(r.max_error < 1e-4, form .. " " .. cell .. "\n" .. tostring(r))
          assert.are.equal(#model:parameters(), #r.names)
          -- the fed part of the decoder's input (its last H columns) is trained
          local g = model.decoder:gradient("weight_ih_l0"):narrow(2, 4, 4)
          assert.is_true(g:abs():max() > 1e-6)
          -- the padding id of the sources is never read
          assert.are.equal(0, model.src_embed:gradient("weight"):select(1, PAD):abs():max())
        end
      end)

      it("masks padded sources: a padded batch scores each source as it scores alone", function()
        local model = model_of(12, form)
        model:to("float64")
        local loss, count = model:loss(src, tgt, len)
        local total, n = 0, 0
        for b, s in ipairs(SRC) do
          local l, k = model:loss(columns({s}, PAD), columns({TGT[b]}, PAD))
          total, n = total + l * k, n + k
        end
        assert.are.equal(n, count)
        assert.are.near(total / n, loss, 1e-12)
      end)

      it("steps one token at a time as the step-wise training forward", function()
        local model = model_of(13, form, {hidden = 6, embed = 5, cell = "gru"})
        local dec_in = model:shift(tgt)
        local logits = model:forward(src, dec_in, len):clone()
        local state = model:encode(src, len)
        for t = 1, dec_in:size(1) do
          local step_logits = model:step(dec_in:select(1, t):contiguous(), state)
          assert.is_true(recur.allclose(logits:select(1, t), step_logits, 1e-5, 1e-6), "step " .. t)
        end
      end)

      it("beam search of size 1 is greedy, and every beam hypothesis scores its teacher-forced log-probability", function()
        local model = model_of(31, form, {hidden = 8, embed = 4})
        model:to("float64")
        local greedy = model:greedy(src, len, {max_length = 7})
        assert.are.same(greedy, model:beam_search(src, len, {beam_size = 1, max_length = 7}))
        local _, all = model:beam_search(src, len, {beam_size = 3, max_length = 6, length_penalty = 0})
        for b, s in ipairs(SRC) do
          assert.are.equal(3, #all[b])
          for _, hyp in ipairs(all[b]) do
            -- the hypothesis as a target: the sum of its tokens' log-probabilities
            local logits = model:forward(columns({s}, PAD), model:shift(columns({hyp.ids}, PAD)))
            local lp = logits:select(2, 1):log_softmax(2)
            local sum = 0
            for t, id in ipairs(hyp.ids) do sum = sum + lp:get(t, id) end
            assert.are.near(sum, hyp.logprob, 1e-9)
          end
        end
      end)

      it("with scheduled sampling at p = 1 feeds its own greedy outputs", function()
        local model = model_of(22, form, {hidden = 8, embed = 4})
        local T = tgt:size(1)
        local _, _, _, dec_in = model:train_step({x = src, y = tgt, lengths = len}, nil, {sampling_prob = 1})
        local greedy = model:greedy(src, len, {max_length = T - 1})
        for b = 1, #SRC do
          for t, id in ipairs(greedy[b]) do assert.are.equal(id, dec_in:get(t + 1, b)) end
        end
      end)

      it("reports the attention weights of a greedy translation: a distribution over the real source tokens", function()
        local model = model_of(41, form, {hidden = 8, embed = 4})
        local ids, weights = model:greedy(src, len, {max_length = 5, attention = true})
        assert.are.same(model:greedy(src, len, {max_length = 5}), ids)
        for b, s in ipairs(SRC) do
          assert.are.equal(#ids[b], #weights[b])
          for i, row in ipairs(weights[b]) do
            assert.are.equal(#s, #row)
            local sum = 0
            for _, w in ipairs(row) do
              assert.is_true(w >= 0)
              sum = sum + w
            end
            assert.are.near(1, sum, 1e-5, "row " .. i)
          end
        end
      end)
    end)
  end

  it("has exact gradients with dropout between 3 decoder layers (a mask per step and layer)", function()
    for _, form in ipairs({"bahdanau", "luong-concat"}) do
      local model = model_of(15, form, {layers = 3, dropout = 0.3})
      -- gradcheck draws the same masks for every evaluation (it re-seeds)
      local r = recur.gradcheck(LossOf(model), {src, tgt, len}, {eps = 1e-3})
      assert(r.max_error < 2e-4, form .. "\n" .. tostring(r))
    end
  end)

  it("past its memory limit shares the step layers and recomputes their forward: the same loss and gradients, bit for bit", function()
    for _, form in ipairs({"bahdanau", "luong-general"}) do
      local function run(limit)
        local model = model_of(16, form, {dropout = 0.2})
        model.step_memory_limit = limit
        recur.manual_seed(17)
        local loss = model:train_step({x = src, y = tgt, lengths = len})
        return loss, helpers.grads_of(model), model
      end
      local T = tgt:size(1)
      local loss, grads, all = run(math.huge)
      assert.are.equal(T, #all._step_layers)
      assert.is_nil(all._step_layers[0])
      local middle = false
      for _, limit in ipairs({0, 2000, 4000, 8000, 16000}) do
        local l, g, m = run(limit)
        middle = middle or (#m._step_layers > 0 and #m._step_layers < T)
        if limit == 0 then assert.are.equal(0, #m._step_layers) end
        assert.are.equal(loss, l)
        for name, want in pairs(grads) do
          assert.are.equal(0, helpers.max_abs_diff(want, g[name]), form .. " " .. name .. " at " .. limit)
        end
        if #m._step_layers < T then assert.is_not_nil(m._step_layers[0]) end
      end
      assert.is_true(middle, "no limit gave some steps layers of their own")
    end
  end)

  it("keeps a bidirectional encoder without attention trainable: the halves' concatenation starts the decoder", function()
    local model = model_of(14, "none")
    local r = recur.gradcheck(LossOf(model), {src, tgt, len}, {eps = 1e-3})
    assert(r.max_error < 1e-4, tostring(r))
    assert.are.same({4 * 2, 3}, model.encoder:gradient("weight_ih_l0_reverse"):size())
    -- the decoder's first state: layer k's forward then reverse final states
    model:to("float64")
    local state = model:encode(src, len)
    local _, hn = model.encoder:forward(model.src_embed:forward(src), nil, nil, len)
    for k = 1, 2 do
      assert.is_true(recur.allclose(state.h:select(1, k):narrow(2, 1, 2), hn:select(1, 2 * k - 1), 0, 0))
      assert.is_true(recur.allclose(state.h:select(1, k):narrow(2, 3, 2), hn:select(1, 2 * k), 0, 0))
    end
  end)

  it("records attention and bidirectional in checkpoints; older configs load as none", function()
    local dir = helpers.tmp_dir()
    local model = model_of(51, "luong-general", {hidden = 8, embed = 4})
    local path = dir .. "/m.safetensors"
    recur.checkpoint.save(path, model)
    local loaded, info = recur.checkpoint.load(path)
    assert.are.equal("luong-general", info.config.attention)
    assert.is_true(info.config.bidirectional)
    assert.are.same(model:greedy(src, len, {max_length = 6}), loaded:greedy(src, len, {max_length = 6}))
    assert.is_true(recur.allclose(model:forward(src, model:shift(tgt), len):clone(),
      loaded:forward(src, loaded:shift(tgt), len), 0, 0))
    -- a config of before attention (no attention, no bidirectional keys)
    recur.manual_seed(52)
    local old = Seq2Seq{src_vocab_size = 6, tgt_vocab_size = 6, embed = 4, hidden = 8, layers = 1}
    local config = {}
    for k, v in pairs(old.config) do config[k] = v end
    config.attention, config.bidirectional = nil, nil
    local shapes = Seq2Seq.parameter_shapes(config)
    assert.is_nil(shapes["attention.memory_layer.weight"])
    assert.are.equal("none", Seq2Seq(config).config.attention)
    -- parameter_shapes lists exactly what each form registers
    for _, form in ipairs({"none", "bahdanau", "luong-dot", "luong-general", "luong-concat"}) do
      local c = {src_vocab_size = 6, tgt_vocab_size = 7, embed = 3, hidden = 4, layers = 2,
                 attention = form, bidirectional = true}
      local m, want = Seq2Seq(c), Seq2Seq.parameter_shapes(c)
      local params, names = m:named_parameters()
      local n = 0
      for _ in pairs(want) do n = n + 1 end
      assert.are.equal(#names, n, form)
      for _, name in ipairs(names) do assert.are.same(want[name], params[name]:size(), form .. " " .. name) end
    end
    -- a file whose config names another form is refused before anything is built
    local tensors, meta = recur.io.load(path)
    meta.config = meta.config:gsub("luong%-general", "luong-concat")
    local patched = dir .. "/p.safetensors"
    recur.io.save(patched, tensors, meta)
    helpers.assert_fails_with(function() recur.checkpoint.load(patched) end, "config (2 layers) needs 32 model tensors, the file has 30")
    helpers.remove_dir(dir)
  end)

  it("refuses unknown forms, an odd hidden size with a bidirectional encoder and attention weights without attention", function()
    local base = {src_vocab_size = 6, tgt_vocab_size = 6, embed = 3, hidden = 4, layers = 1}
    local function with(k, v)
      local c = {}
      for key, value in pairs(base) do c[key] = value end
      c[k] = v
      return c
    end
    helpers.assert_fails_with(function() Seq2Seq(with("attention", "luong")) end, "attention")
    helpers.assert_fails_with(function() Seq2Seq.parameter_shapes(with("attention", "bahdanu")) end, "attention")
    helpers.assert_fails_with(function() Seq2Seq(with("bidirectional", "yes")) end, "bidirectional")
    local odd = with("bidirectional", true)
    odd.hidden = 5
    helpers.assert_fails_with(function() Seq2Seq(odd) end, "config.hidden must be even, got 5")
    local plain = Seq2Seq(base)
    helpers.assert_fails_with(function() plain:greedy(src, len, {attention = true}) end,
      "Seq2Seq:greedy: attention = true needs a model with attention")
  end)
end)
