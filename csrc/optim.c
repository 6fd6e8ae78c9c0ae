/* Optimizer updates (see optim.h).
 *
 * Each update is a plain loop over one block of elements (`*_block_f32`, `*_block_f64`)
 * with the coefficients already rounded to the element type as PyTorch rounds them; the public function
 * hands the blocks of a parameter to the threads. Every update is elementwise, so the
 * split changes no result. Below OPTIM_PARALLEL_MIN elements (about 3 ms of Adam on one
 * core) a parameter is updated on one thread. On an idle machine a second thread would
 * halve even a 32K-element update, but these loops are a small part of a training step,
 * and on a loaded machine every parallel region can wait a scheduler time slice for its
 * second thread: with the threshold at 32K elements, Adam for a 3-layer 256 LSTM
 * (parameters of 65K-262K elements) took 43-71 ms per step at 2 threads beside one busy
 * process, against 1.7 ms on one thread.
 *
 * The block functions copy their coefficients into a local struct (a store to p could
 * otherwise alias them) and branch only on loop-invariant flags, so that GCC vectorizes
 * them. The loops with a square root vectorize only under -fno-math-errno (sqrt may
 * set errno); the vector square root rounds as the scalar one, so no result changes. */
#include <math.h>
#include <stddef.h>

#include "parallel.h"
#include "recur/optim.h"

#define OPTIM_PARALLEL_MIN (1 << 22)
#define OPTIM_BLOCK 8192

static int64_t num_blocks(int64_t n) { return (n + OPTIM_BLOCK - 1) / OPTIM_BLOCK; }

static int64_t block_len(int64_t n, int64_t lo)
{
    return n - lo < OPTIM_BLOCK ? n - lo : OPTIM_BLOCK;
}

/* OPTIM_KERNELS(T, SFX, SQRT) defines, for the element type T (float or double):
 *   recur_sgd_update_SFX, recur_adam_update_SFX, recur_rmsprop_update_SFX,
 *   recur_adagrad_update_SFX
 * (compiled below as _f32 and _f64: recur_sgd_update_f32, recur_sgd_update_f64, ...)
 * with their block functions and coefficient structs. The coefficients are rounded to
 * T: to float as PyTorch rounds them for float32, exactly for float64, so the float64
 * updates are the same equations in double precision (the reference that gradient
 * checks train with). */
