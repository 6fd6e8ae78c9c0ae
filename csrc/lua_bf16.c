/* Lua binding for bfloat16 inference (csrc/bf16.h, csrc/bf16_rnn.h).
 *
 *   core.bf16_fast() -> boolean       a vector kernel runs for bf16 and int8 products
 *                                     (AVX-512 BF16 and VNNI, or AVX2 and FMA), else the
 *                                     portable C one; all give the same bits
 *   core.bf16_kernel() -> name        the bf16 kernel that runs: "avx512", "avx2" or
 *                                     "portable"
 *   core.bf16_use_fast(on) -> boolean switch the vector kernels off (false: the portable
 *                                     kernel, for tests), back on where the CPU has one
 *                                     (true), or to AVX2 even where AVX-512 BF16 is there
 *                                     ("avx2", for tests); returns bf16_fast()
 *   core.bf16_round(t) -> t'          a new float32 tensor: t's values rounded to bfloat16
 *   core.bf16_matrix(w [, w2]) -> m   w (N,K) float32 rounded and packed once, for
 *                                     y = x w^T; with w2 (N,K2), [w w2] (a layer's w_ih
 *                                     and w_hh side by side); m:size() -> N, K [, K2];
 *                                     m:repack(w [, w2]) refills it in place
 *   core.bf16_linear(x, m, bias [, out [, accumulate]]) -> y
 *                                     x (M,K) float32, bias (N) or nil: y (M,N) =
 *                                     x w^T + bias, into out when it fits; with
 *                                     accumulate, y = out + x w^T (out (M,N), bias nil)
 *   core.bf16_rnn_forward(cell, reverse, x, w, w_hh, b_ih, b_hh, h, c, lengths [, y])
 *                                     -> y: one layer's inference forward: cell "lstm" |
 *                                     "gru" (reset after) | "rnn_tanh" | "rnn_relu" |
 *                                     "rnn_identity"; x (T,B,D); w the bf16 matrix of
 *                                     [w_ih w_hh] (G*H, D+H) and w_hh nil, except for the
 *                                     gru: w of w_ih (G*H,D), w_hh of w_hh (G*H,H);
 *                                     b_ih, b_hh (G*H) or nil;
 *                                     h (B,H) and c (B,H, lstm only) contiguous, the
 *                                     initial state, updated in place to the final one;
 *                                     lengths nil or int64 (B) in 1..T; y (T,B,H) into the
 *                                     given tensor when it fits, or false for none (a
 *                                     step: h is the output).
 *   core.int8_matrix(w) -> m          w (N,K) float32 rounded to int8 rows with a scale
 *                                     each (bf16_int8.h), for generation; m:size() -> N, K
 *   core.int8_linear(x, m, bias [, out]) -> y   as bf16_linear, x's rows quantized
 *                                     as they come; core.bf16_rnn_forward takes two int8
 *                                     matrices (w_ih, w_hh apart, every cell) as well
 * Errors name the operation and the argument, e.g. "bf16_linear: x expected (1x512),
 * got (1x256)". The workspace (the rounded rows, the pre-activations) is kept from
 * call to call: a step of generation allocates nothing once the sizes have been seen. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "bf16_int8.h"
#include "bf16_rnn.h"
#include "lua_recur.h"
#include "recur/rnn.h"

#define BF16_MATRIX_MT "recur.bf16_matrix"

static void load_biases(recur_rnn_cell cell, float *binit, float *bhn, const float *bi,
                        const float *bh, int H);
#define INT8_MATRIX_MT "recur.int8_matrix"

typedef struct {
    int N, K, K2; /* (N,K) weights, and K2 more columns of a second matrix (or 0) */
    uint32_t *packed;
} bf16_matrix;

static bf16_matrix *check_matrix(lua_State *L, int arg)
{
    bf16_matrix *m = luaL_checkudata(L, arg, BF16_MATRIX_MT);
    if (!m->packed) luaL_argerror(L, arg, "closed bf16 matrix");
    return m;
}

