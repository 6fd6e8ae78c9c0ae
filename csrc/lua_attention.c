/* Lua bindings for the attention kernels (csrc/attention.c), added to recur.core with
 * an attention_ prefix: one call per step and direction, so that a decoder step costs
 * a few Lua calls whatever the batch and source sizes. lua/recur/nn/Attention.lua is
 * their intended caller; it does the projections (matrix products) and keeps the tape.
 * These check what the kernels need (dtypes, shapes, contiguity, lengths in 1..S), so
 * that no call from Lua can crash. */
#include "lua_recur.h"
#include "recur/attention.h"
#include "recur/nn.h"

#define OP_FORWARD "attention"
#define OP_BACKWARD "attention backward"
#define OP_REORDER "attention reorder"

/* The float tensor at arg, made contiguous (a copy stays on the stack for the call). */
static recur_tensor *float_arg(lua_State *L, const char *op, int arg, const char *what)
{
    recur_tensor *t = lrecur_check_tensor(L, arg);
    if (t->dtype != RECUR_FLOAT32 && t->dtype != RECUR_FLOAT64)
        luaL_error(L, "%s: %s must be float32 or float64, got %s", op, what, recur_dtype_name(t->dtype));
    return lrecur_contiguous(L, t);
}

/* A gradient the kernels accumulate into: the caller's own tensor, contiguous, of the
 * step's dtype and the given shape, sharing no storage with `input`. */
static recur_tensor *accumulator_arg(lua_State *L, const char *op, int arg, const char *what,
                                     recur_dtype dtype, int ndim, const int64_t *size,
                                     const recur_tensor *input)
{
    recur_tensor *t = lrecur_check_tensor(L, arg);
    lrecur_check_dtype(L, op, what, t, dtype);
    lrecur_check_shape(L, op, what, t, ndim, size);
    /* (an empty tensor can have strides recur_is_contiguous refuses; nothing is written) */
    if (recur_numel(t) > 0) lrecur_check_contiguous(L, op, what, t);
    if (t->storage == input->storage) luaL_error(L, "%s: %s shares storage with an input", op, what);
    return t;
}

/* What one step reads: the scores' query side (q (B,K) for dot scores, the projected
 * query p (B,A) for additive ones), keys (S,B,K), v (K) or nil (dot scores), memory
 * (S,B,H) and lengths (B) or nil, at arguments first .. first+4. */
typedef struct {
    recur_tensor *q, *keys, *v, *memory;
    const int64_t *lengths;
    recur_dtype dtype;
    int64_t S, B, K, H;
} step_args;

static void check_step_args(lua_State *L, const char *op, step_args *a, int first)
{
    a->q = float_arg(L, op, first, "query");
    a->dtype = a->q->dtype;
    a->keys = float_arg(L, op, first + 1, "keys");
    a->memory = float_arg(L, op, first + 3, "memory");
    lrecur_check_same_dtype(L, op, a->q, a->keys);
    lrecur_check_same_dtype(L, op, a->q, a->memory);
    if (a->memory->ndim != 3) {
        char b[128];
        luaL_error(L, "%s: memory must be 3-D (S,B,H), got %s", op, lrecur_shape_str(a->memory, b, sizeof b));
    }
    a->S = a->memory->size[0];
    a->B = a->memory->size[1];
    a->H = a->memory->size[2];
    if (a->q->ndim != 2) {
        char b[128];
        luaL_error(L, "%s: query must be 2-D (B,K), got %s", op, lrecur_shape_str(a->q, b, sizeof b));
    }
    a->K = a->q->size[1];
    lrecur_check_shape(L, op, "query", a->q, 2, (int64_t[]){a->B, a->K});
    lrecur_check_shape(L, op, "keys", a->keys, 3, (int64_t[]){a->S, a->B, a->K});
    a->v = NULL;
    if (!lua_isnoneornil(L, first + 2)) {
        a->v = float_arg(L, op, first + 2, "v");
        lrecur_check_same_dtype(L, op, a->q, a->v);
        if (recur_numel(a->v) != a->K)
            luaL_error(L, "%s: v has %I elements for an attention size of %I", op,
                       (lua_Integer)recur_numel(a->v), (lua_Integer)a->K);
    }
    a->lengths = NULL;
    if (!lua_isnoneornil(L, first + 4)) {
        recur_tensor *len = lrecur_check_tensor(L, first + 4);
        lrecur_check_dtype(L, op, "lengths", len, RECUR_INT64);
        if (recur_numel(len) != a->B)
            luaL_error(L, "%s: %I lengths for a batch of %I", op, (lua_Integer)recur_numel(len),
                       (lua_Integer)a->B);
        len = lrecur_contiguous(L, len);
        int64_t bad = recur_nn_first_bad_id(recur_i64(len), a->B, a->S, 0, 0);
        if (bad >= 0)
            luaL_error(L, "%s: length %I (batch entry %I) is outside 1..%I (the source length)", op,
                       (lua_Integer)recur_i64(len)[bad], (lua_Integer)(bad + 1), (lua_Integer)a->S);
        a->lengths = recur_i64(len);
    }
}

