/* Lua binding of the token choice (include/recur/decode.h):
 *
 *   choose(scores, temperature, top_k, top_p, banned [, row]) -> id | nil, message
 *
 * scores: a 1-D tensor, a row (1-based) of a 2-D one, or a Lua array of numbers;
 * top_k and top_p 0 for none; banned nil or a set {[id] = true}. The id is 1-based.
 * A model's bad scores (NaN, all banned) come back as nil and a message, for
 * recur.decode to raise at its caller; wrong arguments are errors here. The options'
 * own checks are recur.decode's. */
#include <math.h>
#include <string.h>

#include "lua_recur.h"
#include "recur/decode.h"

#define SCRATCH_KEY "recur.choose_scratch"

/* A block of at least `bytes` kept in the registry from call to call (generation
 * chooses once per token and should not feed the collector each time), left on the
 * stack for the rest of the call. The scores are read raw, so no metamethod runs Lua
 * code that could replace the block while it is in use. */
static void *scratch(lua_State *L, size_t bytes)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, SCRATCH_KEY) == LUA_TUSERDATA &&
        lua_rawlen(L, -1) >= bytes)
        return lua_touserdata(L, -1);
    lua_pop(L, 1);
    void *p = lua_newuserdatauv(L, bytes > 64 ? bytes : 64, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SCRATCH_KEY);
    return p;
}

/* The number of scores at arg; the tensor (or NULL for a Lua array) and its first
 * element and stride in *t, *first, *stride. */
static int64_t score_count(lua_State *L, int row_arg, recur_tensor **t, int64_t *first,
                           int64_t *stride)
{
    *t = lrecur_test_tensor(L, 1);
    if (!*t) {
        luaL_checktype(L, 1, LUA_TTABLE);
        return (int64_t)lua_rawlen(L, 1);
    }
    recur_tensor *s = *t;
    if (lua_isnoneornil(L, row_arg)) {
        if (s->ndim != 1) luaL_error(L, "decode: expected a 1-D tensor of scores, got %d-D", s->ndim);
        *first = 0, *stride = s->stride[0];
        return s->size[0];
    }
    if (s->ndim != 2) luaL_error(L, "decode: expected a 2-D tensor of scores with a row, got %d-D", s->ndim);
    int64_t r = lrecur_check_index(L, "decode", s, 0, luaL_checkinteger(L, row_arg));
    *first = r * s->stride[0], *stride = s->stride[1];
    return s->size[1];
}

static void read_scores(lua_State *L, double *out, int64_t n, const recur_tensor *t,
                        int64_t first, int64_t stride)
{
    if (!t) {
        for (int64_t i = 0; i < n; i++) {
            int type = lua_rawgeti(L, 1, (lua_Integer)i + 1);
            if (type != LUA_TNUMBER)
                luaL_error(L, "decode: score %I is a %s, not a number", (lua_Integer)i + 1,
                           lua_typename(L, type));
            out[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else if (t->dtype == RECUR_FLOAT32) {
        const float *p = (const float *)t->storage->data + t->offset + first;
        for (int64_t i = 0; i < n; i++) out[i] = p[i * stride];
    } else {
        recur_tensor row = *t; /* a 1-D view of the scores, for the generic reader */
        row.ndim = 1, row.offset += first, row.size[0] = n, row.stride[0] = stride;
        for (int64_t i = 0; i < n; i++) out[i] = recur_get_flat(&row, i);
    }
}

static void read_banned(lua_State *L, int arg, unsigned char *banned, int64_t n)
{
    memset(banned, 0, (size_t)n);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        if (lua_isinteger(L, -2) && lua_toboolean(L, -1)) {
            lua_Integer id = lua_tointeger(L, -2);
            if (id >= 1 && id <= n) banned[id - 1] = 1;
        }
        lua_pop(L, 1);
    }
}

static int l_choose(lua_State *L)
{
    recur_choice choice;
    choice.temperature = luaL_checknumber(L, 2);
    choice.top_k = (int64_t)luaL_checkinteger(L, 3);
    choice.top_p = luaL_checknumber(L, 4);
    if (!(choice.temperature >= 0) || choice.top_k < 0 || !(choice.top_p >= 0 && choice.top_p <= 1))
        luaL_error(L, "decode: bad choice (temperature %f, top_k %I, top_p %f)", choice.temperature,
                   (lua_Integer)choice.top_k, choice.top_p);
    int has_banned = !lua_isnoneornil(L, 5);
    if (has_banned) luaL_checktype(L, 5, LUA_TTABLE);

    recur_tensor *t;
    int64_t first = 0, stride = 1;
    int64_t n = score_count(L, 6, &t, &first, &stride);
    if (n > (int64_t)(RECUR_MAX_NUMEL / 32)) luaL_error(L, "decode: %I scores are too many", (lua_Integer)n);
    size_t work = recur_choose_work_size(n);
    double *scores = scratch(L, (size_t)n * sizeof(double) + work + (size_t)n);
    void *work_at = scores + n;
    unsigned char *banned = has_banned ? (unsigned char *)work_at + work : NULL;
    read_scores(L, scores, n, t, first, stride);
    if (banned) read_banned(L, 5, banned, n);

    int64_t bad = 0;
    int64_t id = recur_choose(scores, banned, n, &choice, choice.temperature > 0 ? lrecur_rng(L) : NULL,
                              work_at, &bad);
    if (id >= 0) {
        lua_pushinteger(L, (lua_Integer)id + 1);
        return 1;
    }
    lua_pushnil(L);
    switch (id) {
    case RECUR_CHOOSE_EMPTY: lua_pushliteral(L, "decode: no scores to choose from"); break;
    case RECUR_CHOOSE_NOT_FINITE:
        lua_pushfstring(L, "decode: score %I is %s, not a finite number", (lua_Integer)bad + 1,
                        isnan(scores[bad]) ? "NaN" : "inf");
        break;
    case RECUR_CHOOSE_ALL_BANNED: lua_pushliteral(L, "decode: every token is banned"); break;
    default: lua_pushliteral(L, "decode: every allowed token has score -inf"); break;
    }
    return 2;
}

static const luaL_Reg decode_funcs[] = {
    {"choose", l_choose},
    {NULL, NULL}
};

void lrecur_open_decode(lua_State *L)
{
    luaL_setfuncs(L, decode_funcs, 0);
}
