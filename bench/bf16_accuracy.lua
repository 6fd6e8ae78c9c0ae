-- What lower-precision inference costs a trained language model: the loss of batch-1
-- stepping (as generation runs) over a text with set_precision "fp32", "bf16" and
-- "int8" (csrc/bf16.h, csrc/bf16_int8.h):
--
--   lua5.4 bench/bf16_accuracy.lua --checkpoint cv/best.safetensors --data FILE [--tokens 20000]
--
-- The tokens are the text's last ones (the validation part of a text `recur train`
-- split with its default --val-frac, when --tokens is below 5% of it).
local ROOT = dofile((arg[0]:match("^(.*)/") or ".") .. "/../examples/checkout.lua")
local recur = require "recur"
local argparse = require "argparse"

local parser = argparse("bench/bf16_accuracy.lua", "loss of fp32, bf16 and emulated int8 inference")
parser:option("--checkpoint", "an lm checkpoint (LSTM)"):count(1)
parser:option("--data", "the text to measure on"):count(1)
parser:option("--tokens", "tokens stepped (from the text's end)", 20000):convert(tonumber)
local a = parser:parse()
recur.set_num_threads(1)

local model, tokenizer = recur.lm.load(a.checkpoint)
local ids = tokenizer:encode(recur.data.read_text(a.data))
local n = math.min(a.tokens, #ids - 1)
local first = #ids - n

-- Mean cross-entropy (nats per token) of stepping over the text.
local function loss_of(step)
  local total = 0
  for t = first, first + n - 1 do
    local logits = step(ids[t])
    total = total - logits:view(1, -1):log_softmax(2):view(-1):totable()[ids[t + 1]]
  end
  return total / n
end

local function model_steps(precision)
  model:evaluate():set_precision(precision)
  local state
  local idt = recur.zeros({1}, "int64")
  return function(id)
    idt:set(1, id)
    local logits
    logits, state = model:step(idt, state)
    return logits:select(1, 1)
  end
end

local L, H = model.config.layers, model.config.hidden
local results = {
  {"fp32", loss_of(model_steps("fp32"))},
  {"bf16", loss_of(model_steps("bf16"))},
  {"int8", loss_of(model_steps("int8"))},
}
print(string.format("%s: %d-layer %d " .. model.config.cell .. ", %d tokens stepped at batch 1 from %s", a.checkpoint, L, H, n, a.data))
for _, r in ipairs(results) do
  print(string.format("%-16s loss %.5f nats/token (%+.3f%% against fp32)", r[1], r[2],
    100 * (r[2] - results[1][2]) / results[1][2]))
end
