/* Kernels behind recur.nn (see nn.h for the contract of each function).
 *
 * The float32 and float64 versions share one body, written once as a macro over
 * the element type T and its math functions, so the two cannot drift apart. */
#include <math.h>
#include <string.h>

#include "parallel.h"
#include "recur/nn.h"
#include "rnn_math.h"

/* Sums of per-element terms are formed over a fixed number of chunks and added in
 * chunk order, so a loss is bitwise the same whatever the thread count:
 * NN_CHUNKED_SUM sets s to the sum over i in [0,n) of TERM, a double expression in i. */
#define NN_SUM_CHUNKS 64
#define NN_OMP_MIN 32768
/* The embedding lookup only copies rows, which a second thread does not speed up (equal
 * times at 160K and 2.5M elements on 2 cores), while a parallel region can wait a time
 * slice on a loaded machine: only very large lookups are split. */
#define NN_COPY_OMP_MIN (1 << 22)

#define NN_CHUNKED_SUM(s, i, n, TERM)                                                  \
    do {                                                                               \
        const int64_t n_ = (n);                                                        \
        const int64_t chunk_ = (n_ + NN_SUM_CHUNKS - 1) / NN_SUM_CHUNKS;               \
        double part_[NN_SUM_CHUNKS];                                                   \
        RECUR_FOR(n_ > NN_OMP_MIN, c_, NN_SUM_CHUNKS, {                                           \
            double acc_ = 0.0;                                                         \
            int64_t end_ = (c_ + 1) * chunk_ < n_ ? (c_ + 1) * chunk_ : n_;            \
            for (int64_t i = c_ * chunk_; i < end_; i++) acc_ += (TERM);               \
            part_[c_] = acc_;                                                          \
        });                                                                                       \
        (s) = 0.0;                                                                     \
        for (int c_ = 0; c_ < NN_SUM_CHUNKS; c_++) (s) += part_[c_];                   \
    } while (0)

int64_t recur_nn_first_bad_id(const int64_t *ids, int64_t N, int64_t V, int has_ignore, int64_t ignore)
{
    for (int64_t n = 0; n < N; n++) {
        int64_t id = ids[n];
        if (has_ignore && id == ignore) continue;
        if (id < 1 || id > V) return n;
    }
    return -1;
}

/* The softmax's exponentials, the bulk of a cross-entropy over a vocabulary. float32
 * takes rnn_math.h's branch-free expf (under 1 ulp), which the compiler vectorises
 * (nn.o is built with -fno-trapping-math, see the Makefile) for the widest vectors the
 * CPU has, where libm's expf is a call per element: 1.46 ms for a (2500x65) forward and
 * backward on one thread. The sum stays in double, in NN_EXP_LANES running sums (the
 * exponential i goes to sum i % NN_EXP_LANES) added in order at the end: one running
 * sum waited on its add's latency at every element, 4 of the 8 ms of a (700 x 10000)
 * cross-entropy forward on 2 threads. A row's sum is the same on every CPU. */
#define NN_EXP_BLOCK 256
#define NN_EXP_LANES 8

RNN_CLONES static float max_f32(const float *x, int64_t n)
{
    /* lanes as above: the compare of one element waited on the last */
    float m[NN_EXP_LANES];
    for (int j = 0; j < NN_EXP_LANES; j++) m[j] = x[0];
    int64_t i = 0;
    for (; i + NN_EXP_LANES <= n; i += NN_EXP_LANES)
        for (int j = 0; j < NN_EXP_LANES; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    float r = m[0];
    for (int j = 1; j < NN_EXP_LANES; j++) r = m[j] > r ? m[j] : r;
    return r;
}

RNN_CLONES static double sum_exp_shifted_f32(const float *x, int64_t n, float shift)
{
    float e[NN_EXP_BLOCK];
    double s[NN_EXP_LANES] = {0};
    for (int64_t i0 = 0; i0 < n; i0 += NN_EXP_BLOCK) {
        const int m = (int)(n - i0 < NN_EXP_BLOCK ? n - i0 : NN_EXP_BLOCK);
        for (int i = 0; i < m; i++) e[i] = rnn_expf(x[i0 + i] - shift);
        for (int i = m; i < NN_EXP_BLOCK; i++) e[i] = 0; /* a last, partial block */
        for (int i = 0; i < NN_EXP_BLOCK; i += NN_EXP_LANES)
            for (int j = 0; j < NN_EXP_LANES; j++) s[j] += e[i + j];
    }
    double total = 0.0;
    for (int j = 0; j < NN_EXP_LANES; j++) total += s[j];
    return total;
}

static double max_f64(const double *x, int64_t n)
{
    double m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static double sum_exp_shifted_f64(const double *x, int64_t n, double shift)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - shift);
    return s;
}

