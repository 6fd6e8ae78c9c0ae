-- recur.train.Trainer: options nobody reads and saved states from a file are refused
-- with the name of what is wrong (the loop itself is exercised by spec/lm_spec.lua).
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
end)
