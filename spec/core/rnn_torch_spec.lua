-- core.rnn_layer against PyTorch 1.13 (torch.nn.LSTM / GRU / RNN): outputs, final
-- states and all gradients of the loss sum(y*R) + sum(hn*S) [+ sum(cn*U)], for single
-- layers, two stacked layers, bidirectional layers (a reverse layer for the backward
-- direction) and padded batches (pack_padded_sequence). Fixtures come from
-- spec/fixtures/generate_rnn.py, computed in float64; recur runs in float32 (to 1e-5)
-- and in float64 (to 1e-10).
local recur = require "recur"
local cjson = require "cjson"
local core = recur.core

local DIR = "spec/fixtures/rnn/"
local FIXTURES = {
  "lstm", "gru", "rnn_tanh", "rnn_relu", "rnn_tanh_nobias_zero_state", "lstm_2layer",
  "gru_2layer", "lstm_bidirectional", "gru_bidirectional", "lstm_bidirectional_padded",
  "gru_2layer_bidirectional_padded", "rnn_relu_bidirectional_padded", "lstm_padded_nobias",
}

local function load(name)
  local f = assert(io.open(DIR .. name .. ".json", "r"))
  local fx = cjson.decode(f:read("a"))
  f:close()
  return fx
end

local function max_abs(t) return t:abs():max() end

local function rel_err(got, want)
  return max_abs(got:to("float64") - want) / math.max(max_abs(want), 1e-12)
end

-- Runs the fixture's network with recur layers in `dtype`; returns the outputs and
-- the gradients under PyTorch's names.
local function run(fx, dtype)
  local function T(v) return v ~= nil and v ~= cjson.null and recur.tensor(v, "float64"):to(dtype) or nil end
  local dirs = fx.bidirectional and 2 or 1
  local H = fx.H
  local lstm = fx.cell == "lstm"
  local lengths = fx.lengths ~= cjson.null and recur.tensor(fx.lengths, "int64") or nil
  local h0, c0 = T(fx.h0), T(fx.c0)
  local R, S, U = T(fx.R), T(fx.S), T(fx.U)

  -- one recur layer per layer and direction, with PyTorch's parameter names
  local units = {}
  for l = 0, fx.num_layers - 1 do
    units[l] = {}
    for d = 0, dirs - 1 do
      local suffix = "_l" .. l .. (d == 1 and "_reverse" or "")
      local in_size = l == 0 and fx.D or dirs * H
      local u = {index = l * dirs + d + 1, suffix = suffix}
      u.layer = core.rnn_layer(fx.cell, in_size, H, {reverse = d == 1, dtype = dtype})
      for _, p in ipairs({"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) do
        u[p] = T(fx.params[p .. suffix])
        if u[p] then u["grad_" .. p] = recur.zeros(u[p]:size(), dtype) end
      end
      units[l][d] = u
    end
  end

  -- forward, concatenating the directions along the features
  local input = T(fx.x)
  local inputs = {}
  local hn = recur.zeros({fx.num_layers * dirs, fx.B, H}, dtype)
  local cn = lstm and recur.zeros({fx.num_layers * dirs, fx.B, H}, dtype) or nil
  for l = 0, fx.num_layers - 1 do
    inputs[l] = input
    local out = recur.zeros({fx.T, fx.B, dirs * H}, dtype)
    for d = 0, dirs - 1 do
      local u = units[l][d]
      local i = u.index
      local y, h, c = u.layer:forward(input, u.weight_ih, u.weight_hh, u.bias_ih, u.bias_hh,
                                      h0 and h0:select(1, i), c0 and c0:select(1, i), lengths)
      out:narrow(3, d * H + 1, H):copy_(y)
      hn:select(1, i):copy_(h)
      if lstm then cn:select(1, i):copy_(c) end
    end
    input = out
  end
  local y = input

  -- backward, from the last layer down; each layer's input gradient is the sum over
  -- its directions, and feeds the layer below
  local grads = {}
  local gy = R
  for l = fx.num_layers - 1, 0, -1 do
    local gin = recur.zeros(inputs[l]:size(), dtype)
    for d = 0, dirs - 1 do
      local u = units[l][d]
      local i = u.index
      local gx, gh0, gc0 = u.layer:backward(gy:narrow(3, d * H + 1, H), S:select(1, i),
                                            lstm and U:select(1, i) or nil, u.grad_weight_ih,
                                            u.grad_weight_hh, u.grad_bias_ih, u.grad_bias_hh)
      gin:add_(gx)
      grads.h0 = grads.h0 or recur.zeros({fx.num_layers * dirs, fx.B, H}, dtype)
      grads.h0:select(1, i):copy_(gh0)
      if lstm then
        grads.c0 = grads.c0 or recur.zeros({fx.num_layers * dirs, fx.B, H}, dtype)
        grads.c0:select(1, i):copy_(gc0)
      end
      for _, p in ipairs({"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) do
        grads[p .. u.suffix] = u["grad_" .. p]
      end
    end
    gy = gin
  end
  grads.x = gy
  return {y = y, hn = hn, cn = cn}, grads
end

describe("rnn_layer against PyTorch", function()
  it("runs under Lua 5.4", function()
    assert.are.equal("Lua 5.4", _VERSION)
  end)

  for _, name in ipairs(FIXTURES) do
    for _, case in ipairs({{"float32", 1e-5}, {"float64", 1e-10}}) do
      local dtype, tol = case[1], case[2]
      it(name .. " in " .. dtype, function()
        local fx = load(name)
        local out, grads = run(fx, dtype)
        local function check(what, got, want)
          local err = rel_err(got, recur.tensor(want, "float64"))
          assert(err < tol, string.format("%s %s: relative error %.3g", name, what, err))
        end
        check("y", out.y, fx.y)
        check("hn", out.hn, fx.hn)
        if fx.cell == "lstm" then check("cn", out.cn, fx.cn) end
        local n = 0
        for key, want in pairs(fx.grads) do
          assert(grads[key], name .. ": no gradient for " .. key)
          check("grad " .. key, grads[key], want)
          n = n + 1
        end
        -- every parameter and the input are covered
        local expect = 1 + (fx.h0 and 1 or 0) + (fx.c0 and 1 or 0)
        for _ in pairs(fx.params) do expect = expect + 1 end
        assert.are.equal(expect, n)
      end)
    end
  end
end)
