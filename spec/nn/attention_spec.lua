-- recur.nn.Attention (and the kernels of csrc/attention.c), compared against:
-- - values worked out by hand (a dot score whose softmax is 1/4, 3/4, and its gradient;
--   an additive score with one unit);
-- - PyTorch (spec/fixtures/generate_attention.py): three steps over one padded batch for
--   every score form, weights, contexts and all gradients, in float64 and float32;
-- - central differences in float64 (recur.gradcheck) for every form over masked
--   batches of several steps: the query, the memory and every parameter;
-- - a plain-Lua reference at sizes that cross the kernels' blocks (A > 256, K not a
--   multiple of 8) and their threading threshold, with results bitwise the same for
--   1 and 2 threads.
-- Masking is checked where it could go wrong: weights past a length are exactly 0 and
-- the one at the length is not (an off-by-one fails), padding rows of the memory are
-- never read (NaN there changes nothing) and get no gradient.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn
local gradcheck = require "recur.gradcheck"

local SCORES = {"dot", "general", "concat", "additive"}

local function make(score, Hq, Hm, A, dtype)
  local additive = score == "concat" or score == "additive"
  return nn.Attention{score = score, query_size = Hq, memory_size = Hm,
                      attn_size = additive and A or nil, dtype = dtype or "float64"}
end

local function fixture(score)
  return helpers.read_json("spec/fixtures/attention/" .. score .. ".json")
end

-- A fixture's module, with PyTorch's weights loaded by name (strict: the names agree).
local function from_fixture(f, dtype)
  local attn = make(f.score, f.query_size, f.memory_size, f.attn_size, dtype)
  local sd = {}
  for name, j in pairs(f.state_dict) do sd[name] = helpers.tensor(j, dtype) end
  attn:load_state_dict(sd)
  return attn
end

local function max_diff(a, b) return helpers.max_abs_diff(a, b) end

describe("Attention by hand", function()
  -- q = (1, 0) against m_1 = (0, 5), m_2 = (log 3, 1): scores 0 and log 3, weights
  -- 1/4 and 3/4, context (3/4 log 3, 2). Sequence 2 (length 1) sees m_1 alone.
  local l3 = math.log(3)
  local function setup()
    local attn = make("dot", 2, 2)
    local memory = recur.tensor({{{0, 5}, {0, 5}}, {{l3, 1}, {7, 7}}}, "float64")
    attn:set_memory(memory, recur.tensor({2, 1}, "int64"))
    return attn
  end

  it("weights and context of a dot score, and a length of 1", function()
    local attn = setup()
    local c, w = attn:forward_step(recur.tensor({{1, 0}, {1, 0}}, "float64"))
    assert.are.same({{0.25, 0.75}, {1, 0}}, w:totable())
    assert.is_true(math.abs(c:get(1, 1) - 0.75 * l3) < 1e-15)
    assert.is_true(math.abs(c:get(1, 2) - 2) < 1e-15)
    assert.are.same({0, 5}, c:select(1, 2):totable())
  end)

  it("gradient of a dot score", function()
    -- for gc = (1, 0): ga = (0, log 3), ge = a (ga - a.ga) = (-3/16, 3/16) log 3,
    -- gq = sum_s ge_s m_s = (3/16 log^2 3, -12/16 log 3), gm_s = a_s gc + ge_s q
    local attn = setup()
    attn:forward_step(recur.tensor({{1, 0}, {1, 0}}, "float64"))
    local gq = attn:backward_step(recur.tensor({{1, 0}, {0, 0}}, "float64"))
    assert.is_true(math.abs(gq:get(1, 1) - 3 / 16 * l3 * l3) < 1e-15)
    assert.is_true(math.abs(gq:get(1, 2) + 12 / 16 * l3) < 1e-15)
    local gm = attn:memory_grad()
    assert.is_true(math.abs(gm:get(1, 1, 1) - (0.25 - 3 / 16 * l3)) < 1e-15)
    assert.is_true(math.abs(gm:get(2, 1, 1) - (0.75 + 3 / 16 * l3)) < 1e-15)
    assert.are.same({0, 0}, gm:select(1, 2):select(1, 2):totable()) -- padding
  end)

  it("an additive score with one unit", function()
    -- W_q = 1, b = 0.5, W_m = 1, v = 2; q = -0.5 and m = (0, atanh 0.5): scores 0 and 1
    local attn = make("additive", 1, 1, 1)
    attn:load_state_dict({["query_layer.weight"] = recur.tensor({{1}}, "float64"),
      ["query_layer.bias"] = recur.tensor({0.5}, "float64"),
      ["memory_layer.weight"] = recur.tensor({{1}}, "float64"),
      ["v.weight"] = recur.tensor({{2}}, "float64")})
    local atanh = 0.5 * math.log(3)
    attn:set_memory(recur.tensor({{{0}}, {{atanh}}}, "float64"))
    local c, w = attn:attend(recur.tensor({{-0.5}}, "float64"))
    local e = math.exp(1)
    assert.is_true(math.abs(w:get(1, 1) - 1 / (1 + e)) < 1e-15)
    assert.is_true(math.abs(w:get(1, 2) - e / (1 + e)) < 1e-15)
    assert.is_true(math.abs(c:get(1, 1) - atanh * e / (1 + e)) < 1e-15)
  end)
end)

