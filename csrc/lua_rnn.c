/* Lua binding for the fused recurrent kernels (include/recur/rnn.h): core.rnn_layer.
 *
 *   local layer = core.rnn_layer(cell, input_size, hidden_size [, opts])
 *     cell: "lstm" | "gru" | "rnn_tanh" | "rnn_relu" | "rnn_identity"
 *     opts: reset_after (a boolean, gru only, default true), reverse (a boolean,
 *           default false), dtype ("float32" default | "float64"); any other key is
 *           an error. These are checked here alone: nn.Recurrent passes them on.
 *   local y, hn, cn = layer:forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths [, y_out
 *                                   [, bf16_w, bf16_w_hh]])
 *     x (T,B,D); w_ih (G*H,D), w_hh (G*H,H); b_ih, b_hh (G*H) or nil (no bias);
 *     h0, c0 (B,H) or nil for zeros (c0 only for lstm); lengths nil or an int64 tensor
 *     (B) with values in 1..T. Returns y (T,B,H), new hn (B,H), new cn (B,H) (nil unless
 *     lstm), and keeps x and the parameters (user values) for backward. y is y_out,
 *     overwritten, when y_out is given, fits and shares no storage with x (see
 *     lrecur_push_result), else a new tensor. With bf16_w (core.bf16_matrix of
 *     [w_ih w_hh], or of w_ih with bf16_w_hh for the gru; float32 layers), the forward's
 *     products run in bf16 (csrc/bf16_rnn.h) and backward stays float32.
 *   local gx, gh0, gc0 = layer:backward(gy, ghn, gcn, gw_ih, gw_hh, gb_ih, gb_hh,
 *                                       bptt_truncate [, gx_out])
 *     For the last forward (an error before any; may be repeated). gy (T,B,H) or nil;
 *     ghn, gcn (B,H) or nil (gcn only for lstm); gw_ih, gw_hh contiguous, accumulated
 *     into (+=); gb_ih, gb_hh likewise, given exactly when forward had that bias;
 *     bptt_truncate nil (full BPTT) or k >= 0 (rnn.h). Returns gx (T,B,D) (gx_out,
 *     overwritten, on the same terms as y_out), new gh0 (B,H), new gc0 (B,H) (nil unless
 *     lstm).
 *   local h, c = layer:step(x_t, w_ih, w_hh, b_ih, b_hh, h, c)
 *     x_t (B,D); h, c (B,H) contiguous, updated in place and returned (c only for lstm);
 *     nil starts from zeros in a new tensor. No allocation after the first call with a
 *     given B; a pending backward is not disturbed.
 *   layer:cell() -> "lstm" | "gru" | "rnn_tanh" | "rnn_relu" | "rnn_identity"
 *   layer:sizes() -> input_size, hidden_size, gates
 *   layer:memory() -> bytes held for saved activations, bytes of workspace
 * Non-contiguous inputs are copied; wrong shapes and dtypes raise errors naming the
 * operation and the argument, e.g. "rnn_layer.forward: weight_hh expected (2048x512),
 * got (512x2048)".
 *
 * The userdata owns the saved activations of the last forward and one workspace, both
 * grown on demand and reused. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lua_recur.h"
#include "recur/rnn.h"

#define RNN_LAYER_MT "recur.rnn_layer"

/* user values of the layer userdata: what the last forward used */
enum { UV_X = 1, UV_W_IH, UV_W_HH, UV_B_IH, UV_B_HH, UV_COUNT = UV_B_HH };

typedef struct {
    recur_rnn_cell cell;
    int D, H, G;
    int reverse;
    recur_dtype dtype;
    void *saved;            /* saved activations of the last forward */
    size_t saved_bytes;
    void *work;             /* forward, backward and step workspace */
    size_t work_bytes;
    int64_t *lengths;       /* copy of the last forward's lengths */
    int lengths_cap;
    /* the last forward */
    int ready, T, B, has_lengths, has_b_ih, has_b_hh;
    unsigned forwards; /* counts forwards: backward notices one run by a finalizer */
} rnn_layer;