/* The float32 tensor at arg, contiguous (replaced on the stack by a copy if needed). */
static recur_tensor *check_f32(lua_State *L, const char *op, int arg, const char *what, int ndim,
                               const int64_t *size)
{
    recur_tensor *t = lrecur_opt_tensor(L, op, arg, what);
    if (!t) luaL_error(L, "%s: %s expected a tensor, got nil", op, what);
    lrecur_check_dtype(L, op, what, t, RECUR_FLOAT32);
    lrecur_check_shape(L, op, what, t, ndim, size);
    if (!recur_is_contiguous(t)) {
        t = lrecur_contiguous(L, t);
        lua_replace(L, arg);
    }
    return t;
}

static void *aligned(lua_State *L, const char *op, size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64 + 64) != 0)
        luaL_error(L, "%s: out of memory allocating %I bytes", op, (lua_Integer)bytes);
    return p;
}

/* K of the packed operand: both parts padded to whole pairs */
static int packed_k(const bf16_matrix *m)
{
    return 2 * (bf16_pairs(m->K) + bf16_pairs(m->K2));
}

/* core.bf16_matrix(w [, w2]) */
static int bf16_matrix_new(lua_State *L)
{
    static const char *const op = "bf16_matrix";
    lua_settop(L, 2);
    recur_tensor *w = check_f32(L, op, 1, "weight", 2, (int64_t[]){-1, -1});
    if (w->size[0] < 1 || w->size[0] > INT_MAX / 2 || w->size[1] > INT_MAX / 4)
        luaL_error(L, "%s: weight of %I rows is out of range", op, (lua_Integer)w->size[0]);
    recur_tensor *w2 = NULL;
    if (!lua_isnil(L, 2)) {
        w2 = check_f32(L, op, 2, "second weight", 2, (int64_t[]){w->size[0], -1});
        if (w2->size[1] > INT_MAX / 4) luaL_error(L, "%s: second weight out of range", op);
    }
    bf16_matrix *m = lua_newuserdatauv(L, sizeof *m, 0);
    m->N = (int)w->size[0];
    m->K = (int)w->size[1];
    m->K2 = w2 ? (int)w2->size[1] : 0;
    m->packed = NULL;
    luaL_setmetatable(L, BF16_MATRIX_MT);
    m->packed = aligned(L, op, bf16_packed_size(m->N, packed_k(m)) * sizeof(uint32_t));
    bf16_pack(m->packed, recur_data(w), m->K, w2 ? recur_data(w2) : NULL, m->K2, m->N);
    return 1;
}

/* m:repack(w [, w2]) */
static int bf16_matrix_repack(lua_State *L)
{
    static const char *const op = "bf16_matrix.repack";
    bf16_matrix *m = check_matrix(L, 1);
    lua_settop(L, 3);
    recur_tensor *w = check_f32(L, op, 2, "weight", 2, (int64_t[]){m->N, m->K});
    recur_tensor *w2 = m->K2 ? check_f32(L, op, 3, "second weight", 2, (int64_t[]){m->N, m->K2}) : NULL;
    bf16_pack(m->packed, recur_data(w), m->K, w2 ? recur_data(w2) : NULL, m->K2, m->N);
    lua_settop(L, 1);
    return 1;
}

static int bf16_matrix_size(lua_State *L)
{
    bf16_matrix *m = check_matrix(L, 1);
    lua_pushinteger(L, m->N);
    lua_pushinteger(L, m->K);
    if (!m->K2) return 2;
    lua_pushinteger(L, m->K2);
    return 3;
}

static int bf16_matrix_tostring(lua_State *L)
{
    bf16_matrix *m = luaL_checkudata(L, 1, BF16_MATRIX_MT);
    if (m->K2) lua_pushfstring(L, "bf16_matrix(%dx(%d+%d))", m->N, m->K, m->K2);
    else lua_pushfstring(L, "bf16_matrix(%dx%d)", m->N, m->K);
    return 1;
}

static int bf16_matrix_gc(lua_State *L)
{
    bf16_matrix *m = luaL_checkudata(L, 1, BF16_MATRIX_MT);
    free(m->packed);
    m->packed = NULL;
    return 0;
}

/* ---- int8 matrices (bf16_int8.h) ---- */

typedef struct {
    int N, K;
    int8_t *packed;
    float *scale;
    int32_t *rowsum;
} int8_matrix;

