-- recur.optim learning-rate schedules: hand-computed sequences, PyTorch 1.13's
-- torch.optim.lr_scheduler (spec/fixtures/optim/schedules.json), resume through
-- state_dict, and the errors.
local recur = require "recur"
local helpers = require "spec.support.helpers"
local optim = recur.optim

local assert_fails_with = helpers.assert_fails_with

local function new_opt(lr)
  return optim.SGD({params = {recur.zeros(1)}, grads = {recur.zeros(1)}}, {lr = lr or 0.1})
end

-- opt.lr at epoch 0 (after construction) and after each of `n` steps.
local function sequence(opt, sched, n, metrics)
  local lrs = {opt.lr}
  for k = 1, n do
    if metrics then sched:step(metrics[k]) else sched:step() end
    lrs[#lrs + 1] = opt.lr
    assert.are.equal(opt.lr, sched:get_last_lr())
  end
  return lrs
end

local function close_seq(got, want, rtol)
  assert.are.equal(#want, #got)
  for i = 1, #want do
    assert(math.abs(got[i] - want[i]) <= rtol * math.abs(want[i]),
      string.format("epoch %d: %.17g vs %.17g", i - 1, got[i], want[i]))
  end
end

describe("recur.optim schedules", function()
  it("runs on Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  describe("hand-computed sequences", function()
    it("StepLR halves every 2 epochs", function()
      local opt = new_opt(1)
      local s = optim.StepLR(opt, {step_size = 2, gamma = 0.5})
      assert.are.same({1, 1, 0.5, 0.5, 0.25, 0.25, 0.125}, sequence(opt, s, 6))
    end)

    it("ExponentialLR multiplies by gamma each epoch", function()
      local opt = new_opt(2)
      local s = optim.ExponentialLR(opt, {gamma = 0.5})
      assert.are.same({2, 1, 0.5, 0.25}, sequence(opt, s, 3))
    end)

    it("CosineAnnealingLR follows half a cosine down to eta_min, then back up", function()
      local opt = new_opt(1)
      local s = optim.CosineAnnealingLR(opt, {T_max = 4, eta_min = 0.2})
      -- 0.2 + 0.8 * (1 + cos(pi k / 4)) / 2
      local h = 0.8 * (1 + math.sqrt(0.5)) / 2
      local l = 0.8 * (1 - math.sqrt(0.5)) / 2
      close_seq(sequence(opt, s, 8), {1, 0.2 + h, 0.6, 0.2 + l, 0.2, 0.2 + l, 0.6, 0.2 + h, 1}, 1e-15)
    end)

    it("ReduceLROnPlateau waits patience epochs, then cools down", function()
      local opt = new_opt(1)
      local s = optim.ReduceLROnPlateau(opt, {patience = 1, factor = 0.5, cooldown = 2})
      -- epoch: 1 best; 2 bad(1); 3 bad(2 > 1) -> 0.5, cooldown 2; 4, 5 cooling;
      -- 6 bad(1); 7 bad(2) -> 0.25; 8 better than 1.0 * (1 - 1e-4): best, no change
      local metrics = {1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.5}
      assert.are.same({1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25}, sequence(opt, s, 8, metrics))
    end)

    it("ReduceLROnPlateau stops at min_lr and skips changes below eps", function()
      local opt = new_opt(1)
      local s = optim.ReduceLROnPlateau(opt, {patience = 0, factor = 0.1, min_lr = 0.05})
      assert.are.same({1, 1, 0.1, 0.05, 0.05}, sequence(opt, s, 4, {3, 3, 3, 3}))
    end)

    it("ReduceLROnPlateau in max mode with an absolute threshold", function()
      local opt = new_opt(1)
      local s = optim.ReduceLROnPlateau(opt, {mode = "max", threshold_mode = "abs", threshold = 0.1,
        patience = 0, factor = 0.5})
      -- 0.5 best; 0.55 not > 0.5 + 0.1 -> 0.5; 0.7 better; 0.75 -> 0.25
      assert.are.same({1, 1, 0.5, 0.5, 0.25}, sequence(opt, s, 4, {0.5, 0.55, 0.7, 0.75}))
    end)
  end)

  it("matches torch.optim.lr_scheduler", function()
    local fix = helpers.read_json("spec/fixtures/optim/schedules.json")
    for _, case in ipairs(fix.cases) do
      local opt = new_opt(0.1)
      local s = optim[case.name](opt, case.options)
      -- PyTorch computes the recursive forms (products of factors); recur's closed forms
      -- agree to rounding.
      close_seq(sequence(opt, s, case.steps, case.metrics), case.lrs, 1e-13)
    end
  end)

  describe("resume", function()
    local makers = {
      StepLR = function(o) return optim.StepLR(o, {step_size = 3, gamma = 0.3}) end,
      ExponentialLR = function(o) return optim.ExponentialLR(o, {gamma = 0.7}) end,
      CosineAnnealingLR = function(o) return optim.CosineAnnealingLR(o, {T_max = 7, eta_min = 1e-3}) end,
      ReduceLROnPlateau = function(o) return optim.ReduceLROnPlateau(o, {patience = 1, cooldown = 1}) end,
    }
    local metrics = {5, 4, 4, 4, 4.5, 3, 3, 3, 3, 3, 2, 2, 2, 2}
    for name, make in pairs(makers) do
      it(name .. " continues bitwise through state_dict and encode_meta", function()
        local o1 = new_opt(0.1)
        local s1 = make(o1)
        local m = name == "ReduceLROnPlateau" and metrics or nil
        local full = sequence(o1, s1, #metrics, m)

        local o2 = new_opt(0.1)
        local s2 = make(o2)
        local first = sequence(o2, s2, 5, m)
        local _, ometa = o2:state_dict()
        local saved = recur.io.encode_meta({sched = s2:state_dict(), optim = ometa})

        local o3 = new_opt(0.1)
        local s3 = make(o3)
        local back = recur.io.decode_meta(saved)
        o3:load_state_dict({}, back.optim)
        s3:load_state_dict(back.sched)
        local rest = {}
        for k = 6, #metrics do
          if m then s3:step(m[k]) else s3:step() end
          rest[#rest + 1] = o3.lr
        end
        for k = 1, 6 do assert.are.equal(full[k], first[k]) end
        for k = 7, #full do assert.are.equal(full[k], rest[k - 6]) end
      end)
    end

    it("ReduceLROnPlateau keeps an unset best out of the state (JSON has no infinity)", function()
      local s = optim.ReduceLROnPlateau(new_opt())
      assert.is_nil(s:state_dict().best)
      recur.io.encode_meta(s:state_dict())
    end)
  end)

  describe("ReduceLROnPlateau, hand-computed", function()
    -- lr after each metric, from opt.lr = 0.1
    local function lrs(opts, metrics)
      local opt = new_opt()
      local sched = optim.ReduceLROnPlateau(opt, opts)
      local out = {}
      for i, m in ipairs(metrics) do
        sched:step(m)
        out[i] = opt.lr
      end
      return out
    end

    it("threshold_mode 'abs' compares with best - threshold, 'rel' with best * (1 - threshold)", function()
      -- from best 10 with threshold 0.1: 9.5 improves by abs (< 9.9), not by rel (< 9)
      local metrics = {10, 9.5}
      assert.are.same({0.1, 0.1}, lrs({patience = 0, threshold = 0.1, threshold_mode = "abs"}, metrics))
      assert.are.same({0.1, 0.1 * 0.1}, lrs({patience = 0, threshold = 0.1, threshold_mode = "rel"}, metrics))
    end)

    it("eps skips a reduction smaller than eps", function()
      -- 0.1 -> 0.05 changes lr by 0.05: done with the default eps, skipped with eps = 0.1
      assert.are.same({0.1, 0.05}, lrs({patience = 0, factor = 0.5}, {1, 1}))
      assert.are.same({0.1, 0.1}, lrs({patience = 0, factor = 0.5, eps = 0.1}, {1, 1}))
    end)
  end)

  describe("errors", function()
    local cases = {
      {"a missing step_size", function() optim.StepLR(new_opt(), {}) end, "option step_size is required"},
      {"a fractional step_size", function() optim.StepLR(new_opt(), {step_size = 1.5}) end, "step_size must be a positive integer"},
      {"an unknown option", function() optim.ExponentialLR(new_opt(), {gamma = 0.9, last_epoch = 3}) end, "unknown option 'last_epoch'"},
      {"a zero T_max", function() optim.CosineAnnealingLR(new_opt(), {T_max = 0}) end, "T_max must be positive"},
      {"a factor of 1", function() optim.ReduceLROnPlateau(new_opt(), {factor = 1}) end, "factor must be in [0, 1), got 1"},
      {"a negative factor", function() optim.ReduceLROnPlateau(new_opt(), {factor = -0.5}) end, "ReduceLROnPlateau: factor must be in [0, 1)"},
      {"a fractional patience", function() optim.ReduceLROnPlateau(new_opt(), {patience = 1.5}) end, "ReduceLROnPlateau: patience must be an integer >= 0"},
      {"a negative cooldown", function() optim.ReduceLROnPlateau(new_opt(), {cooldown = -1}) end, "ReduceLROnPlateau: cooldown must be an integer >= 0"},
      {"a negative min_lr", function() optim.ReduceLROnPlateau(new_opt(), {min_lr = -1}) end, "ReduceLROnPlateau: min_lr must be >= 0"},
      {"a patience given as a string", function() optim.ReduceLROnPlateau(new_opt(), {patience = "2"}) end, "option patience must be a number"},
      {"a negative gamma", function() optim.ExponentialLR(new_opt(), {gamma = -0.9}) end, "ExponentialLR: gamma must be >= 0"},
      {"a negative eta_min", function() optim.CosineAnnealingLR(new_opt(), {T_max = 3, eta_min = -1}) end, "CosineAnnealingLR: eta_min must be >= 0"},
      {"an unknown mode", function() optim.ReduceLROnPlateau(new_opt(), {mode = "up"}) end, "mode must be 'min' or 'max'"},
      {"a non-optimizer", function() optim.StepLR({}, {step_size = 1}) end, "expected an optimizer"},
      {"an epoch argument", function() optim.StepLR(new_opt(), {step_size = 1}):step(3) end, "StepLR:step takes no argument"},
      {"a plateau step without a metric", function() optim.ReduceLROnPlateau(new_opt()):step() end, "expected the metric"},
      {"a bad state", function() optim.StepLR(new_opt(), {step_size = 1}):load_state_dict({last_epoch = -1}) end, "must be"},
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1], function() assert_fails_with(c[2], c[3]) end)
    end
  end)
end)
