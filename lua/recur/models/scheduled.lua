-- Scheduled sampling (Bengio et al. 2015): training a teacher-forced model partly on
-- its own predictions, so that what it is fed in training looks more like what it
-- feeds itself when it generates. Seq2Seq, LanguageModel and ConditionedGenerator
-- use it.
--
--   local fed = scheduled.inputs(model, state, gold, p, "argmax")
--
-- model: anything that steps a batch, model:step(ids (B) int64, state) -> logits
-- (B,V), state; state: where the teacher-forced pass starts (an encoder's state, the
-- carried hidden state, the state a conditioning vector sets; nil when the model's
-- step takes nil for zeros), not modified; gold (T,B) int64: the teacher-forcing
-- inputs, the start token (or the chunk's first token) in row 1.
-- Returns the inputs actually fed (T,B), a new tensor: row 1 is gold's, and row t+1
-- of sequence b is, with probability p, the model's own prediction at step t instead
-- of gold[t+1][b], the coins independent for every sequence and step. The
-- prediction is
--   "argmax": the best token of the step's logits (deterministic given the coins;
--             many implementations do this, and p = 1 then trains on exactly what
--             greedy decoding feeds itself);
--   "sample": a draw from the step's softmax (recur.decode.choose at temperature 1),
--             as the paper describes.
-- The coins and draws come from recur's seeded generator, in a fixed order: at each
-- step, sequence by sequence, the coin, then (sample, heads) the draw.
--
-- Why this gives the paper's gradient: the fused kernels run whole sequences, so the
-- models take two passes, this stepping pass (no activations saved, no dropout)
-- choosing the inputs from the inputs chosen so far, then the ordinary teacher-forced
-- forward and backward on the chosen inputs. The paper does not differentiate
-- through the choice of a token (an argmax or a draw has no gradient), so with the
-- inputs fixed its loss is the teacher-forced loss of those inputs, and the stepping
-- pass computes the same network as the sequence pass (up to float rounding, and
-- dropout, which the choosing pass leaves out).
--
-- scheduled.probability(i, opts) gives p at training step (or epoch) i for the
-- paper's decay schedules.
local core = require "recur.core"
local util = require "recur.util"
local nn_util = require "recur.nn.util"
local decode = require "recur.decode"

local scheduled = {}

-- The ways of choosing the fed token, for the models' `sampling` options.
scheduled.SAMPLING = {"argmax", "sample"}

-- A copy of a state table whose tensors the stepping pass may advance in place.
local function copy_state(state)
  if state == nil then return nil end
  local copy = {}
  for k, v in pairs(state) do copy[k] = nn_util.is_tensor(v) and v:clone() or v end
  return copy
end

local SAMPLE = {temperature = 1}

function scheduled.inputs(model, state, gold, p, sampling)
  local op = "scheduled.inputs"
  if not nn_util.is_tensor(gold) or gold:dtype() ~= "int64" or gold:dim() ~= 2 then
    error(op .. ": gold must be an int64 (T,B) tensor of token ids, got " ..
      (nn_util.is_tensor(gold) and (gold:dtype() .. " " .. nn_util.shape_str(gold)) or type(gold)), 2)
  end
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error(string.format("%s: p must be a number in [0, 1], got %s", op, tostring(p)), 2)
  end
  sampling = util.opt_choice(op, {sampling = sampling}, "sampling", "argmax", scheduled.SAMPLING)
  local fed = gold:clone()
  if p == 0 then return fed end
  local T, B = gold:size(1), gold:size(2)
  state = copy_state(state)
  local ids = core.zeros({B}, "int64")
  for t = 1, T - 1 do
    ids:copy_(fed:select(1, t))
    local logits
    logits, state = model:step(ids, state)
    if sampling == "argmax" then
      local pred = logits:argmax(2)
      for b = 1, B do
        if core.random_uniform() < p then fed:set(t + 1, b, pred:get(b)) end
      end
    else
      for b = 1, B do
        if core.random_uniform() < p then fed:set(t + 1, b, decode.choose(logits:select(1, b), SAMPLE)) end
      end
    end
  end
  return fed
end

local SCHEDULES = {linear = true, exponential = true, inverse_sigmoid = true}

-- The scheduled-sampling probability p = 1 - eps_i at training step (or epoch) i >= 0
-- for Bengio et al.'s decays of eps_i, the probability of feeding the gold token:
--   linear:          eps_i = max(epsilon, k - c*i)    (opts k = 1, c, epsilon = 0)
--   exponential:     eps_i = k^i                      (opts k in (0, 1))
--   inverse_sigmoid: eps_i = k / (k + exp(i/k))       (opts k >= 1)
-- Users set the model's sampling_prob to it once per epoch. `op` names the function
-- in errors (an alias such as Seq2Seq.sampling_probability passes its own name).
function scheduled.probability(i, opts, op)
  op = op or "scheduled.probability"
  if type(i) ~= "number" or not (i >= 0) then
    error(op .. ": the step i must be a number >= 0, got " .. tostring(i), 2)
  end
  opts = util.check_opts(op, opts, {schedule = true, k = true, c = true, epsilon = true})
  local schedule = opts.schedule
  if not SCHEDULES[schedule] then
    error(op .. ": schedule must be 'linear', 'exponential' or 'inverse_sigmoid', got " ..
      tostring(schedule), 2)
  end
  local k = opts.k
  local eps
  if schedule == "linear" then
    k = k == nil and 1 or k
    local c, floor = opts.c, opts.epsilon or 0
    if type(k) ~= "number" or k ~= k or type(c) ~= "number" or not (c >= 0) then
      error(op .. ": linear needs numbers k (default 1) and c >= 0 (eps_i = max(epsilon, k - c*i))", 2)
    end
    if type(floor) ~= "number" or not (floor >= 0 and floor <= 1) then
      error(op .. ": epsilon must be a number in [0, 1]", 2)
    end
    eps = math.max(floor, k - c * i)
  elseif schedule == "exponential" then
    if type(k) ~= "number" or not (k > 0 and k < 1) then
      error(op .. ": exponential needs k in (0, 1) (eps_i = k^i)", 2)
    end
    eps = k ^ i
  else
    if type(k) ~= "number" or not (k >= 1) then
      error(op .. ": inverse_sigmoid needs k >= 1 (eps_i = k / (k + exp(i/k)))", 2)
    end
    eps = k / (k + math.exp(i / k))
  end
  return math.min(1, math.max(0, 1 - eps))
end

return scheduled