/* The step's kernels in the order of the math, for one element type: step_forward_f32
 * and step_forward_f64, step_backward_f32 and step_backward_f64 (PTR types a tensor's
 * data). The backward's tensors: gc (B,H), w the weights (B,S), ga (B,S) holding the
 * weights' own gradient (it becomes the scores'), gq (B,K), work (B,K) for additive
 * scores. */
#define STEP_KERNELS(T, SFX, PTR)                                                                   \
    static void step_forward_##SFX(const step_args *a, recur_tensor *c, recur_tensor *w)           \
    {                                                                                               \
        T *wd = PTR(w);                                                                             \
        if (a->v)                                                                                   \
            recur_attention_additive_scores_##SFX(wd, PTR(a->q), PTR(a->keys), PTR(a->v), a->lengths,  \
                                                  a->S, a->B, a->K);                               \
        else                                                                                        \
            recur_attention_dot_scores_##SFX(wd, PTR(a->q), PTR(a->keys), a->lengths, a->S, a->B, a->K); \
        recur_attention_softmax_##SFX(wd, wd, a->lengths, a->S, a->B);                              \
        recur_attention_context_##SFX(PTR(c), wd, PTR(a->memory), a->lengths, a->S, a->B, a->H);    \
    }                                                                                               \
                                                                                                    \
    static void step_backward_##SFX(const step_args *a, recur_tensor *gc, recur_tensor *w,          \
                                    recur_tensor *ga, recur_tensor *gq, recur_tensor *gkeys,       \
                                    recur_tensor *gmem, recur_tensor *gv, recur_tensor *work)      \
    {                                                                                               \
        T *gad = PTR(ga);                                                                           \
        recur_attention_context_backward_##SFX(gad, PTR(gmem), PTR(gc), PTR(w), PTR(a->memory),    \
                                               a->lengths, a->S, a->B, a->H);                       \
        recur_attention_softmax_backward_##SFX(gad, gad, PTR(w), a->lengths, a->S, a->B);           \
        if (a->v)                                                                                   \
            recur_attention_additive_scores_backward_##SFX(PTR(gq), PTR(gkeys), PTR(gv), PTR(work), gad, \
                                                           PTR(a->q), PTR(a->keys), PTR(a->v),       \
                                                           a->lengths, a->S, a->B, a->K);           \
        else                                                                                        \
            recur_attention_dot_scores_backward_##SFX(PTR(gq), PTR(gkeys), gad, PTR(a->q), PTR(a->keys), \
                                                      a->lengths, a->S, a->B, a->K);                \
    }

STEP_KERNELS(float, f32, recur_f32)
STEP_KERNELS(double, f64, recur_f64)

/* attention_forward(q|p, keys, v|nil, memory, lengths|nil) -> context (B,H), weights (B,S)
 * Dot scores without v, additive ones with it; both results are new tensors. */
static int attention_forward(lua_State *L)
{
    const char *op = OP_FORWARD;
    lua_settop(L, 5);
    step_args a;
    check_step_args(L, op, &a, 1);
    recur_tensor *c = lrecur_push_new(L, op, a.dtype, 2, (int64_t[]){a.B, a.H});
    recur_tensor *w = lrecur_push_new(L, op, a.dtype, 2, (int64_t[]){a.B, a.S});
    if (a.dtype == RECUR_FLOAT32)
        step_forward_f32(&a, c, w);
    else
        step_forward_f64(&a, c, w);
    return 2;
}

/* attention_backward(gcontext, gweights|nil, weights, q|p, keys, v|nil, memory, lengths|nil,
 *                    gkeys, gmemory, gv|nil) -> gq|gp (B,K), a new tensor
 * The gradients of the keys (S,B,K), the memory (S,B,H) and v (K) are added into gkeys,
 * gmemory and gv; gkeys may be gmemory itself (dot scores over the memory). */
