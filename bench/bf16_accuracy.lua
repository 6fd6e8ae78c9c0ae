-- What lower-precision inference costs a trained language model: the loss of batch-1
-- stepping (as generation runs) over a text, in float32, in bf16 (recur's kernels) and
-- with an int8 weight path emulated (the decision on one, see the README's Performance
-- section):
--
--   lua5.4 bench/bf16_accuracy.lua --checkpoint cv/best.safetensors --data FILE [--tokens 20000]
--
-- int8 as VNNI's vpdpbusd would run it: each weight row scaled to [-127, 127] and
-- rounded (per-row scale), each product's input vector likewise per step (dynamic
-- scale; u8 with an offset of 128 in the instruction, the same values), int32 sums,
-- then the two scales. Emulated here in float32 on the dequantized values: an int32
-- sum of the products is exact, so the emulation differs from the instruction only
-- by float32's rounding of that sum, far below the quantization's. The embedding stays
-- float32 (a lookup), the biases and the nonlinearities too. LSTM models only.
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
assert(model.config.cell == "lstm", "LSTM models only")
local ids = tokenizer:encode(recur.data.read_text(a.data))
local n = math.min(a.tokens, #ids - 1)
local first = #ids - n

-- 1.5 * 2^23: adding and subtracting it rounds a float32 of magnitude below 2^22 to an
-- integer, ties to even.
local ROUND = 12582912

-- v (a 1-D float32 tensor) scaled to [-127, 127], rounded and scaled back.
local function q8(v)
  local s = v:abs():max() / 127
  if s == 0 then return v:clone() end
  return v:div(s):add(ROUND):sub(ROUND):mul(s)
end

-- w with every row through q8.
local function q8_rows(w)
  local out = w:clone()
  for r = 1, w:size(1) do out:select(1, r):copy_(q8(w:select(1, r):clone())) end
  return out
end

local L, H = model.config.layers, model.config.hidden
local layers = {}
for l = 1, L do
  local k = l - 1
  layers[l] = {w_ih = q8_rows(model.rnn["weight_ih_l" .. k]), w_hh = q8_rows(model.rnn["weight_hh_l" .. k]),
               b = model.rnn["bias_ih_l" .. k] + model.rnn["bias_hh_l" .. k]}
end
local dec_w, dec_b = q8_rows(model.decoder.weight), model.decoder.bias

-- One int8-emulated step from id: logits (V), state {h[l], c[l]} (1-D, updated).
local function step_int8(id, st)
  local x = model.encoder.weight:select(1, id):clone()
  for l = 1, L do
    local p = layers[l]
    local gates = p.w_ih:matmul(q8(x:clone()):view(-1, 1)):view(-1) + p.w_hh:matmul(q8(st.h[l]:clone()):view(-1, 1)):view(-1) + p.b
    local i, f = gates:narrow(1, 1, H):sigmoid(), gates:narrow(1, H + 1, H):sigmoid()
    local g, o = gates:narrow(1, 2 * H + 1, H):tanh(), gates:narrow(1, 3 * H + 1, H):sigmoid()
    st.c[l] = f * st.c[l] + i * g
    st.h[l] = o * st.c[l]:tanh()
    x = st.h[l]
  end
  return dec_w:matmul(q8(x:clone()):view(-1, 1)):view(-1) + dec_b
end

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

local st = {h = {}, c = {}}
for l = 1, L do st.h[l], st.c[l] = recur.zeros({H}), recur.zeros({H}) end

local results = {
  {"fp32", loss_of(model_steps("fp32"))},
  {"bf16", loss_of(model_steps("bf16"))},
  {"int8 (emulated)", loss_of(function(id) return step_int8(id, st) end)},
}
print(string.format("%s: %d-layer %d LSTM, %d tokens stepped at batch 1 from %s", a.checkpoint, L, H, n, a.data))
for _, r in ipairs(results) do
  print(string.format("%-16s loss %.5f nats/token (%+.3f%% against fp32)", r[1], r[2],
    100 * (r[2] - results[1][2]) / results[1][2]))
end