/* The names core.rnn_layer takes, and the cell each picks (the classic gru is "gru"
 * with reset_after = false). */
static const char *const cell_names[] = {"rnn_tanh", "rnn_relu", "rnn_identity", "lstm", "gru",
                                         NULL};
static const recur_rnn_cell cell_values[] = {RECUR_RNN_TANH, RECUR_RNN_RELU, RECUR_RNN_IDENTITY,
                                             RECUR_RNN_LSTM, RECUR_RNN_GRU};

static const char *cell_name(recur_rnn_cell cell)
{
    if (cell == RECUR_RNN_GRU_CLASSIC) cell = RECUR_RNN_GRU;
    for (int i = 0; cell_names[i]; i++)
        if (cell_values[i] == cell) return cell_names[i];
    return "?";
}

static rnn_layer *check_layer(lua_State *L)
{
    return luaL_checkudata(L, 1, RNN_LAYER_MT);
}

/* Grows *buf to at least `bytes` (contents not kept): allocation happens only when a
 * call needs more than any before it. */
static void *reserve(lua_State *L, const char *op, void **buf, size_t *have, size_t bytes)
{
    if (bytes <= *have && *buf) return *buf;
    free(*buf);
    *buf = NULL;
    *have = 0;
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(buf, 64, rounded) != 0) {
        *buf = NULL;
        luaL_error(L, "%s: out of memory allocating %I bytes", op, (lua_Integer)rounded);
    }
    *have = rounded;
    return *buf;
}

/* The tensor at arg with the layer's dtype and shape `size` (-1 = any), made contiguous
 * in place on the stack if needed. */
static recur_tensor *check_arg(lua_State *L, const char *op, int arg, const char *what,
                               const rnn_layer *l, int ndim, const int64_t *size)
{
    recur_tensor *t = lrecur_opt_tensor(L, op, arg, what);
    if (!t) luaL_error(L, "%s: %s expected a tensor, got nil", op, what);
    lrecur_check_dtype(L, op, what, t, l->dtype);
    lrecur_check_shape(L, op, what, t, ndim, size);
    if (!recur_is_contiguous(t)) {
        t = lrecur_contiguous(L, t);
        lua_replace(L, arg);
    }
    return t;
}

/* Same, nil allowed (returns NULL). */
static recur_tensor *opt_arg(lua_State *L, const char *op, int arg, const char *what,
                             const rnn_layer *l, int ndim, const int64_t *size)
{
    if (lua_isnoneornil(L, arg)) return NULL;
    return check_arg(L, op, arg, what, l, ndim, size);
}

/* A gradient accumulated into in place: right dtype and shape, and contiguous (a copy
 * would lose the result). */
static recur_tensor *check_grad(lua_State *L, const char *op, int arg, const char *what,
                                const rnn_layer *l, int ndim, const int64_t *size)
{
    recur_tensor *t = lrecur_opt_tensor(L, op, arg, what);
    if (!t) luaL_error(L, "%s: %s expected a tensor, got nil", op, what);
    lrecur_check_dtype(L, op, what, t, l->dtype);
    lrecur_check_shape(L, op, what, t, ndim, size);
    lrecur_check_contiguous(L, op, what, t);
    return t;
}

static void *ptr(const recur_tensor *t)
{
    return t ? recur_data(t) : NULL;
}