/* y = scale * exp(x - shift), elementwise over n */
RNN_CLONES static void scaled_exp_shifted_f32(float *y, const float *x, int64_t n, float shift, float scale)
{
    for (int64_t i = 0; i < n; i++) y[i] = scale * rnn_expf(x[i] - shift);
}

static void scaled_exp_shifted_f64(double *y, const double *x, int64_t n, double shift, double scale)
{
    for (int64_t i = 0; i < n; i++) y[i] = scale * exp(x[i] - shift);
}

#define NN_KERNELS(T, SFX, EXP, LOG, LOG1P)                                                       \
                                                                                                  \
    void recur_embedding_forward_##SFX(T *out, const int64_t *ids, const T *weight, int64_t N,          \
                                 int64_t E)                                                       \
    {                                                                                             \
        /* out is (N,E), ids (N) in 1..V, weight (V,E) */                                         \
        if (N <= 0 || E <= 0) return;                                                             \
        RECUR_FOR(N * E > NN_COPY_OMP_MIN, n, N,                                                  \
                  memcpy(out + n * E, weight + (ids[n] - 1) * E, (size_t)E * sizeof(T)));         \
    }                                                                                             \
                                                                                                  \
    void recur_embedding_backward_##SFX(T *gweight, const int64_t *ids, const T *gout, int64_t N,       \
                                  int64_t E)                                                      \
    {                                                                                             \
        /* gweight is (V,E), gout (N,E). Serial over n: repeated ids hit the same row, and        \
         * a fixed order keeps the sum reproducible. */                                           \
        if (N <= 0 || E <= 0) return;                                                             \
        for (int64_t n = 0; n < N; n++) {                                                         \
            T *gw_row = gweight + (ids[n] - 1) * E;                                               \
            const T *go_row = gout + n * E;                                                       \
            for (int64_t e = 0; e < E; e++) gw_row[e] += go_row[e];                               \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_dropout_forward_##SFX(T *y, T *mask, const T *x, int64_t n, double p, recur_rng *g)      \
    {                                                                                             \
        /* y, mask, x are (n). Serial: the generator is a sequence. */                            \
        T keep_scale = p < 1.0 ? (T)(1.0 / (1.0 - p)) : (T)0;                                     \
        for (int64_t i = 0; i < n; i++) {                                                         \
            mask[i] = recur_rng_uniform(g) < p ? (T)0 : keep_scale;                               \
            y[i] = x[i] * mask[i];                                                                \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_cross_entropy_forward_##SFX(double *loss_sum, double *weight_sum, T *lse,                \
                                     const T *logits, const int64_t *targets, const T *mask,      \
                                     int has_ignore, int64_t ignore, int64_t N, int64_t V)        \
    {                                                                                             \
        /* logits is (N,V), targets (N), mask (N) or NULL, lse (N) */                             \
        RECUR_FOR(N * V > NN_OMP_MIN, n, N, {                                                     \
            if (has_ignore && targets[n] == ignore) { lse[n] = 0; continue; }                     \
            const T *x_n = logits + n * V;                                                        \
            const T maxv = max_##SFX(x_n, V);                                                     \
            double s = sum_exp_shifted_##SFX(x_n, V, maxv);                                       \
            lse[n] = maxv + (T)log(s);                                                            \
        });                                                                                       \
        double ls = 0.0, ws = 0.0;                                                                \
        for (int64_t n = 0; n < N; n++) {                                                         \
            if (has_ignore && targets[n] == ignore) continue;                                     \
            double w = mask ? (double)mask[n] : 1.0;                                              \
            if (w == 0.0) continue;                                                               \
            ls += w * ((double)lse[n] - (double)logits[n * V + targets[n] - 1]);                  \
            ws += w;                                                                              \
        }                                                                                         \
        *loss_sum = ls;                                                                           \
        *weight_sum = ws;                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_cross_entropy_backward_##SFX(T *grad, const T *logits, const T *lse,                     \
                                      const int64_t *targets, const T *mask, int has_ignore,      \
                                      int64_t ignore, double scale, int64_t N, int64_t V)         \
    {                                                                                             \
        /* grad and logits are (N,V), lse, targets and mask (N) */                                \
        RECUR_FOR(N * V > NN_OMP_MIN, n, N, {                                                     \
            T *g_n = grad + n * V;                                                                \
            const T *x_n = logits + n * V;                                                        \
            double w = mask ? (double)mask[n] : 1.0;                                              \
            if ((has_ignore && targets[n] == ignore) || w == 0.0) {                               \
                memset(g_n, 0, (size_t)V * sizeof(T));                                            \
                continue;                                                                         \
            }                                                                                     \
            T sw = (T)(scale * w);                                                                \
            T lse_n = lse[n];                                                                     \
            scaled_exp_shifted_##SFX(g_n, x_n, V, lse_n, sw);                                     \
            g_n[targets[n] - 1] -= sw;                                                            \
        });                                                                                       \
    }                                                                                             \
                                                                                                  \
    /* max(x,0) - x t + log(1 + exp(-|x|)), the loss of one element */                            \
    static inline double bce_with_logits_term_##SFX(T x, T t)                                     \
    {                                                                                             \
        T pos = x > 0 ? x : (T)0;                                                                 \
        return (double)(pos - x * t + LOG1P(EXP(-(x > 0 ? x : -x))));                             \
    }                                                                                             \
                                                                                                  \
    double recur_bce_with_logits_forward_##SFX(const T *x, const T *t, int64_t n)                       \
    {                                                                                             \
        double s;                                                                                 \
        NN_CHUNKED_SUM(s, i, n, bce_with_logits_term_##SFX(x[i], t[i]));                          \
        return s;                                                                                 \
    }                                                                                             \
                                                                                                  \
    void recur_bce_with_logits_backward_##SFX(T *grad, const T *x, const T *t, double scale, int64_t n) \
    {                                                                                             \
        T sc = (T)scale;                                                                          \
        RECUR_FOR(n > NN_OMP_MIN, i, n, {                                                         \
            /* sigmoid without overflow for either sign of x */                                   \
            T e = EXP(-(x[i] > 0 ? x[i] : -x[i]));                                                \
            T sig = x[i] >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);                               \
            grad[i] = sc * (sig - t[i]);                                                          \
        });                                                                                       \
    }                                                                                             \
                                                                                                  \
    static inline double squared_diff_##SFX(T x, T t)                                             \
    {                                                                                             \
        double d = (double)x - (double)t;                                                         \
        return d * d;                                                                             \
    }                                                                                             \
                                                                                                  \
    double recur_mse_forward_##SFX(const T *x, const T *t, int64_t n)                                   \
    {                                                                                             \
        double s;                                                                                 \
        NN_CHUNKED_SUM(s, i, n, squared_diff_##SFX(x[i], t[i]));                                  \
        return s;                                                                                 \
    }                                                                                             \
                                                                                                  \
    void recur_mse_backward_##SFX(T *grad, const T *x, const T *t, double scale, int64_t n)             \
    {                                                                                             \
        T sc = (T)(2.0 * scale);                                                                  \
        RECUR_FOR(n > NN_OMP_MIN, i, n, grad[i] = sc * (x[i] - t[i]));                            \
    }

NN_KERNELS(float, f32, expf, logf, log1pf)
NN_KERNELS(double, f64, exp, log, log1p)

int recur_orthogonalize_rows_f64(double *a, int64_t m, int64_t n)
{
    // a is (m,n) row-major, m <= n; rows are contiguous, so work on rows
    for (int64_t j = 0; j < m; j++) {
        double *a_j = a + j * n;
        for (int pass = 0; pass < 2; pass++) {
            for (int64_t k = 0; k < j; k++) {
                const double *a_k = a + k * n;
                double dot = 0.0;
                for (int64_t i = 0; i < n; i++) dot += a_k[i] * a_j[i];
                for (int64_t i = 0; i < n; i++) a_j[i] -= dot * a_k[i];
            }
        }
        double norm = 0.0;
        for (int64_t i = 0; i < n; i++) norm += a_j[i] * a_j[i];
        norm = sqrt(norm);
        if (!(norm > 1e-12)) return -1;
        for (int64_t i = 0; i < n; i++) a_j[i] /= norm;
    }
    return 0;
}
