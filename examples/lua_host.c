/* A program that embeds Lua and recur as an engine would: it opens a Lua state,
 * preloads recur's C module with luaL_requiref (so no recur/core.so is looked up on
 * disk), loads a language-model checkpoint once, then asks the model for text as
 * often as it likes through one Lua function it keeps a reference to.
 *
 *   lua_host CHECKPOINT [PRIME [LENGTH [SEED]]]
 *
 * prints LENGTH characters (default 80) continuing PRIME, drawn at temperature 0.8
 * with the random generator seeded by SEED (default 1), then draws again with the
 * same seed and fails unless both texts agree. Build against an installed recur
 * (`make install PREFIX=/opt/recur`):
 *
 *   export PKG_CONFIG_PATH=/opt/recur/lib/pkgconfig
 *   cc -O2 lua_host.c -DRECUR_LUADIR="\"$(pkg-config --variable=luadir recur-lua)\"" \
 *      $(pkg-config --cflags --libs recur-lua lua5.4) -o lua_host
 *   LD_LIBRARY_PATH=/opt/recur/lib ./lua_host model.safetensors "ROMEO:" 120 7
 *
 * RECUR_LUADIR is where the Lua half of recur lives (share/lua/5.4 of the prefix);
 * without it the host relies on LUA_PATH or Lua's default path. lua-cjson, which
 * reads checkpoint headers, is found on Lua's default C path (Debian's lua-cjson). */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <recur/recur_lua.h>

/* Run once per state: returns generate(prime, length, seed) -> text, with the model
 * and tokenizer held as its upvalues. One thread: an engine runs its own threads, and
 * OpenMP's team per state would compete with them (README-rock.md, "Threads"). */
static const char *SETUP =
    "local checkpoint = ...\n"
    "local recur = require 'recur'\n"
    "recur.set_num_threads(1)\n"
    "local model, tokenizer = recur.lm.load(checkpoint)\n"
    "return function(prime, length, seed)\n"
    "  recur.manual_seed(seed)\n"
    "  local parts = {}\n"
    "  recur.lm.generate(model, tokenizer, {prime = prime, length = length, temperature = 0.8},\n"
    "    function(s) parts[#parts + 1] = s end)\n"
    "  return table.concat(parts)\n"
    "end\n";

/* Puts dir/?.lua and dir/?/init.lua in front of package.path. */
static void prepend_lua_dir(lua_State *L, const char *dir)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* Calls the generate function (registry reference fn); the text is left on the stack. */
static int generate(lua_State *L, int fn, const char *prime, lua_Integer length, lua_Integer seed)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
    lua_pushstring(L, prime);
    lua_pushinteger(L, length);
    lua_pushinteger(L, seed);
    return lua_pcall(L, 3, 1, 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CHECKPOINT [PRIME [LENGTH [SEED]]]\n", argv[0]);
        return 2;
    }
    const char *checkpoint = argv[1], *prime = argc > 2 ? argv[2] : "";
    lua_Integer length = argc > 3 ? atoll(argv[3]) : 80, seed = argc > 4 ? atoll(argv[4]) : 1;

    lua_State *L = luaL_newstate();
    if (L == NULL) return 1;
    luaL_openlibs(L);
    /* recur.core from this executable: `require "recur.core"` now finds it loaded */
    luaL_requiref(L, "recur.core", luaopen_recur_core, 0);
    lua_pop(L, 1);
#ifdef RECUR_LUADIR
    prepend_lua_dir(L, RECUR_LUADIR);
#endif

    int status = luaL_loadstring(L, SETUP);
    if (status == LUA_OK) {
        lua_pushstring(L, checkpoint);
        status = lua_pcall(L, 1, 1, 0);
    }
    if (status != LUA_OK) {
        fprintf(stderr, "lua_host: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    int fn = luaL_ref(L, LUA_REGISTRYINDEX);

    /* twice, as two frames of an engine would: the same seed gives the same text */
    int same = 0;
    if ((status = generate(L, fn, prime, length, seed)) == LUA_OK &&
        (status = generate(L, fn, prime, length, seed)) == LUA_OK) {
        same = lua_rawequal(L, -1, -2);
        printf("%s\n", lua_tostring(L, -1));
    } else {
        fprintf(stderr, "lua_host: %s\n", lua_tostring(L, -1));
    }
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
    lua_close(L);
    if (status == LUA_OK && !same) fprintf(stderr, "lua_host: the same seed gave two texts\n");
    return status == LUA_OK && same ? 0 : 1;
}
