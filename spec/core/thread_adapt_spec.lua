-- The team size on a busy machine (csrc/rnn.c, "threads on a busy machine"): the
-- recurrent kernels time every call on one thread and on the whole team and run the
-- faster. recur.thread_adapt_fake(one, full) makes the controller see those times
-- instead of the clock's, so these specs do not depend on the machine's load. They
-- check that a slow team is dropped for one thread and a fast one kept, that the
-- choice holds for the work after the call too (OpenMP's and OpenBLAS's counts), that
-- recur.thread_adapt(false) keeps the team, and that the results are the same bits
-- whichever team ran.
local recur = require "recur"
local core = recur.core

-- An LSTM layer in float32 large enough that the time loops split the batch over two
-- threads (T*B*G*H >= 32768, at least 8 sequences per thread: csrc/rnn.c).
local T, B, D, H, G = 4, 20, 6, 110, 4

local function problem()
  recur.manual_seed(11)
  local p = {layer = core.rnn_layer("lstm", D, H, {dtype = "float32"})}
  p.x = recur.randn({T, B, D}, "float32")
  p.w_ih = recur.randn({G * H, D}, "float32"):mul(0.3)
  p.w_hh = recur.randn({G * H, H}, "float32"):mul(0.1)
  p.b_ih = recur.randn({G * H}, "float32"):mul(0.1)
  p.b_hh = recur.randn({G * H}, "float32"):mul(0.1)
  p.gy = recur.randn({T, B, H}, "float32")
  return p
end

-- One forward and backward; its outputs and input gradient.
local function run(p)
  local y, hn, cn = p.layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh)
  local gw_ih, gw_hh = recur.zeros({G * H, D}, "float32"), recur.zeros({G * H, H}, "float32")
  local gb_ih, gb_hh = recur.zeros({G * H}, "float32"), recur.zeros({G * H}, "float32")
  local gx = p.layer:backward(p.gy, nil, nil, gw_ih, gw_hh, gb_ih, gb_hh)
  return {y = y, hn = hn, cn = cn, gx = gx, gw_ih = gw_ih, gw_hh = gw_hh, gb_ih = gb_ih}
end

local function same_bits(a, b)
  for name, t in pairs(a) do
    assert(t:dtype() == "float32" and (t - b[name]):abs():max() == 0, name .. " differs")
  end
end

-- Runs p through the first choice (seven runs, see below) with one thread taking `one`
-- seconds and the team `team`: the team size chosen.
local function first_choice(p, one, team)
  recur.thread_adapt_fake(one, team)
  for _ = 1, 7 do run(p) end
  return recur.thread_adapt().threads
end

-- Runs p n times: the first run after which `threads` threads are in force, or nil.
local function first_run_with(p, n, threads)
  local at
  for i = 1, n do
    run(p)
    if not at and recur.thread_adapt().threads == threads then at = i end
  end
  return at
end

