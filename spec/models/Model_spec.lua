-- The protocol every model of recur.models answers (models/Model.lua): kind, config,
-- train_step(batch, state) -> loss, state, count, batch_loss, evaluate_batches, and that
-- recur.train.Trainer trains each of them.
local recur = require "recur"
local models = recur.models

local function ids(rows) return recur.tensor(rows, "int64") end

-- A batcher over a fixed list of batches, with the position as its state.
local function list_batcher(batches)
  local b = {pos = 1}
  function b:next_batch()
    local batch = batches[self.pos]
    if batch then self.pos = self.pos + 1 end
    return batch
  end
  function b:batches() return function() return self:next_batch() end end
  function b:reset() self.pos = 1 end
  function b:state() return {pos = self.pos} end
  function b:set_state(s) self.pos = s.pos end
  return b
end

-- Per kind: a small model and two batches with different target counts, and the count
-- each batch must report (worked out by hand from the batch).
local KINDS = {
  {kind = "lm", loss_kind = "nll", perplexity = true, stream = true,
    build = function() return models.LanguageModel{vocab_size = 5, embed = 3, hidden = 4, layers = 2} end,
    batches = {{x = ids{{1, 2}, {3, 4}, {5, 1}}, y = ids{{2, 3}, {4, 5}, {1, 2}}},
               {x = ids{{2, 3}}, y = ids{{3, 4}}}},
    counts = {6, 2}},
  {kind = "forecast", loss_kind = "mse", perplexity = false, stream = true,
    build = function() return models.Forecaster{input_size = 2, hidden = 4, layers = 1} end,
    batches = {{x = recur.randn(3, 2, 2), y = recur.randn(3, 2, 2)}, {x = recur.randn(1, 2, 2), y = recur.randn(1, 2, 2)}},
    counts = {12, 4}},
  {kind = "classify", loss_kind = "nll", perplexity = false,
    build = function() return models.SequenceClassifier{vocab_size = 4, num_classes = 3, hidden = 4} end,
    batches = {{x = ids{{1, 2, 3}, {2, 4, 4}}, lengths = ids{2, 1, 1}, labels = ids{1, 3, 2}},
               {x = ids{{1}, {2}}, lengths = ids{2}, labels = ids{2}}},
    counts = {3, 1}},
  {kind = "seq2seq", loss_kind = "nll", perplexity = true,
    build = function() return models.Seq2Seq{src_vocab_size = 5, tgt_vocab_size = 6, embed = 3, hidden = 4, layers = 1} end,
    -- target pad is 1: the first batch scores 3 + 2 tokens, the second 2
    batches = {{x = ids{{4, 5}, {5, 4}}, lengths = ids{2, 2}, y = ids{{4, 5}, {5, 3}, {3, 1}}},
               {x = ids{{4}}, lengths = ids{1}, y = ids{{6}, {3}}}},
    counts = {5, 2}},
  {kind = "generator", loss_kind = "nll", perplexity = true,
    build = function() return models.ConditionedGenerator{cond_size = 2, vocab_size = 6, start_id = 2, end_id = 3, pad_id = 1, hidden = 4} end,
    batches = {{z = recur.randn(2, 2), y = ids{{4, 5}, {3, 3}, {1, 1}}}, {z = recur.randn(1, 2), y = ids{{6}, {6}, {3}}}},
    counts = {4, 3}},
}

local function grad_sum(model)
  local total = 0
  for _, g in pairs(model:named_gradients()) do total = total + g:abs():sum() end
  return total
end

describe("the model protocol", function()
  for _, case in ipairs(KINDS) do
    describe(case.kind, function()
      it("names its kind and loss, and rebuilds from its config", function()
        recur.manual_seed(1)
        local model = case.build()
        assert.are.equal(case.kind, model.kind)
        assert.are.equal(case.loss_kind, model.loss_kind)
        assert.are.equal(case.perplexity, model.perplexity)
        local copy = getmetatable(model)(model.config)
        local mine, theirs = model:state_dict(), copy:state_dict()
        for name, t in pairs(mine) do assert.are.same(t:size(), theirs[name]:size(), name) end
        for name in pairs(theirs) do assert.is_not_nil(mine[name], name) end
        copy:load_state_dict(mine)
        assert.are.equal(model:batch_loss(case.batches[1]), copy:batch_loss(case.batches[1]))
      end)

      it("train_step returns the loss, the state and the target count; batch_loss the same loss without gradients", function()
        recur.manual_seed(2)
        local model = case.build()
        model:zero_grad()
        local loss, count, state = model:batch_loss(case.batches[1])
        assert.are.equal(case.counts[1], count)
        assert.are.equal("integer", math.type(count))
        assert.are.equal(0, grad_sum(model))
        local step_loss, step_state, step_count = model:train_step(case.batches[1])
        assert.are.equal(case.counts[1], step_count)
        assert.is_true(math.abs(step_loss - loss) < 1e-6)
        assert.is_true(grad_sum(model) > 0)
        if case.stream then
          assert.is_not_nil(state.h)
          assert.are.same(state.h:totable(), step_state.h:totable())
        else
          assert.is_nil(state)
          assert.is_nil(step_state)
        end
      end)

      it("evaluate_batches weighs each batch by its count, carries a stream's state, restores mode and position", function()
        recur.manual_seed(3)
        local model = case.build()
        model:train()
        model:evaluate()
        local l1, c1, state = model:batch_loss(case.batches[1])
        local l2, c2 = model:batch_loss(case.batches[2], case.stream and state or nil)
        model:train()
        local batcher = list_batcher(case.batches)
        batcher.pos = 2
        local mean, count = model:evaluate_batches(batcher)
        assert.are.equal(c1 + c2, count)
        assert.is_true(math.abs(mean - (l1 * c1 + l2 * c2) / (c1 + c2)) < 1e-6)
        assert.is_true(model.training)
        assert.are.equal(2, batcher.pos)
      end)

      it("trains under recur.train.Trainer with a falling loss", function()
        recur.manual_seed(4)
        local model = case.build()
        local batcher = list_batcher(case.batches)
        local first
        local summary = recur.train.Trainer{model = model, optimizer = recur.optim.Adam(model, {lr = 0.05}),
          batcher = batcher, val_batcher = list_batcher(case.batches), max_epochs = 40, eval_every = 1000,
          progress = false, on_eval = function() end,
          on_epoch = function(epoch) if epoch == 1 then first = model:evaluate_batches(list_batcher(case.batches)) end end}:run()
        assert.are.equal(80, summary.iterations)
        assert.are.equal(40 * (case.counts[1] + case.counts[2]), summary.tokens)
        assert.is_true(summary.best_val < 0.5 * first, case.kind .. ": " .. summary.best_val .. " vs " .. first)
      end)
    end)
  end
end)