/* core.rnn_layer(cell, input_size, hidden_size [, opts]) */
static int rnn_layer_new(lua_State *L)
{
    static const char *const op = "rnn_layer";
    recur_rnn_cell cell = cell_values[luaL_checkoption(L, 1, NULL, cell_names)];
    lua_Integer D = luaL_checkinteger(L, 2), H = luaL_checkinteger(L, 3);
    int G = recur_rnn_gates(cell);
    if (D < 1 || H < 1)
        luaL_error(L, "%s: input_size and hidden_size must be >= 1, got %I and %I", op, D, H);
    if (D > INT_MAX || H > INT_MAX / 4) /* BLAS takes sizes as int */
        luaL_error(L, "%s: sizes too large (%I, %I)", op, D, H);
    int reverse = 0, reset_after = 1;
    recur_dtype dtype = RECUR_FLOAT32;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(key, "reverse") && strcmp(key, "reset_after") && strcmp(key, "dtype"))
                luaL_error(L, "%s: unknown option '%s' (known: dtype, reset_after, reverse)", op,
                           luaL_tolstring(L, -2, NULL));
            if (strcmp(key, "dtype") && !lua_isboolean(L, -1))
                luaL_error(L, "%s: option %s must be a boolean, got %s", op, key,
                           luaL_typename(L, -1));
            lua_pop(L, 1);
        }
        if (lua_getfield(L, 4, "reverse") != LUA_TNIL) reverse = lua_toboolean(L, -1);
        if (lua_getfield(L, 4, "reset_after") != LUA_TNIL) {
            if (cell != RECUR_RNN_GRU)
                luaL_error(L, "%s: option reset_after applies only to the gru cell, not %s", op,
                           cell_name(cell));
            reset_after = lua_toboolean(L, -1);
        }
        if (lua_getfield(L, 4, "dtype") != LUA_TNIL) {
            const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(name, "float32") == 0) dtype = RECUR_FLOAT32;
            else if (strcmp(name, "float64") == 0) dtype = RECUR_FLOAT64;
            else
                luaL_error(L, "%s: option dtype must be \"float32\" or \"float64\", got %s",
                           op, luaL_tolstring(L, -1, NULL));
        }
        lua_pop(L, 3);
    }
    if (cell == RECUR_RNN_GRU && !reset_after) cell = RECUR_RNN_GRU_CLASSIC;
    rnn_layer *l = lua_newuserdatauv(L, sizeof *l, UV_COUNT);
    memset(l, 0, sizeof *l);
    l->cell = cell;
    l->D = (int)D;
    l->H = (int)H;
    l->G = G;
    l->reverse = reverse;
    l->dtype = dtype;
    luaL_setmetatable(L, RNN_LAYER_MT);
    return 1;
}