describe("Attention against PyTorch", function()
  for _, score in ipairs(SCORES) do
    for _, case in ipairs({{"float64", 1e-12}, {"float32", 2e-5}}) do
      local dtype, tol = case[1], case[2]
      it(score .. " score, " .. dtype .. ": three steps over a padded batch", function()
        local f = fixture(score)
        local attn = from_fixture(f, dtype)
        local queries, memory = helpers.tensor(f.queries, dtype), helpers.tensor(f.memory, dtype)
        local gc, gw = helpers.tensor(f.gcontexts, dtype), helpers.tensor(f.gweights, dtype)
        local contexts, weights = helpers.tensor(f.contexts, "float64"), helpers.tensor(f.weights, "float64")
        attn:set_memory(memory, recur.tensor(f.lengths, "int64"))
        for t = 1, f.T do
          local c, w = attn:forward_step(queries:select(1, t))
          assert.is_true(max_diff(c, contexts:select(1, t)) < tol)
          assert.is_true(max_diff(w, weights:select(1, t)) < tol)
        end
        local gq = {}
        for t = f.T, 1, -1 do gq[t] = attn:backward_step(gc:select(1, t), gw:select(1, t)) end
        local gqueries = helpers.tensor(f.gqueries, "float64")
        for t = 1, f.T do assert.is_true(max_diff(gq[t], gqueries:select(1, t)) < tol) end
        -- the parameters' gradients are complete once the tape is empty, memory_grad or not
        local grads = attn:named_gradients()
        local n = 0
        for name, j in pairs(f.grads) do
          assert.is_true(max_diff(grads[name], helpers.tensor(j, "float64")) < tol, name)
          n = n + 1
        end
        assert.are.equal(n, #select(2, attn:named_gradients()))
        assert.is_true(max_diff(attn:memory_grad(), helpers.tensor(f.gmemory, "float64")) < tol)
      end)
    end

    it(score .. " score: forward and backward over all steps agree with PyTorch", function()
      local f = fixture(score)
      local attn = from_fixture(f, "float64")
      local queries = helpers.tensor(f.queries, "float64")
      local contexts, weights = attn:forward(queries, helpers.tensor(f.memory, "float64"),
        recur.tensor(f.lengths, "int64"))
      assert.is_true(max_diff(contexts, helpers.tensor(f.contexts, "float64")) < 1e-12)
      assert.is_true(max_diff(weights, helpers.tensor(f.weights, "float64")) < 1e-12)
      local gq, gm = attn:backward(queries, helpers.tensor(f.gcontexts, "float64"),
        helpers.tensor(f.gweights, "float64"))
      assert.is_true(max_diff(gq, helpers.tensor(f.gqueries, "float64")) < 1e-12)
      assert.is_true(max_diff(gm, helpers.tensor(f.gmemory, "float64")) < 1e-12)
    end)
  end
end)

describe("Attention gradients (central differences, float64)", function()
  for _, score in ipairs(SCORES) do
    for _, lengths in ipairs({{5, 1, 3}, false}) do
      local what = lengths and "masked batch" or "no lengths"
      it(score .. " score, " .. what .. ", three steps: query, memory and every parameter", function()
        recur.manual_seed(7)
        local attn = make(score, 4, score == "dot" and 4 or 3, 5)
        local queries = recur.randn({3, 3, 4}, "float64")
        local memory = recur.randn({5, 3, attn.memory_size}, "float64")
        local report = gradcheck(attn, {queries, memory, lengths and recur.tensor(lengths, "int64") or nil})
        assert.is_true(report.max_error < 1e-6, tostring(report))
        assert.is_not_nil(report.inputs[1])
        assert.is_not_nil(report.inputs[2])
        local _, names = attn:named_parameters()
        assert.are.equal(#names, #report.names)
        assert.are.equal(({dot = 0, general = 1, concat = 3, additive = 4})[score], #names)
      end)
    end
  end

  it("the additive score across a block of its kernel (A = 260)", function()
    recur.manual_seed(8)
    local attn = make("additive", 3, 2, 260)
    local report = gradcheck(attn, {recur.randn({2, 2, 3}, "float64"), recur.randn({3, 2, 2}, "float64"),
      recur.tensor({3, 2}, "int64")}, {max_elems = 12})
    assert.is_true(report.max_error < 1e-6, tostring(report))
  end)
end)

-- The attention of one sequence in plain Lua from the module's parameters (Lua
-- arrays): q (Hq), m (S) rows of (Hm); returns the context and the weights.
local function reference(attn, q, m, L)
  local P = {}
  for name, p in pairs(attn:named_parameters()) do P[name] = p:totable() end
  local function matvec(W, x)
    local y = {}
    for i = 1, #W do
      local s = 0
      for j = 1, #x do s = s + W[i][j] * x[j] end
      y[i] = s
    end
    return y
  end
  local e = {}
  local p
  if attn._additive then
    p = matvec(P["query_layer.weight"], q)
    for i = 1, #p do p[i] = p[i] + (P["query_layer.bias"] and P["query_layer.bias"][i] or 0) end
  end
  for s = 1, L do
    if attn.score == "dot" or attn.score == "general" then
      local k = attn.score == "dot" and m[s] or matvec(P["memory_layer.weight"], m[s])
      e[s] = 0
      for i = 1, #q do e[s] = e[s] + q[i] * k[i] end
    else
      local k = matvec(P["memory_layer.weight"], m[s])
      e[s] = 0
      for i = 1, #k do e[s] = e[s] + P["v.weight"][1][i] * math.tanh(k[i] + p[i]) end
    end
  end
  local mx, sum, w = -math.huge, 0, {}
  for s = 1, L do mx = math.max(mx, e[s]) end
  for s = 1, L do w[s] = math.exp(e[s] - mx); sum = sum + w[s] end
  local c = {}
  for h = 1, #m[1] do
    c[h] = 0
    for s = 1, L do c[h] = c[h] + w[s] / sum * m[s][h] end
  end
  for s = 1, #m do w[s] = s <= L and w[s] / sum or 0 end
  return c, w
end

describe("Attention at larger sizes", function()
  local S, B, Hq, Hm, A = 10, 16, 19, 21, 260
  for _, score in ipairs(SCORES) do
    it(score .. " score: a plain-Lua reference, and the same bits on 1 and 2 threads", function()
      recur.manual_seed(9)
      local attn = make(score, Hq, score == "dot" and Hq or Hm, A)
      local H = attn.memory_size
      local query, memory = recur.randn({B, Hq}, "float64"), recur.randn({S, B, H}, "float64")
      local lengths = {}
      for b = 1, B do lengths[b] = 1 + (b * 7) % S end
      attn:set_memory(memory, recur.tensor(lengths, "int64"))
      local c, w = attn:forward_step(query)
      local qt, mt = query:totable(), memory:totable()
      for b = 1, B do
        local rows = {}
        for s = 1, S do rows[s] = mt[s][b] end
        local rc, rw = reference(attn, qt[b], rows, lengths[b])
        local got_c, got_w = c:select(1, b):totable(), w:select(1, b):totable()
        for h = 1, H do assert.is_true(math.abs(got_c[h] - rc[h]) < 1e-12) end
        for s = 1, S do assert.is_true(math.abs(got_w[s] - rw[s]) < 1e-12) end
      end
      -- The C step alone (the projections are BLAS's, whose sums may split by thread):
      -- the same inputs give the same bits on 1 and 2 threads.
      local threads = recur.get_num_threads()
      local entry, v = attn._tape[1], attn:_v()
      local runs = {}
      for i, n in ipairs({1, 2}) do
        recur.set_num_threads(n)
        local gmemory = recur.zeros(memory:size(), "float64")
        local gkeys = attn.score == "dot" and gmemory or recur.zeros(attn._keys:size(), "float64")
        local gv = v and recur.zeros(v:size(), "float64")
        local rc, rw = recur.attention_forward(entry.input, attn._keys, v, attn._memory, attn._lengths)
        local g = recur.attention_backward(c, w, rw, entry.input, attn._keys, v, attn._memory, attn._lengths,
          gkeys, gmemory, gv)
        runs[i] = {rc, rw, g, gkeys, gmemory, gv}
      end
      recur.set_num_threads(threads)
      assert.are.equal(0, max_diff(runs[1][1], c))
      for k = 1, 6 do
        if runs[1][k] then assert.are.equal(0, max_diff(runs[1][k], runs[2][k]), k) end
      end
      assert.is_true(runs[1][3]:abs():max() > 0)
    end)

    it(score .. " score: float32 agrees with float64", function()
      recur.manual_seed(10)
      local a64 = make(score, Hq, score == "dot" and Hq or Hm, A)
      local a32 = make(score, Hq, score == "dot" and Hq or Hm, A, "float32")
      a32:load_state_dict(a64:state_dict())
      local query = recur.randn({B, Hq}, "float64")
      local memory = recur.randn({S, B, a64.memory_size}, "float64")
      local lengths = recur.tensor((function() local l = {} for b = 1, B do l[b] = 1 + b % S end return l end)(), "int64")
      local out = {}
      for i, a in ipairs({a64, a32}) do
        local dt = a.dtype
        a:set_memory(memory:to(dt), lengths)
        local c, w = a:forward_step(query:to(dt))
        local gq = a:backward_step(recur.ones({B, a.memory_size}, dt))
        out[i] = {c, w, gq, a:memory_grad()}
      end
      for k = 1, 4 do assert.is_true(max_diff(out[1][k], out[2][k]) < 1e-4, k) end
    end)
  end
end)

describe("Attention masking", function()
  for _, score in ipairs(SCORES) do
    for _, dtype in ipairs({"float64", "float32"}) do
      it(score .. " score, " .. dtype .. ": weights 0 past the length, padding never read", function()
        recur.manual_seed(11)
        local S, B = 6, 4
        local lengths = {6, 1, 3, 5}
        local attn = make(score, 4, score == "dot" and 4 or 3, 5, dtype)
        local memory = recur.randn({S, B, attn.memory_size}, dtype)
        local query = recur.randn({B, 4}, dtype)
        attn:set_memory(memory, recur.tensor(lengths, "int64"))
        local c0, w0 = attn:attend(query)
        -- NaN in every padding row
        local poisoned = memory:clone()
        for b = 1, B do
          for s = lengths[b] + 1, S do poisoned:select(1, s):select(1, b):fill_(0 / 0) end
        end
        attn:set_memory(poisoned, recur.tensor(lengths, "int64"))
        local c, w = attn:forward_step(query)
        assert.are.equal(0, max_diff(c, c0))
        assert.are.equal(0, max_diff(w, w0))
        local wt = w:totable()
        for b = 1, B do
          local sum = 0
          for s = 1, S do
            if s <= lengths[b] then
              assert.is_true(wt[b][s] > 0)
              sum = sum + wt[b][s]
            else
              assert.are.equal(0, wt[b][s])
            end
          end
          assert.is_true(math.abs(sum - 1) < 1e-6)
        end
        local gq = attn:backward_step(recur.randn({B, attn.memory_size}, dtype), recur.randn({B, S}, dtype))
        assert.is_true(gq:abs():max() < math.huge) -- finite: no NaN came in
        local gm = attn:memory_grad()
        for b = 1, B do
          for s = 1, S do
            local row = gm:select(1, s):select(1, b)
            if s > lengths[b] then assert.are.equal(0, row:abs():max()) end
          end
        end
        for name, g in pairs(attn:named_gradients()) do assert.is_true(g:abs():max() < math.huge, name) end
      end)
    end
  end
end)

describe("Attention state", function()
  it("registers its parameters under PyTorch's names, for optimizers and checkpoints", function()
    local expected = {
      dot = {},
      general = {["memory_layer.weight"] = {3, 5}},
      concat = {["query_layer.weight"] = {4, 3}, ["memory_layer.weight"] = {4, 5}, ["v.weight"] = {1, 4}},
      additive = {["query_layer.weight"] = {4, 3}, ["query_layer.bias"] = {4},
                  ["memory_layer.weight"] = {4, 5}, ["v.weight"] = {1, 4}},
    }
    for _, score in ipairs(SCORES) do
      local attn = make(score, 3, score == "dot" and 3 or 5, 4, "float32")
      local params, names = attn:named_parameters()
      local n = 0
      for name, size in pairs(expected[score]) do
        assert.are.same(size, params[name]:size())
        assert.are.equal("float32", params[name]:dtype())
        n = n + 1
      end
      assert.are.equal(n, #names)
      assert.are.equal(n, #attn:parameters())
    end
  end)

  it(":to converts the parameters and drops the batch of the old dtype", function()
    recur.manual_seed(19)
    local attn = make("additive", 3, 3, 4, "float32")
    attn:set_memory(recur.randn({4, 2, 3}))
    attn:to("float64")
    assert.are.equal("float64", attn.memory_layer.weight:dtype())
    assert.are.equal("float64", attn.v:gradient("weight"):dtype())
    helpers.assert_fails_with(function() attn:attend(recur.randn({2, 3}, "float64")) end, "no memory")
    attn:set_memory(recur.randn({4, 2, 3}, "float64"))
    local c = attn:attend(recur.randn({2, 3}, "float64"))
    assert.are.equal("float64", c:dtype())
  end)

  it("an optimizer step through the module's gradients changes the output", function()
    recur.manual_seed(12)
    local attn = make("additive", 3, 3, 4)
    local memory, query = recur.randn({4, 2, 3}, "float64"), recur.randn({2, 3}, "float64")
    attn:set_memory(memory)
    local _, w0 = attn:forward_step(query)
    attn:backward_step(recur.ones({2, 3}, "float64"))
    local params, grads = attn:parameters()
    for i, p in ipairs(params) do p:add_(grads[i]:mul(-0.5)) end
    local _, w1 = attn:attend(query)
    assert.is_true(max_diff(w0, w1) > 1e-3)
  end)

  it("attend gives forward_step's values and keeps no tape", function()
    recur.manual_seed(13)
    for _, score in ipairs(SCORES) do
      local attn = make(score, 4, score == "dot" and 4 or 3, 5)
      attn:set_memory(recur.randn({5, 3, attn.memory_size}, "float64"), recur.tensor({2, 5, 4}, "int64"))
      local query = recur.randn({3, 4}, "float64")
      local c1, w1 = attn:attend(query)
      assert.are.equal(0, #attn._tape)
      local c2, w2 = attn:forward_step(query)
      assert.are.equal(0, max_diff(c1, c2))
      assert.are.equal(0, max_diff(w1, w2))
    end
  end)

  it("keeps its own copy of the memory (an encoder reuses its output buffer)", function()
    recur.manual_seed(18)
    local attn = make("dot", 3, 3)
    local memory, query = recur.randn({4, 2, 3}, "float64"), recur.randn({2, 3}, "float64")
    attn:set_memory(memory)
    local c1 = attn:attend(query)
    memory:fill_(5)
    assert.are.equal(0, max_diff(attn:attend(query), c1))
  end)

  it("keeps its own copy of the query (a decoder updates its state in place)", function()
    recur.manual_seed(14)
    local attn = make("general", 3, 3)
    local memory = recur.randn({4, 2, 3}, "float64")
    local query, gc = recur.randn({2, 3}, "float64"), recur.randn({2, 3}, "float64")
    attn:set_memory(memory)
    attn:forward_step(query)
    local g1 = attn:backward_step(gc)
    local gm1 = attn:memory_grad():clone()
    attn:set_memory(memory)
    attn:forward_step(query)
    query:fill_(100)
    assert.are.equal(0, max_diff(attn:backward_step(gc), g1))
    assert.are.equal(0, max_diff(attn:memory_grad(), gm1))
  end)

  it("backward_step without gweights is backward_step with zero gweights", function()
    recur.manual_seed(15)
    local attn = make("concat", 3, 4, 5)
    local memory, query = recur.randn({4, 2, 4}, "float64"), recur.randn({2, 3}, "float64")
    local gc = recur.randn({2, 4}, "float64")
    attn:set_memory(memory, recur.tensor({4, 2}, "int64"))
    attn:forward_step(query)
    local g1 = attn:backward_step(gc)
    attn:set_memory(memory, recur.tensor({4, 2}, "int64"))
    attn:forward_step(query)
    assert.are.equal(0, max_diff(attn:backward_step(gc, recur.zeros({2, 4}, "float64")), g1))
  end)

  it("memory_grad sums over the steps; clear and set_memory start again", function()
    recur.manual_seed(16)
    local attn = make("additive", 3, 4, 5)
    local memory = recur.randn({4, 2, 4}, "float64")
    local q1, q2, gc = recur.randn({2, 3}, "float64"), recur.randn({2, 3}, "float64"), recur.randn({2, 4}, "float64")
    local function one(q)
      attn:set_memory(memory)
      attn:forward_step(q)
      attn:backward_step(gc)
      return attn:memory_grad():clone()
    end
    local g1, g2 = one(q1), one(q2)
    attn:set_memory(memory)
    attn:forward_step(q1)
    attn:forward_step(q2)
    attn:backward_step(gc)
    attn:backward_step(gc)
    assert.is_true(max_diff(attn:memory_grad(), g1 + g2) < 1e-14)
    attn:clear()
    assert.are.equal(0, attn:memory_grad():abs():max())
    assert.are.equal(0, #attn._tape)
  end)

  it("reorder picks batch rows of the memory and the lengths, and can widen the batch", function()
    recur.manual_seed(17)
    for _, score in ipairs(SCORES) do
      local attn = make(score, 4, score == "dot" and 4 or 3, 5)
      local memory = recur.randn({5, 3, attn.memory_size}, "float64")
      local lengths = {5, 2, 3}
      local query = recur.randn({3, 4}, "float64")
      attn:set_memory(memory, recur.tensor(lengths, "int64"))
      local c, w = attn:attend(query)
      local index = {3, 1, 1, 2, 3}
      local q2 = recur.zeros({#index, 4}, "float64")
      for j, i in ipairs(index) do q2:select(1, j):copy_(query:select(1, i)) end
      attn:reorder(recur.tensor(index, "int64"))
      local c2, w2 = attn:attend(q2)
      for j, i in ipairs(index) do
        assert.are.equal(0, max_diff(c2:select(1, j), c:select(1, i)))
        assert.are.equal(0, max_diff(w2:select(1, j), w:select(1, i)))
        -- the lengths moved with their rows
        assert.is_true(w2:get(j, lengths[i]) > 0)
        if lengths[i] < 5 then assert.are.equal(0, w2:get(j, lengths[i] + 1)) end
      end
    end
  end)
end)

describe("Attention errors", function()
  local function attn_f64(score) return make(score, 3, 3, 4) end

  it("refuses bad options, naming them", function()
    helpers.assert_option_errors("Attention", function(o) return nn.Attention(o) end, {
      {{query_size = 3}, "option score is required"},
      {{score = "cosine", query_size = 3}, "option score must be one of dot, general, concat, additive"},
      {{score = "dot"}, "query_size must be a positive integer"},
      {{score = "dot", query_size = 3, memory_size = 4}, "dot score needs query_size = memory_size"},
      {{score = "general", query_size = 3, attn_size = 4}, "attn_size applies only to"},
      {{score = "additive", query_size = 3, attn_size = 0}, "attn_size must be a positive integer"},
      {{score = "dot", query_size = 3, dtype = "int64"}, "dtype must be"},
      {{score = "dot", query_size = 3, size = 3}, "unknown option 'size'"},
    })
  end)

  it("set_memory checks the memory and the lengths", function()
    local attn = attn_f64("general")
    local m = recur.randn({4, 2, 3}, "float64")
    helpers.assert_fails_with(function() attn:set_memory(recur.randn({4, 3}, "float64")) end,
      "Attention.set_memory: memory must be 3-D")
    helpers.assert_fails_with(function() attn:set_memory(recur.randn({4, 2, 5}, "float64")) end,
      "Attention.set_memory: memory has shape (4x2x5), expected (S,B,3)")
    helpers.assert_fails_with(function() attn:set_memory(m:to("float32")) end,
      "Attention.set_memory: memory is float32 but the module is float64")
    helpers.assert_fails_with(function() attn:set_memory(m, recur.tensor({1, 2}, "float64")) end,
      "Attention.set_memory: lengths must be an int64 tensor with one length per batch entry (2)")
    helpers.assert_fails_with(function() attn:set_memory(m, recur.tensor({1, 2, 3}, "int64")) end,
      "one length per batch entry (2)")
    helpers.assert_fails_with(function() attn:set_memory(m, recur.tensor({4, 5}, "int64")) end,
      "Attention.set_memory: lengths[2] = 5 is outside 1..4")
    helpers.assert_fails_with(function() attn:set_memory(m, recur.tensor({0, 4}, "int64")) end,
      "Attention.set_memory: lengths[1] = 0 is outside 1..4")
  end)

  it("steps check the order of calls and the shapes", function()
    local attn = attn_f64("additive")
    helpers.assert_fails_with(function() attn:forward_step(recur.randn({2, 3}, "float64")) end,
      "Attention.forward_step: no memory (call set_memory first)")
    helpers.assert_fails_with(function() attn:memory_grad() end, "Attention.memory_grad: no memory")
    attn:set_memory(recur.randn({4, 2, 3}, "float64"))
    helpers.assert_fails_with(function() attn:forward_step(recur.randn({3, 3}, "float64")) end,
      "Attention.forward_step: query has shape (3x3), expected (2x3)")
    helpers.assert_fails_with(function() attn:attend(recur.randn({2, 3}, "float32")) end,
      "Attention.attend: query is float32 but the module is float64")
    helpers.assert_fails_with(function() attn:forward_step("q") end,
      "Attention.forward_step: query must be a tensor, got string")
    helpers.assert_fails_with(function() attn:backward_step(recur.randn({2, 3}, "float64")) end,
      "Attention.backward_step: the tape is empty")
    attn:forward_step(recur.randn({2, 3}, "float64"))
    helpers.assert_fails_with(function() attn:backward_step(recur.randn({2, 4}, "float64")) end,
      "Attention.backward_step: gcontext has shape (2x4), expected (2x3)")
    helpers.assert_fails_with(function()
      attn:backward_step(recur.randn({2, 3}, "float64"), recur.randn({2, 3}, "float64"))
    end, "Attention.backward_step: gweights has shape (2x3), expected (2x4)")
    assert.are.equal(1, #attn._tape) -- a refused call pops nothing
  end)

  it("reorder checks its index", function()
    local attn = attn_f64("dot")
    attn:set_memory(recur.randn({4, 2, 3}, "float64"))
    helpers.assert_fails_with(function() attn:reorder(recur.tensor({1, 2}, "float64")) end,
      "Attention.reorder: index must be a 1-D int64 tensor")
    helpers.assert_fails_with(function() attn:reorder(recur.tensor({1, 3}, "int64")) end,
      "Attention.reorder: index 3 (at position 2) is outside 1..2 (the batch)")
    helpers.assert_fails_with(function() attn:reorder(recur.tensor({0}, "int64")) end,
      "Attention.reorder: index 0 (at position 1) is outside 1..2")
  end)

  it("the C step refuses what would read out of bounds", function()
    local q, k, m = recur.randn({2, 3}, "float64"), recur.randn({4, 2, 3}, "float64"), recur.randn({4, 2, 5}, "float64")
    helpers.assert_fails_with(function() recur.attention_forward(q, k, nil, m, recur.tensor({1, 5}, "int64")) end,
      "attention: length 5 (batch entry 2) is outside 1..4 (the source length)")
    helpers.assert_fails_with(function() recur.attention_forward(q, recur.randn({4, 3, 3}, "float64"), nil, m) end,
      "attention: keys expected (4x2x3), got (4x3x3)")
    helpers.assert_fails_with(function() recur.attention_forward(q, k, recur.randn({4}, "float64"), m) end,
      "attention: v has 4 elements for an attention size of 3")
    helpers.assert_fails_with(function() recur.attention_forward(q:to("float32"), k, nil, m) end,
      "attention: dtype mismatch")
    local c, w = recur.attention_forward(q, k, nil, m)
    helpers.assert_fails_with(function()
      recur.attention_backward(c, nil, w, q, k, nil, m, nil, recur.zeros({4, 2, 3}, "float64"), m)
    end, "attention backward: gmemory shares storage with an input")
  end)
end)

-- The bindings with random small shapes (zeros among them), near misses and bad
-- lengths: every call returns or raises a Lua error with a message, never crashes.
-- `make sanitize` runs this under ASan and UBSan, which catch an out-of-bounds access.
describe("Attention bindings with random shapes", function()
  it("return or raise, and backward fits forward", function()
    local state = 16
    local function R(lo, hi) -- a small generator of its own: the draws do not depend on recur's
      state = (state * 1103515245 + 12345) % 2147483648
      return lo + state % (hi - lo + 1)
    end
    local ran = 0
    for _ = 1, 400 do
      local S, B, K, H = R(0, 4), R(0, 4), R(0, 5), R(0, 5)
      local dt = R(0, 1) == 1 and "float32" or "float64"
      local function maybe(n) return R(0, 7) == 0 and math.max(0, n + R(0, 2) - 1) or n end
      local q = recur.randn({maybe(B), maybe(K)}, dt)
      local keys = recur.randn({maybe(S), maybe(B), maybe(K)}, dt)
      local v = R(0, 1) == 1 and recur.randn({maybe(K)}, dt) or nil
      local m = recur.randn({maybe(S), maybe(B), maybe(H)}, dt)
      local lengths
      if R(0, 2) > 0 then
        local t = {}
        for b = 1, maybe(B) do t[b] = R(0, 5) == 0 and R(0, S + 2) - 1 or R(1, math.max(S, 1)) end
        lengths = #t > 0 and recur.tensor(t, "int64") or recur.zeros({0}, "int64")
      end
      if R(0, 9) == 0 then m = m:transpose(1, 2) end
      local ok, c, w = pcall(recur.attention_forward, q, keys, v, m, lengths)
      if ok then
        ran = ran + 1
        local gm = recur.zeros(m:size(), dt)
        local gk = (v == nil and K == H and R(0, 1) == 1) and gm or recur.zeros(keys:size(), dt)
        local gv = v and recur.zeros(v:size(), dt) or nil
        local gw = R(0, 1) == 1 and recur.randn({B, S}, dt) or nil
        local g = recur.attention_backward(c, gw, w, q, keys, v, m, lengths, gk, gm, gv)
        assert.are.same({B, K}, g:size())
        local idx = {}
        for j = 1, R(1, 5) do idx[j] = R(0, B + 1) end
        local okr, r = pcall(recur.attention_reorder, m, recur.tensor(idx, "int64"))
        assert.is_true(okr or type(r) == "string")
      else
        assert.are.equal("string", type(c))
        assert.matches("^attention: ", c)
      end
    end
    assert.is_true(ran > 50)
  end)
end)
