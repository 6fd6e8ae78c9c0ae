/* The attention kernels (include/recur/attention.h) on their own, without Lua.
 *
 * Compared against: central differences of the float64 kernels chained as one step
 * (scores, masked softmax, context; the loss sum(c * R) + sum(a * Q)) for the dot and
 * the additive score; the float32 kernels against the float64 ones; hand-derived
 * edges (zero sizes with NULL pointers write nothing; K = 0 gives uniform weights).
 * Padding rows of the memory hold NaN and rows of the gradients past a length hold a
 * sentinel: neither may change what the kernels return, nor the sentinel itself.
 * `make sanitize` runs this under ASan and UBSan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur/attention.h"
#include "recur/tensor.h"
#include "ctest.h"

enum { S = 6, B = 3, H = 5, A = 7 };
static const int64_t lengths[B] = {6, 1, 4};

static float *to_f32(const double *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)x[i];
    return p;
}

/* NaN in every memory (or key) row past its sequence's length */
static void poison(double *m, int64_t width)
{
    for (int64_t s = 0; s < S; s++)
        for (int64_t b = 0; b < B; b++)
            if (s >= lengths[b])
                for (int64_t i = 0; i < width; i++) m[(s * B + b) * width + i] = NAN;
}

/* The step: dot scores over keys = memory (K = H) or additive scores over keys (S,B,A)
 * with p (B,A); writes c (B,H), a (B,S); returns sum(c * R) + sum(a * Q). */
typedef struct {
    int additive;
    double *q, *keys, *v, *memory, *R, *Q;
} step;

static double run(const step *st, double *c, double *a)
{
    if (st->additive)
        recur_attention_additive_scores_f64(a, st->q, st->keys, st->v, lengths, S, B, A);
    else
        recur_attention_dot_scores_f64(a, st->q, st->keys, lengths, S, B, H);
    recur_attention_softmax_f64(a, a, lengths, S, B);
    recur_attention_context_f64(c, a, st->memory, lengths, S, B, H);
    double loss = 0;
    for (int i = 0; i < B * H; i++) loss += c[i] * st->R[i];
    for (int i = 0; i < B * S; i++) loss += a[i] * st->Q[i];
    return loss;
}

/* Largest relative error of the analytic gradient g of x (n) against central differences;
 * the (NaN) padding must have a gradient of exactly 0. */
static double fd_error(const step *st, double *x, const double *g, int64_t n)
{
    double c[B * H], a[B * S], worst = 0;
    for (int64_t i = 0; i < n; i++) {
        /* padding rows (NaN) of the memory and keys carry no gradient: g must be 0 there */
        if (isnan(x[i])) {
            if (g[i] != 0) return INFINITY;
            continue;
        }
        double orig = x[i], eps = 1e-5;
        x[i] = orig + eps;
        double fp = run(st, c, a);
        x[i] = orig - eps;
        double fm = run(st, c, a);
        x[i] = orig;
        double num = (fp - fm) / (2 * eps);
        /* below 1e-3 the error is judged absolutely: the differences' rounding, about
         * 1e-16 |loss| / eps, would dominate a relative one */
        double err = fabs(num - g[i]) / fmax(fabs(num) + fabs(g[i]), 1e-3);
        if (err > worst) worst = err;
    }
    return worst;
}

