/* Lua bindings for the process-wide machinery: thread count (OpenMP and OpenBLAS),
 * which OpenBLAS kernels run, and the block cache of freed tensor memory.
 *
 *   set_num_threads(n), get_num_threads()
 *   thread_adapt([on]) -> {enabled, threads, busy}   one thread on a busy machine (runtime.h)
 *   thread_adapt_fake(one, full)               specs: the times the controller sees
 *   thread_load_fake(loadavg, cores)           specs: the /proc/loadavg it reads
 *   blas_info() -> {config, parallel, threads, core, core_repaired}
 *   set_cache_limit(bytes)   frees what the cache holds above it at once
 *   cache_bytes()            bytes the cache holds
 *   cache_clear()            hands every cached block back to the allocator */
#include <pthread.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "blas.h"
#include "lua_recur.h"

int recur_get_num_threads(void)
{
    return recur_threads_get();
}

void recur_set_num_threads(int n)
{
    recur_threads_set(n);
}

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 1024) luaL_error(L, "set_num_threads: %I is not a thread count", (lua_Integer)n);
    recur_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, recur_get_num_threads());
    return 1;
}

/* thread_adapt(on): whether the team shrinks to one thread on a busy machine (see
 * include/recur/runtime.h); thread_adapt() leaves it. Returns {enabled, threads, busy}:
 * the team in force now, and whether the last readings found other work wanting the
 * team's cores. */
static int l_thread_adapt(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) recur_threads_adapt(lua_toboolean(L, 1));
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, recur_threads_adapt_enabled());
    lua_setfield(L, -2, "enabled");
    lua_pushinteger(L, recur_threads_in_force());
    lua_setfield(L, -2, "threads");
    lua_pushboolean(L, recur_threads_busy());
    lua_setfield(L, -2, "busy");
    return 1;
}

/* thread_load_fake(loadavg, cores): for specs, the text the controller reads at every
 * call as if from /proc/loadavg, on a machine of `cores` processors; no arguments: the
 * machine. */
static int l_thread_load_fake(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        recur_threads_load_fake(NULL, 0);
        return 0;
    }
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (len > 127 || strlen(text) != len)
        luaL_error(L, "thread_load_fake: the text is longer than 127 bytes or holds a zero byte");
    if (n < 1 || n > 65536) luaL_error(L, "thread_load_fake: %I processors is not a machine", n);
    recur_threads_load_fake(text, (int)n);
    return 0;
}

/* thread_adapt_fake(one, full): for specs, the seconds the controller sees every
 * recurrent call take on one thread and on the team; no arguments: the clock again. */
static int l_thread_adapt_fake(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        recur_threads_adapt_fake(-1, -1);
        return 0;
    }
    double one = luaL_checknumber(L, 1), full = luaL_checknumber(L, 2);
    if (!(one > 0 && full > 0)) luaL_error(L, "thread_adapt_fake: times must be positive seconds");
    recur_threads_adapt_fake(one, full);
    return 0;
}

/* recur.set_cache_limit(bytes): how much freed tensor memory is kept for reuse. */
static int l_set_cache_limit(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0) luaL_error(L, "set_cache_limit: %I is not a byte count", n);
    recur_cache_set_limit((size_t)n);
    return 0;
}

static int l_cache_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)recur_cache_bytes());
    return 1;
}

static int l_cache_clear(lua_State *L)
{
    (void)L;
    recur_cache_clear();
    return 0;
}

static pthread_once_t repair_once = PTHREAD_ONCE_INIT;
static const char *repaired_core;

static void repair_core_once(void)
{
    repaired_core = recur_blas_repair_core();
}

void lrecur_repair_blas_core(void)
{
    pthread_once(&repair_once, repair_core_once);
}

/* blas_info() -> {config, parallel, threads, core, core_repaired}: core_repaired is the
 * kernel family recur switched OpenBLAS to (see csrc/blas_core.c), else absent. */
static int l_blas_info(lua_State *L)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, openblas_get_corename());
    lua_setfield(L, -2, "core");
    if (repaired_core) {
        lua_pushstring(L, repaired_core);
        lua_setfield(L, -2, "core_repaired");
    }
    lua_pushstring(L, openblas_get_config());
    lua_setfield(L, -2, "config");
    int par = openblas_get_parallel(); /* 0 sequential, 1 pthreads, 2 OpenMP */
    lua_pushstring(L, par == 2 ? "openmp" : par == 1 ? "pthreads" : "sequential");
    lua_setfield(L, -2, "parallel");
    lua_pushinteger(L, openblas_get_num_threads());
    lua_setfield(L, -2, "threads");
    return 1;
}

static const luaL_Reg runtime_functions[] = {
    {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
    {"thread_adapt", l_thread_adapt}, {"thread_adapt_fake", l_thread_adapt_fake},
    {"thread_load_fake", l_thread_load_fake},
    {"blas_info", l_blas_info}, {"set_cache_limit", l_set_cache_limit},
    {"cache_bytes", l_cache_bytes}, {"cache_clear", l_cache_clear}, {NULL, NULL}};

void lrecur_open_runtime(lua_State *L)
{
    luaL_setfuncs(L, runtime_functions, 0);
}
