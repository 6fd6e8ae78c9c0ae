/* Tensor operations: elementwise with broadcasting, reductions, gemm, softmax.
 * See tensor_ops.h for the contracts. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "blas.h"
#include "parallel.h"
/* cblas.h pulls in complex.h, whose I would clash with the (O,K,I) sizes below */
#undef I

#include "recur/tensor_ops.h"
#include "rnn_gemm.h"

/* Products of at least this many multiply-adds run on recur's blocked kernel (below
 * that, a call's packing costs more than it gains). */
#define GEMM_OWN_MIN (1 << 20)

/* ------------------------------------------------------------------------------------ */
/* Broadcasting                                                                          */

int recur_broadcast_shape(int ndim_a, const int64_t *size_a, int ndim_b, const int64_t *size_b,
                          int *ndim, int64_t *size)
{
    int n = ndim_a > ndim_b ? ndim_a : ndim_b;
    // shapes line up on the right; a missing dim counts as 1
    for (int i = 0; i < n; i++) {
        int64_t x = i < ndim_a ? size_a[ndim_a - 1 - i] : 1;
        int64_t y = i < ndim_b ? size_b[ndim_b - 1 - i] : 1;
        if (x != y && x != 1 && y != 1) return 0;
        size[n - 1 - i] = x == 1 ? y : x;
    }
    *ndim = n;
    return 1;
}

void recur_broadcast_strides(int t_ndim, const int64_t *t_size, const int64_t *t_stride,
                             int ndim, const int64_t *size, int64_t *stride)
{
    for (int i = 0; i < ndim; i++) {
        int td = t_ndim - ndim + i; // the tensor's dim lined up with dim i, < 0 if missing
        stride[i] = (td >= 0 && t_size[td] == size[i] && size[i] != 1) ? t_stride[td] : 0;
    }
}

/* ------------------------------------------------------------------------------------ */
/* N-d iteration                                                                          */

/* A row kernel gets n elements of each operand, starting at p[k] with element stride
 * s[k]; e is the flat row-major index of the first of them. */
typedef void (*row_fn)(void *ctx, int64_t e, int64_t n, char **p, const int64_t *s);

#define MAX_OPS 3

/* The merged loop nest of nd_foreach, and share id of nt of its flat range. */
typedef struct {
    int nd, nops;
    const int64_t *size, (*step)[RECUR_MAX_DIMS], *inner_stride;
    char *const *base;
    row_fn fn;
    void *ctx;
    int64_t total;
} nd_walk;

static void nd_walk_share(const nd_walk *w, int nt, int id)
{
    const int nd = w->nd, nops = w->nops;
    const int64_t *size = w->size, inner = size[nd - 1];
    int64_t q = w->total / nt, r = w->total % nt;
    int64_t e = q * id + (id < r ? id : r);
    int64_t e_end = e + q + (id < r ? 1 : 0);
    if (e >= e_end) return;
    int64_t idx[RECUR_MAX_DIMS];
    char *p[MAX_OPS];
    int64_t rem = e;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % size[d];
        rem /= size[d];
    }
    for (int k = 0; k < nops; k++) {
        p[k] = w->base[k];
        for (int d = 0; d < nd; d++) p[k] += idx[d] * w->step[k][d];
    }
    while (e < e_end) {
        int64_t n = inner - idx[nd - 1];
        if (n > e_end - e) n = e_end - e;
        w->fn(w->ctx, e, n, p, w->inner_stride);
        e += n;
        if (e == e_end) break;
        idx[nd - 1] += n;
        for (int k = 0; k < nops; k++) p[k] += n * w->step[k][nd - 1];
        for (int d = nd - 1; d > 0 && idx[d] == size[d]; d--) { // carry
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < nops; k++) p[k] += w->step[k][d - 1] - size[d] * w->step[k][d];
        }
    }
}

/* Calls fn over every element of the shape (ndim, size) for nops operands (base
 * pointers, element strides, element sizes), a row at a time. Dims of size 1 are
 * dropped and dims that are contiguous in every operand merged, so a contiguous
 * tensor is one row. From parallel_min elements on (0: never), the elements are
 * split into one contiguous flat range per thread (a row may be cut in two): fn must
 * then only write to disjoint outputs. */
