-- bfloat16 and int8 inference in the modules (recur.nn.bf16): set_precision on
-- nn.Recurrent, the stacks and LanguageModel against their float32 selves (close, never
-- equal: the option is not ignored) and against the kernels called directly (exact);
-- training mode stays float32; the packed weights follow the parameters through
-- training; lm.generate's precision and the commands' --precision flag; the errors.
local helpers = require "spec.support.helpers"
local recur = require "recur"
local core = recur.core
local nn = recur.nn
local LanguageModel = require "recur.models.LanguageModel"

local function max_abs(t) return t:abs():max() end

describe("bf16 inference", function()
  it("Recurrent: evaluation runs the bf16 kernel, training stays float32", function()
    recur.manual_seed(2)
    local layer = nn.Recurrent("lstm", 6, 10)
    local x = recur.randn({5, 3, 6})
    layer:evaluate()
    local y32 = layer:forward(x):clone()
    assert.are.equal(layer, layer:set_precision("bf16"))
    local y16, hn16, cn16 = layer:forward(x)
    local d = max_abs(y16 - y32)
    assert.is_true(d > 0 and d < 0.02, "difference " .. d)
    -- exactly the kernel's output
    local w_ih, w_hh, b_ih, b_hh = layer:weights()
    local h, c = recur.zeros({3, 10}), recur.zeros({3, 10})
    local y = core.bf16_rnn_forward("lstm", false, x, core.bf16_matrix(w_ih, w_hh), nil, b_ih, b_hh, h, c, nil)
    assert.are.same(y:totable(), y16:totable())
    assert.are.same(h:totable(), hn16:totable())
    assert.are.same(c:totable(), cn16:totable())
    -- no backward through a bf16 forward
    assert.has_error(function() layer:backward(x, y16) end,
      "Recurrent: backward after an evaluation-mode forward in bf16 (inference only; training mode runs a forward backward can follow)")
    -- training mode: float32, and backward works
    layer:train()
    assert.are.same(y32:totable(), layer:forward(x):totable())
    layer:backward(x, recur.ones({5, 3, 10}))
    -- step in evaluation mode is the bf16 step
    layer:evaluate()
    local hs, cs = recur.zeros({3, 10}), recur.zeros({3, 10})
    for t = 1, 5 do layer:step(x:select(1, t), hs, cs) end
    assert.are.same(hn16:totable(), hs:totable())
    layer:set_precision("fp32")
    assert.are.same(y32:totable(), layer:forward(x):totable())
  end)

  it("follows the weights: changed in training, the bf16 copy is made again", function()
    recur.manual_seed(4)
    local a, b = nn.GRU(4, 7, {num_layers = 2}), nn.GRU(4, 7, {num_layers = 2})
    local x = recur.randn({3, 2, 4})
    a:evaluate():set_precision("bf16")
    b:evaluate():set_precision("bf16")
    a:forward(x) -- packs a's weights
    a:train()
    for _, p in ipairs(a:parameters()) do p:add_(0.1) end -- as an optimizer step would
    a:evaluate()
    b:load_state_dict(a:state_dict())
    b:set_precision("bf16")
    assert.are.same(b:forward(x):totable(), a:forward(x):totable())
  end)

  it("refuses what it cannot do", function()
    local layer = nn.Recurrent("lstm", 3, 4)
    assert.has_error(function() layer:set_precision("fp16") end, "Recurrent:set_precision: unknown precision 'fp16' (fp32, bf16, int8)")
    assert.has_error(function() nn.Recurrent("lstm", 3, 4, {dtype = "float64"}):set_precision("bf16") end,
      "Recurrent:set_precision: bf16 inference needs a float32 module, this one is float64")
    assert.has_error(function() nn.Recurrent("gru", 3, 4, {reset_after = false}):set_precision("bf16") end,
      "Recurrent:set_precision: bf16 inference has no classic gru (reset_after = false)")
    local m = LanguageModel{vocab_size = 5, embed = 4, hidden = 4, layers = 1}
    assert.has_error(function() m:set_precision("fp8") end, "LanguageModel:set_precision: unknown precision 'fp8' (fp32, bf16, int8)")
  end)

  it("LanguageModel: logits and steps in bf16, the kernel with the fast path off gives the same", function()
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      recur.manual_seed(8)
      local m = LanguageModel{vocab_size = 20, embed = 8, hidden = 24, layers = 2, cell = cell}
      m:evaluate()
      local x = recur.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, "int64")
      local l32 = m:forward(x):clone()
      m:set_precision("bf16")
      local l16, s16 = m:forward(x)
      l16 = l16:clone()
      local d = max_abs(l16 - l32)
      assert.is_true(d > 0 and d < 0.02, cell .. ": difference " .. d)
      -- the decoder's products are bf16 too: its logits are the bf16 kernel's
      local y = m.rnn:forward(m.encoder:forward(x))
      local want = core.bf16_linear(y:reshape(12, 24), core.bf16_matrix(m.decoder.weight), m.decoder.bias)
      assert.are.same(want:totable(), l16:reshape(12, 20):totable())
      -- step by step: the same logits at the last step and the same state
      local state, last
      for t = 1, 4 do
        last, state = m:step(x:select(1, t):clone(), state)
      end
      assert.are.same(l16:select(1, 4):totable(), last:totable())
      assert.are.same(s16.h:totable(), state.h:totable())
      -- the portable kernel, forced
      local fast = core.bf16_fast()
      core.bf16_use_fast(false)
      local lp = m:forward(x):clone()
      core.bf16_use_fast(fast)
      assert.are.same(l16:totable(), lp:totable())
    end
  end)

  it("LanguageModel in int8: close to float32, steps equal to the forward", function()
    for _, cell in ipairs({"lstm", "gru", "rnn"}) do
      recur.manual_seed(8)
      local m = LanguageModel{vocab_size = 20, embed = 8, hidden = 24, layers = 2, cell = cell}
      m:evaluate()
      local x = recur.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, "int64")
      local l32 = m:forward(x):clone()
      m:set_precision("bf16")
      local l16 = m:forward(x):clone()
      m:set_precision("int8")
      local l8, s8 = m:forward(x)
      l8 = l8:clone()
      local d8, d16 = max_abs(l8 - l32), max_abs(l16 - l32)
      -- int8 keeps 7 bits and a sign per value against bfloat16's 8 significant bits
      assert.is_true(d8 > 0 and d8 < 0.1, cell .. ": difference " .. d8)
      assert.is_true(d8 > d16, cell .. ": int8 " .. d8 .. " bf16 " .. d16)
      local state, last
      for t = 1, 4 do
        last, state = m:step(x:select(1, t):clone(), state)
      end
      assert.are.same(l8:select(1, 4):totable(), last:totable())
      assert.are.same(s8.h:totable(), state.h:totable())
      local fast = core.bf16_fast()
      core.bf16_use_fast(false)
      local lp = m:forward(x):clone()
      core.bf16_use_fast(fast)
      assert.are.same(l8:totable(), lp:totable())
    end
  end)

  it("trains with bf16 forward products: the saved activations are what float32 backward reads", function()
    -- a batch of 3 runs in one loop, one of 20 split over the threads by sequences (the
    -- gru then projects its input in the steps), one of 5 with 256 units by units
    local adapt = recur.thread_adapt().enabled
    recur.thread_adapt(false) -- every call on the threads there are
    for _, cell in ipairs({"lstm", "gru", "rnn_tanh"}) do
      for _, size in ipairs({{1, 3, 6, 8}, {6, 3, 6, 8}, {1, 20, 6, 8}, {6, 20, 6, 8}, {1, 5, 256, 256}, {6, 5, 256, 256}}) do
        local T, B, D, H = table.unpack(size)
        recur.manual_seed(4)
        local a, b = nn.Recurrent(cell, D, H), nn.Recurrent(cell, D, H)
        local x, h0 = recur.randn({T, B, D}), recur.randn({B, H})
        if T == 1 then
          -- operands bfloat16 already holds: one bf16 step is the float32 step up to
          -- the order of its sums, and so are the gradients of backward
          for _, p in ipairs(a:parameters()) do p:copy_(core.bf16_round(p)) end
          x, h0 = core.bf16_round(x), core.bf16_round(h0)
        end
        b:load_state_dict(a:state_dict())
        assert.are.equal(b, b:set_precision("bf16", {training = true}))
        local ya, yb = a:forward(x, h0):clone(), b:forward(x, h0):clone()
        local gy = recur.randn(ya:size())
        local gxa, gxb = a:backward(x, gy):clone(), b:backward(x, gy):clone()
        local tol = T == 1 and 1e-5 or 0.05
        local what = cell .. " T=" .. T .. " B=" .. B .. " H=" .. H
        assert.is_true(max_abs(ya - yb) < tol and max_abs(gxa - gxb) < tol, what)
        local ga, gb = {a:weight_grads()}, {b:weight_grads()}
        for i = 1, 4 do assert.is_true(max_abs(ga[i] - gb[i]) < tol * 4, what .. " grad " .. i) end
        if T > 1 then assert.is_true(max_abs(ya - yb) > 0) end
      end
    end
    recur.thread_adapt(adapt)
    local layer = nn.Recurrent("lstm", 3, 4)
    assert.has_error(function() layer:set_precision("int8", {training = true}) end,
      "Recurrent:set_precision: training runs in fp32 or bf16, not int8")
    assert.has_error(function() layer:set_precision("bf16", {train = true}) end,
      "Recurrent:set_precision: unknown option 'train' (training)")
  end)

  it("LanguageModel: a bf16 training step, close to float32's", function()
    recur.manual_seed(6)
    local a = LanguageModel{vocab_size = 12, embed = 8, hidden = 16, layers = 2}
    local b = LanguageModel{vocab_size = 12, embed = 8, hidden = 16, layers = 2}
    b:load_state_dict(a:state_dict())
    b:set_precision("bf16", {training = true})
    local batch = {x = recur.tensor({{1, 2, 3}, {4, 5, 6}}, "int64"), y = recur.tensor({{2, 3, 4}, {5, 6, 7}}, "int64")}
    a:train(); b:train()
    local la, lb = a:train_step(batch), b:train_step(batch)
    assert.is_true(la ~= lb and math.abs(la - lb) < 1e-3 * la)
    local ga, gb = helpers.grads_of(a), helpers.grads_of(b)
    for name, g in pairs(ga) do assert.is_true(max_abs(g - gb[name]) < 1e-2, name) end
  end)

  it("lm.generate takes precision; an unknown one is an error", function()
    recur.manual_seed(1)
    local text = "the cat sat on the mat. the dog sat on the log. "
    local tok = recur.data.CharTokenizer.fit(text)
    local m = LanguageModel{vocab_size = tok:vocab_size(), embed = 8, hidden = 16, layers = 1}
    local function sample(precision)
      recur.manual_seed(9)
      local parts = {}
      recur.lm.generate(m, tok, {length = 30, prime = "the ", precision = precision}, function(s) parts[#parts + 1] = s end)
      return table.concat(parts)
    end
    local s32, s16 = sample("fp32"), sample("bf16")
    assert.are.equal(34, #s16)
    assert.are.equal("bf16", m.precision)
    assert.are.equal("the ", s16:sub(1, 4))
    assert.are.equal(34, #s32)
    assert.has_error(function() sample("fp64") end, "LanguageModel:set_precision: unknown precision 'fp64' (fp32, bf16, int8)")
  end)

  it("recur sample, eval and train take --precision", function()
    local dir = helpers.tmp_dir()
    local data = os.tmpname()
    finally(function() helpers.remove_dir(dir); os.remove(data) end)
    local f = assert(io.open(data, "wb"))
    f:write(recur.data.read_text("data/tinyshakespeare.txt"):sub(1, 6000))
    f:close()
    recur.lm.train{data = data, layers = 1, hidden = 32, embed = 16, batch = 8, seq_len = 16, max_iters = 20,
      eval_every = 20, checkpoint_dir = dir, quiet = true, seed = 3}
    local ckpt = dir .. "/best.safetensors"
    local function eval(flag)
      local status, out, err = helpers.run_recur("eval --checkpoint " .. ckpt .. " --data " .. data .. flag)
      assert.are.equal(0, status, err)
      return tonumber(out:match("loss ([%d.]+)")), out
    end
    local l32, l16, l8 = eval(""), eval(" --precision bf16"), eval(" --precision int8")
    assert.is_true(l16 ~= nil and math.abs(l16 - l32) < 0.01 * l32, tostring(l16) .. " vs " .. tostring(l32))
    assert.is_true(l8 ~= nil and math.abs(l8 - l32) < 0.02 * l32, tostring(l8) .. " vs " .. tostring(l32))
    local status, out, err = helpers.run_recur("sample --checkpoint " .. ckpt .. " --length 40 --prime 'ROMEO:' --precision bf16")
    assert.are.equal(0, status, err)
    assert.are.equal("ROMEO:", out:sub(1, 6))
    helpers.assert_one_line_error("sample --checkpoint " .. ckpt .. " --precision fp16", "argument for option '%-%-precision' must be one of")
    helpers.assert_one_line_error("eval --checkpoint " .. ckpt .. " --data " .. data .. " --precision int4",
      "argument for option '%-%-precision' must be one of")
    helpers.assert_one_line_error("train --data " .. data .. " --init-from " .. ckpt .. " --precision bf16 --max-iters 1",
      "^recur: lm: %-%-precision bf16 applies to a fresh run, not to %-%-resume or %-%-init%-from")
    helpers.assert_one_line_error("train --data " .. data .. " --precision int8", "argument for option '%-%-precision' must be one of")
  end)
end)