/* y, hn, cn = layer:forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths) */
static int rnn_layer_forward(lua_State *L)
{
    static const char *const op = "rnn_layer.forward";
    rnn_layer *l = check_layer(L);
    const int D = l->D, H = l->H, GH = l->G * l->H;
    const int lstm = l->cell == RECUR_RNN_LSTM;
    lua_settop(L, 12);
    recur_tensor *x = check_arg(L, op, 2, "x", l, 3, (int64_t[]){-1, -1, D});
    if (x->size[0] < 1 || x->size[1] < 1)
        luaL_error(L, "%s: x expected (T,B,%d) with T, B >= 1, got T=%I, B=%I", op, D,
                   (lua_Integer)x->size[0], (lua_Integer)x->size[1]);
    if (x->size[0] * x->size[1] > INT_MAX ||
        (double)x->size[0] * (double)x->size[1] * H * (l->G + 2) * 8 > 0x1p62)
        luaL_error(L, "%s: T*B = %I is too large", op, (lua_Integer)(x->size[0] * x->size[1]));
    const int T = (int)x->size[0], B = (int)x->size[1];
    recur_tensor *w_ih = check_arg(L, op, 3, "weight_ih", l, 2, (int64_t[]){GH, D});
    recur_tensor *w_hh = check_arg(L, op, 4, "weight_hh", l, 2, (int64_t[]){GH, H});
    recur_tensor *b_ih = opt_arg(L, op, 5, "bias_ih", l, 1, (int64_t[]){GH});
    recur_tensor *b_hh = opt_arg(L, op, 6, "bias_hh", l, 1, (int64_t[]){GH});
    recur_tensor *h0 = opt_arg(L, op, 7, "h0", l, 2, (int64_t[]){B, H});
    if (!lstm && !lua_isnil(L, 8))
        luaL_error(L, "%s: c0 is only for lstm, this layer is %s", op, cell_name(l->cell));
    recur_tensor *c0 = opt_arg(L, op, 8, "c0", l, 2, (int64_t[]){B, H});
    recur_tensor *len = NULL;
    if (!lua_isnil(L, 9)) {
        len = lrecur_opt_tensor(L, op, 9, "lengths");
        lrecur_check_dtype(L, op, "lengths", len, RECUR_INT64);
        lrecur_check_shape(L, op, "lengths", len, 1, (int64_t[]){B});
        for (int b = 0; b < B; b++) {
            int64_t v = recur_get_flat_i64(len, b);
            if (v < 1 || v > T)
                luaL_error(L, "%s: lengths[%d] = %I is outside 1..T (T = %d)", op, b + 1,
                           (lua_Integer)v, T);
        }
    }

    lrecur_bf16_layer bf16 = {NULL, NULL};
    if (!lua_isnil(L, 11)) {
        if (l->dtype != RECUR_FLOAT32) luaL_error(L, "%s: bf16 products need a float32 layer", op);
        lrecur_bf16_layer_check(L, op, 11, l->cell, D, H, &bf16);
    }

    /* Lua allocations first: any of them may run a finalizer, which may use this very
     * layer (another forward reallocates its buffers); after them nothing can. */
    /* every element of y is written (zeros past a sequence's length) */
    recur_tensor *y = lrecur_push_result(L, op, 10, l->dtype, 3, (int64_t[]){T, B, H}, x, NULL);
    recur_tensor *hn = lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H});
    recur_tensor *cn = lstm ? lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H}) : NULL;
    if (!lstm) lua_pushnil(L);

    /* every check has passed; from here on the previous forward is gone */
    l->ready = 0;
    l->forwards++;
    const int64_t *lengths = NULL;
    if (len) {
        if (B > l->lengths_cap) {
            int64_t *p = realloc(l->lengths, (size_t)B * sizeof *p);
            if (!p) luaL_error(L, "%s: out of memory", op);
            l->lengths = p;
            l->lengths_cap = B;
        }
        for (int b = 0; b < B; b++) l->lengths[b] = recur_get_flat_i64(len, b);
        lengths = l->lengths;
    }
    size_t es = recur_dtype_size(l->dtype);
    void *saved = reserve(L, op, &l->saved, &l->saved_bytes, recur_rnn_saved_size(l->cell, T, B, H) * es);
    void *work = reserve(L, op, &l->work, &l->work_bytes,
                         bf16.w ? lrecur_bf16_layer_work(l->cell, T, B, D, H)
                                : recur_rnn_forward_workspace_size(l->cell, B, D, H) * es);

    if (bf16.w)
        lrecur_bf16_layer_forward(&bf16, l->cell, ptr(y), ptr(hn), ptr(cn), saved, ptr(x), ptr(b_ih),
                                  ptr(b_hh), ptr(h0), ptr(c0), lengths, l->reverse, T, B, D, H, work);
    else if (l->dtype == RECUR_FLOAT32)
        recur_rnn_forward_f32(l->cell, ptr(y), ptr(hn), ptr(cn), saved, ptr(x), ptr(w_ih), ptr(w_hh),
                        ptr(b_ih), ptr(b_hh), ptr(h0), ptr(c0), lengths, l->reverse, T, B, D, H,
                        work);
    else
        recur_rnn_forward_f64(l->cell, ptr(y), ptr(hn), ptr(cn), saved, ptr(x), ptr(w_ih), ptr(w_hh),
                        ptr(b_ih), ptr(b_hh), ptr(h0), ptr(c0), lengths, l->reverse, T, B, D, H,
                        work);

    /* keep what backward reads alive: x and the parameters (user values of the layer) */
    for (int uv = UV_X; uv <= UV_B_HH; uv++) {
        lua_pushvalue(L, uv + 1); /* x at 2, w_ih at 3, ... b_hh at 6 */
        lua_setiuservalue(L, 1, uv);
    }
    l->ready = 1;
    l->T = T;
    l->B = B;
    l->has_lengths = lengths != NULL;
    l->has_b_ih = b_ih != NULL;
    l->has_b_hh = b_hh != NULL;
    return 3;
}

