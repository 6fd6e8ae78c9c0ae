/* Plain-C kernels of one attention step over a batch (recur.nn.Attention): the
 * scores of a query against every source position, the softmax over the positions
 * each sequence has, and the context vector; with their backward passes.
 *
 * Letters: S source positions, B batch, H memory (encoder output) size, K key size
 * (the query size of a dot-product score), A attention size of the additive score.
 * The memory and the keys are (S,B,H) and (S,B,K) row-major, the layout of a
 * recurrent layer's output; per-step tensors are (B,...) and the weights (B,S).
 * lengths (B) holds each sequence's length in 1..S, or is NULL for S everywhere:
 * sequence b attends to positions s < lengths[b] alone. Rows of the memory and keys
 * at s >= lengths[b] are never read (padding may hold anything, NaN included), the
 * weights there are exactly 0, and backward adds nothing to their gradients.
 *
 * The attention step, written with these kernels (recur.nn.Attention says which
 * projections make the keys of each score form):
 *   e = scores(query, keys)          dot:      e[b,s] = q_b . k_{s,b}
 *                                    additive: e[b,s] = v . tanh(k_{s,b} + p_b)
 *   a = masked softmax of e over s < lengths[b]
 *   c_b = sum_s a[b,s] m_{s,b}       (the context)
 * Every kernel comes in float32 (_f32) and float64 (_f64). Backward kernels accumulate
 * (+=) into gradients, except the softmax's, which writes its result (it owns no
 * parameter). Lengths must have been checked to lie in 1..S (recur_nn_first_bad_id
 * with V = S does it).
 *
 * Sizes and pointers: S, B, K, H or A of 0 read and write nothing of the tensors that
 * have no element, and every pointer to a buffer of zero elements may be NULL;
 * otherwise pointers must not be NULL, except lengths (all S) and where a comment
 * says so. Outputs must not overlap inputs unless a comment allows it. */
#ifndef RECUR_ATTENTION_H
#define RECUR_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

RECUR_BEGIN_DECLS

/* Dot-product scores: e (B,S), e[b,s] = q (B,K) row b . keys (S,B,K) row (s,b) for
 * s < lengths[b], 0 past it. Luong's dot (keys = memory) and general (keys = the
 * memory projected once per batch) scores. */
void recur_attention_dot_scores_f32(float *e, const float *q, const float *keys, const int64_t *lengths,
                                    int64_t S, int64_t B, int64_t K);
void recur_attention_dot_scores_f64(double *e, const double *q, const double *keys, const int64_t *lengths,
                                    int64_t S, int64_t B, int64_t K);
/* Given ge (B,S): gq (B,K) += sum_s ge[b,s] keys_{s,b}; gkeys (S,B,K) row (s,b) +=
 * ge[b,s] q_b. gkeys may be NULL (not wanted). gq may not alias gkeys. */
void recur_attention_dot_scores_backward_f32(float *gq, float *gkeys, const float *ge, const float *q,
                                             const float *keys, const int64_t *lengths, int64_t S,
                                             int64_t B, int64_t K);
void recur_attention_dot_scores_backward_f64(double *gq, double *gkeys, const double *ge, const double *q,
                                             const double *keys, const int64_t *lengths, int64_t S,
                                             int64_t B, int64_t K);

/* Additive scores: e (B,S), e[b,s] = sum_a v[a] tanh(keys[s,b,a] + p[b,a]) for
 * s < lengths[b], 0 past it, with p (B,A) the projected query (and bias) and keys
 * (S,B,A) the projected memory. Bahdanau's score and Luong's concat. */
void recur_attention_additive_scores_f32(float *e, const float *p, const float *keys, const float *v,
                                         const int64_t *lengths, int64_t S, int64_t B, int64_t A);
void recur_attention_additive_scores_f64(double *e, const double *p, const double *keys, const double *v,
                                         const int64_t *lengths, int64_t S, int64_t B, int64_t A);
/* Given ge (B,S), with u = ge[b,s] v (1 - tanh^2) and the tanh recomputed (not stored,
 * to keep S*B*A values per step out of memory): gp (B,A) += sum_s u; gkeys (S,B,A)
 * row (s,b) += u; gv (A) += sum_{b,s} ge[b,s] tanh(...), summed over b in order
 * through work (B,A), which the kernel overwrites, so the result does not depend on
 * the thread count. */
void recur_attention_additive_scores_backward_f32(float *gp, float *gkeys, float *gv, float *work,
                                                  const float *ge, const float *p, const float *keys,
                                                  const float *v, const int64_t *lengths, int64_t S,
                                                  int64_t B, int64_t A);
void recur_attention_additive_scores_backward_f64(double *gp, double *gkeys, double *gv, double *work,
                                                  const double *ge, const double *p, const double *keys,
                                                  const double *v, const int64_t *lengths, int64_t S,
                                                  int64_t B, int64_t A);

/* Masked softmax: a (B,S) = exp(e - max) / sum over s < lengths[b], exactly 0 past it.
 * a may be e itself. */
void recur_attention_softmax_f32(float *a, const float *e, const int64_t *lengths, int64_t S, int64_t B);
void recur_attention_softmax_f64(double *a, const double *e, const int64_t *lengths, int64_t S, int64_t B);
/* ge (B,S) = a (ga - sum_s a ga) over s < lengths[b], 0 past it (ga there is not
 * read), written. ge may be ga itself. */
void recur_attention_softmax_backward_f32(float *ge, const float *ga, const float *a, const int64_t *lengths,
                                          int64_t S, int64_t B);
void recur_attention_softmax_backward_f64(double *ge, const double *ga, const double *a,
                                          const int64_t *lengths, int64_t S, int64_t B);

/* Context: c (B,H) = sum_{s < lengths[b]} a[b,s] memory (S,B,H) row (s,b), written. */
void recur_attention_context_f32(float *c, const float *a, const float *memory, const int64_t *lengths,
                                 int64_t S, int64_t B, int64_t H);
void recur_attention_context_f64(double *c, const double *a, const double *memory, const int64_t *lengths,
                                 int64_t S, int64_t B, int64_t H);
/* Given gc (B,H): ga (B,S) += gc_b . memory_{s,b} (s < lengths[b]); gmemory (S,B,H)
 * row (s,b) += a[b,s] gc_b. gmemory may be NULL (not wanted). */
void recur_attention_context_backward_f32(float *ga, float *gmemory, const float *gc, const float *a,
                                          const float *memory, const int64_t *lengths, int64_t S,
                                          int64_t B, int64_t H);
void recur_attention_context_backward_f64(double *ga, double *gmemory, const double *gc, const double *a,
                                          const double *memory, const int64_t *lengths, int64_t S,
                                          int64_t B, int64_t H);

/* Beam search's reordering of a (S,B,row) block along B: out (S,N,row) row (s,n) =
 * in row (s, index[n] - 1), with index (N) 1-based and checked to lie in 1..B (N may
 * differ from B: a batch is widened to B*beams this way). row_bytes per row, any
 * element type. out and in must not overlap. */
void recur_attention_reorder(void *out, const void *in, const int64_t *index, int64_t S, int64_t B,
                             int64_t N, size_t row_bytes);

RECUR_END_DECLS

#endif