static int attention_backward(lua_State *L)
{
    const char *op = OP_BACKWARD;
    lua_settop(L, 11);
    step_args a;
    check_step_args(L, op, &a, 4);
    recur_tensor *gc = float_arg(L, op, 1, "gcontext");
    lrecur_check_same_dtype(L, op, a.q, gc);
    lrecur_check_shape(L, op, "gcontext", gc, 2, (int64_t[]){a.B, a.H});
    recur_tensor *w = float_arg(L, op, 3, "weights");
    lrecur_check_same_dtype(L, op, a.q, w);
    lrecur_check_shape(L, op, "weights", w, 2, (int64_t[]){a.B, a.S});
    recur_tensor *gkeys = accumulator_arg(L, op, 9, "gkeys", a.dtype, 3, (int64_t[]){a.S, a.B, a.K}, a.keys);
    recur_tensor *gmem = accumulator_arg(L, op, 10, "gmemory", a.dtype, 3, (int64_t[]){a.S, a.B, a.H}, a.memory);
    recur_tensor *gv = NULL, *work = NULL;
    if (a.v) {
        if (lua_isnoneornil(L, 11)) luaL_error(L, "%s: additive scores need gv", op);
        gv = accumulator_arg(L, op, 11, "gv", a.dtype, a.v->ndim, a.v->size, a.v);
        work = lrecur_push_new(L, op, a.dtype, 2, (int64_t[]){a.B, a.K});
    }
    /* ga (B,S) starts as the weights' own gradient, or zero */
    recur_tensor *ga = lrecur_push_new(L, op, a.dtype, 2, (int64_t[]){a.B, a.S});
    if (!lua_isnoneornil(L, 2)) {
        recur_tensor *gw = lrecur_check_tensor(L, 2);
        lrecur_check_same_dtype(L, op, a.q, gw);
        lrecur_check_shape(L, op, "gweights", gw, 2, (int64_t[]){a.B, a.S});
        recur_copy(ga, gw);
    }
    recur_tensor *gq = lrecur_push_new(L, op, a.dtype, 2, (int64_t[]){a.B, a.K});
    if (a.dtype == RECUR_FLOAT32)
        step_backward_f32(&a, gc, w, ga, gq, gkeys, gmem, gv, work);
    else
        step_backward_f64(&a, gc, w, ga, gq, gkeys, gmem, gv, work);
    return 1;
}

/* attention_reorder(t, index) -> a new tensor: t (S,B,...) with its dim 2 taken in the
 * order of index (N), 1-based, or a 1-D t (B) (lengths) taken in that order; N may
 * differ from B. Any dtype. */
static int attention_reorder(lua_State *L)
{
    const char *op = OP_REORDER;
    recur_tensor *t = lrecur_check_tensor(L, 1);
    recur_tensor *index = lrecur_check_tensor(L, 2);
    lrecur_check_dtype(L, op, "index", index, RECUR_INT64);
    if (index->ndim != 1) luaL_error(L, "%s: index must be 1-D", op);
    if (t->ndim < 1) luaL_error(L, "%s: expected a tensor with a batch dim, got a scalar", op);
    t = lrecur_contiguous(L, t);
    index = lrecur_contiguous(L, index);
    int bd = t->ndim == 1 ? 0 : 1; /* the batch dim */
    int64_t S = bd ? t->size[0] : 1, B = t->size[bd], N = index->size[0], row = 1;
    for (int d = bd + 1; d < t->ndim; d++) row *= t->size[d];
    int64_t bad = recur_nn_first_bad_id(recur_i64(index), N, B, 0, 0);
    if (bad >= 0)
        luaL_error(L, "%s: index %I (at position %I) is outside 1..%I (the batch)", op,
                   (lua_Integer)recur_i64(index)[bad], (lua_Integer)(bad + 1), (lua_Integer)B);
    int64_t size[RECUR_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) size[d] = t->size[d];
    size[bd] = N;
    recur_tensor *out = lrecur_push_new(L, op, t->dtype, t->ndim, size);
    recur_attention_reorder(recur_data(out), recur_data(t), recur_i64(index), S, B, N,
                            (size_t)row * recur_dtype_size(t->dtype));
    return 1;
}

static const luaL_Reg attention_funcs[] = {
    {"attention_forward", attention_forward},
    {"attention_backward", attention_backward},
    {"attention_reorder", attention_reorder},
    {NULL, NULL}
};

void lrecur_open_attention(lua_State *L)
{
    luaL_setfuncs(L, attention_funcs, 0);
}
