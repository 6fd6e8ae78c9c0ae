-- NGram: an add-k smoothed n-gram count model over ids 1..V, the baseline a recurrent
-- language model should beat.
--
--   p(w | c) = (n(c w) + k) / (n(c) + k V)         for a context seen in training
--   p(w | c) = 1/V                                 for an unseen one (n(c) = 0)
--
-- c is the n-1 ids before w (nothing for n = 1). n(c w) counts the training positions
-- with context c followed by w, n(c) = sum over w of n(c w). The probabilities sum to 1
-- over w in 1..V. k = 0 is the unsmoothed maximum-likelihood model n(c w) / n(c): an id
-- never seen after a seen context has probability 0, and then loss() is math.huge (the
-- mean of -log p with one infinite term; perplexity() is math.huge too), not an error,
-- so that an evaluation loop comparing models still runs. Smoothing (k > 0) is what
-- makes every probability positive. Contexts reaching before the
-- start of a sequence are padded with id 0, the start symbol, which is never predicted
-- (so V stays the vocabulary size). A sequence is one stream: for word data with </s>
-- at each line end, contexts run across lines as in the RNN's stream.
--
-- NGram.new{order=n, vocab_size=V, k=1}   k >= 0, finite
-- m:fit(ids)            add the counts of a sequence (array or 1-D int64 tensor); may be
--                       called again with more sequences, each padded at its start
-- m:prob(context, w)    context: array of ids, its last n-1 used (left-padded with 0)
-- m:loss(ids)           mean negative log-likelihood, nats per id, each id predicted
--                       from its n-1 predecessors in the same sequence (padded at start)
-- m:perplexity(ids)     exp(loss)
-- Counts are kept in two hash tables keyed by the context (and id) written in base V+1,
-- one Lua integer per key while (V+1)^n < 2^62 (any char model, words up to order 4
-- with V = 60k), and strings beyond.
local ids = require("recur.data.ids")
local util = require("recur.util")

local NGram = {}
NGram.__index = NGram
NGram.MAX_ORDER = 32

function NGram.new(opts)
  local who = "NGram.new"
  opts = util.check_opts(who, opts, { order = true, vocab_size = true, k = true })
  if opts.order == nil or opts.vocab_size == nil then
    error(who .. ": order and vocab_size are required", 2)
  end
  -- every position keeps its n-1 context ids, so an order past any use would exhaust
  -- memory instead of failing
  local n = util.opt_int(who, opts, "order", nil, 1, NGram.MAX_ORDER)
  local V = util.opt_int(who, opts, "vocab_size", nil)
  local k = opts.k == nil and 1 or opts.k
  if type(k) ~= "number" or not (k >= 0) or k == math.huge then
    error(who .. ": k must be a finite number >= 0, got " .. tostring(k), 2)
  end
  local base = V + 1
  -- Integer keys while base^n stays below 2^62 (checked by repeated division, no overflow).
  local int_keys, lim = true, (1 << 62)
  for _ = 1, n do
    if lim < base then int_keys = false; break end
    lim = lim // base
  end
  local ctx_mod = 1
  if int_keys then
    for _ = 1, n - 2 do ctx_mod = ctx_mod * base end
  end
  return setmetatable({
    order = n, V = V, k = k + 0.0, base = base, int_keys = int_keys,
    ctx_mod = ctx_mod,   -- context % ctx_mod drops its oldest id
    counts = {}, ctx_counts = {}, num_fitted = 0,
  }, NGram)
end

-- Calls fn(ctx_key, full_key) for each position of arr in order: the keys of the context
-- before arr[i] and of (context, arr[i]).
local function each_position(self, arr, fn)
  local n, base = self.order, self.base
  if self.int_keys then
    local ctx, mod = 0, self.ctx_mod
    for i = 1, #arr do
      local w = arr[i]
      fn(ctx, ctx * base + w)
      if n > 1 then ctx = (ctx % mod) * base + w end
    end
  else
    -- String keys: the last n-1 ids (0 = start) joined with spaces.
    local hist = {}
    for j = 1, n - 1 do hist[j] = 0 end
    for i = 1, #arr do
      local w = arr[i]
      local ctx = table.concat(hist, " ")
      fn(ctx, ctx .. "|" .. w)
      if n > 1 then
        table.remove(hist, 1)
        hist[n - 1] = w
      end
    end
  end
end

function NGram:fit(seq)
  local arr = ids.copy(seq, self.V, "NGram.fit")
  local counts, ctx_counts = self.counts, self.ctx_counts
  each_position(self, arr, function(c, cw)
    counts[cw] = (counts[cw] or 0) + 1
    ctx_counts[c] = (ctx_counts[c] or 0) + 1
  end)
  self.num_fitted = self.num_fitted + #arr
  return self
end

local function key_of(self, context, w)
  local n, base = self.order, self.base
  local m = #context
  if self.int_keys then
    local c = 0
    for j = n - 1, 1, -1 do
      c = c * base + (context[m - j + 1] or 0)   -- positions before the start are 0
    end
    return c, c * base + w
  end
  local hist = {}
  for j = n - 1, 1, -1 do hist[#hist + 1] = context[m - j + 1] or 0 end
  local c = table.concat(hist, " ")
  return c, c .. "|" .. w
end

function NGram:prob(context, w)
  if type(context) ~= "table" then
    error("NGram.prob: context must be an array of ids, got " .. type(context), 2)
  end
  ids.check(table.move(context, 1, #context, 1, {}), self.V, "NGram.prob")
  ids.check({ w }, self.V, "NGram.prob")
  local c, cw = key_of(self, context, math.tointeger(w))
  local nc = self.ctx_counts[c]
  if not nc then return 1 / self.V end -- unseen context (with k = 0, the formula is 0/0)
  return ((self.counts[cw] or 0) + self.k) / (nc + self.k * self.V)
end

function NGram:loss(seq)
  local arr = ids.copy(seq, self.V, "NGram.loss")
  if #arr == 0 then error("NGram.loss: empty sequence", 2) end
  local counts, ctx_counts, k, kV = self.counts, self.ctx_counts, self.k, self.k * self.V
  local log = math.log
  local log_V = log(self.V)
  local nll = 0.0
  each_position(self, arr, function(c, cw)
    local nc = ctx_counts[c]
    if nc then
      nll = nll - log(((counts[cw] or 0) + k) / (nc + kV)) -- -log(0) = math.huge for k = 0
    else
      nll = nll + log_V
    end
  end)
  return nll / #arr
end

function NGram:perplexity(seq)
  return math.exp(self:loss(seq))
end

return NGram