static int8_matrix *check_int8(lua_State *L, int arg)
{
    int8_matrix *m = luaL_checkudata(L, arg, INT8_MATRIX_MT);
    if (!m->packed) luaL_argerror(L, arg, "closed int8 matrix");
    return m;
}

static i8_matrix i8_of(const int8_matrix *m)
{
    i8_matrix v = {m->packed, m->scale, m->rowsum};
    return v;
}

static int int8_matrix_gc(lua_State *L)
{
    int8_matrix *m = luaL_checkudata(L, 1, INT8_MATRIX_MT);
    free(m->packed);
    free(m->scale);
    free(m->rowsum);
    m->packed = NULL;
    m->scale = NULL;
    m->rowsum = NULL;
    return 0;
}

/* core.int8_matrix(w) */
static int int8_matrix_new(lua_State *L)
{
    static const char *const op = "int8_matrix";
    recur_tensor *w = check_f32(L, op, 1, "weight", 2, (int64_t[]){-1, -1});
    if (w->size[0] < 1 || w->size[0] > INT_MAX / 2 || w->size[1] > (1 << 16))
        luaL_error(L, "%s: weight of shape (%Ix%I) is out of range (at most 65536 columns: int32 sums)", op,
                   (lua_Integer)w->size[0], (lua_Integer)w->size[1]);
    int8_matrix *m = lua_newuserdatauv(L, sizeof *m, 0);
    memset(m, 0, sizeof *m);
    m->N = (int)w->size[0];
    m->K = (int)w->size[1];
    luaL_setmetatable(L, INT8_MATRIX_MT);
    m->packed = aligned(L, op, i8_packed_size(m->N, m->K));
    m->scale = aligned(L, op, (size_t)m->N * sizeof(float));
    m->rowsum = aligned(L, op, (size_t)m->N * sizeof(int32_t));
    i8_pack(m->packed, m->scale, m->rowsum, recur_data(w), m->N, m->K);
    return 1;
}

static int int8_matrix_size(lua_State *L)
{
    int8_matrix *m = check_int8(L, 1);
    lua_pushinteger(L, m->N);
    lua_pushinteger(L, m->K);
    return 2;
}

static int int8_matrix_tostring(lua_State *L)
{
    int8_matrix *m = luaL_checkudata(L, 1, INT8_MATRIX_MT);
    lua_pushfstring(L, "int8_matrix(%dx%d)", m->N, m->K);
    return 1;
}

static int l_bf16_fast(lua_State *L)
{
    lua_pushboolean(L, bf16_fast());
    return 1;
}

static int l_bf16_kernel(lua_State *L)
{
    const int level = bf16_level();
    lua_pushstring(L, level == BF16_AVX512 ? "avx512" : level == BF16_AVX2 ? "avx2" : "portable");
    return 1;
}

static int l_bf16_use_fast(lua_State *L)
{
    int on;
    if (lua_type(L, 1) == LUA_TSTRING) {
        luaL_checkoption(L, 1, NULL, (const char *const[]){"avx2", NULL});
        on = BF16_AVX2;
    } else {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        on = lua_toboolean(L, 1);
    }
    lua_pushboolean(L, bf16_use_fast(on));
    return 1;
}

/* core.bf16_round(t) */
static int l_bf16_round(lua_State *L)
{
    static const char *const op = "bf16_round";
    recur_tensor *t = lrecur_opt_tensor(L, op, 1, "input");
    if (!t) luaL_error(L, "%s: input expected a tensor, got nil", op);
    lrecur_check_dtype(L, op, "input", t, RECUR_FLOAT32);
    if (!recur_is_contiguous(t)) t = lrecur_contiguous(L, t);
    recur_tensor *r = lrecur_push_like(L, op, t);
    const float *src = recur_data(t);
    float *dst = recur_data(r);
    for (int64_t i = 0, n = recur_numel(t); i < n; i++) dst[i] = bf16_to_float(bf16_from_float(src[i]));
    return 1;
}

/* The result tensor at arg (when it is one that fits) or a new one, pushed. */
static recur_tensor *push_out(lua_State *L, const char *op, int arg, int ndim, const int64_t *size,
                              const recur_tensor *avoid)
{
    return lrecur_push_result(L, op, arg, RECUR_FLOAT32, ndim, size, avoid, NULL);
}

