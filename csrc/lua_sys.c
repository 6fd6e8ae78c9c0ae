/* What Lua's standard library lacks for training scripts and benchmarks: a wall
 * clock (os.clock is CPU time summed over threads), whether a stream is a
 * terminal (progress bar or log lines), and the peak resident memory. */
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lua_recur.h"

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    return 1;
}

/* isatty(fd): fd 1 is stdout, 2 stderr. */
static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_optinteger(L, 1, 1);
    lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd));
    return 1;
}

static int l_peak_rss_mb(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushnumber(L, (double)ru.ru_maxrss / 1024.0); /* ru_maxrss is in KiB on Linux */
    return 1;
}

static const luaL_Reg sys_functions[] = {
    {"now", l_now}, {"isatty", l_isatty}, {"peak_rss_mb", l_peak_rss_mb}, {NULL, NULL}};

void lrecur_open_sys(lua_State *L)
{
    luaL_setfuncs(L, sys_functions, 0);
}
