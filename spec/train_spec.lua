-- recur.train.Trainer: options nobody reads and saved states from a file are refused
-- with the name of what is wrong; each rule of the loop (learning-rate decay, best
-- validation loss, the state reset at an epoch's start, the NaN stops, the final
-- evaluation, exact resume) against stub models and batchers with scripted losses and a
-- validation curve that rises and falls.
local recur = require "recur"

local function trainer()
  local model = recur.models.LanguageModel{vocab_size = 5, embed = 2, hidden = 3, layers = 1}
  local ids = {}
  for i = 1, 40 do ids[i] = i % 5 + 1 end
  return recur.train.Trainer{model = model, optimizer = recur.optim.Adam(model, {lr = 1e-3}),
    batcher = recur.data.LMBatcher.new(ids, {batch_size = 2, seq_length = 4})}
end

describe("Trainer", function()
  it("refuses an unknown option", function()
    local ok, err = pcall(recur.train.Trainer, {model = {}, optimizer = {}, batcher = {}, eval_evry = 5})
    assert.is_false(ok)
    assert.matches("Trainer: unknown option 'eval_evry'", err)
  end)

  it("round-trips its state and refuses a damaged one", function()
    local t = trainer()
    t.max_iters = 3
    t:run()
    local tensors, state = t:state()
    state = recur.io.decode_meta(recur.io.encode_meta(state))
    local u = trainer()
    u:set_state(tensors, state)
    assert.are.equal(3, u.iter)
    for _, case in ipairs({
      {"iter", -1, "iter must be a non-negative integer, got -1"},
      {"iter", nil, "iter is required"},
      {"epoch", 0, "epoch must be a positive integer, got 0"},
      {"lr", "fast", "lr must be a positive number, got fast"},
      {"rng", "xyz", "rng must be a hex string, got xyz"},
      {"batcher", 3, "batcher must be a table, got number"},
      {"seconds", "long", "seconds must be a number, got long"},
    }) do
      local damaged = {}
      for k, v in pairs(state) do damaged[k] = v end
      damaged[case[1]] = case[2]
      local ok, err = pcall(u.set_state, u, tensors, damaged)
      assert.is_false(ok)
      assert.matches("Trainer:set_state: " .. case[3]:gsub("%p", "%%%0"), err)
    end
  end)

  -- A batcher of `per_epoch` batches {k = its index in the epoch}.
  local function stub_batcher(per_epoch)
    local b = {pos = 0}
    function b:next_batch()
      if self.pos == per_epoch then return nil end
      self.pos = self.pos + 1
      return {k = self.pos}
    end
    function b:reset() self.pos = 0 end
    function b:state() return {pos = self.pos} end
    function b:set_state(s) self.pos = s.pos end
    return b
  end

  -- A model whose training losses and validation losses follow scripts, and which
  -- records what the loop hands it: the learning rate and the carried state per step.
  -- Its target count is the batch's index, so the summary's tokens add them up.
  local function stub(opts)
    local seen = {}
    local model = {grad = recur.zeros(1), steps = 0, evals = 0}
    local optimizer = {lr = 1, steps = 0}
    function optimizer.step() optimizer.steps = optimizer.steps + 1 end
    function model.parameters() return {recur.zeros(1)}, {model.grad} end
    function model.zero_grad() model.grad:zero_() end
    function model.train_step(_, batch, state)
      model.steps = model.steps + 1
      seen[#seen + 1] = {lr = optimizer.lr, state = state, batch = batch.k}
      model.grad:fill_(opts.grad and opts.grad[model.steps] or 1)
      return opts.train and opts.train[model.steps] or 1, {h = model.steps}, batch.k
    end
    function model.evaluate_batches()
      model.evals = model.evals + 1
      return opts.val[model.evals]
    end
    local records = {}
    local t = recur.train.Trainer{model = model, optimizer = optimizer, batcher = stub_batcher(opts.per_epoch or 2),
      val_batcher = opts.val and {} or nil, max_epochs = opts.epochs or 1, max_iters = opts.max_iters,
      eval_every = opts.eval_every or 1, lr_decay = opts.lr_decay, lr_decay_after = opts.lr_decay_after,
      clip = opts.clip, on_eval = function(r) records[#records + 1] = r end}
    return t, seen, records, model, optimizer
  end

  it("decays the learning rate after each epoch past lr_decay_after, not before", function()
    local t, seen = stub{epochs = 4, per_epoch = 2, lr_decay = 0.5, lr_decay_after = 2}
    t:run()
    local lrs = {}
    for i, s in ipairs(seen) do lrs[i] = s.lr end
    assert.are.same({1, 1, 1, 1, 1, 1, 0.5, 0.5}, lrs)   -- epochs 1-3 at 1, epoch 4 decayed once
  end)

  it("marks and keeps the best validation loss of a curve that rises and falls", function()
    -- a tie is no improvement: the first of equal losses stays the best
    local t, _, records = stub{epochs = 4, per_epoch = 2, val = {5, 4, 4, 4.5, 3, 3.5, 3, 3.2}}
    local summary = t:run()
    local best = {}
    for i, r in ipairs(records) do best[i] = r.best end
    assert.are.same({true, true, false, false, true, false, false, false}, best)
    assert.are.equal(3, summary.best_val)
    assert.are.same({5, 4, 4, 4.5, 3, 3.5, 3, 3.2}, (function()
      local v = {}
      for i, r in ipairs(records) do v[i] = r.val_loss end
      return v
    end)())
  end)

  it("calls on_epoch once before each epoch's first step, and for the epoch a resumed run continues", function()
    local t, seen = stub{epochs = 3, per_epoch = 2}
    local calls = {}
    t.on_epoch = function(epoch, trainer) calls[#calls + 1] = {epoch, trainer.iter} end
    t:run()
    assert.are.same({{1, 0}, {2, 2}, {3, 4}}, calls)
    assert.are.equal(6, #seen)
    local first = stub{epochs = 3, per_epoch = 2, max_iters = 3}
    first:run()
    local tensors, state = first:state()
    local second = stub{epochs = 3, per_epoch = 2}
    second:set_state(tensors, state)
    calls = {}
    second.on_epoch = function(epoch, trainer) calls[#calls + 1] = {epoch, trainer.iter} end
    second:run()
    assert.are.same({{2, 3}, {3, 4}}, calls)
  end)

  it("reports a perplexity for the models whose exp(loss) is one only", function()
    local t, _, records, model = stub{max_iters = 2, per_epoch = 9, val = {2, 1}}
    model.perplexity = true
    t:run()
    assert.are.equal(math.exp(2), records[1].val_ppl)
    t, _, records, model = stub{max_iters = 1, per_epoch = 9, val = {2}}
    model.perplexity = false
    t:run()
    assert.are.equal(2, records[1].val_loss)
    assert.is_nil(records[1].val_ppl)
  end)

  it("refuses a train_step that returns no target count", function()
    local t, _, _, model = stub{max_iters = 1, per_epoch = 9}
    local step = model.train_step
    model.train_step = function(...) local loss, state = step(...); return loss, state end
    local ok, err = pcall(t.run, t)
    assert.is_false(ok)
    assert.matches("train_step returned no target count", err)
  end)

  it("starts every epoch from a fresh state and carries it within one", function()
    local t, seen = stub{epochs = 3, per_epoch = 3}
    t:run()
    local carried = {}
    for i, s in ipairs(seen) do carried[i] = s.state and s.state.h or false end
    -- step k hands back {h = k}; the first step of each epoch gets nil
    assert.are.same({false, 1, 2, false, 4, 5, false, 7, 8}, carried)
  end)

  it("stops on a NaN or infinite loss, gradient norm or validation loss, before saving", function()
    local t, _, records = stub{max_iters = 5, per_epoch = 9, train = {1, 1, 0 / 0}, val = {1, 1, 1}}
    local ok, err = pcall(t.run, t)
    assert.is_false(ok)
    assert.matches("train: loss is NaN at iteration 3", err)
    assert.are.equal(2, #records)                        -- no evaluation after the NaN
    t, _, records = stub{max_iters = 5, per_epoch = 9, val = {2, math.huge}}
    ok, err = pcall(t.run, t)
    assert.is_false(ok)
    assert.matches("train: validation loss is inf at iteration 2", err)
    assert.are.equal(1, #records)
    local model, optimizer
    t, _, records, model, optimizer = stub{max_iters = 5, per_epoch = 9, clip = 1, grad = {1, math.huge}, val = {1, 1}}
    ok, err = pcall(t.run, t)
    assert.is_false(ok)
    assert.matches("train: gradient norm is inf at iteration 2", err)
    assert.are.equal(1, optimizer.steps)                  -- the bad step was not taken
  end)

  it("clips the global gradient norm before the optimizer steps", function()
    local t, _, _, model = stub{max_iters = 1, per_epoch = 9, clip = 0.25, grad = {2}, val = {1}}
    t:run()
    assert.is_true(math.abs(model.grad:item() - 0.25) < 1e-6)
  end)

  it("evaluates at eval_every and once more at the end, counts iterations and tokens", function()
    local t, _, records = stub{max_iters = 5, per_epoch = 9, eval_every = 2, val = {3, 2, 1}}
    local summary = t:run()
    local iters = {}
    for i, r in ipairs(records) do iters[i] = r.iter end
    assert.are.same({2, 4, 5}, iters)
    assert.are.equal(5, summary.iterations)
    assert.are.equal(1 + 2 + 3 + 4 + 5, summary.tokens)
    assert.are.equal("iterations", summary.stop)
    assert.are.same(summary.final, records[3])
  end)

  it("resumes exactly where a stopped run left off", function()
    local whole, seen_whole = stub{epochs = 3, per_epoch = 3, lr_decay = 0.5, lr_decay_after = 1}
    whole:run()
    local first = stub{epochs = 3, per_epoch = 3, lr_decay = 0.5, lr_decay_after = 1, max_iters = 4}
    first:run()
    local tensors, state = first:state()
    local second, seen_second = stub{epochs = 3, per_epoch = 3, lr_decay = 0.5, lr_decay_after = 1}
    second:set_state(tensors, recur.io.decode_meta(recur.io.encode_meta(state)))
    second:run()
    local function trace(seen, from)
      local out = {}
      for i = from, #seen do out[#out + 1] = {seen[i].lr, seen[i].batch} end
      return out
    end
    assert.are.same(trace(seen_whole, 5), trace(seen_second, 1))
  end)
end)