/* The workspace, an upvalue of bf16_rnn_forward and bf16_linear. */
typedef struct {
    void *p;
    size_t bytes;
} bf16_scratch;

static int scratch_gc(lua_State *L)
{
    bf16_scratch *s = lua_touserdata(L, 1);
    free(s->p);
    s->p = NULL;
    s->bytes = 0;
    return 0;
}

static void *scratch_reserve(lua_State *L, const char *op, bf16_scratch *s, size_t bytes)
{
    if (bytes > s->bytes || !s->p) {
        free(s->p);
        s->p = NULL;
        s->bytes = 0;
        s->p = aligned(L, op, bytes);
        s->bytes = bytes;
    }
    return s->p;
}

/* core.bf16_linear(x, m, bias [, out [, accumulate]]) */
static int l_bf16_linear(lua_State *L)
{
    static const char *const op = "bf16_linear";
    lua_settop(L, 5);
    bf16_matrix *m = check_matrix(L, 2);
    if (m->K2) luaL_argerror(L, 2, "a matrix of two weights side by side (a layer's)");
    recur_tensor *x = check_f32(L, op, 1, "x", 2, (int64_t[]){-1, m->K});
    recur_tensor *bias = lua_isnil(L, 3) ? NULL : check_f32(L, op, 3, "bias", 1, (int64_t[]){m->N});
    if (x->size[0] > INT_MAX) luaL_error(L, "%s: x has too many rows", op);
    const int M = (int)x->size[0], accumulate = lua_toboolean(L, 5);
    recur_tensor *y;
    if (accumulate) {
        if (bias) luaL_argerror(L, 3, "nil expected with accumulate");
        y = check_f32(L, op, 4, "out", 2, (int64_t[]){M, m->N});
        lua_pushvalue(L, 4);
    } else {
        y = push_out(L, op, 4, 2, (int64_t[]){M, m->N}, x);
    }
    if (M == 0) return 1;
    bf16_scratch *s = lua_touserdata(L, lua_upvalueindex(1));
    uint32_t *xb = scratch_reserve(L, op, s, (size_t)M * bf16_pairs(m->K) * sizeof(uint32_t));
    bf16_convert_rows(xb, bf16_pairs(m->K), recur_data(x), m->K, M, m->K);
    /* columns over the threads when the product is large (bf16_rnn.h) */
    bf16_gemm(M, m->N, packed_k(m), xb, m->packed, bias ? recur_data(bias) : NULL, accumulate, recur_data(y), m->N,
              recur_get_num_threads() > 1 && (int64_t)M * m->N * m->K >= BF16_PAR_MIN);
    return 1;
}

/* core.int8_linear(x, m, bias [, out]) */
static int l_int8_linear(lua_State *L)
{
    static const char *const op = "int8_linear";
    lua_settop(L, 4);
    int8_matrix *m = check_int8(L, 2);
    recur_tensor *x = check_f32(L, op, 1, "x", 2, (int64_t[]){-1, m->K});
    recur_tensor *bias = lua_isnil(L, 3) ? NULL : check_f32(L, op, 3, "bias", 1, (int64_t[]){m->N});
    if (x->size[0] > INT_MAX / 2) luaL_error(L, "%s: x has too many rows", op);
    const int M = (int)x->size[0];
    recur_tensor *y = push_out(L, op, 4, 2, (int64_t[]){M, m->N}, x);
    if (M == 0) return 1;
    bf16_scratch *s = lua_touserdata(L, lua_upvalueindex(1));
    const size_t row = (size_t)4 * i8_quads(m->K);
    float *ascale = scratch_reserve(L, op, s, (size_t)M * (row + sizeof(float)) + 64);
    uint8_t *aq = (uint8_t *)(ascale + M);
    float *C = recur_data(y);
    for (int i = 0; i < M; i++) {
        float *C_i = C + (size_t)i * m->N;
        if (bias) memcpy(C_i, recur_data(bias), (size_t)m->N * sizeof(float));
        else memset(C_i, 0, (size_t)m->N * sizeof(float));
    }
    i8_quantize_rows(aq, ascale, recur_data(x), m->K, M, m->K);
    i8_gemm(M, m->N, m->K, aq, ascale, m->packed, m->scale, m->rowsum, C, m->N,
            recur_get_num_threads() > 1 && (int64_t)M * m->N * m->K >= BF16_PAR_MIN);
    return 1;
}

