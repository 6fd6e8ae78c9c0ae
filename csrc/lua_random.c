/* Lua bindings for the seedable generator (tensor.h): one generator per lua_State,
 * kept in the registry and seeded with 0 when the module opens.
 *
 *   manual_seed(n)                  reseed
 *   rand(sizes... [, dtype])        uniform [0, 1)
 *   randn(sizes... [, dtype])       standard normal
 *   uniform(size_table, lo, hi [, dtype])
 *   random_integer(lo, hi)          one integer in [lo, hi], any int64 range
 *   random_uniform()                one number in [0, 1)
 *   get_rng_state() / set_rng_state(s)   the 32-byte state, for checkpoints */
#include <math.h>
#include <string.h>

#include "lua_recur.h"

#define RECUR_RNG_KEY "recur.rng"

/* The state's generator; one seeded with 0 is made when there is none (also when
 * debug.getregistry() replaced it with something else). */
recur_rng *lrecur_rng(lua_State *L)
{
    recur_rng *g = NULL;
    if (lua_getfield(L, LUA_REGISTRYINDEX, RECUR_RNG_KEY) == LUA_TUSERDATA &&
        lua_rawlen(L, -1) == sizeof *g)
        g = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it alive */
    if (!g) {
        g = lua_newuserdatauv(L, sizeof *g, 0);
        recur_rng_seed(g, 0);
        lua_setfield(L, LUA_REGISTRYINDEX, RECUR_RNG_KEY);
    }
    return g;
}

static int l_manual_seed(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    recur_rng_seed(lrecur_rng(L), (uint64_t)seed);
    return 0;
}

/* A new float tensor of the size and dtype given from arg 1 on (rand, randn). */
static recur_tensor *push_float_tensor(lua_State *L, const char *op)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    int arg = lrecur_check_size(L, op, 1, size, &ndim);
    recur_dtype dtype = lrecur_opt_dtype(L, arg, RECUR_FLOAT32);
    if (dtype == RECUR_INT64) luaL_error(L, "%s: int64 is not a floating dtype", op);
    return lrecur_push_new(L, op, dtype, ndim, size);
}

static int l_rand(lua_State *L)
{
    recur_tensor *t = push_float_tensor(L, "rand");
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, recur_rng_uniform(g));
    return 1;
}

static int l_randn(lua_State *L)
{
    recur_tensor *t = push_float_tensor(L, "randn");
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, recur_rng_normal(g));
    return 1;
}

/* recur.uniform(size_table, lo, hi [, dtype]) */
static int l_uniform(lua_State *L)
{
    int64_t size[RECUR_MAX_DIMS];
    int ndim;
    luaL_checktype(L, 1, LUA_TTABLE);
    lrecur_check_size(L, "uniform", 1, size, &ndim);
    double lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    if (!isfinite(lo) || !isfinite(hi)) luaL_error(L, "uniform: bounds must be finite, got %f and %f", lo, hi);
    if (!(lo <= hi)) luaL_error(L, "uniform: lower bound %f above upper bound %f", lo, hi);
    recur_dtype dtype = lrecur_opt_dtype(L, 4, RECUR_FLOAT32);
    if (dtype == RECUR_INT64) luaL_error(L, "uniform: int64 is not a floating dtype");
    recur_tensor *t = lrecur_push_new(L, "uniform", dtype, ndim, size);
    recur_rng *g = lrecur_rng(L);
    int64_t n = recur_numel(t);
    for (int64_t i = 0; i < n; i++) recur_set_flat(t, i, lo + (hi - lo) * recur_rng_uniform(g));
    return 1;
}

/* recur.random_integer(lo, hi): one uniform integer in [lo, hi] from the generator,
 * for shuffles and sampling done in Lua. The span is computed in unsigned arithmetic
 * (hi - lo overflows int64 for the widest ranges). */
static int l_random_integer(lua_State *L)
{
    lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
    if (lo > hi) luaL_error(L, "random_integer: empty range [%I, %I]", (lua_Integer)lo, (lua_Integer)hi);
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1; /* 0: all 2^64 values */
    recur_rng *g = lrecur_rng(L);
    uint64_t r;
    if (span == 0) r = recur_rng_next(g);
    else {
        /* rejection sampling keeps every value equally likely */
        uint64_t limit = UINT64_MAX - UINT64_MAX % span;
        do r = recur_rng_next(g); while (r >= limit);
        r %= span;
    }
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
    return 1;
}

static int l_random_uniform(lua_State *L)
{
    lua_pushnumber(L, recur_rng_uniform(lrecur_rng(L)));
    return 1;
}

/* Generator state as a string (for checkpoints) and back. */
static int l_get_rng_state(lua_State *L)
{
    lua_pushlstring(L, (const char *)lrecur_rng(L)->s, sizeof(recur_rng));
    return 1;
}

/* The all-zero state is refused: xoshiro256** would emit zeros forever from it (and
 * the normal sampler's rejection loop would never end). */
static int l_set_rng_state(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (len != sizeof(recur_rng))
        luaL_error(L, "set_rng_state: expected %d bytes, got %I", (int)sizeof(recur_rng),
                   (lua_Integer)len);
    recur_rng g;
    memcpy(g.s, s, len);
    if ((g.s[0] | g.s[1] | g.s[2] | g.s[3]) == 0)
        luaL_error(L, "set_rng_state: the all-zero state is not a valid generator state");
    *lrecur_rng(L) = g;
    return 0;
}

static const luaL_Reg random_functions[] = {
    {"manual_seed", l_manual_seed}, {"rand", l_rand}, {"randn", l_randn},
    {"uniform", l_uniform}, {"random_integer", l_random_integer},
    {"random_uniform", l_random_uniform}, {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state}, {NULL, NULL}};

void lrecur_open_random(lua_State *L)
{
    lrecur_rng(L); /* one generator per lua_State, seeded the same way every time */
    luaL_setfuncs(L, random_functions, 0);
}
