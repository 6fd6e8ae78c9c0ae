-- Model: what every model in recur.models shares, and the protocol they answer so that
-- one training loop (recur.train.Trainer), one checkpoint format and one command serve
-- them all.
--
--   Class.kind                       "lm" | "seq2seq" | "classify" | "forecast" | "generator"
--   Class.loss_kind                  "nll" (mean negative log-likelihood in nats; the
--                                    default) | "mse"
--   Class.perplexity                 whether exp(loss) is a perplexity, the loss being a
--                                    mean over the tokens of generated sequences (lm,
--                                    seq2seq, generator: true, the default; classify,
--                                    forecast: false). The Trainer's records and recur
--                                    train's summary show it by this field alone.
--   model.config                     the whole configuration, defaults merged (JSON-able):
--                                    Class(model.config) builds the same architecture
--   model:train_step(batch, state)   -> loss, next_state, count: forward, loss, backward
--                                    (gradients are added: zero them first)
--   model:batch_loss(batch, state)   -> loss, count, next_state: forward and loss only, in
--                                    the current mode
--   model:evaluate_batches(batcher [, on_batch]) -> mean loss, count (below)
--   model:evaluate_sums(batcher [, on_batch])    -> summed loss, count
--   state_dict / load_state_dict     (nn.Module)
--   Class.parameter_shapes(config)   -> {name = {dims...}} of Class(config)'s parameters,
--                                    without building it (recur.checkpoint checks files)
--
-- A batch is one table, as the batchers in recur.data serve it ({x =, y =} for streams,
-- SentenceBatcher's {x =, lengths =, labels =, y = ...}). `count` is the number of
-- targets the loss averages over (tokens, sequences, values), so that averages over
-- batches of different sizes weigh every target once. `state` is what a stream model
-- carries from chunk to chunk (nil for zeros); models of independent sequences take
-- nil and return nil.
local core = require "recur.core"
local util = require "recur.nn.util"
local Module = require "recur.nn.Module"

local Model = util.class("Model", Module)
Model.loss_kind = "nll"
Model.perplexity = true

-- The configuration of a model `name`: defaults, then `config`, whose keys must be
-- among `known` (the error is raised at the constructor's caller). Returns a new table.
function Model.configure(name, config, defaults, known)
  if type(config) ~= "table" then error(name .. ": expected a config table, got " .. type(config), 3) end
  util.check_opts(name, config, known)
  local c = {}
  for k, v in pairs(defaults) do c[k] = v end
  for k, v in pairs(config) do c[k] = v end
  return c
end

-- The state a stream model's step kernels advance in place, for B sequences: the given
-- state's h (and, for an LSTM, c) as contiguous (layers, B, hidden) tensors, or zeros
-- where it has none. Reads self.config.layers, self.config.hidden and self.is_lstm.
function Model:step_state(state, B)
  local L, H = self.config.layers, self.config.hidden
  local h = state.h and state.h:contiguous() or core.zeros({L, B, H}, self.dtype)
  local c = nil
  if self.is_lstm then c = state.c and state.c:contiguous() or core.zeros({L, B, H}, self.dtype) end
  return h, c
end

-- The loss summed over every target of every batch of a batcher, and the target count,
-- in evaluation mode (no dropout), with the state carried from batch to batch as in
-- training; the model's mode and the batcher's position are restored. A batcher that
-- serves nothing gives 0, 0 (a data-parallel rank's share can be empty).
-- on_batch(k, count), when given, is called after the k-th batch (a progress bar).
function Model:evaluate_sums(batcher, on_batch)
  local was_training = self.training
  self:evaluate()
  local saved = batcher:state()
  batcher:reset()
  local ok, total, count = pcall(function()
    local sum, n, state, done = 0, 0, nil, 0
    for batch in batcher:batches() do
      local loss, k
      loss, k, state = self:batch_loss(batch, state)
      sum, n, done = sum + loss * k, n + k, done + 1
      if on_batch then on_batch(done, k) end
    end
    return sum, n
  end)
  batcher:set_state(saved)
  self:train(was_training)
  if not ok then error(total, 0) end
  return total, count
end

-- The mean loss per target over every batch of a batcher (evaluate_sums), and the
-- target count.
function Model:evaluate_batches(batcher, on_batch)
  local total, count = self:evaluate_sums(batcher, on_batch)
  if count == 0 then error(self.__name .. ":evaluate_batches: nothing to evaluate on", 2) end
  return total / count, count
end

return Model