static const char *const cell_names[] = {"rnn_tanh", "rnn_relu", "rnn_identity", "lstm", "gru", NULL};
static const recur_rnn_cell cell_values[] = {RECUR_RNN_TANH, RECUR_RNN_RELU, RECUR_RNN_IDENTITY,
                                             RECUR_RNN_LSTM, RECUR_RNN_GRU};

/* core.bf16_rnn_forward(cell, reverse, x, w_ih, w_hh, b_ih, b_hh, h, c, lengths [, y]) */
static int l_bf16_rnn_forward(lua_State *L)
{
    static const char *const op = "bf16_rnn_forward";
    lua_settop(L, 11);
    const recur_rnn_cell cell = cell_values[luaL_checkoption(L, 1, NULL, cell_names)];
    const int reverse = lua_toboolean(L, 2), lstm = cell == RECUR_RNN_LSTM;
    const int G = recur_rnn_gates(cell), gru = cell == RECUR_RNN_GRU;
    const int int8 = luaL_testudata(L, 4, INT8_MATRIX_MT) != NULL;
    bf16_matrix *w = NULL, *whh = NULL;
    int8_matrix *qih = NULL, *qhh = NULL;
    int D, H;
    if (int8) {
        /* int8: w_ih and w_hh apart for every cell */
        qih = check_int8(L, 4);
        qhh = check_int8(L, 5);
        D = qih->K, H = qhh->K;
        if (qih->N != G * H || qhh->N != G * H)
            luaL_error(L, "%s: int8 weights %s and %s do not fit a %s layer (%d gates)", op,
                       luaL_tolstring(L, 4, NULL), luaL_tolstring(L, 5, NULL), lua_tostring(L, 1), G);
    } else if (gru) {
        w = check_matrix(L, 4);
        whh = check_matrix(L, 5);
        D = w->K, H = whh->K;
        if (w->K2 || whh->K2 || w->N != G * H || whh->N != G * H)
            luaL_error(L, "%s: gru weights expected (3H x D) and (3H x H) packed apart, got %s and %s", op,
                       luaL_tolstring(L, 4, NULL), luaL_tolstring(L, 5, NULL));
    } else {
        w = check_matrix(L, 4);
        if (!lua_isnil(L, 5))
            luaL_error(L, "%s: %s takes [w_ih w_hh] packed together (core.bf16_matrix(w_ih, w_hh)), "
                       "and nil after it", op, lua_tostring(L, 1));
        D = w->K, H = w->K2;
        if (H < 1 || w->N != G * H)
            luaL_error(L, "%s: weights %s do not fit a %s layer (%d gates)", op, luaL_tolstring(L, 4, NULL),
                       lua_tostring(L, 1), G);
    }
    const int GH = G * H;
    recur_tensor *x = check_f32(L, op, 3, "x", 3, (int64_t[]){-1, -1, D});
    if (x->size[0] * x->size[1] > INT_MAX / 4 || x->size[1] < 1)
        luaL_error(L, "%s: x of shape (%Ix%I) out of range", op, (lua_Integer)x->size[0],
                   (lua_Integer)x->size[1]);
    const int T = (int)x->size[0], B = (int)x->size[1];
    recur_tensor *b_ih = lua_isnil(L, 6) ? NULL : check_f32(L, op, 6, "bias_ih", 1, (int64_t[]){GH});
    recur_tensor *b_hh = lua_isnil(L, 7) ? NULL : check_f32(L, op, 7, "bias_hh", 1, (int64_t[]){GH});
    recur_tensor *h = lrecur_opt_tensor(L, op, 8, "h");
    if (!h) luaL_error(L, "%s: h expected a tensor, got nil", op);
    lrecur_check_dtype(L, op, "h", h, RECUR_FLOAT32);
    lrecur_check_shape(L, op, "h", h, 2, (int64_t[]){B, H});
    lrecur_check_contiguous(L, op, "h", h);
    recur_tensor *c = NULL;
    if (lstm) {
        c = lrecur_opt_tensor(L, op, 9, "c");
        if (!c) luaL_error(L, "%s: c expected a tensor for lstm, got nil", op);
        lrecur_check_dtype(L, op, "c", c, RECUR_FLOAT32);
        lrecur_check_shape(L, op, "c", c, 2, (int64_t[]){B, H});
        lrecur_check_contiguous(L, op, "c", c);
    } else if (!lua_isnil(L, 9)) {
        luaL_error(L, "%s: c is only for lstm, this layer is %s", op, lua_tostring(L, 1));
    }
    const int64_t *lengths = NULL;
    if (!lua_isnil(L, 10)) {
        recur_tensor *len = lrecur_opt_tensor(L, op, 10, "lengths");
        if (!len) luaL_error(L, "%s: lengths expected a tensor", op);
        lrecur_check_dtype(L, op, "lengths", len, RECUR_INT64);
        lrecur_check_shape(L, op, "lengths", len, 1, (int64_t[]){B});
        lrecur_check_contiguous(L, op, "lengths", len);
        lengths = recur_data(len);
        for (int b = 0; b < B; b++)
            if (lengths[b] < 1 || lengths[b] > T)
                luaL_error(L, "%s: lengths[%d] = %I is outside 1..%d", op, b + 1,
                           (lua_Integer)lengths[b], T);
    }
    recur_tensor *y = NULL;
    if (lua_toboolean(L, 11) || lua_isnil(L, 11)) y = push_out(L, op, 11, 3, (int64_t[]){T, B, H}, x);
    else lua_pushboolean(L, 0);
    /* the biases as the kernels load them: b_ih + b_hh, the gru's b_hn apart */
    bf16_scratch *s = lua_touserdata(L, lua_upvalueindex(1));
    const size_t bias_bytes = ((size_t)GH + H) * sizeof(float) + 64;
    const size_t work = int8 ? i8_rnn_workspace_size(cell, B, D, H) : bf16_rnn_workspace_size(cell, T, B, D, H);
    char *base = scratch_reserve(L, op, s, work + bias_bytes);
    float *binit = (float *)(base + work), *bhn = binit + GH;
    load_biases(cell, binit, bhn, b_ih ? recur_data(b_ih) : NULL, b_hh ? recur_data(b_hh) : NULL, H);
    if (int8) {
        i8_matrix mih = i8_of(qih), mhh = i8_of(qhh);
        i8_rnn_forward(cell, y ? recur_data(y) : NULL, recur_data(h), c ? recur_data(c) : NULL,
                       recur_data(x), &mih, &mhh, binit, bhn, lengths, reverse, T, B, D, H, base);
    } else {
        bf16_rnn_forward(cell, y ? recur_data(y) : NULL, recur_data(h), c ? recur_data(c) : NULL,
                         NULL, recur_data(x), w->packed, whh ? whh->packed : NULL, binit, bhn, lengths,
                         reverse, T, B, D, H, base);
    }
    return 1;
}