/* A tensor forward kept for backward: it may have been closed since, and the kernel
 * reads it with the sizes of that forward, so both are checked again. */
static recur_tensor *saved_tensor(lua_State *L, const char *op, int uv, const char *what,
                                  const rnn_layer *l, int ndim, const int64_t *size)
{
    lua_getiuservalue(L, 1, uv);
    recur_tensor *t = luaL_testudata(L, -1, RECUR_TENSOR_MT);
    lua_pop(L, 1); /* still referenced by the user value */
    if (!t || !t->storage)
        luaL_error(L, "%s: %s of the last forward was closed since (keep it open until "
                   "backward)", op, what);
    lrecur_check_dtype(L, op, what, t, l->dtype);
    lrecur_check_shape(L, op, what, t, ndim, size);
    lrecur_check_contiguous(L, op, what, t);
    return t;
}

/* gx, gh0, gc0 = layer:backward(gy, ghn, gcn, gw_ih, gw_hh, gb_ih, gb_hh, bptt_truncate) */
static int rnn_layer_backward(lua_State *L)
{
    static const char *const op = "rnn_layer.backward";
    rnn_layer *l = check_layer(L);
    if (!l->ready) luaL_error(L, "%s: no forward to go back through (call forward first)", op);
    const int T = l->T, B = l->B, D = l->D, H = l->H, GH = l->G * l->H;
    const int lstm = l->cell == RECUR_RNN_LSTM;
    lua_settop(L, 10);
    recur_tensor *gy = opt_arg(L, op, 2, "gy", l, 3, (int64_t[]){T, B, H});
    recur_tensor *ghn = opt_arg(L, op, 3, "ghn", l, 2, (int64_t[]){B, H});
    if (!lstm && !lua_isnil(L, 4))
        luaL_error(L, "%s: gcn is only for lstm, this layer is %s", op, cell_name(l->cell));
    recur_tensor *gcn = opt_arg(L, op, 4, "gcn", l, 2, (int64_t[]){B, H});
    recur_tensor *gw_ih = check_grad(L, op, 5, "grad_weight_ih", l, 2, (int64_t[]){GH, D});
    recur_tensor *gw_hh = check_grad(L, op, 6, "grad_weight_hh", l, 2, (int64_t[]){GH, H});
    recur_tensor *gb_ih = NULL, *gb_hh = NULL;
    if (l->has_b_ih) gb_ih = check_grad(L, op, 7, "grad_bias_ih", l, 1, (int64_t[]){GH});
    else if (!lua_isnil(L, 7))
        luaL_error(L, "%s: grad_bias_ih given but forward had no bias_ih", op);
    if (l->has_b_hh) gb_hh = check_grad(L, op, 8, "grad_bias_hh", l, 1, (int64_t[]){GH});
    else if (!lua_isnil(L, 8))
        luaL_error(L, "%s: grad_bias_hh given but forward had no bias_hh", op);
    int k = -1;
    if (!lua_isnil(L, 9)) {
        int isint;
        lua_Integer v = lua_tointegerx(L, 9, &isint);
        if (!isint || v < 0)
            luaL_error(L, "%s: bptt_truncate must be nil or an integer >= 0, got %s", op,
                       luaL_tolstring(L, 9, NULL));
        k = v > T ? T : (int)v; /* beyond T nothing is truncated */
    }
    recur_tensor *x = saved_tensor(L, op, UV_X, "x", l, 3, (int64_t[]){T, B, D});
    recur_tensor *w_ih = saved_tensor(L, op, UV_W_IH, "weight_ih", l, 2, (int64_t[]){GH, D});
    recur_tensor *w_hh = saved_tensor(L, op, UV_W_HH, "weight_hh", l, 2, (int64_t[]){GH, H});

    size_t es = recur_dtype_size(l->dtype);
    /* Lua allocations first (see forward); a finalizer that ran this layer's forward
     * meanwhile replaced what this backward would read */
    unsigned forwards = l->forwards;
    recur_tensor *gx = lrecur_push_result(L, op, 10, l->dtype, 3, (int64_t[]){T, B, D}, gy, x);
    recur_tensor *gh0 = lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H});
    recur_tensor *gc0 = lstm ? lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H}) : NULL;
    if (!lstm) lua_pushnil(L);
    if (l->forwards != forwards || !l->ready)
        luaL_error(L, "%s: the layer ran forward again during this backward (from a finalizer)", op);
    /* the kernel adds into gx; a new tensor is zero already */
    if (gx == lrecur_opt_tensor(L, op, 10, "gx_out")) memset(ptr(gx), 0, (size_t)T * B * D * es);
    void *work = reserve(L, op, &l->work, &l->work_bytes,
                         recur_rnn_backward_workspace_size(l->cell, T, B, D, H, k) * es);
    const int64_t *lengths = l->has_lengths ? l->lengths : NULL;
    if (l->dtype == RECUR_FLOAT32)
        recur_rnn_backward_f32(l->cell, ptr(gx), ptr(gh0), ptr(gc0), ptr(gw_ih), ptr(gw_hh), ptr(gb_ih),
                         ptr(gb_hh), ptr(gy), ptr(ghn), ptr(gcn), l->saved, ptr(x), ptr(w_ih),
                         ptr(w_hh), lengths, l->reverse, k, T, B, D, H, work);
    else
        recur_rnn_backward_f64(l->cell, ptr(gx), ptr(gh0), ptr(gc0), ptr(gw_ih), ptr(gw_hh), ptr(gb_ih),
                         ptr(gb_hh), ptr(gy), ptr(ghn), ptr(gcn), l->saved, ptr(x), ptr(w_ih),
                         ptr(w_hh), lengths, l->reverse, k, T, B, D, H, work);
    return 3;
}

