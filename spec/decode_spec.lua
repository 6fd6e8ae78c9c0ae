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

  it("top-p stops at the token whose cumulative probability equals top_p (0.5 + 0.25 = 0.75)", function()
    -- scores log 4, log 2, 0, 0: weights exp(s - log 4) = 1, 1/2, 1/4, 1/4 (each exact in
    -- binary, checked below), probabilities 0.5, 0.25, 0.125, 0.125, and the cumulative
    -- mass after token 2 is 0.75 exactly: top_p = 0.75 keeps {1, 2}, and a strict `>`
    -- would keep token 3 as well (then drawn 1/7 of the time)
    local l4, l2 = math.log(4), math.log(2)
    assert.are.equal(0.5, math.exp(l2 - l4))
    assert.are.equal(0.25, math.exp(0 - l4))
    recur.manual_seed(4)
    local n = 3000
    local c = frequencies({l4, l2, 0, 0}, {top_p = 0.75}, n)
    assert.is_nil(c[3], "token 3 is outside the nucleus")
    assert.is_nil(c[4], "token 4 is outside the nucleus")
    -- renormalised over the two kept: 2/3 and 1/3
    assert.is_true(math.abs(c[1] / n - 2 / 3) < 0.03, tostring(c[1]))
    assert.are.equal(n, c[1] + c[2])
    -- a hair above 0.75 needs token 3 (the ties keep id order: 3 before 4)
    c = frequencies({l4, l2, 0, 0}, {top_p = 0.75 + 1e-9}, n)
    assert.is_truthy(c[3], "token 3 is in the nucleus above 0.75")
    assert.is_nil(c[4])
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
    local ok, err = pcall(function() decode.choose({1, 2}, {temprature = 0}) end)
    assert.is_false(ok)
    assert.truthy(err:find("decode.choose: unknown option 'temprature'", 1, true), err)
    assert.matches("^spec/decode_spec%.lua:%d+:", err)   -- reported where the caller passed it
    ok, err = pcall(function() recur.beam.search({step = function() end}, {1}, {beem = 2}) end)
    assert.is_false(ok)
    assert.matches("^spec/decode_spec%.lua:%d+: beam%.search: unknown option 'beem'", err)
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

  it("draws what the choice written out in Lua draws, on every path and score layout", function()
    -- the algorithm as decode.choose states it, in plain Lua: the C choice must draw the
    -- same ids from the same seed (a swapped comparison, a lost tie rule, a nucleus cut
    -- one token late or a draw taken before the cut would each part the two)
    local function reference(scores, opts)
      local T, banned = opts.temperature or 1, opts.banned
      local ids, max = {}, -math.huge
      for id = 1, #scores do
        if not (banned and banned[id]) then
          ids[#ids + 1] = id
          if scores[id] > max then max = scores[id] end
        end
      end
      if T == 0 then
        for _, id in ipairs(ids) do if scores[id] == max then return id end end
      end
      if opts.top_k or opts.top_p then
        table.sort(ids, function(a, b)
          if scores[a] ~= scores[b] then return scores[a] > scores[b] end
          return a < b
        end)
        if opts.top_k then for i = #ids, opts.top_k + 1, -1 do ids[i] = nil end end
      end
      local w, total = {}, 0
      for i, id in ipairs(ids) do w[i] = math.exp((scores[id] - max) / T); total = total + w[i] end
      local count = #ids
      if opts.top_p and opts.top_p < 1 then
        local cumulative = 0
        for i = 1, #ids do
          cumulative = cumulative + w[i] / total
          if cumulative >= opts.top_p then count = i; break end
        end
        total = 0
        for i = 1, count do total = total + w[i] end
      end
      local r = recur.random_uniform() * total
      for i = 1, count do
        r = r - w[i]
        if r < 0 then return ids[i] end
      end
      return ids[count]
    end
    recur.manual_seed(21)
    local wide = recur.randn(40, 3):mul(1.5)
    local logits = wide:select(2, 2)              -- a strided column of a (40 x 3) tensor
    local scores = logits:totable()
    scores[7], scores[19] = scores[3], scores[3]  -- ties, for the order's second key
    for _, id in ipairs({7, 19}) do logits:set(id, scores[3]) end
    scores = logits:totable()                     -- as float32 holds them
    local as64 = recur.tensor(scores, "float64")
    local cases = {{}, {temperature = 0.6}, {temperature = 0}, {top_k = 5}, {top_k = 40}, {top_p = 0.8},
                   {top_p = 1}, {top_k = 9, top_p = 0.5, temperature = 1.7}, {banned = {[3] = true, [7] = true}},
                   {banned = {[3] = true}, top_p = 0.3}, {temperature = 0, banned = {[3] = true}}}
    for c, opts in ipairs(cases) do
      for _, input in ipairs({logits, as64, scores}) do
        recur.manual_seed(100 + c)
        local want = {}
        for i = 1, 60 do want[i] = reference(scores, opts) end
        recur.manual_seed(100 + c)
        for i = 1, 60 do
          assert.are.equal(want[i], decode.choose(input, opts), string.format("case %d, draw %d", c, i))
        end
      end
    end
    -- a row of a 2-D tensor, as decode.generate passes it, and a row out of range
    local rows = wide:t():contiguous()
    recur.manual_seed(5)
    local want = decode.choose(rows:select(1, 3), {top_k = 4})
    recur.manual_seed(5)
    assert.are.equal(want, recur.core.choose(rows, 1, 4, 0, nil, 3))
    assert.has_error(function() recur.core.choose(rows, 1, 0, 0, nil, 4) end)
    assert.has_error(function() decode.choose(rows) end, "decode: expected a 1-D tensor of scores, got 2-D")
    assert.has_error(function() decode.choose({1, "2"}) end, "decode: score 2 is a string, not a number")
  end)

  it("banned_with adds one id to a copy of a banned set", function()
    local banned = {[2] = true}
    assert.are.same({[2] = true, [5] = true}, decode.banned_with(banned, 5))
    assert.are.same({[2] = true}, banned)
    assert.are.same({[5] = true}, decode.banned_with(nil, 5))
  end)
end)

-- A model whose logits are scripted: rows[t][b] is row b's scores at step t (nil: the
-- row repeats its last script), whatever it is fed. It records the ids it was fed at
-- every step, and counts steps in its state, so that the state is seen to be threaded.
local function scripted(rows)
  local model = {fed = {}}
  function model:step(ids, state)
    local t = (state and state.t or 0) + 1
    self.fed[t] = ids:totable()
    local out = {}
    for b = 1, ids:numel() do out[b] = rows[math.min(t, #rows)][b] end
    return recur.tensor(out, "float64"), {t = t}
  end
  return model
end

describe("decode.generate", function()
  local NAN = 0 / 0
  local END = 4

  it("finishes a row at end_id (kept last), feeds it on, never reads its logits, stops when all end", function()
    local model = scripted({
      {{0, 5, 0, 1}, {0, 0, 0, 9}},        -- row 1 takes 2, row 2 ends at once
      {{0, 0, 7, 1}, {NAN, NAN, NAN, NAN}}, -- row 2 is finished: its NaN is never chosen from
      {{1, 0, 0, 2}, {NAN, NAN, NAN, NAN}}, -- row 1 ends
      {{NAN, 0, 0, 0}, {NAN, 0, 0, 0}},     -- never reached: the batch stopped
    })
    local out = decode.generate(model, nil, {1, 1}, {length = 10, end_id = END, temperature = 0})
    assert.are.same({{2, 3, END}, {END}}, out)
    assert.are.same({{1, 1}, {2, END}, {3, END}}, model.fed)
  end)

  it("stops at length tokens, with or without end_id", function()
    local rows = {{{0, 1, 0, 0}, {0, 0, 1, 0}}}
    assert.are.same({{2, 2, 2}, {3, 3, 3}}, decode.generate(scripted(rows), nil, {1, 1},
      {length = 3, temperature = 0}))
    assert.are.same({{2, 2}, {3, 3}}, decode.generate(scripted(rows), nil, recur.full({2}, 1, "int64"),
      {length = 2, end_id = END, temperature = 0}))
  end)

  it("bans end_id for the first min_length tokens, and banned ids always", function()
    -- the end scores best, then 3, then 2
    local rows = {{{0, 1, 2, 9}}}
    local function run(opts)
      opts.length, opts.end_id, opts.temperature = 10, END, 0
      return decode.generate(scripted(rows), nil, {1}, opts)[1]
    end
    assert.are.same({END}, run({}))
    assert.are.same({END}, run({min_length = 0}))
    assert.are.same({3, END}, run({min_length = 1}))
    assert.are.same({3, 3, 3, END}, run({min_length = 3}))
    local banned = {[3] = true}
    assert.are.same({2, 2, END}, run({min_length = 2, banned = banned}))
    assert.are.same({[3] = true}, banned) -- the caller's set is left as it was
    assert.are.same({2, 2, 2}, decode.generate(scripted(rows), nil, {1},
      {length = 3, end_id = END, temperature = 0, banned = {[3] = true, [END] = true}})[1])
  end)

  it("draws once per live row per step, rows in order, as decode.choose written out", function()
    -- row 2 can only end (every other id -inf); rows 1 and 3 spread over the rest
    local inf = math.huge
    local rows = {{{0, 0.5, 1, -inf}, {-inf, -inf, -inf, 0}, {1, 0.2, 0, -inf}}}
    recur.manual_seed(8)
    local out = decode.generate(scripted(rows), nil, {1, 1, 1}, {length = 6, end_id = END})
    recur.manual_seed(8)
    local want = {{}, {END}, {}}
    for i = 1, 6 do
      want[1][i] = decode.choose(rows[1][1], {})
      if i == 1 then decode.choose(rows[1][2], {}) end -- row 2's one draw, then it is done
      want[3][i] = decode.choose(rows[1][3], {})
    end
    assert.are.same(want, out)
    -- and a different seed draws other sequences
    recur.manual_seed(9)
    assert.are_not.same(want, decode.generate(scripted(rows), nil, {1, 1, 1}, {length = 6, end_id = END}))
  end)

  it("passes temperature, top_k and top_p on to decode.choose", function()
    local rows = {{{3, 2, 1, 0}}}
    local function draws(opts)
      recur.manual_seed(2)
      opts.length = 200
      local seen = {}
      for _, id in ipairs(decode.generate(scripted(rows), nil, {1}, opts)[1]) do seen[id] = true end
      return seen
    end
    assert.are.same({[1] = true}, draws({temperature = 0}))
    assert.are.same({[1] = true, [2] = true}, draws({top_k = 2}))
    assert.are.same({[1] = true}, draws({top_p = 0.5}))
    assert.are.same({[1] = true, [2] = true, [3] = true, [4] = true}, draws({temperature = 5}))
  end)

  it("calls on_token with each row, id and position as it is chosen", function()
    local model = scripted({{{0, 5, 0, 1}, {0, 0, 0, 9}}, {{0, 0, 0, 7}, {0, 0, 0, 0}}})
    local calls = {}
    decode.generate(model, {t = 0}, {1, 1}, {length = 5, end_id = END, temperature = 0},
      function(b, id, i) calls[#calls + 1] = {b, id, i} end)
    assert.are.same({{1, 2, 1}, {2, END, 1}, {1, END, 2}}, calls)
  end)

  it("threads the state through model:step", function()
    local model = scripted({{{0, 1, 0, 0}}})
    decode.generate(model, {t = 5}, {1}, {length = 2, temperature = 0})
    assert.are.same({nil, nil, nil, nil, nil, {1}, {2}}, model.fed)
  end)

  it("rejects bad arguments", function()
    local model = scripted({{{0, 1}}})
    local function fails(first, opts, fragment, on_token)
      local ok, err = pcall(decode.generate, model, nil, first, opts, on_token)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(fragment, 1, true), tostring(err))
    end
    fails({1}, {}, "decode.generate: length must be a positive integer, got nil")
    fails({1}, {length = 2, min_length = 1}, "decode.generate: min_length needs end_id")
    fails({1}, {length = 2, min_length = -1, end_id = 2}, "decode.generate: option min_length must be an integer >= 0")
    fails({1}, {length = 2, end_id = 1.5}, "decode.generate: end_id must be an integer id, got 1.5")
    fails({}, {length = 2}, "decode.generate: first_ids must be an int64 tensor (B) or a non-empty Lua array")
    fails(recur.zeros(1), {length = 2}, "decode.generate: first_ids must be an int64 tensor")
    fails({1, "2"}, {length = 2}, 'decode.generate: first_ids[2] must be an integer id, got "2"')
    fails({1}, {length = 2, beam = 2}, "decode.generate: unknown option 'beam'")
    fails({1}, {length = 2, temperature = 0, top_k = 2}, "decode.generate: top_k does not apply at temperature 0 (greedy)")
    fails({1}, {length = 2, temperature = 0, top_p = 0.5}, "decode.generate: top_p does not apply at temperature 0 (greedy)")
    fails({1}, {length = 2}, "decode.generate: on_token must be a function, got number", 3)
  end)
end)
