/* Optimizer updates (see optim.h).
 *
 * Each update is a plain loop over one block of elements (`*_block`) with the
 * coefficients already rounded to float as PyTorch rounds them; the public function
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
 * them. The loops with a square root vectorize only under -fno-math-errno (sqrtf may
 * set errno); the vector square root rounds as the scalar one, so no result changes. */
#include <math.h>
#include <stddef.h>

#include "optim.h"

#define OPTIM_PARALLEL_MIN (1 << 22)
#define OPTIM_BLOCK 8192

static int64_t num_blocks(int64_t n) { return (n + OPTIM_BLOCK - 1) / OPTIM_BLOCK; }

static int64_t block_len(int64_t n, int64_t lo)
{
    return n - lo < OPTIM_BLOCK ? n - lo : OPTIM_BLOCK;
}

typedef struct {
    float wd, mom, keep, neg_lr;
    int use_wd, nesterov, first;
} sgd_coef;

static void sgd_block(float *p, const float *g, float *buf, int64_t n, const sgd_coef *cp)
{
    // p, g, buf are (n); buf is NULL without momentum
    const sgd_coef c = *cp; // a local copy: stores to p cannot change it
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (c.use_wd) d = d + c.wd * p[i];
        if (buf) {
            float b = c.first ? d : buf[i] * c.mom + c.keep * d;
            buf[i] = b;
            d = c.nesterov ? d + c.mom * b : b;
        }
        p[i] = p[i] + c.neg_lr * d;
    }
}

void recur_sgd_update(float *p, const float *g, float *buf, int64_t n, double lr, double momentum,
                double dampening, double weight_decay, int nesterov, int first)
{
    if (n <= 0) return; /* nothing to update (optim.h) */
    // p, g, buf are (n); buf is NULL without momentum
    // PyTorch turns the Python-float coefficients into floats before the tensor ops.
    const sgd_coef c = {(float)weight_decay, (float)momentum, (float)(1.0 - dampening),
                        (float)(-lr), weight_decay != 0.0, nesterov, first};
    const int64_t nb = num_blocks(n);
#pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);
        sgd_block(p + lo, g + lo, buf ? buf + lo : NULL, len, &c);
    }
}

typedef struct {
    float neg_step, bc2_sqrt, b1, b2, one_b1, one_b2, eps, wd, shrink;
    int decoupled, l2;
} adam_coef;

static void adam_block(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                       const adam_coef *cp)
{
    // p, g, m, v, vmax are (n); vmax is NULL without AMSGrad
    const adam_coef c = *cp; // a local copy: stores to p cannot change it
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i], gi = g[i];
        if (c.decoupled) pi = pi * c.shrink;
        if (c.l2) gi = gi + c.wd * pi;
        float mi = m[i] * c.b1 + c.one_b1 * gi;
        float vi = v[i] * c.b2 + c.one_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            // torch.maximum propagates NaN: keep vi unless the old maximum is larger
            if (vmax[i] > vi) vi = vmax[i];
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
        p[i] = pi + c.neg_step * mi / denom;
    }
}

void recur_adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                 double lr, double beta1, double beta2, double eps, double weight_decay,
                 int decoupled, int64_t step)
{
    if (n <= 0) return; /* nothing to update (optim.h) */
    // p, g, m, v, vmax are (n); vmax is NULL without AMSGrad
    // Bias corrections in double as PyTorch computes them in Python, then rounded.
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    const adam_coef c = {
        .neg_step = (float)(-(lr / bc1)), .bc2_sqrt = (float)sqrt(bc2),
        .b1 = (float)beta1, .b2 = (float)beta2,
        .one_b1 = (float)(1.0 - beta1), .one_b2 = (float)(1.0 - beta2),
        .eps = (float)eps, .wd = (float)weight_decay,
        .shrink = (float)(1.0 - lr * weight_decay), // AdamW's decoupled decay
        .decoupled = decoupled, .l2 = !decoupled && weight_decay != 0.0,
    };
    const int64_t nb = num_blocks(n);
#pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);
        adam_block(p + lo, g + lo, m + lo, v + lo, vmax ? vmax + lo : NULL, len, &c);
    }
}