/* h, c = layer:step(x_t, w_ih, w_hh, b_ih, b_hh, h, c) */
static int rnn_layer_step(lua_State *L)
{
    static const char *const op = "rnn_layer.step";
    rnn_layer *l = check_layer(L);
    const int D = l->D, H = l->H, GH = l->G * l->H;
    const int lstm = l->cell == RECUR_RNN_LSTM;
    lua_settop(L, 8);
    recur_tensor *x = check_arg(L, op, 2, "x", l, 2, (int64_t[]){-1, D});
    if (x->size[0] < 1) luaL_error(L, "%s: x expected (B,%d) with B >= 1, got B=0", op, D);
    if (x->size[0] > INT_MAX || (double)x->size[0] * H * (l->G + 3) * 8 > 0x1p62)
        luaL_error(L, "%s: B = %I is too large", op, (lua_Integer)x->size[0]);
    const int B = (int)x->size[0];
    recur_tensor *w_ih = check_arg(L, op, 3, "weight_ih", l, 2, (int64_t[]){GH, D});
    recur_tensor *w_hh = check_arg(L, op, 4, "weight_hh", l, 2, (int64_t[]){GH, H});
    recur_tensor *b_ih = opt_arg(L, op, 5, "bias_ih", l, 1, (int64_t[]){GH});
    recur_tensor *b_hh = opt_arg(L, op, 6, "bias_hh", l, 1, (int64_t[]){GH});
    if (!lstm && !lua_isnil(L, 8))
        luaL_error(L, "%s: c is only for lstm, this layer is %s", op, cell_name(l->cell));
    /* the state is updated in place; nil starts from zeros in a new tensor */
    recur_tensor *h, *c = NULL;
    if (lua_isnil(L, 7)) {
        h = lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H});
        lua_replace(L, 7);
    } else {
        h = check_grad(L, op, 7, "h", l, 2, (int64_t[]){B, H});
    }
    if (lstm) {
        if (lua_isnil(L, 8)) {
            c = lrecur_push_new(L, op, l->dtype, 2, (int64_t[]){B, H});
            lua_replace(L, 8);
        } else {
            c = check_grad(L, op, 8, "c", l, 2, (int64_t[]){B, H});
        }
    }
    size_t es = recur_dtype_size(l->dtype);
    void *work = reserve(L, op, &l->work, &l->work_bytes, recur_rnn_step_workspace_size(l->cell, B, H) * es);
    if (l->dtype == RECUR_FLOAT32)
        recur_rnn_step_f32(l->cell, ptr(h), ptr(c), ptr(x), ptr(w_ih), ptr(w_hh), ptr(b_ih), ptr(b_hh),
                     B, D, H, work);
    else
        recur_rnn_step_f64(l->cell, ptr(h), ptr(c), ptr(x), ptr(w_ih), ptr(w_hh), ptr(b_ih), ptr(b_hh),
                     B, D, H, work);
    lua_pushvalue(L, 7);
    if (lstm) {
        lua_pushvalue(L, 8);
        return 2;
    }
    return 1;
}

