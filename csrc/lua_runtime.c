/* Lua bindings for the process-wide machinery: thread count (OpenMP and OpenBLAS),
 * which OpenBLAS kernels run, and the block cache of freed tensor memory.
 *
 *   set_num_threads(n), get_num_threads()
 *   blas_info() -> {config, parallel, threads, core, core_repaired}
 *   set_cache_limit(bytes)   frees what the cache holds above it at once
 *   cache_bytes()            bytes the cache holds
 *   cache_clear()            hands every cached block back to the allocator */
#include <pthread.h>

#include <cblas.h>
#include <omp.h>

#include "blas.h"
#include "lua_recur.h"

int recur_get_num_threads(void)
{
    return omp_get_max_threads();
}

void recur_set_num_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
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
    {"blas_info", l_blas_info}, {"set_cache_limit", l_set_cache_limit},
    {"cache_bytes", l_cache_bytes}, {"cache_clear", l_cache_clear}, {NULL, NULL}};

void lrecur_open_runtime(lua_State *L)
{
    luaL_setfuncs(L, runtime_functions, 0);
}
