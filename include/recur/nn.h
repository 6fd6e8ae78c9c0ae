/* Plain-C kernels behind recur.nn: embedding lookup, dropout, the fused softmax
 * cross-entropy, sigmoid binary cross-entropy, mean squared error, and the
 * orthogonalisation used by the orthogonal initialisation.
 *
 * Letters: N rows (T*B flattened), V vocabulary (classes), E embedding size.
 * Every kernel comes in float32 (_f32) and float64 (_f64); gradient checks run in
 * float64. Ids and targets are 1-based (1..V) as everywhere in recur. Backward
 * kernels accumulate (+=) into parameter gradients; the caller zeroes them. */
/* Sizes and pointers (spec/c/capi_test.c): N, E, V and n of 0 (or negative) read and
 * write nothing, a loss sum over no rows or elements is 0 (cross-entropy writes 0 to
 * both sums), and every pointer to a buffer of zero elements may be NULL. Otherwise
 * the pointers must not be NULL, except a mask, which may be NULL for all ones; the
 * dropout generator g may be NULL only when n = 0. V may be 0 only when every row is
 * ignored (recur_nn_first_bad_id refuses any other target). */
#ifndef RECUR_NN_H
#define RECUR_NN_H

#include <stdint.h>

#include "tensor.h"
#include "export.h"

RECUR_BEGIN_DECLS

/* Index (0-based) of the first id outside 1..V, skipping ids equal to `ignore`
 * when has_ignore is set; -1 when all are valid (and when N = 0). */
int64_t recur_nn_first_bad_id(const int64_t *ids, int64_t N, int64_t V, int has_ignore, int64_t ignore);

/* out (N,E) = weight[ids[n]] ; ids (N) already checked to lie in 1..V. N or E of 0:
 * nothing is read or written. */
void recur_embedding_forward_f32(float *out, const int64_t *ids, const float *weight, int64_t N, int64_t E);
void recur_embedding_forward_f64(double *out, const int64_t *ids, const double *weight, int64_t N, int64_t E);
/* gweight (V,E) row ids[n] += gout (N,E) row n. */
void recur_embedding_backward_f32(float *gweight, const int64_t *ids, const float *gout, int64_t N, int64_t E);
void recur_embedding_backward_f64(double *gweight, const int64_t *ids, const double *gout, int64_t N, int64_t E);

/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p); y = x * mask.
 * Draws one uniform per element from g, in order, so a seed fixes the mask. */
void recur_dropout_forward_f32(float *y, float *mask, const float *x, int64_t n, double p, recur_rng *g);
void recur_dropout_forward_f64(double *y, double *mask, const double *x, int64_t n, double p, recur_rng *g);

/* Softmax cross-entropy over logits (N,V) with targets (N).
 * Row n counts with weight w_n = (mask ? mask[n] : 1), or 0 when targets[n] is the
 * ignored index. lse (N) receives each row's log-sum-exp (kept for backward).
 * Writes *loss_sum = sum_n w_n * (lse_n - logits[n, target_n]) and
 * *weight_sum = sum_n w_n, both summed in a fixed order (same result for any
 * thread count). Targets must have been checked with recur_nn_first_bad_id. */
void recur_cross_entropy_forward_f32(double *loss_sum, double *weight_sum, float *lse, const float *logits,
                               const int64_t *targets, const float *mask, int has_ignore,
                               int64_t ignore, int64_t N, int64_t V);
void recur_cross_entropy_forward_f64(double *loss_sum, double *weight_sum, double *lse, const double *logits,
                               const int64_t *targets, const double *mask, int has_ignore,
                               int64_t ignore, int64_t N, int64_t V);
/* grad (N,V) = scale * w_n * (softmax(logits_n) - onehot(target_n)), written (not
 * accumulated: the loss owns no parameters). */
void recur_cross_entropy_backward_f32(float *grad, const float *logits, const float *lse,
                                const int64_t *targets, const float *mask, int has_ignore,
                                int64_t ignore, double scale, int64_t N, int64_t V);
void recur_cross_entropy_backward_f64(double *grad, const double *logits, const double *lse,
                                const int64_t *targets, const double *mask, int has_ignore,
                                int64_t ignore, double scale, int64_t N, int64_t V);

/* Sum over n elements of max(x,0) - x*t + log(1 + exp(-|x|)), the stable form of
 * -t log sigmoid(x) - (1-t) log(1 - sigmoid(x)). */
double recur_bce_with_logits_forward_f32(const float *x, const float *t, int64_t n);
double recur_bce_with_logits_forward_f64(const double *x, const double *t, int64_t n);
/* grad = scale * (sigmoid(x) - t) */
void recur_bce_with_logits_backward_f32(float *grad, const float *x, const float *t, double scale, int64_t n);
void recur_bce_with_logits_backward_f64(double *grad, const double *x, const double *t, double scale, int64_t n);

/* Sum over n elements of (x - t)^2; backward grad = scale * 2 (x - t). */
double recur_mse_forward_f32(const float *x, const float *t, int64_t n);
double recur_mse_forward_f64(const double *x, const double *t, int64_t n);
void recur_mse_backward_f32(float *grad, const float *x, const float *t, double scale, int64_t n);
void recur_mse_backward_f64(double *grad, const double *x, const double *t, double scale, int64_t n);

/* Makes the m rows of a (m,n), m <= n, orthonormal in place by modified
 * Gram-Schmidt applied twice (the second pass removes the rounding the first
 * leaves). On a Gaussian matrix this gives the Q of a QR factorisation with a
 * positive diagonal R, i.e. a uniformly (Haar) distributed orthogonal matrix.
 * Returns 0 (also for m = 0), or -1 when a row is (numerically) dependent on the
 * previous ones (so for m >= 1 and n = 0). m > n is undefined. */
int recur_orthogonalize_rows_f64(double *a, int64_t m, int64_t n);

RECUR_END_DECLS

#endif