/* ---- core.rnn_layer's forward with bf16 products (lua_recur.h) ---- */

void lrecur_bf16_layer_check(lua_State *L, const char *op, int arg, recur_rnn_cell cell, int D,
                             int H, lrecur_bf16_layer *out)
{
    const int G = recur_rnn_gates(cell);
    bf16_matrix *w = luaL_testudata(L, arg, BF16_MATRIX_MT), *whh = NULL;
    if (!w || !w->packed) luaL_error(L, "%s: bf16 weights expected a bf16 matrix", op);
    if (cell == RECUR_RNN_GRU) {
        whh = luaL_testudata(L, arg + 1, BF16_MATRIX_MT);
        if (!whh || !whh->packed || w->K2 || whh->K2 || w->N != G * H || w->K != D ||
            whh->N != G * H || whh->K != H)
            luaL_error(L, "%s: bf16 weights of a gru: w_ih (%dx%d) and w_hh (%dx%d) packed apart", op,
                       G * H, D, G * H, H);
    } else if (cell == RECUR_RNN_GRU_CLASSIC) {
        luaL_error(L, "%s: bf16 products have no classic gru (reset_after = false)", op);
    } else if (w->N != G * H || w->K != D || w->K2 != H || !lua_isnil(L, arg + 1)) {
        luaL_error(L, "%s: bf16 weights expected [w_ih w_hh] (%dx(%d+%d)) packed together", op, G * H, D, H);
    }
    out->w = w->packed;
    out->whh = whh ? whh->packed : NULL;
}