static void nd_foreach(int ndim, const int64_t *size_in, int nops, char *const *base,
                       const int64_t *const *stride_in, const size_t *esize, row_fn fn, void *ctx,
                       int64_t parallel_min)
{
    int64_t size[RECUR_MAX_DIMS], step[MAX_OPS][RECUR_MAX_DIMS]; // step in bytes
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        if (size_in[d] <= 0) return; /* no elements (a negative size: none either) */
        total *= size_in[d];
    }

    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (size_in[d] == 1) continue;
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < nops; k++)
                if (step[k][nd - 1] != stride_in[k][d] * size_in[d]) merge = 0;
            if (merge) {
                size[nd - 1] *= size_in[d];
                for (int k = 0; k < nops; k++) step[k][nd - 1] = stride_in[k][d];
                continue;
            }
        }
        size[nd] = size_in[d];
        for (int k = 0; k < nops; k++) step[k][nd] = stride_in[k][d];
        nd++;
    }
    if (nd == 0) { // a single element
        size[0] = 1;
        for (int k = 0; k < nops; k++) step[k][0] = 0;
        nd = 1;
    }
    int64_t inner_stride[MAX_OPS];
    for (int k = 0; k < nops; k++) {
        inner_stride[k] = step[k][nd - 1];
        for (int d = 0; d < nd; d++) step[k][d] *= (int64_t)esize[k];
    }
    const nd_walk w = {nd, nops, size, step, inner_stride, base, fn, ctx, total};
    /* not an if() clause: a region that stays serial still opens a team (parallel.h) */
    if (parallel_min > 0 && total >= parallel_min) {
#pragma omp parallel
        nd_walk_share(&w, omp_get_num_threads(), omp_get_thread_num());
    } else {
        nd_walk_share(&w, 1, 0);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Elementwise binary                                                                     */

typedef struct {
    recur_binop op;
    const void *alpha;
} binary_ctx;

/* The loop is written out for each op so the compiler vectorises the unit-stride
 * variants (OS, AS, BS are literals there). */
#define BINARY_LOOP(OS, AS, BS)                                                             \
    switch (op) {                                                                           \
    case RECUR_OP_ADD:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = a[i * (AS)] + alpha * b[i * (BS)];    \
        break;                                                                              \
    case RECUR_OP_SUB:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = a[i * (AS)] - alpha * b[i * (BS)];    \
        break;                                                                              \
    case RECUR_OP_MUL:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = a[i * (AS)] * b[i * (BS)];            \
        break;                                                                              \
    case RECUR_OP_DIV:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = a[i * (AS)] / b[i * (BS)];            \
        break;                                                                              \
    }

#define DEFINE_BINARY_ROW(NAME, T)                                                          \
    static void NAME(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)          \
    {                                                                                       \
        const binary_ctx *ctx = ctx_;                                                       \
        (void)e;                                                                            \
        const recur_binop op = ctx->op;                                                     \
        const T alpha = *(const T *)ctx->alpha;                                             \
        T *o = (T *)p[0];                                                                   \
        const T *a = (const T *)p[1], *b = (const T *)p[2];                                 \
        const int64_t os = s[0], as = s[1], bs = s[2];                                      \
        if (os == 1 && as == 1 && bs == 1) { BINARY_LOOP(1, 1, 1) }                         \
        else if (os == 1 && as == 1 && bs == 0) { BINARY_LOOP(1, 1, 0) }                    \
        else if (os == 1 && as == 0 && bs == 1) { BINARY_LOOP(1, 0, 1) }                    \
        else { BINARY_LOOP(os, as, bs) }                                                    \
    }

DEFINE_BINARY_ROW(binary_row_f32, float)
DEFINE_BINARY_ROW(binary_row_f64, double)

/* int64 in unsigned arithmetic: overflow wraps instead of being undefined. */
static void binary_row_i64(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)
{
    const binary_ctx *ctx = ctx_;
    (void)e;
    const uint64_t alpha = (uint64_t)*(const int64_t *)ctx->alpha;
    int64_t *o = (int64_t *)p[0];
    const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
    const int64_t os = s[0], as = s[1], bs = s[2];
    switch (ctx->op) {
    case RECUR_OP_ADD:
        for (int64_t i = 0; i < n; i++)
            o[i * os] = (int64_t)((uint64_t)a[i * as] + alpha * (uint64_t)b[i * bs]);
        break;
    case RECUR_OP_SUB:
        for (int64_t i = 0; i < n; i++)
            o[i * os] = (int64_t)((uint64_t)a[i * as] - alpha * (uint64_t)b[i * bs]);
        break;
    case RECUR_OP_MUL:
        for (int64_t i = 0; i < n; i++)
            o[i * os] = (int64_t)((uint64_t)a[i * as] * (uint64_t)b[i * bs]);
        break;
    case RECUR_OP_DIV: // refused by recur_binary
        break;
    }
}

int recur_binary(recur_binop op, recur_dtype dtype, const void *alpha, int ndim,
                 const int64_t *size, void *out, const int64_t *out_stride, const void *a,
                 const int64_t *a_stride, const void *b, const int64_t *b_stride)
{
    row_fn fn;
    switch (dtype) {
    case RECUR_FLOAT32: fn = binary_row_f32; break;
    case RECUR_FLOAT64: fn = binary_row_f64; break;
    case RECUR_INT64:
        if (op == RECUR_OP_DIV) return -1;
        fn = binary_row_i64;
        break;
    default: return -1;
    }
    /* alpha NULL: 1 (mul and div never read it) */
    static const float one_f32 = 1;
    static const double one_f64 = 1;
    static const int64_t one_i64 = 1;
    if (!alpha) alpha = dtype == RECUR_FLOAT32 ? (const void *)&one_f32
                        : dtype == RECUR_FLOAT64 ? (const void *)&one_f64 : (const void *)&one_i64;
    binary_ctx ctx = {op, alpha};
    char *base[3] = {(char *)out, (char *)a, (char *)b};
    const int64_t *strides[3] = {out_stride, a_stride, b_stride};
    size_t es = recur_dtype_size(dtype);
    size_t esize[3] = {es, es, es};
    nd_foreach(ndim, size, 3, base, strides, esize, fn, &ctx, RECUR_PARALLEL_MIN_MEMORY);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Elementwise unary                                                                      */

typedef struct {
    recur_unop op;
    const void *lo, *hi;
} unary_ctx;

#define UNARY_LOOP(T, OS, XS, TANH, EXP, LOG, SQRT, FABS)                                      \
    switch (op) {                                                                           \
    case RECUR_OP_TANH:                                                                     \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = TANH(x[i * (XS)]);                    \
        break;                                                                              \
    case RECUR_OP_SIGMOID:                                                                  \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = one / (one + EXP(-x[i * (XS)]));      \
        break;                                                                              \
    case RECUR_OP_RELU: /* x < 0 rather than x > 0 keeps NaN */                             \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = x[i * (XS)] < 0 ? 0 : x[i * (XS)];    \
        break;                                                                              \
    case RECUR_OP_EXP:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = EXP(x[i * (XS)]);                     \
        break;                                                                              \
    case RECUR_OP_LOG:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = LOG(x[i * (XS)]);                     \
        break;                                                                              \
    case RECUR_OP_SQRT:                                                                     \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = SQRT(x[i * (XS)]);                    \
        break;                                                                              \
    case RECUR_OP_ABS:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = FABS(x[i * (XS)]);                    \
        break;                                                                              \
    case RECUR_OP_NEG:                                                                      \
        for (int64_t i = 0; i < n; i++) o[i * (OS)] = -x[i * (XS)];                         \
        break;                                                                              \
    case RECUR_OP_CLAMP: /* NaN passes through, as in PyTorch */                            \
        for (int64_t i = 0; i < n; i++) {                                                   \
            T v = x[i * (XS)];                                                              \
            o[i * (OS)] = v < lo ? lo : (v > hi ? hi : v);                                  \
        }                                                                                   \
        break;                                                                              \
    }

#define DEFINE_UNARY_ROW(NAME, T, TANH, EXP, LOG, SQRT, FABS)                               \
    static void NAME(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)          \
    {                                                                                       \
        const unary_ctx *ctx = ctx_;                                                        \
        (void)e;                                                                            \
        const recur_unop op = ctx->op;                                                      \
        const T one = 1;                                                                    \
        const T lo = ctx->lo ? *(const T *)ctx->lo : 0, hi = ctx->hi ? *(const T *)ctx->hi : 0; \
        T *o = (T *)p[0];                                                                   \
        const T *x = (const T *)p[1];                                                   \
        if (s[0] == 1 && s[1] == 1) { UNARY_LOOP(T, 1, 1, TANH, EXP, LOG, SQRT, FABS) }        \
        else { UNARY_LOOP(T, s[0], s[1], TANH, EXP, LOG, SQRT, FABS) }                         \
    }

/* float tanh through the double exp: twice as fast as glibc's tanhf and correctly
 * rounded in practice (1 - 2/(e^2x + 1) loses nothing in double for |x| >= 2^-6; below
 * that the series to x^5 is exact to double precision). */
static inline float tanh_f32(float xf)
{
    double x = xf;
    if (fabs(x) < 0x1p-6) {
        double x2 = x * x; // x times the series keeps the sign of -0
        return (float)(x * (1.0 - x2 * (1.0 / 3) + x2 * x2 * (2.0 / 15)));
    }
    if (x > 20) return 1.0f; // 1 - tanh(20) is below float's half ulp of 1
    if (x < -20) return -1.0f;
    return (float)(1.0 - 2.0 / (exp(2 * x) + 1.0));
}

DEFINE_UNARY_ROW(unary_row_f32, float, tanh_f32, expf, logf, sqrtf, fabsf)
DEFINE_UNARY_ROW(unary_row_f64, double, tanh, exp, log, sqrt, fabs)

static void unary_row_i64(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)
{
    const unary_ctx *ctx = ctx_;
    (void)e;
    int64_t *o = (int64_t *)p[0];
    const int64_t *x = (const int64_t *)p[1];
    const int64_t os = s[0], xs = s[1];
    switch (ctx->op) {
    case RECUR_OP_ABS: // through unsigned so that abs(INT64_MIN) wraps instead of trapping
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i * xs];
            o[i * os] = v < 0 ? (int64_t)(0 - (uint64_t)v) : v;
        }
        break;
    case RECUR_OP_NEG:
        for (int64_t i = 0; i < n; i++) o[i * os] = (int64_t)(0 - (uint64_t)x[i * xs]);
        break;
    case RECUR_OP_CLAMP: {
        const int64_t lo = ctx->lo ? *(const int64_t *)ctx->lo : 0,
                      hi = ctx->hi ? *(const int64_t *)ctx->hi : 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i * xs];
            o[i * os] = v < lo ? lo : (v > hi ? hi : v);
        }
        break;
    }
    default: // refused by recur_unary
        break;
    }
}

