-- recur.data.NGram: hand-computed probabilities on a tiny corpus (add-k and k = 0), and
-- tiny Shakespeare losses against an independent Python implementation.
local data = require("recur.data")
local NGram = data.NGram

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(err)
end

local function near(expected, got, tol)
  tol = tol or 1e-12
  assert(math.abs(expected - got) <= tol * math.max(1, math.abs(expected)),
    string.format("expected %.17g, got %.17g", expected, got))
end

local train = { 1, 2, 1, 2, 3 }

describe("NGram", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  it("unigram with add-1: (n(w) + 1) / (N + V)", function()
    local m = NGram.new({ order = 1, vocab_size = 3 }):fit(train)
    near(3 / 8, m:prob({}, 1))
    near(3 / 8, m:prob({ 3, 3 }, 2))   -- context ignored
    near(2 / 8, m:prob({}, 3))
    near(-(math.log(3 / 8) * 2 + math.log(1 / 4)) / 3, m:loss({ 1, 2, 3 }))
  end)

  it("bigram with add-1, start padded, unseen context uniform", function()
    -- pairs: (start,1) (1,2) (2,1) (1,2) (2,3); n(1) = 2, n(2) = 2, n(start) = 1
    local m = NGram.new({ order = 2, vocab_size = 3 }):fit(train)
    near(3 / 5, m:prob({ 1 }, 2))
    near(1 / 5, m:prob({ 1 }, 1))
    near(2 / 5, m:prob({ 2 }, 1))
    near(2 / 5, m:prob({ 2 }, 3))
    near(1 / 5, m:prob({ 2 }, 2))
    near(2 / 4, m:prob({}, 1))           -- empty context = start
    near(1 / 4, m:prob({}, 3))
    near(1 / 3, m:prob({ 3 }, 1))        -- context 3 never seen
    local loss = -(math.log(1 / 2) + math.log(3 / 5) + math.log(2 / 5)) / 3
    near(loss, m:loss({ 1, 2, 3 }))
    near((0.5 * 0.6 * 0.4) ^ (-1 / 3), m:perplexity({ 1, 2, 3 }))
  end)

  it("trigram with add-0.5 uses the last n-1 ids of the context", function()
    -- contexts: (s,s)->1 (s,1)->2 (1,2)->1 (2,1)->2 (1,2)->3
    local m = NGram.new({ order = 3, vocab_size = 3, k = 0.5 }):fit(train)
    near(1.5 / 3.5, m:prob({ 1, 2 }, 1))
    near(1.5 / 3.5, m:prob({ 2, 1, 2 }, 3))
    near(0.5 / 3.5, m:prob({ 3, 1, 2 }, 2))
    near(1.5 / 2.5, m:prob({}, 1))
    near(1.5 / 2.5, m:prob({ 1 }, 2))
    near(1 / 3, m:prob({ 3, 3 }, 2))
  end)

  it("k = 0: maximum-likelihood counts n(c w) / n(c), uniform for an unseen context", function()
    -- pairs: (start,1) (1,2) (2,1) (1,2) (2,3); n(1) = 2, n(2) = 2, n(start) = 1
    local m = NGram.new({ order = 2, vocab_size = 3, k = 0 }):fit(train)
    assert.are.equal(1, m:prob({ 1 }, 2))       -- 2/2
    assert.are.equal(0, m:prob({ 1 }, 1))       -- 0/2: seen context, unseen pair
    assert.are.equal(0.5, m:prob({ 2 }, 1))     -- 1/2
    assert.are.equal(0.5, m:prob({ 2 }, 3))
    assert.are.equal(1, m:prob({}, 1))          -- start -> 1, once
    near(1 / 3, m:prob({ 3 }, 1))               -- context 3 never seen: 1/V, not 0/0
    -- (start,1) 1, (1,2) 1, (2,3) 1/2: -(0 + 0 + log(1/2)) / 3
    near(math.log(2) / 3, m:loss({ 1, 2, 3 }))
    near(2 ^ (1 / 3), m:perplexity({ 1, 2, 3 }))
    -- 3 is followed by 1: an unseen context, log 3 for that position
    near((math.log(2) + math.log(3)) / 4, m:loss({ 1, 2, 3, 1 }))
    -- unigram: n(w) / N, the empirical frequencies
    local u = NGram.new({ order = 1, vocab_size = 4, k = 0 }):fit(train)
    near(2 / 5, u:prob({}, 1))
    near(1 / 5, u:prob({}, 3))
    assert.are.equal(0, u:prob({}, 4))
  end)

  it("k = 0: a zero-probability id makes the loss and the perplexity math.huge", function()
    local m = NGram.new({ order = 2, vocab_size = 3, k = 0 }):fit(train)
    -- 1 -> 1 was never seen after the seen context 1
    assert.are.equal(math.huge, m:loss({ 1, 1 }))
    assert.are.equal(math.huge, m:perplexity({ 1, 1 }))
    assert.are.equal(math.huge, NGram.new({ order = 1, vocab_size = 4, k = 0 }):fit(train):loss({ 4 }))
    -- any smoothing keeps it finite
    local s = NGram.new({ order = 2, vocab_size = 3, k = 1e-9 }):fit(train):loss({ 1, 1 })
    assert.is_true(s < math.huge)
  end)

  it("sums to one over the vocabulary for every context", function()
    for _, k in ipairs({ 0.25, 0 }) do
      local m = NGram.new({ order = 3, vocab_size = 3, k = k }):fit(train)
      for _, ctx in ipairs({ {}, { 1 }, { 1, 2 }, { 2, 1 }, { 3, 3 }, { 2, 3 } }) do
        local s = 0
        for w = 1, 3 do s = s + m:prob(ctx, w) end
        near(1, s)
      end
    end
  end)

  it("accumulates counts over several fit calls, each padded at its start", function()
    local m = NGram.new({ order = 2, vocab_size = 3 }):fit(train):fit({ 3 })
    near(2 / 5, m:prob({}, 3))
    near(3 / 5, m:prob({ 1 }, 2))
  end)

  it("switches to string keys for large V^n with the same values", function()
    local V = 1000000
    local m = NGram.new({ order = 4, vocab_size = V }):fit(train)
    assert.is_false(m.int_keys)
    near(2 / (1 + V), m:prob({ 1, 2, 1 }, 2))     -- (s,1,2,1) -> 2 once; context seen once
    near(1 / (1 + V), m:prob({ 1, 2, 1 }, 3))
    local m2 = NGram.new({ order = 4, vocab_size = 3 }):fit(train)
    assert.is_true(m2.int_keys)
    near(2 / 4, m2:prob({ 1, 2, 1 }, 2))
  end)

  it("raises on bad input", function()
    local m = NGram.new({ order = 2, vocab_size = 3 })
    assert.truthy(err_of(m.fit, m, { 1, 4 }):find("NGram.fit: id #2 is 4, outside 1..3", 1, true))
    assert.truthy(err_of(m.loss, m, {}):find("NGram.loss: empty sequence", 1, true))
    assert.truthy(err_of(m.prob, m, { 1 }, 0):find("NGram.prob: id #1 is 0, outside 1..3", 1, true))
    assert.truthy(err_of(NGram.new, { order = 2 }):find("NGram.new: order and vocab_size are required", 1, true))
    -- an order no corpus could use would exhaust memory in fit instead of failing here
    assert.truthy(err_of(NGram.new, { order = 2^40, vocab_size = 3 }):find("order must be an integer in [1, 32]", 1, true))
    assert.truthy(err_of(NGram.new, { order = 2, vocab_size = 3, k = -0.5 }):find("k must be a finite number >= 0, got -0.5", 1, true))
    assert.truthy(err_of(NGram.new, { order = 2, vocab_size = 3, k = 0 / 0 }):find("k must be a finite number >= 0", 1, true))
    assert.truthy(err_of(NGram.new, { order = 2, vocab_size = 3, k = math.huge }):find("k must be a finite number >= 0", 1, true))
    assert.truthy(err_of(NGram.new, { order = 0, vocab_size = 3 }):find("option order must be an integer in [1, 32], got 0", 1, true))
  end)

  it("matches an independent Python implementation on tiny Shakespeare (char level)", function()
    -- Reference: a Counter-based add-k n-gram in Python over the same ids and split
    -- (characters sorted, ids 1..65, last 10% held out); losses in nats per character.
    local text = data.read_text("data/tinyshakespeare.txt")
    local tok = data.CharTokenizer.fit(text)
    local ids = tok:encode(text)
    assert.are.equal(65, tok:vocab_size())
    assert.are.equal(1115394, #ids)
    local tr, va = data.split(ids, { val_frac = 0.1 })
    assert.are.equal(1003855, #tr)
    local ref = {
      { 1, 1.0, 3.347305134693126 }, { 2, 1.0, 2.481923655169741 }, { 3, 1.0, 2.06847339628965 },
      { 4, 1.0, 1.9526234453901883 }, { 5, 1.0, 2.1737708958817605 },
      { 3, 0.5, 2.0523315569745697 }, { 5, 0.5, 2.005416622361227 },
    }
    for _, r in ipairs(ref) do
      local m = NGram.new({ order = r[1], vocab_size = 65, k = r[2] }):fit(tr)
      near(r[3], m:loss(va), 1e-10)
    end
  end)
end)
