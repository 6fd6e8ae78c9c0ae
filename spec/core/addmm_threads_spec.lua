-- Large float32 products (core.addmm, nn.Linear: a language model's output layer and
-- its gradients) run on recur's blocked kernel, one FMA chain per element: the same
-- bits on 1 and 2 threads, for every transpose a Linear layer uses, and within float32
-- rounding of the float64 product.
local recur = require "recur"

describe("float32 addmm over a million multiply-adds", function()
  local adapt
  before_each(function() adapt = recur.thread_adapt().enabled; recur.thread_adapt(false) end)
  after_each(function() recur.thread_adapt(adapt); recur.set_num_threads(2) end)

  local function product(threads, a, b, ta, tb, beta, c0)
    recur.set_num_threads(threads)
    local c = c0:clone()
    recur.core.addmm(c, a, b, 1, beta, ta, tb)
    return c
  end

  it("adds the bias row in the same product, one answer on any thread count (y = x W^T + b)", function()
    recur.manual_seed(5)
    local M, N, K = 70, 300, 130
    local x, w, bias = recur.randn(M, K), recur.randn(N, K), recur.randn(N):mul(100)
    local one, two
    for threads = 1, 2 do
      recur.set_num_threads(threads)
      local y = recur.zeros(M, N)
      recur.core.addmm(y, x, w, 1, 0, false, true, bias)
      if threads == 1 then one = y else two = y end
    end
    assert.are.same(one:totable(), two:totable())
    local want = recur.zeros(M, N, "float64")
    recur.core.addmm(want, x:to("float64"), w:to("float64"), 1, 0, false, true, bias:to("float64"))
    assert.is_true(one:to("float64"):sub(want):abs():max() < 1e-3)
  end)

  for _, case in ipairs({{false, true}, {false, false}, {true, false}}) do
    local ta, tb = case[1], case[2]
    it(string.format("gives one answer on any thread count (ta=%s, tb=%s)", tostring(ta), tostring(tb)), function()
      recur.manual_seed(4)
      local M, N, K = 70, 300, 130
      local a = ta and recur.randn(K, M) or recur.randn(M, K)
      local b = tb and recur.randn(N, K) or recur.randn(K, N)
      for _, beta in ipairs({0, 1}) do
        local c0 = recur.randn(M, N)
        local one, two = product(1, a, b, ta, tb, beta, c0), product(2, a, b, ta, tb, beta, c0)
        assert.are.same(one:totable(), two:totable())
        local want = c0:to("float64"):mul(beta)
        recur.core.addmm(want, a:to("float64"), b:to("float64"), 1, 1, ta, tb)
        assert.is_true(one:to("float64"):sub(want):abs():max() < 1e-3)
      end
    end)
  end
end)