static void test_gradients(int additive)
{
    recur_rng g;
    recur_rng_seed(&g, 16 + additive);
    int64_t K = additive ? A : H;
    step st = {.additive = additive, .q = drandom(B * K, &g), .keys = NULL, .v = drandom(A, &g),
               .memory = drandom(S * B * H, &g), .R = drandom(B * H, &g), .Q = drandom(B * S, &g)};
    st.keys = additive ? drandom(S * B * A, &g) : st.memory;
    poison(st.memory, H);
    if (additive) poison(st.keys, A);
    double c[B * H], a[B * S];
    run(&st, c, a);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            if (s >= lengths[b]) CHECK(a[b * S + s] == 0.0, "weight past the length is %g", a[b * S + s]);
            else CHECK(a[b * S + s] > 0.0, "weight within the length is %g", a[b * S + s]);
        }
    for (int i = 0; i < B * H; i++) CHECK(isfinite(c[i]), "context %d is %g", i, c[i]);

    /* backward, accumulating onto sentinels (so also checking +=) */
    double *gq = dalloc(B * K, SENTINEL), *gmem = dalloc(S * B * H, SENTINEL);
    double *gkeys = additive ? dalloc(S * B * A, SENTINEL) : gmem;
    double *gv = dalloc(A, SENTINEL), *work = dalloc(B * A, -1), ga[B * S];
    memcpy(ga, st.Q, sizeof ga);
    recur_attention_context_backward_f64(ga, gmem, st.R, a, st.memory, lengths, S, B, H);
    recur_attention_softmax_backward_f64(ga, ga, a, lengths, S, B);
    if (additive)
        recur_attention_additive_scores_backward_f64(gq, gkeys, gv, work, ga, st.q, st.keys, st.v, lengths, S,
                                                     B, A);
    else
        recur_attention_dot_scores_backward_f64(gq, gkeys, ga, st.q, st.keys, lengths, S, B, H);
    for (int s = 0; s < S; s++)
        for (int b = 0; b < B; b++)
            if (s >= lengths[b]) {
                CHECK(gmem[(s * B + b) * H] == SENTINEL, "padding row (%d,%d) of gmemory changed", s, b);
                CHECK(gkeys[(s * B + b) * K] == SENTINEL, "padding row (%d,%d) of gkeys changed", s, b);
            }
    for (int i = 0; i < B * K; i++) gq[i] -= SENTINEL;
    for (int i = 0; i < S * B * H; i++) gmem[i] -= SENTINEL;
    if (additive) {
        for (int i = 0; i < S * B * A; i++) gkeys[i] -= SENTINEL;
        for (int i = 0; i < A; i++) gv[i] -= SENTINEL;
    }
    const char *name = additive ? "additive" : "dot";
    double e = fd_error(&st, st.q, gq, B * K);
    CHECK(e < 1e-6, "%s: gradient of the query off by %g", name, e);
    e = fd_error(&st, st.memory, gmem, S * B * H);
    CHECK(e < 1e-6, "%s: gradient of the memory off by %g", name, e);
    if (additive) {
        e = fd_error(&st, st.keys, gkeys, S * B * A);
        CHECK(e < 1e-6, "%s: gradient of the keys off by %g", name, e);
        e = fd_error(&st, st.v, gv, A);
        CHECK(e < 1e-6, "%s: gradient of v off by %g", name, e);
    }

    /* float32 against float64 */
    float *q32 = to_f32(st.q, B * K), *k32 = to_f32(st.keys, S * B * K), *v32 = to_f32(st.v, A);
    float *m32 = to_f32(st.memory, S * B * H);
    float a32[B * S], c32[B * H];
    if (additive) recur_attention_additive_scores_f32(a32, q32, k32, v32, lengths, S, B, A);
    else recur_attention_dot_scores_f32(a32, q32, m32, lengths, S, B, H);
    recur_attention_softmax_f32(a32, a32, lengths, S, B);
    recur_attention_context_f32(c32, a32, m32, lengths, S, B, H);
    double worst = 0;
    for (int i = 0; i < B * S; i++) worst = fmax(worst, fabs(a32[i] - a[i]));
    for (int i = 0; i < B * H; i++) worst = fmax(worst, fabs(c32[i] - c[i]));
    CHECK(worst < 1e-5, "%s: float32 differs from float64 by %g", name, worst);

    free(st.q); free(st.v); free(st.memory); free(st.R); free(st.Q);
    if (additive) { free(st.keys); free(gkeys); }
    free(gq); free(gmem); free(gv); free(work);
    free(q32); free(k32); free(v32); free(m32);
}

static void test_edges(void)
{
    /* nothing to do: every pointer NULL */
    recur_attention_dot_scores_f64(NULL, NULL, NULL, NULL, 0, 0, 0);
    recur_attention_dot_scores_backward_f32(NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 4);
    recur_attention_additive_scores_f64(NULL, NULL, NULL, NULL, NULL, 3, 0, 4);
    recur_attention_additive_scores_backward_f64(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, 0, 0);
    recur_attention_softmax_f32(NULL, NULL, NULL, 5, 0);
    recur_attention_softmax_backward_f64(NULL, NULL, NULL, NULL, 5, 0);
    recur_attention_context_f64(NULL, NULL, NULL, NULL, 0, 0, 0);
    recur_attention_context_backward_f32(NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0);
    recur_attention_reorder(NULL, NULL, NULL, 0, 0, 0, 8);
    recur_attention_reorder(NULL, NULL, NULL, 4, 2, 0, 8);

    /* K = 0: every score 0, so uniform weights over each length; H = 0: no context */
    double e[2 * 3], a[2 * 3];
    int64_t len[2] = {3, 2};
    recur_attention_dot_scores_f64(e, NULL, NULL, len, 3, 2, 0);
    recur_attention_softmax_f64(a, e, len, 3, 2);
    CHECK(a[0] == 1.0 / 3 && a[1] == 1.0 / 3 && a[2] == 1.0 / 3, "K = 0: weights %g %g %g", a[0], a[1], a[2]);
    CHECK(a[3] == 0.5 && a[4] == 0.5 && a[5] == 0, "K = 0, length 2: weights %g %g %g", a[3], a[4], a[5]);
    recur_attention_context_f64(NULL, a, NULL, len, 3, 2, 0);

    /* reorder (S=2, B=3, 2 values a row) to N = 4 rows: index 3, 1, 1, 2 */
    double in[2 * 3 * 2], out[2 * 4 * 2];
    for (int i = 0; i < 12; i++) in[i] = i;
    int64_t index[4] = {3, 1, 1, 2};
    recur_attention_reorder(out, in, index, 2, 3, 4, 2 * sizeof(double));
    double want[16] = {4, 5, 0, 1, 0, 1, 2, 3, 10, 11, 6, 7, 6, 7, 8, 9};
    CHECK(memcmp(out, want, sizeof want) == 0, "reorder: rows taken wrongly");
}

int main(void)
{
    test_gradients(0);
    test_gradients(1);
    test_edges();
    printf("attention_test: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