size_t lrecur_bf16_layer_work(recur_rnn_cell cell, int T, int B, int D, int H)
{
    const int GH = recur_rnn_gates(cell) * H;
    return bf16_rnn_workspace_size(cell, T, B, D, H) + ((size_t)GH + H) * sizeof(float) + 64;
}

/* The biases as the kernels load them: b_ih + b_hh, the gru's b_hn apart. */
static void load_biases(recur_rnn_cell cell, float *binit, float *bhn, const float *bi,
                        const float *bh, int H)
{
    const int GH = recur_rnn_gates(cell) * H, split = cell == RECUR_RNN_GRU ? 2 * H : GH;
    for (int k = 0; k < GH; k++) {
        float vi = bi ? bi[k] : 0, vh = bh ? bh[k] : 0;
        binit[k] = k < split ? vi + vh : vi;
        if (k >= split) bhn[k - split] = vh;
    }
}

void lrecur_bf16_layer_forward(const lrecur_bf16_layer *wts, recur_rnn_cell cell, float *y,
                               float *hn, float *cn, float *saved, const float *x,
                               const float *b_ih, const float *b_hh, const float *h0,
                               const float *c0, const int64_t *lengths, int reverse, int T, int B,
                               int D, int H, void *work)
{
    const size_t BH = (size_t)B * H;
    const size_t kernel = bf16_rnn_workspace_size(cell, T, B, D, H);
    float *binit = (float *)((char *)work + kernel), *bhn = binit + recur_rnn_gates(cell) * H;
    load_biases(cell, binit, bhn, b_ih, b_hh, H);
    if (h0) memmove(hn, h0, BH * sizeof(float));
    else memset(hn, 0, BH * sizeof(float));
    if (cn) {
        if (c0) memmove(cn, c0, BH * sizeof(float));
        else memset(cn, 0, BH * sizeof(float));
    }
    bf16_rnn_forward(cell, y, hn, cn, saved, x, wts->w, wts->whh, binit, bhn, lengths, reverse, T, B,
                     D, H, work);
}

static const luaL_Reg matrix_methods[] = {
    {"repack", bf16_matrix_repack},
    {"size", bf16_matrix_size},
    {NULL, NULL},
};

static const luaL_Reg matrix_meta[] = {
    {"__gc", bf16_matrix_gc},
    {"__close", bf16_matrix_gc},
    {"__tostring", bf16_matrix_tostring},
    {NULL, NULL},
};

static const luaL_Reg bf16_functions[] = {
    {"bf16_fast", l_bf16_fast},
    {"bf16_kernel", l_bf16_kernel},
    {"bf16_use_fast", l_bf16_use_fast},
    {"bf16_round", l_bf16_round},
    {"bf16_matrix", bf16_matrix_new},
    {"int8_matrix", int8_matrix_new},
    {NULL, NULL},
};

static const luaL_Reg int8_methods[] = {
    {"size", int8_matrix_size},
    {NULL, NULL},
};

static const luaL_Reg int8_meta[] = {
    {"__gc", int8_matrix_gc},
    {"__close", int8_matrix_gc},
    {"__tostring", int8_matrix_tostring},
    {NULL, NULL},
};

void lrecur_open_bf16(lua_State *L)
{
    luaL_newmetatable(L, INT8_MATRIX_MT);
    luaL_setfuncs(L, int8_meta, 0);
    luaL_newlib(L, int8_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, BF16_MATRIX_MT);
    luaL_setfuncs(L, matrix_meta, 0);
    luaL_newlib(L, matrix_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, bf16_functions, 0);
    bf16_scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->p = NULL;
    s->bytes = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    /* one workspace for both: neither calls the other */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_bf16_rnn_forward, 1);
    lua_setfield(L, -3, "bf16_rnn_forward");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_int8_linear, 1);
    lua_setfield(L, -3, "int8_linear");
    lua_pushcclosure(L, l_bf16_linear, 1);
    lua_setfield(L, -2, "bf16_linear");
}
