-- Where LanguageModel's dropout acts (the header and the README: on the embedding
-- output, between the layers, on the last layer's output), seen through the logits of
-- a model whose every other map is the identity: all-ones embeddings, the linear RNN
-- (cell rnn_identity) with W_ih = I and W_hh = 0, and a decoder W = I, no biases. Then
-- each logit is the product of the masks on its path: 0, or (1/(1-p))^k when it
-- survived all k dropouts, and exactly 1 in evaluation mode.
local recur = require "recur"
local LanguageModel = recur.models.LanguageModel

local N = 8                          -- vocab_size = embed = hidden
local T, B = 10, 25

local function identity_model(layers, p)
  local m = LanguageModel({vocab_size = N, embed = N, hidden = N, layers = layers,
    cell = "rnn_identity", dropout = p}):double()
  local eye = recur.zeros({N, N}, "float64")
  for i = 1, N do eye:set(i, i, 1) end
  for name, t in pairs(m:named_parameters()) do
    if name == "encoder.weight" then t:fill_(1)
    elseif name:match("weight_ih") or name == "decoder.weight" then t:copy_(eye)
    else t:zero_() end               -- weight_hh, the biases
  end
  return m
end

local function ids()
  local x = recur.zeros({T, B}, "int64")
  for i = 1, T * B do x:view(-1):set(i, (i - 1) % N + 1) end
  return x
end

-- value -> how many logits have it
local function histogram(t)
  local h = {}
  for _, v in ipairs(t:reshape(-1):totable()) do h[v] = (h[v] or 0) + 1 end
  return h
end

describe("LanguageModel dropout", function()
  for _, case in ipairs({
    {layers = 1, k = 2, what = "embedding output and last layer's output"},
    {layers = 2, k = 3, what = "embedding output, between the layers and last layer's output"},
  }) do
    it("with " .. case.layers .. " layer(s) acts " .. case.k .. " times: " .. case.what, function()
      recur.manual_seed(10)
      local m = identity_model(case.layers, 0.5)
      local total = T * B * N
      local h = histogram(m:forward(ids()))
      local survived = 2 ^ case.k          -- (1 / (1 - 0.5))^k
      for v, n in pairs(h) do
        assert(v == 0 or v == survived, string.format("a logit of %g (%d of them)", v, n))
      end
      -- a logit survives with probability 0.5^k: about total / 2^k of them, give or take
      -- 4 standard deviations
      local want = total / survived
      local sd = math.sqrt(total * (1 / survived) * (1 - 1 / survived))
      local got = h[survived] or 0
      assert(math.abs(got - want) < 4 * sd, string.format("%d survivors, expected about %d", got, want))

      m:evaluate()
      assert.are.same({[1] = total}, histogram(m:forward(ids())))
    end)
  end

  it("is off with dropout = 0", function()
    local m = identity_model(2, 0)
    assert.are.same({[1] = T * B * N}, histogram(m:forward(ids())))
  end)
end)
