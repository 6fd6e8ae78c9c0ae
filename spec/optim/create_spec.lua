-- recur.optim.create: the class each name builds, the options it passes on (checked
-- with a hand-computed SGD-with-momentum step), and the names and options it refuses.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local optim = recur.optim

local function one_param(value, grad)
  local p, g = recur.tensor({ value }, "float64"), recur.tensor({ grad }, "float64")
  return { params = { p }, grads = { g } }, p
end

describe("optim.create", function()
  it("builds the class each name stands for", function()
    local want = { sgd = optim.SGD, adam = optim.Adam, adamw = optim.AdamW,
      rmsprop = optim.RMSprop, adagrad = optim.Adagrad }
    for name, class in pairs(want) do
      local opt = optim.create(name, one_param(1, 0), { lr = 0.25, weight_decay = 0.125 })
      assert.are.equal(class, getmetatable(opt), name)
      assert.are.equal(0.25, opt.lr, name)
      assert.are.equal(0.125, opt.weight_decay, name)
    end
    assert.are.same({ "adagrad", "adam", "adamw", "rmsprop", "sgd" }, optim.names)
  end)

  it("passes momentum to SGD: two steps by hand", function()
    -- p = 1, g = 0.5, lr = 0.1, momentum = 0.9: buf = 0.5, p = 0.95;
    -- then buf = 0.9 * 0.5 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855
    local source, p = one_param(1, 0.5)
    local opt = optim.create("sgd", source, { lr = 0.1, momentum = 0.9 })
    opt:step()
    assert.is_true(math.abs(p:get(1) - 0.95) < 1e-15)
    opt:step()
    assert.is_true(math.abs(p:get(1) - 0.855) < 1e-15, tostring(p:get(1)))
  end)

  it("passes momentum to RMSprop", function()
    local opt = optim.create("rmsprop", one_param(1, 0.5), { lr = 0.01, momentum = 0.5 })
    assert.are.equal(0.5, opt.momentum)
    assert.is_not_nil(opt.state.momentum_buffer)
  end)

  it("keeps each class's defaults for options not given", function()
    assert.are.equal(1e-2, optim.create("adamw", (one_param(1, 0))).weight_decay)
    assert.are.equal(1e-3, optim.create("adam", (one_param(1, 0))).lr)
    helpers.assert_fails_with(function() optim.create("sgd", (one_param(1, 0))) end,
      "SGD: option lr is required")
  end)

  it("refuses momentum for the optimizers that have none", function()
    for _, name in ipairs({ "adam", "adamw", "adagrad" }) do
      helpers.assert_fails_with(function()
        optim.create(name, one_param(1, 0), { lr = 0.1, momentum = 0.9 })
      end, "optim.create: momentum applies to sgd and rmsprop, not to " .. name)
    end
  end)

  it("refuses an unknown name, listing the known ones", function()
    helpers.assert_fails_with(function() optim.create("Adam", (one_param(1, 0))) end,
      "optim.create: unknown optimizer 'Adam' (known: adagrad, adam, adamw, rmsprop, sgd)")
    helpers.assert_fails_with(function() optim.create(nil, (one_param(1, 0))) end,
      "optim.create: unknown optimizer nil (known: ")
    helpers.assert_fails_with(function() optim.create("sgd", one_param(1, 0), 0.1) end,
      "optim.create: options must be a table, got number")
  end)
end)
