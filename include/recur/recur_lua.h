/* For programs that embed Lua and recur together (a game or tool engine, a server):
 * the opener of the recur.core module, to preload with
 *
 *   luaL_requiref(L, "recur.core", luaopen_recur_core, 0);
 *   lua_pop(L, 1);
 *
 * after which `require "recur"` finds the C half in package.loaded and needs only the
 * Lua half (share/lua/5.4/recur/) on package.path. Link with
 * $(pkg-config --libs recur-lua) and the host's own Lua; examples/lua_host.c is a
 * complete program. The module keeps no global state of its own beyond the tensor
 * block cache and the random generator of each lua_State, so several states may load
 * it; one state must not be used from two threads at once (Lua's own rule). */
#ifndef RECUR_LUA_H
#define RECUR_LUA_H

#include <lua.h>

#include "export.h"

RECUR_BEGIN_DECLS

int luaopen_recur_core(lua_State *L);

RECUR_END_DECLS

#endif
