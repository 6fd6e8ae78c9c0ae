-- recur.models.Seq2Seq's config: dropout acts where the header says, values are
-- checked (the behaviour of the model: spec/models/Seq2Seq_spec.lua).
local recur = require "recur"
local helpers = require "spec.support.helpers"
local Seq2Seq = recur.models.Seq2Seq

local function model(extra)
  local c = {src_vocab_size = 6, tgt_vocab_size = 7, embed = 4, hidden = 5}
  for k, v in pairs(extra or {}) do c[k] = v end
  return Seq2Seq(c)
end

describe("Seq2Seq config", function()
  it("dropout acts on both embeddings, between layers and before the generator", function()
    local m = model{dropout = 0.25}
    for _, d in ipairs({m.drop_src, m.drop_tgt, m.drop_out}) do assert.are.equal(0.25, d.p) end
    assert.are.equal(0.25, m.encoder.dropout)
    assert.are.equal(0.25, m.decoder.dropout)
    assert.are.equal(0, model{dropout = 0.25, layers = 1}.encoder.dropout)
  end)

  it("checks the type and range of its values", function()
    local cases = {
      {{dropout = 1}, "option dropout must be a number in %[0, 1%)"},
      {{sampling_prob = 1.5}, "sampling_prob must be a number in %[0, 1%]"},
      {{layers = "2"}, "layers must be a positive integer"},
      {{eos_id = 8}, "eos_id must be a target id in 1..7"},
      {{cell = "LSTM"}, "unknown cell 'LSTM'"},
      {{bptt_truncate = 3}, "unknown option 'bptt_truncate'"},
    }
    helpers.assert_option_errors("Seq2Seq", model, cases)
  end)
end)
