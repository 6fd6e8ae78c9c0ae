-- lighttpd's mod_magnet runs this script for every request (examples/lighttpd/recur.conf):
--
--   GET /generate?prime=ROMEO:&length=200&seed=7[&temperature=0.8]
--
-- answers with the prime and `length` characters (or words) continuing it, drawn
-- from the checkpoint named by the environment variable RECUR_CHECKPOINT. The same
-- seed gives the same text; any other path is 404, a bad parameter 400 with the reason.
--
-- mod_magnet keeps one Lua state per script and worker process, but gives each run
-- fresh globals; package.loaded survives, so the model is loaded by the first
-- request a worker serves and kept there. lighttpd serves all its connections from
-- one thread per worker and waits while a script runs: recur computes on that thread
-- alone (set_num_threads(1)), and more workers (server.max-worker) serve more requests
-- at once, each with its own copy of the model. README-rock.md has the rest.
local KEY = "recur.examples.lighttpd"
local MAX_LENGTH, MAX_PRIME = 2000, 1000

local app = package.loaded[KEY]
if not app then
  local recur = require "recur"
  recur.set_num_threads(1)
  local path = os.getenv("RECUR_CHECKPOINT")
  if not path then error("generate.lua: set RECUR_CHECKPOINT to a recur language-model checkpoint", 0) end
  local model, tokenizer = recur.lm.load(path)
  app = {recur = recur, model = model, tokenizer = tokenizer}
  package.loaded[KEY] = app
end

local r = lighty.r

local function reply(status, text)
  r.resp_header["Content-Type"] = "text/plain; charset=utf-8"
  r.resp_body.set({text})
  return status
end

-- application/x-www-form-urlencoded: + is a space, %XX a byte
local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function query_params(query)
  local params = {}
  for key, value in (query or ""):gmatch("([^&=]+)=?([^&]*)") do params[unescape(key)] = unescape(value) end
  return params
end

local function integer(params, key, lo, hi, default)
  local s = params[key]
  if s == nil then
    if default then return default end
    error(key .. " is required", 0)
  end
  local n = math.tointeger(tonumber(s))
  if not n or n < lo or n > hi then error(string.format("%s must be an integer in %d..%d, got '%s'", key, lo, hi, s), 0) end
  return n
end

if r.req_attr["uri.path"] ~= "/generate" then return reply(404, "not found: try /generate?prime=...&length=...&seed=...\n") end

local params = query_params(r.req_attr["uri.query"])
local ok, text = pcall(function()
  local length = integer(params, "length", 1, MAX_LENGTH)
  local seed = integer(params, "seed", 0, math.maxinteger)
  local prime = params.prime or ""
  if #prime > MAX_PRIME then error(string.format("prime is longer than %d bytes", MAX_PRIME), 0) end
  local temperature = params.temperature and tonumber(params.temperature)
  if params.temperature and not (temperature and temperature >= 0 and temperature <= 10) then
    error("temperature must be a number in 0..10, got '" .. params.temperature .. "'", 0)
  end
  app.recur.manual_seed(seed)
  local parts = {}
  app.recur.lm.generate(app.model, app.tokenizer, {prime = prime, length = length, temperature = temperature},
    function(s) parts[#parts + 1] = s end)
  return table.concat(parts)
end)
-- the message without the Lua file and line it was raised at
if not ok then return reply(400, "bad request: " .. tostring(text):gsub("^[^\n:]*:%d+: ", "") .. "\n") end
return reply(200, text)
