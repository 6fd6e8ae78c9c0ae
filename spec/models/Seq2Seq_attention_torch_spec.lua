-- Seq2Seq with attention against PyTorch: for each form (Bahdanau; Luong dot, general,
-- concat with input feeding), a 2-layer bidirectional LSTM encoder over a padded batch
-- and a 2-layer LSTM decoder with PyTorch's weights
-- (spec/fixtures/generate_seq2seq_attention.py, which builds the model from PyTorch's
-- own modules and runs the decoder step by step): the teacher-forced loss and the
-- gradient of every parameter, in float64 to 1e-10 and in float32 to 1e-5.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local Seq2Seq = require "recur.models.Seq2Seq"
local support = require "spec.support.seq2seq"

local DIR = "spec/fixtures/seq2seq_attention/"
local FORMS = {"bahdanau", "luong-dot", "luong-general", "luong-concat"}

local function ids(rows)
  return recur.tensor(rows, "int64")
end

-- A nested array of numbers (any depth) as a tensor.
local function tensor(value, dtype)
  return recur.tensor(value, dtype)
end

describe("Seq2Seq with attention against PyTorch", function()
  support.one_thread(setup, teardown)

  for _, form in ipairs(FORMS) do
    for _, case in ipairs({{dtype = "float64", tol = 1e-10}, {dtype = "float32", tol = 1e-5}}) do
      it(form .. " in " .. case.dtype .. ": the loss and every parameter's gradient", function()
        local f = helpers.read_json(DIR .. form .. ".json")
        local config = {}   -- JSON numbers are floats: the sizes and ids as integers
        for k, v in pairs(f.config) do config[k] = math.tointeger(v) or v end
        local model = Seq2Seq(config)
        model:to(case.dtype)
        local params = {}
        for name, value in pairs(f.params) do params[name] = tensor(value, case.dtype) end
        model:load_state_dict(params)
        model:zero_grad()
        local src, tgt, len = ids(f.src), ids(f.tgt), recur.tensor(f.lengths, "int64")
        local loss = model:train_step({x = src, y = tgt, lengths = len})
        assert.are.near(f.loss, loss, case.tol * 10)
        local grads, names = model:named_gradients()
        local n = 0
        for name, want in pairs(f.grads) do
          n = n + 1
          local diff = helpers.max_abs_diff(grads[name], tensor(want, "float64"))
          assert(diff < case.tol, string.format("%s: %s differs by %.3e", form, name, diff))
        end
        assert.are.equal(#names, n)
      end)
    end
  end
end)