int recur_unary(recur_unop op, recur_dtype dtype, const void *lo, const void *hi, int ndim,
                const int64_t *size, void *out, const int64_t *out_stride, const void *x,
                const int64_t *x_stride)
{
    row_fn fn;
    switch (dtype) {
    case RECUR_FLOAT32: fn = unary_row_f32; break;
    case RECUR_FLOAT64: fn = unary_row_f64; break;
    case RECUR_INT64:
        if (op != RECUR_OP_ABS && op != RECUR_OP_NEG && op != RECUR_OP_CLAMP) return -1;
        fn = unary_row_i64;
        break;
    default: return -1;
    }
    if (op == RECUR_OP_CLAMP && (!lo || !hi)) return -1;
    unary_ctx ctx = {op, lo, hi};
    char *base[2] = {(char *)out, (char *)x};
    const int64_t *strides[2] = {out_stride, x_stride};
    size_t es = recur_dtype_size(dtype);
    size_t esize[2] = {es, es};
    int cheap = op == RECUR_OP_RELU || op == RECUR_OP_ABS || op == RECUR_OP_NEG ||
                op == RECUR_OP_CLAMP;
    nd_foreach(ndim, size, 2, base, strides, esize, fn, &ctx,
               cheap ? RECUR_PARALLEL_MIN_MEMORY : RECUR_PARALLEL_MIN);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Whole-tensor reductions                                                                */

/* Sum of n values in double. Eight partial sums side by side: the loop vectorises
 * without reassociating anything, so the result is the same on every machine. */
#define DEFINE_SUM_ROW(NAME, T, SQ)                                                         \
    static double NAME(const T *x, int64_t n, int64_t s)                                    \
    {                                                                                       \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                           \
        int64_t i = 0;                                                                      \
        if (s == 1)                                                                         \
            for (; i + 8 <= n; i += 8)                                                      \
                for (int j = 0; j < 8; j++) {                                               \
                    double v = x[i + j];                                                    \
                    acc[j] += SQ ? v * v : v;                                               \
                }                                                                           \
        for (; i < n; i++) {                                                                \
            double v = x[i * s];                                                            \
            acc[0] += SQ ? v * v : v;                                                       \
        }                                                                                   \
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
    }

DEFINE_SUM_ROW(sum_f32, float, 0)
DEFINE_SUM_ROW(sum_f64, double, 0)
DEFINE_SUM_ROW(sumsq_f32, float, 1)
DEFINE_SUM_ROW(sumsq_f64, double, 1)
DEFINE_SUM_ROW(sumsq_i64, int64_t, 1)

typedef struct {
    recur_dtype dtype;
    int squares;
    double acc;
    uint64_t iacc;
} sum_ctx;

static void sum_row(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)
{
    sum_ctx *ctx = ctx_;
    (void)e;
    switch (ctx->dtype) {
    case RECUR_FLOAT32:
        ctx->acc += ctx->squares ? sumsq_f32((const float *)p[0], n, s[0])
                                 : sum_f32((const float *)p[0], n, s[0]);
        break;
    case RECUR_FLOAT64:
        ctx->acc += ctx->squares ? sumsq_f64((const double *)p[0], n, s[0])
                                 : sum_f64((const double *)p[0], n, s[0]);
        break;
    case RECUR_INT64:
        if (ctx->squares) {
            ctx->acc += sumsq_i64((const int64_t *)p[0], n, s[0]);
        } else {
            const int64_t *x = (const int64_t *)p[0];
            for (int64_t i = 0; i < n; i++) ctx->iacc += (uint64_t)x[i * s[0]];
        }
        break;
    }
}

static void reduce_all(const recur_tensor *t, row_fn fn, void *ctx)
{
    char *base[1] = {(char *)recur_data(t)};
    const int64_t *strides[1] = {t->stride};
    size_t esize[1] = {recur_dtype_size(t->dtype)};
    // serial: the accumulation order must not depend on the thread count
    nd_foreach(t->ndim, t->size, 1, base, strides, esize, fn, ctx, 0);
}

double recur_sum(const recur_tensor *t)
{
    sum_ctx ctx = {t->dtype, 0, 0.0, 0};
    reduce_all(t, sum_row, &ctx);
    return t->dtype == RECUR_INT64 ? (double)(int64_t)ctx.iacc : ctx.acc;
}

int64_t recur_sum_i64(const recur_tensor *t)
{
    sum_ctx ctx = {t->dtype, 0, 0.0, 0};
    reduce_all(t, sum_row, &ctx);
    return t->dtype == RECUR_INT64 ? (int64_t)ctx.iacc : (int64_t)ctx.acc;
}

double recur_norm(const recur_tensor *t)
{
    sum_ctx ctx = {t->dtype, 1, 0.0, 0};
    reduce_all(t, sum_row, &ctx);
    return sqrt(ctx.acc);
}

typedef struct {
    recur_dtype dtype;
    int is_min, found_nan;
    double best;
    int64_t ibest, index;
} ext_ctx;

/* v beats best when it is larger (smaller) or is the first NaN. */
#define DEFINE_EXT_ROW(NAME, T, BEST)                                                       \
    static void NAME(ext_ctx *c, int64_t e, int64_t n, const T *x, int64_t s)               \
    {                                                                                       \
        for (int64_t i = 0; i < n && !c->found_nan; i++) {                                  \
            T v = x[i * s];                                                                 \
            if (v != v) {                                                                   \
                c->found_nan = 1;                                                           \
                c->index = e + i;                                                           \
            } else if (c->index < 0 || (c->is_min ? v < c->BEST : v > c->BEST)) {           \
                c->BEST = v;                                                                \
                c->index = e + i;                                                           \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_EXT_ROW(ext_f32, float, best)
DEFINE_EXT_ROW(ext_f64, double, best)
DEFINE_EXT_ROW(ext_i64, int64_t, ibest)

static void ext_row(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)
{
    ext_ctx *c = ctx_;
    switch (c->dtype) {
    case RECUR_FLOAT32: ext_f32(c, e, n, (const float *)p[0], s[0]); break;
    case RECUR_FLOAT64: ext_f64(c, e, n, (const double *)p[0], s[0]); break;
    case RECUR_INT64: ext_i64(c, e, n, (const int64_t *)p[0], s[0]); break;
    }
}

int64_t recur_argext(const recur_tensor *t, int is_min)
{
    ext_ctx ctx = {t->dtype, is_min, 0, 0.0, 0, -1};
    reduce_all(t, ext_row, &ctx);
    return ctx.index;
}

typedef struct {
    recur_dtype da, db;
    double rtol, atol;
    int close;
} close_ctx;

static double load_as_double(const char *p, recur_dtype dtype)
{
    switch (dtype) {
    case RECUR_FLOAT32: return *(const float *)p;
    case RECUR_FLOAT64: return *(const double *)p;
    case RECUR_INT64: return (double)*(const int64_t *)p;
    }
    return 0;
}

static void close_row(void *ctx_, int64_t e, int64_t n, char **p, const int64_t *s)
{
    close_ctx *c = ctx_;
    (void)e;
    const int64_t sa = s[0] * (int64_t)recur_dtype_size(c->da);
    const int64_t sb = s[1] * (int64_t)recur_dtype_size(c->db);
    for (int64_t i = 0; i < n && c->close; i++) {
        double a = load_as_double(p[0] + i * sa, c->da), b = load_as_double(p[1] + i * sb, c->db);
        // a == b first so that equal infinities count as close
        if (!(a == b || fabs(a - b) <= c->atol + c->rtol * fabs(b))) c->close = 0;
    }
}

int recur_allclose(const recur_tensor *a, const recur_tensor *b, double rtol, double atol)
{
    int ndim;
    int64_t size[RECUR_MAX_DIMS], sa[RECUR_MAX_DIMS], sb[RECUR_MAX_DIMS];
    if (!recur_broadcast_shape(a->ndim, a->size, b->ndim, b->size, &ndim, size)) return -1;
    recur_broadcast_strides(a->ndim, a->size, a->stride, ndim, size, sa);
    recur_broadcast_strides(b->ndim, b->size, b->stride, ndim, size, sb);
    close_ctx ctx = {a->dtype, b->dtype, rtol, atol, 1};
    char *base[2] = {(char *)recur_data(a), (char *)recur_data(b)};
    const int64_t *strides[2] = {sa, sb};
    size_t esize[2] = {recur_dtype_size(a->dtype), recur_dtype_size(b->dtype)};
    nd_foreach(ndim, size, 2, base, strides, esize, close_row, &ctx, 0);
    return ctx.close;
}

/* ------------------------------------------------------------------------------------ */
/* Reductions along a dim                                                                 */

/* Work items are (o, block of 16 columns of I): each reads the K rows of its block
 * top to bottom (cache lines are used whole) and owns its outputs, so the items run
 * in parallel and every sum has the same order whatever the thread count. */
#define SUM_BLOCK 16

#define DEFINE_SUM_DIM(NAME, T, ACC, SUMROW)                                                \
    static void NAME(const T *x, T *out, int64_t O, int64_t K, int64_t I, int mean)         \
    {                                                                                       \
        /* x is (O,K,I), out is (O,I) */                                                    \
        const int64_t nb = (I + SUM_BLOCK - 1) / SUM_BLOCK;                                 \
        RECUR_FOR(O * K * I >= RECUR_PARALLEL_MIN_MEMORY, ob, O * nb, {                           \
            const int64_t o = ob / nb, i0 = (ob % nb) * SUM_BLOCK;                          \
            const int64_t w = I - i0 < SUM_BLOCK ? I - i0 : SUM_BLOCK;                      \
            const T *x_o = x + o * K * I + i0;                                              \
            T *out_o = out + o * I + i0;                                                    \
            if (I == 1) {                                                                   \
                ACC acc = SUMROW(x_o, K);                                                   \
                out_o[0] = mean ? (T)(acc / K) : (T)acc;                                    \
                continue;                                                                   \
            }                                                                               \
            ACC acc[SUM_BLOCK] = {0};                                                       \
            for (int64_t k = 0; k < K; k++) {                                               \
                const T *x_ok = x_o + k * I;                                                \
                for (int64_t j = 0; j < w; j++) acc[j] += x_ok[j];                          \
            }                                                                               \
            for (int64_t j = 0; j < w; j++) out_o[j] = mean ? (T)(acc[j] / K) : (T)acc[j];  \
        });                                                                                       \
    }

static double sum_row_f32(const float *x, int64_t n) { return sum_f32(x, n, 1); }
static double sum_row_f64(const double *x, int64_t n) { return sum_f64(x, n, 1); }
static uint64_t sum_row_i64(const int64_t *x, int64_t n)
{
    uint64_t acc = 0; // unsigned: overflow wraps
    for (int64_t i = 0; i < n; i++) acc += (uint64_t)x[i];
    return acc;
}

DEFINE_SUM_DIM(sum_dim_f32, float, double, sum_row_f32)
DEFINE_SUM_DIM(sum_dim_f64, double, double, sum_row_f64)
DEFINE_SUM_DIM(sum_dim_i64, int64_t, uint64_t, sum_row_i64)

void recur_sum_dim(recur_dtype dtype, const void *x, void *out, int64_t O, int64_t K, int64_t I,
                   int mean)
{
    if (O <= 0 || I <= 0) return; /* nothing to write */
    if (K < 0) K = 0;              /* an empty sum */
    switch (dtype) {
    case RECUR_FLOAT32: sum_dim_f32(x, out, O, K, I, mean); break;
    case RECUR_FLOAT64: sum_dim_f64(x, out, O, K, I, mean); break;
    case RECUR_INT64: sum_dim_i64(x, out, O, K, I, 0); break;
    }
}

#define DEFINE_MAX_DIM(NAME, T)                                                             \
    static void NAME(const T *x, T *values, int64_t *indices, int64_t O, int64_t K,         \
                     int64_t I, int is_min)                                                 \
    {                                                                                       \
        /* x is (O,K,I); values and indices are (O,I) */                                    \
        const int64_t nb = (I + SUM_BLOCK - 1) / SUM_BLOCK;                                 \
        RECUR_FOR(O * K * I >= RECUR_PARALLEL_MIN_MEMORY, ob, O * nb, {                           \
            const int64_t o = ob / nb, i0 = (ob % nb) * SUM_BLOCK;                          \
            const int64_t w = I - i0 < SUM_BLOCK ? I - i0 : SUM_BLOCK;                      \
            const T *x_o = x + o * K * I + i0;                                              \
            T best[SUM_BLOCK];                                                              \
            int64_t arg[SUM_BLOCK];                                                         \
            for (int64_t j = 0; j < w; j++) { best[j] = x_o[j]; arg[j] = 0; }               \
            for (int64_t k = 1; k < K; k++) {                                               \
                const T *x_ok = x_o + k * I;                                                \
                for (int64_t j = 0; j < w; j++) {                                           \
                    T v = x_ok[j];                                                          \
                    /* a later value wins if strictly better, or is the first NaN */        \
                    int better = is_min ? v < best[j] : v > best[j];                        \
                    if (better || (v != v && best[j] == best[j])) { best[j] = v; arg[j] = k; } \
                }                                                                           \
            }                                                                               \
            for (int64_t j = 0; j < w; j++) {                                               \
                if (values) values[o * I + i0 + j] = best[j];                               \
                if (indices) indices[o * I + i0 + j] = arg[j] + 1;                          \
            }                                                                               \
        });                                                                                       \
    }

DEFINE_MAX_DIM(max_dim_f32, float)
DEFINE_MAX_DIM(max_dim_f64, double)
DEFINE_MAX_DIM(max_dim_i64, int64_t)

void recur_max_dim(recur_dtype dtype, const void *x, void *values, int64_t *indices, int64_t O,
                   int64_t K, int64_t I, int is_min)
{
    if (O <= 0 || K <= 0 || I <= 0) return; /* no extremum of an empty set: nothing written */
    switch (dtype) {
    case RECUR_FLOAT32: max_dim_f32(x, values, indices, O, K, I, is_min); break;
    case RECUR_FLOAT64: max_dim_f64(x, values, indices, O, K, I, is_min); break;
    case RECUR_INT64: max_dim_i64(x, values, indices, O, K, I, is_min); break;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Softmax                                                                                */

#define DEFINE_SOFTMAX(NAME, T, EXP)                                                        \
    static void NAME(const T *x, T *out, int64_t O, int64_t K, int64_t I, int logsm)        \
    {                                                                                       \
        /* x and out are (O,K,I); each (o,i) is one distribution over K */                  \
        RECUR_FOR(O * K * I >= RECUR_PARALLEL_MIN / 4, oi, O * I, {                               \
            const int64_t o = oi / I, i = oi % I;                                           \
            const T *x_r = x + o * K * I + i;                                               \
            T *out_r = out + o * K * I + i;                                                 \
            /* subtracting the max keeps exp from overflowing (softmax(x) = softmax(x-m)) */ \
            T m = x_r[0];                                                                   \
            for (int64_t k = 1; k < K; k++) if (x_r[k * I] > m) m = x_r[k * I];             \
            double sum = 0;                                                                 \
            if (logsm) {                                                                    \
                for (int64_t k = 0; k < K; k++) sum += EXP(x_r[k * I] - m);                 \
                const double lse = log(sum);                                                \
                for (int64_t k = 0; k < K; k++)                                             \
                    out_r[k * I] = (T)((double)(x_r[k * I] - m) - lse);                     \
            } else {                                                                        \
                for (int64_t k = 0; k < K; k++) {                                           \
                    T v = EXP(x_r[k * I] - m);                                              \
                    out_r[k * I] = v;                                                       \
                    sum += v;                                                               \
                }                                                                           \
                const double inv = 1.0 / sum;                                               \
                for (int64_t k = 0; k < K; k++) out_r[k * I] = (T)(out_r[k * I] * inv);     \
            }                                                                               \
        });                                                                                       \
    }

DEFINE_SOFTMAX(softmax_f32, float, expf)
DEFINE_SOFTMAX(softmax_f64, double, exp)

void recur_softmax(recur_dtype dtype, const void *x, void *out, int64_t O, int64_t K, int64_t I,
                   int log)
{
    if (O <= 0 || K <= 0 || I <= 0) return; /* nothing to write */
    switch (dtype) {
    case RECUR_FLOAT32: softmax_f32(x, out, O, K, I, log); break;
    case RECUR_FLOAT64: softmax_f64(x, out, O, K, I, log); break;
    case RECUR_INT64: break; // floats only, refused by the caller
    }
}

/* ------------------------------------------------------------------------------------ */
/* Matrix products                                                                        */

int recur_blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, int *trans,
                      int64_t *ld)
{
    // a stride along a dim of size 1 is never used, so pick the one that fits
    if (cols == 1) s1 = 1;
    if (rows == 1) s0 = s1 == 1 ? (cols > 1 ? cols : 1) : 1;
    if (s1 == 1 && s0 >= (cols > 1 ? cols : 1)) { // row-major, rows s0 apart
        *trans = 0;
        *ld = s0;
        return 1;
    }
    if (s0 == 1 && s1 >= (rows > 1 ? rows : 1)) { // the transpose of a row-major matrix
        *trans = 1;
        *ld = s1;
        return 1;
    }
    return 0;
}

void recur_gemm(recur_dtype dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                const void *a, int64_t a_bstride, int trans_a, int64_t lda,
                const void *b, int64_t b_bstride, int trans_b, int64_t ldb,
                double beta, void *c, int64_t c_bstride, int64_t ldc)
{
    recur_gemm_bias(dtype, batch, M, N, K, alpha, a, a_bstride, trans_a, lda, b, b_bstride, trans_b, ldb,
                    beta, c, c_bstride, ldc, NULL);
}

/* c = beta*c + bias, row by row: what BLAS then adds its product to (beta 1). */
static void gemm_start_from_bias(recur_dtype dtype, int64_t M, int64_t N, double beta, void *c,
                                 int64_t ldc, const void *bias)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            if (dtype == RECUR_FLOAT32) {
                float *c_ij = (float *)c + i * ldc + j;
                *c_ij = (beta == 0 ? 0.0f : (float)beta * *c_ij) + ((const float *)bias)[j];
            } else {
                double *c_ij = (double *)c + i * ldc + j;
                *c_ij = (beta == 0 ? 0.0 : beta * *c_ij) + ((const double *)bias)[j];
            }
        }
}

void recur_gemm_bias(recur_dtype dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                     const void *a, int64_t a_bstride, int trans_a, int64_t lda,
                     const void *b, int64_t b_bstride, int trans_b, int64_t ldb,
                     double beta, void *c, int64_t c_bstride, int64_t ldc, const void *bias)
{
    // op(a) is (M,K), op(b) is (K,N), c is (M,N), each of `batch` matrices
    if (batch <= 0 || M <= 0 || N <= 0 || K < 0) return; /* nothing to write */
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    for (int64_t bt = 0; bt < batch; bt++) {
        if (K == 0 && bias) {
            gemm_start_from_bias(dtype, M, N, beta, (char *)c + bt * c_bstride * recur_dtype_size(dtype), ldc, bias);
            continue;
        }
        if (K == 0) { // an empty product: c = beta*c (beta 0 clears NaN too, as BLAS does)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    if (dtype == RECUR_FLOAT32) {
                        float *c_ij = (float *)c + bt * c_bstride + i * ldc + j;
                        *c_ij = beta == 0 ? 0.0f : (float)beta * *c_ij;
                    } else {
                        double *c_ij = (double *)c + bt * c_bstride + i * ldc + j;
                        *c_ij = beta == 0 ? 0.0 : beta * *c_ij;
                    }
                }
            continue;
        }
        double beta_t = beta;
        if (bias && !(dtype == RECUR_FLOAT32 && alpha == 1 && beta == 0 && (double)M * N * K >= GEMM_OWN_MIN &&
                      rnn_gemm_packed_available())) {
            /* only recur's kernel takes the bias as its sums' start; BLAS adds to it */
            gemm_start_from_bias(dtype, M, N, beta, (char *)c + bt * c_bstride * recur_dtype_size(dtype), ldc, bias);
            beta_t = 1;
        }
        if (dtype == RECUR_FLOAT32 && alpha == 1 && (beta_t == 0 || beta_t == 1) &&
            (double)M * N * K >= GEMM_OWN_MIN && rnn_gemm_packed_available()) {
            /* recur's blocked kernel (csrc/rnn_gemm.h): AVX-512 where OpenBLAS 0.3.21 runs
             * its AVX2 kernels, one FMA chain per element whatever the thread count, and
             * its threads split the rows of c with no BLAS-internal synchronisation (a
             * language model's output layer and its gradients go through here) */
            const float *A = (const float *)a + bt * a_bstride, *B = (const float *)b + bt * b_bstride;
            float *C = (float *)c + bt * c_bstride;
            int nth = omp_in_parallel() || M < 24 ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(nth)
            rnn_gemm_blocked(trans_a, trans_b, (int)M, (int)N, (int)K, A, (int)lda, B, (int)ldb,
                             beta_t == 0 ? bias : NULL, beta_t != 0, C, (int)ldc, omp_get_thread_num(),
                             omp_get_num_threads());
        } else if (dtype == RECUR_FLOAT32)
            recur_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, (float)alpha,
                        (const float *)a + bt * a_bstride, (int)lda,
                        (const float *)b + bt * b_bstride, (int)ldb, (float)beta_t,
                        (float *)c + bt * c_bstride, (int)ldc);
        else if (dtype == RECUR_FLOAT64)
            recur_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha,
                        (const double *)a + bt * a_bstride, (int)lda,
                        (const double *)b + bt * b_bstride, (int)ldb, beta_t,
                        (double *)c + bt * c_bstride, (int)ldc);
    }
}