typedef struct {
    float a, one_a, eps, wd, mom, neg_lr;
    int use_wd;
} rmsprop_coef;

/* Two passes over the block, each with its branch outside the loop so that both
 * vectorize: the running averages and the denominator avg, then the step. */
static void rmsprop_block(float *p, const float *g, float *sq, float *gavg, float *buf,
                          int64_t n, const rmsprop_coef *cp)
{
    // p, g, sq, gavg, buf are (n), n <= OPTIM_BLOCK; gavg is NULL unless centered,
    // buf unless momentum > 0
    const rmsprop_coef c = *cp; // a local copy: stores to p cannot change it
    float avg[OPTIM_BLOCK], gw[OPTIM_BLOCK]; // the denominator and the decayed gradient
    for (int64_t i = 0; i < n; i++) gw[i] = c.use_wd ? g[i] + c.wd * p[i] : g[i];
    if (gavg) {
        for (int64_t i = 0; i < n; i++) {
            float si = sq[i] * c.a + c.one_a * gw[i] * gw[i];
            float ga = gavg[i] * c.a + c.one_a * gw[i];
            sq[i] = si;
            gavg[i] = ga;
            avg[i] = sqrtf(si + -1.0f * ga * ga) + c.eps; // sqrt(E[g^2] - E[g]^2)
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float si = sq[i] * c.a + c.one_a * gw[i] * gw[i];
            sq[i] = si;
            avg[i] = sqrtf(si) + c.eps;
        }
    }
    if (buf) {
        for (int64_t i = 0; i < n; i++) {
            float b = buf[i] * c.mom + gw[i] / avg[i];
            buf[i] = b;
            p[i] = p[i] + c.neg_lr * b;
        }
    } else {
        for (int64_t i = 0; i < n; i++) p[i] = p[i] + c.neg_lr * gw[i] / avg[i];
    }
}

void recur_rmsprop_update(float *p, const float *g, float *sq, float *gavg, float *buf, int64_t n,
                    double lr, double alpha, double eps, double weight_decay, double momentum)
{
    if (n <= 0) return; /* nothing to update (optim.h) */
    // p, g, sq, gavg, buf are (n); gavg is NULL unless centered, buf unless momentum > 0
    const rmsprop_coef c = {(float)alpha, (float)(1.0 - alpha), (float)eps, (float)weight_decay,
                            (float)momentum, (float)(-lr), weight_decay != 0.0};
    const int64_t nb = num_blocks(n);
#pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);
        rmsprop_block(p + lo, g + lo, sq + lo, gavg ? gavg + lo : NULL, buf ? buf + lo : NULL,
                      len, &c);
    }
}

typedef struct {
    float neg_clr, eps, wd;
    int use_wd;
} adagrad_coef;

static void adagrad_block(float *p, const float *g, float *sum, int64_t n,
                          const adagrad_coef *cp)
{
    // p, g, sum are (n)
    const adagrad_coef c = *cp; // a local copy: stores to p cannot change it
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        if (c.use_wd) gi = gi + c.wd * p[i];
        float s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] = p[i] + c.neg_clr * gi / (sqrtf(s) + c.eps);
    }
}

void recur_adagrad_update(float *p, const float *g, float *sum, int64_t n, double clr, double eps,
                    double weight_decay)
{
    if (n <= 0) return; /* nothing to update (optim.h) */
    // p, g, sum are (n)
    const adagrad_coef c = {(float)(-clr), (float)eps, (float)weight_decay, weight_decay != 0.0};
    const int64_t nb = num_blocks(n);
#pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * OPTIM_BLOCK, len = block_len(n, lo);
        adagrad_block(p + lo, g + lo, sum + lo, len, &c);
    }
}

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
