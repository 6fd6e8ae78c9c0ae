-- recur.nn losses: CrossEntropy (fused C, ignore_index, mask, mean/sum), BCEWithLogits
-- and MSE against PyTorch fixtures, hand-computed values and float64 gradient checks.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local nn = recur.nn

local fixture, T, max_abs_diff, err_of = helpers.nn_fixture, helpers.tensor,
  helpers.max_abs_diff, helpers.err_of

it("runs on Lua 5.4", function()
  assert.are.equal("Lua 5.4", _VERSION)
end)

describe("CrossEntropy", function()
  local fx = fixture("cross_entropy")

  for _, dtype in ipairs({"float32", "float64"}) do
    it("matches torch cross_entropy with ignore_index, mean and sum (" .. dtype .. ")", function()
      local logits, targets = T(fx.logits, dtype), T(fx.targets, "int64")
      local tol = dtype == "float32" and 1e-5 or 1e-12
      local ce = nn.CrossEntropy({ignore_index = fx.ignore_index})
      assert.is_true(math.abs(ce:forward(logits, targets) - fx.loss_mean) < tol)
      assert.are.equal(12, ce.count)   -- 15 targets, 3 of them padding
      local g = ce:backward(logits, targets)
      assert.are.equal(dtype, g:dtype())
      assert(max_abs_diff(g, T(fx.grad_mean, dtype)) < tol)
      local ces = nn.CrossEntropy({ignore_index = fx.ignore_index, reduction = "sum"})
      assert.is_true(math.abs(ces:forward(logits, targets) - fx.loss_sum) < tol * 20)
      assert(max_abs_diff(ces:backward(logits, targets), T(fx.grad_sum, dtype)) < tol)
    end)
  end

  it("a mask gives the same weighted mean as the reference", function()
    local logits = T(fx.logits)
    local ce = nn.CrossEntropy()
    local loss = ce:forward(logits, T(fx.targets_unpadded, "int64"), T(fx.mask))
    assert.is_true(math.abs(loss - fx.loss_mask) < 1e-5)
    local g = ce:backward(logits, T(fx.targets_unpadded, "int64"), T(fx.mask))
    assert(max_abs_diff(g, T(fx.grad_mask)) < 1e-5)
    -- an int64 mask works as well
    local mask64 = T(fx.mask):to("int64")
    assert.is_true(math.abs(ce:forward(logits, T(fx.targets_unpadded, "int64"), mask64) - fx.loss_mask) < 1e-5)
  end)

  it("takes (N,V) logits and computes a hand-checked value in nats", function()
    -- uniform logits over 4 classes: loss log 4, perplexity 4
    local ce = nn.CrossEntropy()
    local loss = ce:forward(recur.zeros(3, 4), recur.tensor({1, 2, 4}, "int64"))
    assert.is_true(math.abs(loss - math.log(4)) < 1e-6)
    assert.is_true(math.abs(ce:perplexity() - 4) < 1e-5)
    assert.is_true(math.abs(nn.perplexity(loss) - 4) < 1e-5)
    -- logits (0, log 3): p(class 2) = 3/4
    local l2 = ce:forward(recur.tensor({{0, math.log(3)}}), recur.tensor({2}, "int64"))
    assert.is_true(math.abs(l2 - math.log(4 / 3)) < 1e-6)
    local g = ce:backward(recur.tensor({{0, math.log(3)}}), recur.tensor({2}, "int64"))
    assert.is_true(math.abs(g:get(1, 1) - 0.25) < 1e-6)
    assert.is_true(math.abs(g:get(1, 2) + 0.25) < 1e-6)
  end)

  it("stays finite for huge logits", function()
    local ce = nn.CrossEntropy()
    local loss = ce:forward(recur.tensor({{1000, 0, -1000}}), recur.tensor({2}, "int64"))
    assert.is_true(math.abs(loss - 1000) < 1e-3)
  end)

  it("passes float64 gradient checks (ignore_index, mask, sum)", function()
    recur.manual_seed(1)
    local logits = recur.randn(4, 3, 7, "float64")
    local targets = recur.tensor({{1, 7, 0}, {2, 0, 3}, {4, 4, 4}, {0, 5, 6}}, "int64")
    local r = recur.gradcheck(nn.CrossEntropy({ignore_index = 0}), {logits, targets})
    assert(r.max_error < 1e-7, tostring(r))
    local mask = recur.tensor({{1, 0.5, 0}, {1, 0, 2}, {1, 1, 1}, {0, 1, 1}}, "float64")
    local full = recur.tensor({{1, 7, 1}, {2, 1, 3}, {4, 4, 4}, {1, 5, 6}}, "int64")
    r = recur.gradcheck(nn.CrossEntropy({reduction = "sum"}), {logits, full, mask})
    assert(r.max_error < 1e-7, tostring(r))
  end)

  it("an all-padding batch has loss 0 and zero gradient", function()
    local ce = nn.CrossEntropy({ignore_index = 0})
    local x = recur.randn(2, 5)
    assert.are.equal(0, ce:forward(x, recur.tensor({0, 0}, "int64")))
    assert.are.equal(0, ce:backward(x, recur.tensor({0, 0}, "int64")):abs():max())
  end)

  it("recomputes in backward when called with other tensors than forward", function()
    local ce = nn.CrossEntropy()
    local a, b = recur.randn(3, 4), recur.randn(3, 4)
    local t = recur.tensor({1, 2, 3}, "int64")
    ce:forward(a, t)
    local gb = ce:backward(b, t)
    local ref = nn.CrossEntropy()
    ref:forward(b, t)
    assert.are.equal(0, max_abs_diff(gb, ref:backward(b, t)))
  end)

  it("names an out-of-range target and the number of classes", function()
    local ce = nn.CrossEntropy({ignore_index = 0})
    local msg = err_of(ce.forward, ce, recur.zeros(3, 5), recur.tensor({1, 6, 0}, "int64"))
    assert.matches("target 6", msg)
    assert.matches("5 classes", msg)
    assert.matches("target 0", err_of(nn.CrossEntropy().forward, nn.CrossEntropy(), recur.zeros(1, 5),
      recur.tensor({0}, "int64")))
    assert.matches("shape", err_of(ce.forward, ce, recur.zeros(3, 5), recur.tensor({1, 2}, "int64")))
    assert.matches("int64", err_of(ce.forward, ce, recur.zeros(3, 5), recur.tensor({1, 2, 3})))
    assert.matches("reduction", err_of(nn.CrossEntropy, {reduction = "max"}))
  end)

  it("handles a large vocabulary (fused C over rows)", function()
    recur.manual_seed(2)
    local N, V = 512, 10000
    local logits = recur.randn(N, V)
    local ids = {}
    for i = 1, N do ids[i] = recur.random_integer(1, V) end
    local targets = recur.tensor(ids, "int64")
    local ce = nn.CrossEntropy()
    local loss = ce:forward(logits, targets)
    local g = ce:backward(logits, targets)
    -- the same mean as log_softmax computed by the tensor ops
    local lsm = logits:log_softmax()
    local ref = 0
    for i = 1, N do ref = ref - lsm:get(i, ids[i]) end
    assert.is_true(math.abs(loss - ref / N) < 1e-4)
    assert.are.same({N, V}, g:size())
    -- each row of the gradient is softmax - onehot (mean reduction: divided by N)
    local row = 7
    local p = logits:select(1, row):softmax()
    assert.are.near((p:get(ids[row]) - 1) / N, g:get(row, ids[row]), 1e-7)
    assert.are.near(g:select(1, row):sum(), 0, 1e-6)
  end)
end)

