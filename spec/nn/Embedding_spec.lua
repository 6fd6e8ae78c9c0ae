-- recur.nn.Embedding's options: dtype acts, anything else is refused.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

describe("Embedding options", function()
  it("dtype sets the weight's and the output's dtype", function()
    local m = nn.Embedding(5, 3, {dtype = "float64"})
    assert.are.equal("float64", m.weight:dtype())
    assert.are.equal("float64", m:forward(recur.tensor({1, 5}, "int64")):dtype())
    assert.are.equal("float32", nn.Embedding(5, 3).weight:dtype())
  end)

  it("refuses unknown options and bad sizes", function()
    assert.matches("Embedding: unknown option 'dtpye'", helpers.err_of(nn.Embedding, 5, 3, {dtpye = "float64"}))
    assert.matches("Embedding: dtype must be", helpers.err_of(nn.Embedding, 5, 3, {dtype = "double"}))
    assert.matches("Embedding: num_embeddings must be a positive integer", helpers.err_of(nn.Embedding, 0, 3))
  end)
end)