#define OPTIM_KERNELS(T, SFX, SQRT)                                                               \
                                                                                                  \
    typedef struct {                                                                              \
        T wd, mom, keep, neg_lr;                                                                  \
        int use_wd, nesterov, first;                                                              \
    } sgd_coef_##SFX;                                                                             \
                                                                                                  \
    static void sgd_block_##SFX(T *p, const T *g, T *buf, int64_t n, const sgd_coef_##SFX *cp)    \
    {                                                                                             \
        /* p, g, buf are (n); buf is NULL without momentum */                                     \
        const sgd_coef_##SFX c = *cp; /* a local copy: stores to p cannot change it */            \
        for (int64_t i = 0; i < n; i++) {                                                         \
            T d = g[i];                                                                           \
            if (c.use_wd) d = d + c.wd * p[i];                                                    \
            if (buf) {                                                                            \
                T b = c.first ? d : buf[i] * c.mom + c.keep * d;                                  \
                buf[i] = b;                                                                       \
                d = c.nesterov ? d + c.mom * b : b;                                               \
            }                                                                                     \
            p[i] = p[i] + c.neg_lr * d;                                                           \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_sgd_update_##SFX(T *p, const T *g, T *buf, int64_t n, double lr, double momentum,  \
                                double dampening, double weight_decay, int nesterov, int first)   \
    {                                                                                             \
        if (n <= 0) return; /* nothing to update (optim.h) */                                     \
        /* p, g, buf are (n); buf is NULL without momentum. PyTorch turns the                     \
         * Python-float coefficients into the tensor's type before the tensor ops. */             \
        const sgd_coef_##SFX c = {(T)weight_decay, (T)momentum, (T)(1.0 - dampening), (T)(-lr),   \
                                  weight_decay != 0.0, nesterov, first};                          \
        const int64_t nb = num_blocks(n);                                                         \
        RECUR_FOR(n >= OPTIM_PARALLEL_MIN, b, nb, {                                               \
            int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);                                 \
            sgd_block_##SFX(p + lo, g + lo, buf ? buf + lo : NULL, len, &c);                      \
        });                                                                                       \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T neg_step, bc2_sqrt, b1, b2, one_b1, one_b2, eps, wd, shrink;                            \
        int decoupled, l2;                                                                        \
    } adam_coef_##SFX;                                                                            \
                                                                                                  \
    static void adam_block_##SFX(T *p, const T *g, T *m, T *v, T *vmax, int64_t n,                \
                                 const adam_coef_##SFX *cp)                                       \
    {                                                                                             \
        /* p, g, m, v, vmax are (n); vmax is NULL without AMSGrad */                              \
        const adam_coef_##SFX c = *cp; /* a local copy: stores to p cannot change it */           \
        for (int64_t i = 0; i < n; i++) {                                                         \
            T pi = p[i], gi = g[i];                                                               \
            if (c.decoupled) pi = pi * c.shrink;                                                  \
            if (c.l2) gi = gi + c.wd * pi;                                                        \
            T mi = m[i] * c.b1 + c.one_b1 * gi;                                                   \
            T vi = v[i] * c.b2 + c.one_b2 * gi * gi;                                              \
            m[i] = mi;                                                                            \
            v[i] = vi;                                                                            \
            if (vmax) {                                                                           \
                /* torch.maximum propagates NaN: keep vi unless the old maximum is larger */      \
                if (vmax[i] > vi) vi = vmax[i];                                                   \
                vmax[i] = vi;                                                                     \
            }                                                                                     \
            T denom = SQRT(vi) / c.bc2_sqrt + c.eps;                                              \
            p[i] = pi + c.neg_step * mi / denom;                                                  \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_adam_update_##SFX(T *p, const T *g, T *m, T *v, T *vmax, int64_t n, double lr,     \
                                 double beta1, double beta2, double eps, double weight_decay,     \
                                 int decoupled, int64_t step)                                     \
    {                                                                                             \
        if (n <= 0) return; /* nothing to update (optim.h) */                                     \
        /* p, g, m, v, vmax are (n); vmax is NULL without AMSGrad. Bias corrections in            \
         * double as PyTorch computes them in Python, then rounded. */                            \
        const double bc1 = 1.0 - pow(beta1, (double)step);                                        \
        const double bc2 = 1.0 - pow(beta2, (double)step);                                        \
        const adam_coef_##SFX c = {                                                               \
            .neg_step = (T)(-(lr / bc1)), .bc2_sqrt = (T)sqrt(bc2),                               \
            .b1 = (T)beta1, .b2 = (T)beta2,                                                       \
            .one_b1 = (T)(1.0 - beta1), .one_b2 = (T)(1.0 - beta2),                               \
            .eps = (T)eps, .wd = (T)weight_decay,                                                 \
            .shrink = (T)(1.0 - lr * weight_decay), /* AdamW's decoupled decay */                 \
            .decoupled = decoupled, .l2 = !decoupled && weight_decay != 0.0,                      \
        };                                                                                        \
        const int64_t nb = num_blocks(n);                                                         \
        RECUR_FOR(n >= OPTIM_PARALLEL_MIN, b, nb, {                                               \
            int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);                                 \
            adam_block_##SFX(p + lo, g + lo, m + lo, v + lo, vmax ? vmax + lo : NULL, len, &c);   \
        });                                                                                       \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T a, one_a, eps, wd, mom, neg_lr;                                                         \
        int use_wd;                                                                               \
    } rmsprop_coef_##SFX;                                                                         \
                                                                                                  \
    /* Two passes over the block, each with its branch outside the loop so that both              \
     * vectorize: the running averages and the denominator avg, then the step. */                 \
    static void rmsprop_block_##SFX(T *p, const T *g, T *sq, T *gavg, T *buf, int64_t n,          \
                                    const rmsprop_coef_##SFX *cp)                                 \
    {                                                                                             \
        /* p, g, sq, gavg, buf are (n), n <= OPTIM_BLOCK; gavg is NULL unless centered,           \
         * buf unless momentum > 0 */                                                             \
        const rmsprop_coef_##SFX c = *cp; /* a local copy: stores to p cannot change it */        \
        T avg[OPTIM_BLOCK], gw[OPTIM_BLOCK]; /* the denominator and the decayed gradient */       \
        for (int64_t i = 0; i < n; i++) gw[i] = c.use_wd ? g[i] + c.wd * p[i] : g[i];             \
        if (gavg) {                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                     \
                T si = sq[i] * c.a + c.one_a * gw[i] * gw[i];                                     \
                T ga = gavg[i] * c.a + c.one_a * gw[i];                                           \
                sq[i] = si;                                                                       \
                gavg[i] = ga;                                                                     \
                avg[i] = SQRT(si + (T)-1 * ga * ga) + c.eps; /* sqrt(E[g^2] - E[g]^2) */          \
            }                                                                                     \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                     \
                T si = sq[i] * c.a + c.one_a * gw[i] * gw[i];                                     \
                sq[i] = si;                                                                       \
                avg[i] = SQRT(si) + c.eps;                                                        \
            }                                                                                     \
        }                                                                                         \
        if (buf) {                                                                                \
            for (int64_t i = 0; i < n; i++) {                                                     \
                T b = buf[i] * c.mom + gw[i] / avg[i];                                            \
                buf[i] = b;                                                                       \
                p[i] = p[i] + c.neg_lr * b;                                                       \
            }                                                                                     \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) p[i] = p[i] + c.neg_lr * gw[i] / avg[i];              \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_rmsprop_update_##SFX(T *p, const T *g, T *sq, T *gavg, T *buf, int64_t n,          \
                                    double lr, double alpha, double eps, double weight_decay,     \
                                    double momentum)                                              \
    {                                                                                             \
        if (n <= 0) return; /* nothing to update (optim.h) */                                     \
        /* p, g, sq, gavg, buf are (n); gavg is NULL unless centered, buf unless momentum > 0 */  \
        const rmsprop_coef_##SFX c = {(T)alpha, (T)(1.0 - alpha), (T)eps, (T)weight_decay,        \
                                      (T)momentum, (T)(-lr), weight_decay != 0.0};                \
        const int64_t nb = num_blocks(n);                                                         \
        RECUR_FOR(n >= OPTIM_PARALLEL_MIN, b, nb, {                                               \
            int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);                                 \
            rmsprop_block_##SFX(p + lo, g + lo, sq + lo, gavg ? gavg + lo : NULL,                 \
                                buf ? buf + lo : NULL, len, &c);                                  \
        });                                                                                       \
    }                                                                                             \
                                                                                                  \
    typedef struct {                                                                              \
        T neg_clr, eps, wd;                                                                       \
        int use_wd;                                                                               \
    } adagrad_coef_##SFX;                                                                         \
                                                                                                  \
    static void adagrad_block_##SFX(T *p, const T *g, T *sum, int64_t n,                          \
                                    const adagrad_coef_##SFX *cp)                                 \
    {                                                                                             \
        /* p, g, sum are (n) */                                                                   \
        const adagrad_coef_##SFX c = *cp; /* a local copy: stores to p cannot change it */        \
        for (int64_t i = 0; i < n; i++) {                                                         \
            T gi = g[i];                                                                          \
            if (c.use_wd) gi = gi + c.wd * p[i];                                                  \
            T s = sum[i] + gi * gi;                                                               \
            sum[i] = s;                                                                           \
            p[i] = p[i] + c.neg_clr * gi / (SQRT(s) + c.eps);                                     \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    void recur_adagrad_update_##SFX(T *p, const T *g, T *sum, int64_t n, double clr, double eps,  \
                                    double weight_decay)                                          \
    {                                                                                             \
        if (n <= 0) return; /* nothing to update (optim.h) */                                     \
        /* p, g, sum are (n) */                                                                   \
        const adagrad_coef_##SFX c = {(T)(-clr), (T)eps, (T)weight_decay, weight_decay != 0.0};   \
        const int64_t nb = num_blocks(n);                                                         \
        RECUR_FOR(n >= OPTIM_PARALLEL_MIN, b, nb, {                                               \
            int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);                                 \
            adagrad_block_##SFX(p + lo, g + lo, sum + lo, len, &c);                               \
        });                                                                                       \
    }

OPTIM_KERNELS(float, f32, sqrtf)
OPTIM_KERNELS(double, f64, sqrt)

/* The norms run on one thread with a fixed summation order, so the clipping
 * coefficient (and every clipped gradient) is bitwise the same whatever the thread
 * count; four accumulators keep the adds independent. One pass over the gradients
 * per step costs little next to the backward pass that produced them. */
double recur_sum_squares_f32(const float *x, int64_t n)
{
    // x is (n)
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double a = x[i], b = x[i + 1], c = x[i + 2], d = x[i + 3];
        s0 += a * a;
        s1 += b * b;
        s2 += c * c;
        s3 += d * d;
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

double recur_sum_squares_f64(const double *x, int64_t n)
{
    // x is (n)
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * x[i];
        s1 += x[i + 1] * x[i + 1];
        s2 += x[i + 2] * x[i + 2];
        s3 += x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

double recur_max_abs_f32(const float *x, int64_t n)
{
    // x is (n)
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]);
        if (a != a) return a;
        if (a > m) m = a;
    }
    return m;
}

double recur_max_abs_f64(const double *x, int64_t n)
{
    // x is (n)
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (a != a) return a;
        if (a > m) m = a;
    }
    return m;
}
