-- The documentation runs: every fenced ```lua block of doc/*.md and README.md, and
-- every ```c block of both, so the pages cannot drift from the code.
--
-- The rules (also at the top of doc/index.md):
-- - The ```lua blocks of one page run in order, each as its own chunk, in one
--   environment per page: a name a block assigns without `local` is seen by the later
--   blocks of that page; a `local` ends with its block. Errors name the page and line.
-- - ```lua no-run marks a fragment that cannot run; this spec counts and reports them.
-- - A ```text output block right after a block is what the block prints (print and
--   io.write, or a C program's stdout); it is compared line by line, trailing spaces
--   ignored. An output block anywhere else is an error (it would be checked by nothing).
-- - os.tmpname() in a block gives a file in a temporary folder that this spec
--   removes at the end.
-- - ```c blocks are whole translation units: with a main they are compiled,
--   linked against build/librecur.a (and Lua when they use it) and run, exit status 0;
--   without one they must pass gcc -fsyntax-only. Both with -Wall -Wextra -Werror and
--   -Iinclude (the public headers), the Lua headers and the CBLAS header.
-- - Other blocks (```sh, ```text, ...) are not run.
-- - Every page of doc/ is linked from doc/index.md, and its relative links resolve.
local helpers = require "spec.support.helpers"
local core = require "recur.core"

