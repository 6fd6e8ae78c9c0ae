-- Token choice: greedy, temperature, top-k, top-p, banned tokens.
local recur = require "recur"
local decode = require "recur.decode"

local function frequencies(logits, opts, n)
  local counts = {}
  for _ = 1, n do
    local id = decode.choose(logits, opts)
    counts[id] = (counts[id] or 0) + 1
  end
  return counts
end

describe("decode", function()
  it("runs under Lua 5.4", function() assert.are.equal("Lua 5.4", _VERSION) end)

  it("greedy picks the highest allowed score, lowest id on ties", function()
    assert.are.equal(3, decode.greedy({0.1, 2, 5, 1}))
    assert.are.equal(2, decode.greedy({0.1, 2, 5, 1}, {[3] = true}))
    assert.are.equal(1, decode.greedy({4, 4, 1}))
    assert.are.equal(3, decode.choose(recur.tensor({0.1, 2, 5, 1}), {temperature = 0}))
  end)

  it("samples in proportion to softmax(logits / temperature)", function()
    recur.manual_seed(5)
    local logits = {math.log(0.5), math.log(0.3), math.log(0.2)}
    local n = 20000
    local c = frequencies(logits, {}, n)
    assert.is_true(math.abs(c[1] / n - 0.5) < 0.02)
    assert.is_true(math.abs(c[3] / n - 0.2) < 0.02)
    -- temperature 0.5 squares the odds: 0.25 : 0.09 : 0.04
    c = frequencies(logits, {temperature = 0.5}, n)
    assert.is_true(math.abs(c[1] / n - 0.25 / 0.38) < 0.02)
  end)

  it("top-k keeps the k best and top-p the smallest nucleus", function()
    recur.manual_seed(6)
    local logits = {math.log(0.1), math.log(0.4), math.log(0.3), math.log(0.2)}
    local c = frequencies(logits, {top_k = 2}, 5000)
    assert.is_nil(c[1]); assert.is_nil(c[4])
    assert.is_true(math.abs(c[2] / 5000 - 4 / 7) < 0.03)
    -- 0.4 + 0.3 = 0.7 >= 0.65: the nucleus is {2, 3}
    c = frequencies(logits, {top_p = 0.65}, 5000)
    assert.is_nil(c[1]); assert.is_nil(c[4])
    c = frequencies(logits, {top_p = 0.3}, 200)
    assert.are.equal(200, c[2])
  end)

  it("top-p keeps the tokens up to the one whose cumulative mass reaches top_p exactly", function()
    -- equal scores: every weight is exp(0) = 1, so each of the 8 tokens has probability
    -- 0.125 exactly and the cumulative masses 0.125, 0.25, ... are exact in binary
    recur.manual_seed(12)
    local logits = {0, 0, 0, 0, 0, 0, 0, 0}
    for _, case in ipairs({{0.5, 4}, {0.25, 2}, {0.125, 1}, {0.75, 6}, {0.5 + 1e-9, 5}}) do
      local top_p, kept = case[1], case[2]
      local c = frequencies(logits, {top_p = top_p}, 400)
      for id = 1, 8 do
        if id <= kept then
          assert(c[id], string.format("top_p %.10g: token %d was never drawn", top_p, id))
        else
          assert(c[id] == nil, string.format("top_p %.10g: token %d is outside the nucleus", top_p, id))
        end
      end
    end
    -- the nucleus is taken in order of score, not of id: the best token (id 3, 4/7 of
    -- the mass) reaches 0.5 alone
    local two = math.log(2)
    local c = frequencies({two, 0, 2 * two, -math.huge}, {top_p = 0.5}, 200)
    assert.are.same({[3] = 200}, c)
  end)

  it("never draws a banned token and reproduces a sample from a seed", function()
    recur.manual_seed(9)
    local c = frequencies({1, 1, 1}, {banned = {[2] = true}}, 3000)
    assert.is_nil(c[2])
    recur.manual_seed(1)
    local a = {}
    for i = 1, 20 do a[i] = decode.choose({0, 0, 0, 0}) end
    recur.manual_seed(1)
    for i = 1, 20 do assert.are.equal(a[i], decode.choose({0, 0, 0, 0})) end
  end)

  it("samples without options exactly as through the candidate list", function()
    -- no banned/top_k/top_p takes a shorter path that must draw the same ids
    local logits = recur.randn(65):mul(2)
    for _, t in ipairs({1, 0.7}) do
      recur.manual_seed(11)
      local plain = {}
      for i = 1, 300 do plain[i] = decode.choose(logits, {temperature = t}) end
      recur.manual_seed(11)
      for i = 1, 300 do
        assert.are.equal(plain[i], decode.choose(logits, {temperature = t, banned = {}}))
      end
    end
    -- a shorter row after a longer one reads none of the longer row's weights
    recur.manual_seed(3)
    decode.choose(recur.randn(65))
    for _ = 1, 50 do assert.is_true(decode.choose({0, 0}) <= 2) end
  end)

  it("rejects bad options", function()
    assert.has_error(function() decode.choose({1, 2}, {temperature = -1}) end,
      "decode: temperature must be a number >= 0")
    assert.has_error(function() decode.choose({1, 2}, {top_k = 0}) end, "decode: top_k must be a positive integer")
    assert.has_error(function() decode.choose({1, 2}, {top_p = 1.5}) end, "decode: top_p must be in (0, 1]")
    assert.has_error(function() decode.choose({1}, {banned = {true}}) end, "decode: every token is banned")
    assert.has_error(function() decode.choose({1}, {banned = 1}) end,
      "decode: banned must be a set of ids ({[id] = true}), got number")
    local ok, err = pcall(decode.choose, {1, 2}, {temprature = 0})
    assert.is_false(ok)
    assert.truthy(err:find("decode.choose: unknown option 'temprature'", 1, true), err)
  end)

  it("refuses NaN and +inf scores on every path, and treats -inf as probability zero", function()
    local nan = 0 / 0
    for _, opts in ipairs({{temperature = 0}, {}, {top_k = 2}, {top_p = 0.9}, {banned = {[3] = true}}}) do
      assert.has_error(function() decode.choose({1, nan, 2}, opts) end, "decode: score 2 is NaN, not a finite number")
      assert.has_error(function() decode.choose({math.huge, 1, 2}, opts) end, "decode: score 1 is inf, not a finite number")
      assert.has_error(function() decode.choose({-math.huge, -math.huge, -math.huge}, opts) end,
        "decode: every allowed token has score -inf")
      assert.has_error(function() decode.choose({}, opts) end, "decode: no scores to choose from")
      recur.manual_seed(1)
      for _ = 1, 20 do assert.are.equal(2, decode.choose({-math.huge, 0, -math.huge}, opts)) end
    end
  end)

  it("banned_with adds one id to a copy of a banned set", function()
    local banned = {[2] = true}
    assert.are.same({[2] = true, [5] = true}, decode.banned_with(banned, 5))
    assert.are.same({[2] = true}, banned)
    assert.are.same({[5] = true}, decode.banned_with(nil, 5))
  end)
end)