describe("the team on a busy machine", function()
  local threads
  before_each(function()
    threads = recur.get_num_threads()
    recur.set_num_threads(2)
    recur.thread_adapt(true)
  end)
  after_each(function()
    recur.thread_adapt_fake()
    recur.thread_load_fake()
    recur.thread_adapt(true)
    recur.set_num_threads(threads)
  end)

  it("is one thread when the team is slower, and the team again when a probe finds it faster", function()
    local p = problem()
    -- the team runs the first call of each shape (forgotten: it starts the threads),
    -- then the two modes in turn until each has three times, so the choice falls at
    -- the seventh call, by their medians; from then on the faster, and the other once 4
    -- calls later (a first choice is checked once more: a slow stretch of the machine
    -- can make the first calls lie), then once the calls since the last try took 32
    -- times what the other took last (a probe)
    recur.thread_adapt_fake(0.001, 0.010)
    for _ = 1, 6 do run(p) end
    -- undecided: the team runs between the calls
    assert.are.equal(2, recur.thread_adapt().threads)
    run(p)
    assert.are.same({enabled = true, threads = 1, busy = false}, recur.thread_adapt())
    -- what runs between the recurrent calls follows: OpenBLAS's count too
    assert.are.equal(1, recur.blas_info().threads)
    assert.are.equal(2, recur.get_num_threads()) -- the user's setting is unchanged
    -- the check 4 calls after the choice (the fifth run from here) finds the team
    -- still at 10 ms: one thread stays
    for _ = 1, 5 do run(p) end
    assert.are.equal(1, recur.thread_adapt().threads)
    -- the load goes away: one thread is slow now (10 ms), but the team's times on
    -- record are still the loaded ones (10 ms), until the probe after 32 * 10 ms of
    -- calls measures it again; one fast probe does not outvote them, a second one
    -- four calls later does
    recur.thread_adapt_fake(0.010, 0.001)
    for _ = 1, 30 do run(p) end
    assert.are.equal(1, recur.thread_adapt().threads)
    for _ = 1, 9 do run(p) end
    assert.are.same({enabled = true, threads = 2, busy = false}, recur.thread_adapt())
    assert.are.equal(2, recur.blas_info().threads)
  end)

  it("does not bring the team back for one lucky probe", function()
    -- one thread 8 ms, the team 10.3 ms: one thread is chosen at the seventh call, and
    -- the team is tried again 4 calls later (the 12th run); from the choice on the team
    -- takes 1 ms, as a team call on a busy machine does now and then: that probe's time
    -- does not outvote the two slow ones on record, the next, four calls later (the
    -- 17th run), does
    local p = problem()
    assert.are.equal(1, first_choice(p, 0.008, 0.0103))
    recur.thread_adapt_fake(0.008, 0.001)
    local back = first_run_with(p, 63, 2)
    back = back and back + 7
    assert.is_true(back ~= nil and back >= 16 and back <= 18, "the team came back at run " .. tostring(back))
  end)

  it("takes the team back soon after a slow stretch chased it away", function()
    -- the team 1 ms, one thread 2 ms: the team; then slow team calls (10 ms, the
    -- machine busy for a moment), the second of which outvotes one thread's 2 ms on
    -- record, and one thread runs; the team, fast again, is tried once 4 calls have passed
    -- since the switch (the second fast run), not after 32 of its 10 ms (160 calls),
    -- and again 4 calls later (the seventh), whose two fast times outvote the slow one
    local p = problem()
    assert.are.equal(2, first_choice(p, 0.002, 0.001))
    recur.thread_adapt_fake(0.002, 0.010)
    local dropped = first_run_with(p, 4, 1)
    assert.are.equal(2, dropped, "one thread took over at run " .. tostring(dropped))
    recur.thread_adapt_fake(0.002, 0.001)
    local back = first_run_with(p, 30, 2)
    assert.is_true(back ~= nil and back >= 6 and back <= 8, "the team came back at run " .. tostring(back))
  end)

  it("keeps a team that is faster", function()
    local p = problem()
    recur.thread_adapt_fake(0.010, 0.001)
    for _ = 1, 6 do
      run(p)
      assert.are.equal(2, recur.thread_adapt().threads)
    end
  end)

  it("does not drop the team for one cold call", function()
    -- a shape's first calls are slow (weights packed, buffers first touched): the
    -- team's first timed call here takes 50 ms, its later ones 1 ms, one thread 2 ms
    local p = problem()
    recur.thread_adapt_fake(0.002, 0.050)
    for _ = 1, 2 do run(p) end
    recur.thread_adapt_fake(0.002, 0.001)
    for _ = 1, 25 do
      run(p)
      assert.are.equal(2, recur.thread_adapt().threads)
    end
  end)

  it("does not keep the team for one lucky call on a busy machine", function()
    -- the team mostly waits for its descheduled thread (10 ms) but once does not
    -- (1 ms); one thread takes 2 ms: the medians choose one thread
    local p = problem()
    recur.thread_adapt_fake(0.002, 0.010)
    for _ = 1, 3 do run(p) end -- the start-up call, the team, one thread
    recur.thread_adapt_fake(0.002, 0.001)
    run(p) -- the team, lucky
    recur.thread_adapt_fake(0.002, 0.010)
    for _ = 1, 3 do run(p) end -- one thread, the team, one thread: the choice
    for _ = 1, 10 do
      assert.are.equal(1, recur.thread_adapt().threads)
      run(p)
    end
  end)

  it("chooses for the bf16 and int8 kernels too, and their results do not change", function()
    -- core.bf16_rnn_forward at batch 1, as generation calls it: bf16 weights, then
    -- int8 ones (two int8 matrices)
    recur.manual_seed(3)
    local Hb, Db = 400, 100 -- 4H(D+H) = 800K multiply-adds: the columns split (BF16_PAR_MIN)
    local w_ih = recur.randn({4 * Hb, Db}, "float32"):mul(0.1)
    local w_hh = recur.randn({4 * Hb, Hb}, "float32"):mul(0.1)
    local b = recur.randn({4 * Hb}, "float32"):mul(0.1)
    local x = recur.randn({1, 1, Db}, "float32")
    local kinds = {
      bf16 = {core.bf16_matrix(w_ih, w_hh), nil},
      int8 = {core.int8_matrix(w_ih), core.int8_matrix(w_hh)},
    }
    for name, m in pairs(kinds) do
      local function step()
        local h, c = recur.zeros({1, Hb}, "float32"), recur.zeros({1, Hb}, "float32")
        local y = core.bf16_rnn_forward("lstm", false, x, m[1], m[2], b, b, h, c, nil)
        return {y = y, h = h, c = c}
      end
      recur.thread_adapt_fake(0.010, 0.001)
      for _ = 1, 7 do step() end
      local team = step()
      assert.are.equal(2, recur.thread_adapt().threads, name)
      recur.thread_adapt_fake(0.001, 0.010)
      for _ = 1, 40 do step() end -- until the probe of one thread
      assert.are.equal(1, recur.thread_adapt().threads, name)
      same_bits(team, step())
    end
  end)

  it("keeps the whole team when turned off", function()
    local p = problem()
    recur.thread_adapt_fake(0.001, 0.010)
    assert.are.same({enabled = false, threads = 2, busy = false}, recur.thread_adapt(false))
    for _ = 1, 4 do run(p) end
    assert.are.same({enabled = false, threads = 2, busy = false}, recur.thread_adapt())
  end)

  it("changes no result", function()
    local p = problem()
    recur.thread_adapt_fake(0.010, 0.001)
    for _ = 1, 6 do run(p) end
    local team = run(p)
    assert.are.equal(2, recur.thread_adapt().threads)
    recur.thread_adapt_fake(0.001, 0.010)
    for _ = 1, 40 do run(p) end -- until the second probe of one thread (see above)
    local one = run(p)
    assert.are.equal(1, recur.thread_adapt().threads)
    same_bits(team, one)
    -- and both are what a process pinned to one thread computes
    recur.set_num_threads(1)
    same_bits(run(p), one)
  end)

  describe("with the machine's load read", function()
    -- Besides the times, the controller reads the runnable threads on the machine,
    -- the fourth field's numerator in /proc/loadavg (here the text that
    -- recur.thread_load_fake(text, cores) gives, read at every call). With the team in
    -- use our two threads are among them; more runnable than processors in three of
    -- the last four readings (before there are four, in more than half of them) makes
    -- the machine busy: one thread, whatever the times say. While busy our share is
    -- one thread, so the readings say busy while more than one thread is runnable on
    -- two processors.
    local p
    local function forward() return p.layer:forward(p.x, p.w_ih, p.w_hh, p.b_ih, p.b_hh) end
    local function state() return recur.thread_adapt() end
    -- /proc/loadavg with r runnable threads; the averages say the opposite, and the
    -- thread count and last pid are other numbers, so only the runnable field decides
    local function loadavg(r, cores)
      recur.thread_load_fake(string.format("%d.50 %d.25 0.10 %d/%d %d\n", 9 - r, 9 - r, r, 187 + r, 4501), cores)
    end
    before_each(function()
      p = problem()
      recur.thread_adapt_fake(0.010, 0.001) -- the team is ten times faster
    end)

    it("runs one thread while others want the team's cores, and the team again after", function()
      loadavg(3, 2) -- our two threads and one other
      forward() -- the first reading decides alone
      assert.are.same({enabled = true, threads = 1, busy = true}, state())
      assert.are.equal(1, recur.blas_info().threads)
      -- on one thread now: our share is one, and the other process is still there
      loadavg(2, 2)
      for _ = 1, 6 do
        forward()
        assert.are.same({enabled = true, threads = 1, busy = true}, state())
      end
      -- it has gone: two readings of one runnable thread (ours) end it
      loadavg(1, 2)
      forward()
      assert.are.same({enabled = true, threads = 1, busy = true}, state())
      forward()
      assert.are.same({enabled = true, threads = 2, busy = false}, state())
      -- and the readings count the team as ours again: two runnable are ours alone
      loadavg(2, 2)
      for _ = 1, 4 do forward() end
      assert.are.same({enabled = true, threads = 2, busy = false}, state())
    end)

    it("counts only the caller as ours until the team has run", function()
      -- a process's first call: its workers are not running yet, so two runnable
      -- threads are the caller and another process
      loadavg(2, 2)
      forward()
      assert.are.same({enabled = true, threads = 1, busy = true}, state())
      -- once the team has run, two runnable threads are the team alone
      recur.set_num_threads(2) -- a new team: its readings start again
      loadavg(1, 2)
      forward()
      assert.is_false(state().busy)
      loadavg(2, 2)
      for _ = 1, 4 do forward() end
      assert.are.same({enabled = true, threads = 2, busy = false}, state())
    end)

    it("takes the first readings' majority until there are four", function()
      loadavg(3, 2) -- busy, then quiet: one of two is no majority
      forward()
      assert.is_true(state().busy)
      loadavg(1, 2)
      forward()
      assert.is_false(state().busy)
      loadavg(3, 2) -- busy: two of three
      forward()
      assert.is_true(state().busy)
      loadavg(1, 2) -- quiet (ours alone), and now four: busy, quiet, busy, quiet is two of four
      forward()
      assert.is_false(state().busy)
    end)

    it("needs three readings of four, each with more runnable threads than processors", function()
      loadavg(1, 2) -- ours alone before the team has run
      forward()
      loadavg(2, 2) -- our team alone: exactly the processors
      for _ = 1, 8 do forward() end
      assert.are.same({enabled = true, threads = 2, busy = false}, state())
      loadavg(4, 4) -- on four processors: room for two more
      for _ = 1, 4 do forward() end
      assert.are.same({enabled = true, threads = 2, busy = false}, state())
      -- readings busy, quiet, busy, quiet, ...: never three of the last four
      for i = 1, 9 do
        loadavg(i % 2 == 1 and 3 or 2, 2)
        forward()
        assert.is_false(state().busy, "reading " .. i)
      end
      loadavg(5, 4) -- the last four: busy, quiet, busy, busy
      forward()
      assert.is_true(state().busy)
    end)

    it("takes a text it cannot read for a quiet machine", function()
      for _, text in ipairs({"", "0.50 0.40 0.30", "0.50 0.40 0.30 x/187 4501", "0.50 0.40 0.30 5 187",
                             "0.50 0.40 0.30 0/187 4501"}) do
        recur.thread_load_fake(text, 2)
        for _ = 1, 4 do forward() end
        assert.are.same({enabled = true, threads = 2, busy = false}, state(), text)
      end
      recur.thread_load_fake("0.50 0.40 0.30 5/187 4501", 2) -- and a good one again
      for _ = 1, 3 do forward() end
      assert.is_true(state().busy)
    end)

    it("gives results that do not depend on it", function()
      loadavg(1, 2)
      forward()
      loadavg(2, 2)
      for _ = 1, 7 do forward() end
      assert.is_false(state().busy)
      local y2 = forward():clone()
      loadavg(3, 2)
      for _ = 1, 3 do forward() end
      assert.is_true(state().busy)
      assert.are.equal(0, (forward() - y2):abs():max())
    end)

    it("rejects a load that is not one", function()
      assert.has_error(function() recur.thread_load_fake("0.50 0.40 0.30 3/187 4501", 0) end,
        "thread_load_fake: 0 processors is not a machine")
      assert.has_error(function() recur.thread_load_fake(string.rep("1", 128), 2) end,
        "thread_load_fake: the text is longer than 127 bytes or holds a zero byte")
    end)
  end)

  it("rejects times that are not positive", function()
    assert.has_error(function() recur.thread_adapt_fake(0, 1) end,
      "thread_adapt_fake: times must be positive seconds")
  end)
end)