describe("BCEWithLogits and MSE", function()
  local fx = fixture("bce_mse")

  it("match PyTorch (values and gradients, mean reduction)", function()
    local x, t = T(fx.x), T(fx.target)
    local bce = nn.BCEWithLogits()
    assert.is_true(math.abs(bce:forward(x, t) - fx.bce) < 1e-6)
    assert(max_abs_diff(bce:backward(x, t), T(fx.grad_bce)) < 1e-6)
    local mse = nn.MSE()
    assert.is_true(math.abs(mse:forward(x, t) - fx.mse) < 1e-5)
    assert(max_abs_diff(mse:backward(x, t), T(fx.grad_mse)) < 1e-6)
  end)

  it("hand-computed values, sum reduction, extreme logits", function()
    local bce = nn.BCEWithLogits({reduction = "sum"})
    -- x = 0: log 2 whatever the target
    assert.is_true(math.abs(bce:forward(recur.zeros(3), recur.tensor({0, 1, 0.5})) - 3 * math.log(2)) < 1e-6)
    -- stable for |x| = 100: loss 100 for the wrong side, 0 for the right one
    assert.is_true(math.abs(bce:forward(recur.tensor({100, -100}), recur.tensor({0, 0})) - 100) < 1e-4)
    local mse = nn.MSE({reduction = "sum"})
    assert.are.equal(1 + 4, mse:forward(recur.tensor({1, 2}), recur.tensor({0, 0})))
    assert.are.same({2, 4}, mse:backward(recur.tensor({1, 2}), recur.tensor({0, 0})):totable())
  end)

  it("pass float64 gradient checks", function()
    recur.manual_seed(3)
    local x = recur.randn(3, 4, "float64")
    local t = recur.rand(3, 4, "float64")
    local r = recur.gradcheck(nn.BCEWithLogits(), {x, t})
    assert(r.max_error < 1e-7, tostring(r))
    r = recur.gradcheck(nn.MSE({reduction = "sum"}), {x, t})
    assert(r.max_error < 1e-7, tostring(r))
  end)

  it("name mismatched shapes", function()
    assert.matches("does not match", err_of(nn.MSE().forward, nn.MSE(), recur.zeros(2, 3), recur.zeros(3, 2)))
    assert.matches("does not match", err_of(nn.BCEWithLogits().forward, nn.BCEWithLogits(), recur.zeros(2), recur.zeros(3)))
  end)
end)

describe("CrossEntropy:backward's errors", function()
  it("name the caller's line, also when backward has to run forward first", function()
    local ce = nn.CrossEntropy()
    local ok, err = pcall(function()
      local g = ce:backward(recur.zeros(2, 3), recur.tensor({1.5, 2}))
      return g
    end)
    assert.is_false(ok)
    assert.matches("^spec/nn/Criterion_spec%.lua:%d+: CrossEntropy: targets must be an int64 tensor", err)
  end)
end)
