/* A host as game engines build them: Lua linked statically and its symbols exported
 * with -rdynamic, so that C modules can find the Lua API in the executable. Such a host
 * also defines functions whose names recur's C core uses (or used) for its own
 * kernels. With the module's symbols hidden, each side keeps its own: recur's
 * clip_grad_norm must return the true norm, not the host's sum of squares.
 *
 * Usage: namesake_host 'lua chunk'; exits with the chunk's status. */
#include <stdint.h>
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* Wrong on purpose: if recur called these, its norms would be off by far. */
double sum_squares_f32(const float *x, int64_t n) { (void)x; return 1e6 + (double)n; }
double recur_sum_squares_f32(const float *x, int64_t n) { (void)x; return 1e6 + (double)n; }
double max_abs_f32(const float *x, int64_t n) { (void)x; return 1e6 + (double)n; }
void adam_update(void) {}
void recur_copy(void) {}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s 'lua chunk'\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    int status = luaL_dostring(L, argv[1]);
    if (status != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