static int rnn_layer_cell(lua_State *L)
{
    lua_pushstring(L, cell_name(check_layer(L)->cell));
    return 1;
}

static int rnn_layer_sizes(lua_State *L)
{
    rnn_layer *l = check_layer(L);
    lua_pushinteger(L, l->D);
    lua_pushinteger(L, l->H);
    lua_pushinteger(L, l->G);
    return 3;
}

static int rnn_layer_memory(lua_State *L)
{
    rnn_layer *l = check_layer(L);
    lua_pushinteger(L, (lua_Integer)l->saved_bytes);
    lua_pushinteger(L, (lua_Integer)l->work_bytes);
    return 2;
}

static int rnn_layer_tostring(lua_State *L)
{
    rnn_layer *l = check_layer(L);
    lua_pushfstring(L, "rnn_layer(%s%s, %d -> %d%s, %s)", cell_name(l->cell),
                    l->cell == RECUR_RNN_GRU_CLASSIC ? " reset_after=false" : "", l->D, l->H,
                    l->reverse ? ", reverse" : "", recur_dtype_name(l->dtype));
    return 1;
}

static int rnn_layer_gc(lua_State *L)
{
    rnn_layer *l = check_layer(L);
    free(l->saved);
    free(l->work);
    free(l->lengths);
    l->saved = l->work = NULL;
    l->lengths = NULL;
    l->saved_bytes = l->work_bytes = 0;
    l->lengths_cap = 0;
    l->ready = 0;
    return 0;
}

static const luaL_Reg rnn_layer_methods[] = {
    {"forward", rnn_layer_forward},
    {"backward", rnn_layer_backward},
    {"step", rnn_layer_step},
    {"cell", rnn_layer_cell},
    {"sizes", rnn_layer_sizes},
    {"memory", rnn_layer_memory},
    {NULL, NULL},
};

static const luaL_Reg rnn_layer_meta[] = {
    {"__gc", rnn_layer_gc},
    {"__close", rnn_layer_gc},
    {"__tostring", rnn_layer_tostring},
    {NULL, NULL},
};

void lrecur_open_rnn(lua_State *L)
{
    luaL_newmetatable(L, RNN_LAYER_MT);
    luaL_setfuncs(L, rnn_layer_meta, 0);
    luaL_newlib(L, rnn_layer_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, rnn_layer_new);
    lua_setfield(L, -2, "rnn_layer");
}