-- The blocks of a markdown file: {lang, flags = {set}, text, line (of the first code
-- line), fence_line}.
local function blocks_of(path)
  local lines = {}
  for line in (helpers.read_all(path) .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local blocks, i = {}, 1
  while i <= #lines do
    local indent, fence, info = lines[i]:match("^( *)([`~][`~][`~]+)%s*(.-)%s*$")
    if fence and #indent < 4 and not (fence:sub(1, 1) == "`" and info:find("`", 1, true))
        and fence:match("^" .. fence:sub(1, 1):gsub("%p", "%%%0") .. "+$") then
      local words = {}
      for w in info:gmatch("%S+") do words[#words + 1] = w end
      local lang = (words[1] or ""):lower()
      local flags = {}
      for k = 2, #words do flags[words[k]] = true end
      local body, j = {}, i + 1
      local close = "^ *" .. fence:sub(1, 1):gsub("%p", "%%%0"):rep(#fence) .. "+%s*$"
      while j <= #lines and not lines[j]:match(close) do
        body[#body + 1] = lines[j]
        j = j + 1
      end
      blocks[#blocks + 1] = {lang = lang, flags = flags, text = table.concat(body, "\n") .. "\n",
        line = i + 1, fence_line = i, end_line = j}
      i = j + 1
    else
      i = i + 1
    end
  end
  -- a ```text output block right after a block (blank lines between allowed) is its output
  for k = 2, #blocks do
    local b, prev = blocks[k], blocks[k - 1]
    if b.lang == "text" and b.flags.output then
      local gap = true
      for l = prev.end_line + 1, b.fence_line - 1 do
        if not lines[l]:match("^%s*$") then gap = false end
      end
      if gap and not prev.flags["no-run"] and (prev.lang == "lua" or prev.lang == "c") then
        prev.expected = b.text
      else
        b.dangling = true
      end
    elseif b.lang == "text" and b.flags.output then
      b.dangling = true
    end
  end
  if blocks[1] and blocks[1].lang == "text" and blocks[1].flags.output then blocks[1].dangling = true end
  return blocks
end

local function pages()
  local list = {}
  for _, name in ipairs(core.list_dir("doc")) do
    if name:match("%.md$") then list[#list + 1] = "doc/" .. name end
  end
  table.sort(list)
  list[#list + 1] = "README.md"
  return list
end

local function normalise(s)
  local out = {}
  for line in (s .. "\n"):gmatch("(.-)\n") do out[#out + 1] = (line:gsub("%s+$", "")) end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  return table.concat(out, "\n")
end

local function first_dir(candidates)
  for _, d in ipairs(candidates) do
    if os.execute("test -d '" .. d .. "'") then return d end
  end
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local tmp = helpers.tmp_dir()
local counts = {lua = 0, c = 0, no_run = {}, outputs = 0, tmp = 0}

-- The environment of one page: the globals, with print, io.write and os.tmpname
-- redirected (see the header).
local function page_env()
  local env = {}
  env._captured = {}
  local function put(s) env._captured[#env._captured + 1] = s end
  env.print = function(...)
    local n = select("#", ...)
    local parts = {}
    for k = 1, n do parts[k] = tostring((select(k, ...))) end
    put(table.concat(parts, "\t") .. "\n")
  end
  env.os = setmetatable({tmpname = function()
    counts.tmp = counts.tmp + 1
    local path = string.format("%s/tmp-%d", tmp, counts.tmp)
    local f = assert(io.open(path, "wb"))
    f:close()
    return path
  end}, {__index = os})
  env.io = setmetatable({write = function(...)
    for k = 1, select("#", ...) do put(tostring((select(k, ...)))) end
    return env.io
  end}, {__index = io})
  env._G = env
  return setmetatable(env, {__index = _G})
end

local LUA_INC = os.getenv("LUA_INCDIR") or "/usr/include/lua5.4"
local MULTIARCH = (select(2, run("gcc -print-multiarch")) or ""):match("%S+") or "x86_64-linux-gnu"
local BLAS_INC = os.getenv("OPENBLAS_INCDIR") or first_dir({
  "/usr/include/" .. MULTIARCH .. "/openblas-pthread", "/usr/include/" .. MULTIARCH .. "/openblas-openmp",
  "/usr/include/openblas"}) or "/usr/include"
local CFLAGS = string.format("-std=gnu11 -Wall -Wextra -Werror -Iinclude -I'%s' -I'%s'", LUA_INC, BLAS_INC)

local function check_c(path, b, k)
  local src = string.format("%s/block-%s-%d.c", tmp, path:gsub("[/.]", "_"), k)
  local f = assert(io.open(src, "wb"))
  f:write(string.format("#line %d \"%s\"\n", b.line, path), b.text)
  f:close()
  if not b.text:find("int%s+main%s*%(") then
    local ok, out = run(string.format("gcc -fsyntax-only %s '%s'", CFLAGS, src))
    assert(ok, "C block at " .. path .. ":" .. b.line .. " does not compile:\n" .. out)
    return
  end
  -- the build folder of `make` (build-san/ under `make sanitize`, whose LDFLAGS link
  -- the sanitizers' runtimes)
  local lib = (os.getenv("BUILD") or "build") .. "/librecur.a"
  if not os.execute("test -f '" .. lib .. "'") then
    local ok, out = run("make --no-print-directory lib")
    assert(ok, "make lib failed:\n" .. out)
  end
  local exe = src:gsub("%.c$", "")
  local lua = b.text:find("lua_") and "-llua5.4 -ldl" or ""
  local ok, out = run(string.format("gcc -O1 %s '%s' -o '%s' '%s' %s -lopenblas -lm -fopenmp %s",
    CFLAGS, src, exe, lib, lua, os.getenv("LDFLAGS") or ""))
  assert(ok, "C block at " .. path .. ":" .. b.line .. " does not build:\n" .. out)
  local p = io.popen("'" .. exe .. "' 2>&1")
  local output = p:read("a")
  local ran, _, code = p:close()
  assert(ran, string.format("C block at %s:%d exited with %s:\n%s", path, b.line, tostring(code), output))
  return output
end

describe("documentation", function()
  teardown(function()
    helpers.remove_dir(tmp)
    local skipped = #counts.no_run > 0 and (": " .. table.concat(counts.no_run, ", ")) or ""
    io.stderr:write(string.format("\ndocs: %d lua blocks run, %d C blocks compiled, %d outputs checked, %d opted out (no-run)%s\n",
      counts.lua, counts.c, counts.outputs, #counts.no_run, skipped))
  end)

  it("links every page from doc/index.md, and every link between the pages resolves", function()
    local index = helpers.read_all("doc/index.md")
    for _, path in ipairs(pages()) do
      local name = path:match("^doc/(.*)$")
      if name and name ~= "index.md" then
        assert(index:find("(" .. name .. ")", 1, true), "doc/index.md does not link " .. name)
      end
      if name then
        for target in helpers.read_all(path):gmatch("%]%(([^)#%s]+)[^)]*%)") do
          if not target:match("^%a+:") then
            assert(os.execute("test -e 'doc/" .. target .. "'"), path .. " links to a missing " .. target)
          end
        end
      end
    end
  end)

  for _, path in ipairs(pages()) do
    describe(path, function()
      local env = page_env()
      local blocks = blocks_of(path)
      it("shows outputs only right after an example that runs", function()
        for _, b in ipairs(blocks) do
          assert(not b.dangling, string.format("%s:%d: a text output block must follow a lua or c "
            .. "block that runs, with only blank lines between", path, b.fence_line))
        end
      end)
      for k, b in ipairs(blocks) do
        if b.lang == "lua" and b.flags["no-run"] then
          counts.no_run[#counts.no_run + 1] = path .. ":" .. b.fence_line
        elseif b.lang == "lua" then
          it("runs the lua block at line " .. b.fence_line, function()
            counts.lua = counts.lua + 1
            env._captured = {}
            -- padded so that error positions are the page's own line numbers
            local chunk, err = load(string.rep("\n", b.line - 1) .. b.text, "@" .. path, "t", env)
            assert(chunk, err)
            chunk()
            if b.expected then
              counts.outputs = counts.outputs + 1
              assert.are.equal(normalise(b.expected), normalise(table.concat(env._captured)))
            end
          end)
        elseif b.lang == "c" then
          it("compiles the C block at line " .. b.fence_line, function()
            counts.c = counts.c + 1
            local out = check_c(path, b, k)
            if b.expected and out then
              counts.outputs = counts.outputs + 1
              assert.are.equal(normalise(b.expected), normalise(out))
            end
          end)
        end
      end
    end)
  end
end)
