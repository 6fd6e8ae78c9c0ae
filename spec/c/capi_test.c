/* The public kernels' contract at its edges (include/recur/rnn.h, nn.h, optim.h, tensor_ops.h,
 * and runtime.h's thread choice for a host's own kernels):
 * NULL where a header allows it behaves as documented (optional biases and initial
 * states as zeros, optional gradients skipped or read as zeros), and zero sizes
 * (T=0, B=0, D=0, n=0, ...) write nothing they should not. Every buffer a call must
 * leave alone is filled with a sentinel and checked afterwards; `make sanitize` runs
 * this under ASan and UBSan, which catch any read or write outside the buffers.
 *
 * Compared against: the same call with explicit zeros (bitwise equal), hand-derived
 * values (T=0 passes h0 through to hn and dhn back to dh0), and the sentinels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur/recur.h"
#include "ctest.h"

static double max_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d != d) return d;
        if (d > m) m = d;
    }
    return m;
}

static int all_equal(const double *a, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != v) return 0;
    return 1;
}

static const char *cell_name[] = {"tanh", "relu", "lstm", "gru", "gru_classic", "identity"};

/* ---- recurrent kernels (float64; the float32 entry points share the code) ---- */

/* NULL biases and initial states are zeros; NULL lengths is every sequence of length T;
 * NULL dy/dhn/dcn are zeros; NULL gradient outputs are skipped. */
static void rnn_nulls(recur_rnn_cell cell, int T, int B, int D, int H, int reverse, int trunc)
{
    recur_rng g;
    recur_rng_seed(&g, 7 + cell);
    const int G = recur_rnn_gates(cell), lstm = cell == RECUR_RNN_LSTM;
    const size_t nx = (size_t)T * B * D, ny = (size_t)T * B * H, nh = (size_t)B * H;
    double *x = drandom(nx, &g), *w_ih = drandom((size_t)G * H * D, &g),
           *w_hh = drandom((size_t)G * H * H, &g), *zb = dalloc((size_t)G * H, 0),
           *zh = dalloc(nh, 0);
    int64_t *lens = malloc(((size_t)B + 1) * sizeof *lens);
    for (int b = 0; b < B; b++) lens[b] = T;
    const size_t ns = recur_rnn_saved_size(cell, T, B, H);
    double *work = dalloc(recur_rnn_forward_workspace_size(cell, B, D, H), 0);

    /* forward with NULLs, then with explicit zeros and full lengths */
    double *y1 = dalloc(ny, SENTINEL), *hn1 = dalloc(nh, SENTINEL), *cn1 = dalloc(nh, SENTINEL),
           *s1 = dalloc(ns, 0);
    double *y2 = dalloc(ny, SENTINEL), *hn2 = dalloc(nh, SENTINEL), *cn2 = dalloc(nh, SENTINEL),
           *s2 = dalloc(ns, 0);
    recur_rnn_forward_f64(cell, y1, hn1, lstm ? cn1 : NULL, s1, x, w_ih, w_hh, NULL, NULL, NULL,
                          NULL, NULL, reverse, T, B, D, H, work);
    recur_rnn_forward_f64(cell, y2, hn2, lstm ? cn2 : NULL, s2, x, w_ih, w_hh, zb, zb, zh,
                          lstm ? zh : NULL, lens, reverse, T, B, D, H, work);
    CHECK(max_diff(y1, y2, ny) == 0 && max_diff(hn1, hn2, nh) == 0 &&
              (!lstm || max_diff(cn1, cn2, nh) == 0),
          "%s T=%d B=%d D=%d H=%d: NULL biases/h0/c0/lengths differ from zeros", cell_name[cell],
          T, B, D, H);
    if (T == 0) {
        CHECK(all_equal(hn1, nh, 0) && (!lstm || all_equal(cn1, nh, 0)),
              "%s T=0: hn, cn are not the (zero) initial state", cell_name[cell]);
    }

    /* backward: NULL dy/dhn/dcn against zeros; all gradient outputs against NULL */
    double *bwork = dalloc(recur_rnn_backward_workspace_size(cell, T, B, D, H, trunc), 0);
    double *dx1 = dalloc(nx, 0), *dh01 = dalloc(nh, 0), *dc01 = dalloc(nh, 0),
           *dwi1 = dalloc((size_t)G * H * D, 0), *dwh1 = dalloc((size_t)G * H * H, 0),
           *dbi1 = dalloc((size_t)G * H, 0), *dbh1 = dalloc((size_t)G * H, 0);
    double *dx2 = dalloc(nx, 0), *dh02 = dalloc(nh, 0), *dc02 = dalloc(nh, 0),
           *dwi2 = dalloc((size_t)G * H * D, 0), *dwh2 = dalloc((size_t)G * H * H, 0),
           *dbi2 = dalloc((size_t)G * H, 0), *dbh2 = dalloc((size_t)G * H, 0);
    double *dy = drandom(ny, &g), *zy = dalloc(ny, 0);
    recur_rnn_backward_f64(cell, dx1, dh01, lstm ? dc01 : NULL, dwi1, dwh1, dbi1, dbh1, dy, NULL,
                           NULL, s1, x, w_ih, w_hh, NULL, reverse, trunc, T, B, D, H, bwork);
    recur_rnn_backward_f64(cell, dx2, dh02, lstm ? dc02 : NULL, dwi2, dwh2, dbi2, dbh2, dy, zh,
                           lstm ? zh : NULL, s2, x, w_ih, w_hh, lens, reverse, trunc, T, B, D, H,
                           bwork);
    CHECK(max_diff(dx1, dx2, nx) == 0 && max_diff(dh01, dh02, nh) == 0 &&
              max_diff(dc01, dc02, nh) == 0 && max_diff(dwi1, dwi2, (size_t)G * H * D) == 0 &&
              max_diff(dwh1, dwh2, (size_t)G * H * H) == 0 &&
              max_diff(dbi1, dbi2, (size_t)G * H) == 0 && max_diff(dbh1, dbh2, (size_t)G * H) == 0,
          "%s T=%d B=%d D=%d H=%d trunc=%d: NULL dhn/dcn/lengths differ from zeros",
          cell_name[cell], T, B, D, H, trunc);
    /* no gradient wanted but dh0: the same dh0 */
    double *dh03 = dalloc(nh, 0);
    recur_rnn_backward_f64(cell, NULL, dh03, NULL, NULL, NULL, NULL, NULL, dy, NULL, NULL, s1, x,
                           w_ih, w_hh, NULL, reverse, trunc, T, B, D, H, bwork);
    CHECK(max_diff(dh01, dh03, nh) == 0, "%s T=%d B=%d: dh0 alone differs", cell_name[cell], T,
          B);
    /* dy NULL is zeros */
    double *dh04 = dalloc(nh, 0), *dh05 = dalloc(nh, 0), *dhn = drandom(nh, &g);
    recur_rnn_backward_f64(cell, NULL, dh04, NULL, NULL, NULL, NULL, NULL, NULL, dhn, NULL, s1, x,
                           w_ih, w_hh, NULL, reverse, trunc, T, B, D, H, bwork);
    recur_rnn_backward_f64(cell, NULL, dh05, NULL, NULL, NULL, NULL, NULL, zy, dhn, NULL, s1, x,
                           w_ih, w_hh, NULL, reverse, trunc, T, B, D, H, bwork);
    CHECK(max_diff(dh04, dh05, nh) == 0, "%s T=%d B=%d: NULL dy differs from zeros",
          cell_name[cell], T, B);
    if (T == 0) {
        /* no step: the final state is the initial one, so its gradient passes through */
        CHECK(max_diff(dh04, dhn, nh) == 0, "%s T=0: dh0 is not dhn", cell_name[cell]);
        CHECK(all_equal(dwi1, (size_t)G * H * D, 0) && all_equal(dwh1, (size_t)G * H * H, 0) &&
                  all_equal(dbi1, (size_t)G * H, 0),
              "%s T=0: parameter gradients are not zero", cell_name[cell]);
    }

    /* one step with NULL biases equals one with zeros */
    double *swork = dalloc(recur_rnn_step_workspace_size(cell, B, H), 0);
    double *h1 = drandom(nh, &g), *c1 = drandom(nh, &g);
    double *h2 = dalloc(nh, 0), *c2 = dalloc(nh, 0);
    memcpy(h2, h1, nh * sizeof *h1);
    memcpy(c2, c1, nh * sizeof *c1);
    recur_rnn_step_f64(cell, h1, lstm ? c1 : NULL, x, w_ih, w_hh, NULL, NULL, B, D, H, swork);
    recur_rnn_step_f64(cell, h2, lstm ? c2 : NULL, x, w_ih, w_hh, zb, zb, B, D, H, swork);
    CHECK(max_diff(h1, h2, nh) == 0 && max_diff(c1, c2, nh) == 0,
          "%s B=%d: step with NULL biases differs from zeros", cell_name[cell], B);

    double *all[] = {x, w_ih, w_hh, zb, zh, work, y1, hn1, cn1, s1, y2, hn2, cn2, s2, bwork,
                     dx1, dh01, dc01, dwi1, dwh1, dbi1, dbh1, dx2, dh02, dc02, dwi2, dwh2, dbi2,
                     dbh2, dy, zy, dh03, dh04, dh05, dhn, swork, h1, c1, h2, c2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    free(lens);
}

/* T=0: hn = h0 and cn = c0, y and saved untouched; backward adds dhn into dh0. */
static void rnn_zero_steps(recur_rnn_cell cell)
{
    const int B = 3, D = 2, H = 4, G = recur_rnn_gates(cell), lstm = cell == RECUR_RNN_LSTM;
    recur_rng g;
    recur_rng_seed(&g, 3);
    double *w_ih = drandom((size_t)G * H * D, &g), *w_hh = drandom((size_t)G * H * H, &g),
           *b = drandom((size_t)G * H, &g), *h0 = drandom(B * H, &g), *c0 = drandom(B * H, &g);
    double *hn = dalloc(B * H, SENTINEL), *cn = dalloc(B * H, SENTINEL), y = SENTINEL,
           saved = SENTINEL;
    double *work = dalloc(recur_rnn_forward_workspace_size(cell, B, D, H), 0);
    recur_rnn_forward_f64(cell, &y, hn, lstm ? cn : NULL, &saved, NULL, w_ih, w_hh, b, b, h0,
                          lstm ? c0 : NULL, NULL, 0, 0, B, D, H, work);
    CHECK(max_diff(hn, h0, B * H) == 0 && (!lstm || max_diff(cn, c0, B * H) == 0),
          "%s T=0: hn/cn are not h0/c0", cell_name[cell]);
    CHECK(y == SENTINEL && saved == SENTINEL, "%s T=0: y or saved written", cell_name[cell]);

    double *bwork = dalloc(recur_rnn_backward_workspace_size(cell, 0, B, D, H, -1), 0);
    double *dh0 = dalloc(B * H, 1), *dc0 = dalloc(B * H, 1), *dw = dalloc((size_t)G * H * H, 0);
    recur_rnn_backward_f64(cell, NULL, dh0, lstm ? dc0 : NULL, NULL, dw, NULL, NULL, NULL, h0,
                           lstm ? c0 : NULL, &saved, NULL, w_ih, w_hh, NULL, 0, -1, 0, B, D, H,
                           bwork);
    int ok = 1;
    for (int i = 0; i < B * H; i++) {
        if (dh0[i] != 1 + h0[i]) ok = 0;
        if (lstm && dc0[i] != 1 + c0[i]) ok = 0;
    }
    CHECK(ok, "%s T=0: dh0 (dc0) is not 1 + dhn (1 + dcn)", cell_name[cell]);
    CHECK(all_equal(dw, (size_t)G * H * H, 0), "%s T=0: dw_hh written", cell_name[cell]);
    free(w_ih), free(w_hh), free(b), free(h0), free(c0), free(hn), free(cn), free(work);
    free(bwork), free(dh0), free(dc0), free(dw);
}

/* B=0 (and H=0): every per-sequence buffer may be NULL and nothing is written. */
static void rnn_empty_batch(recur_rnn_cell cell)
{
    const int T = 3, D = 2, H = 4, G = recur_rnn_gates(cell);
    recur_rng g;
    recur_rng_seed(&g, 5);
    double *w_ih = drandom((size_t)G * H * D, &g), *w_hh = drandom((size_t)G * H * H, &g);
    double *dw = dalloc((size_t)G * H * D, SENTINEL), *db = dalloc((size_t)G * H, SENTINEL);
    double *work = dalloc(recur_rnn_forward_workspace_size(cell, 0, D, H), 0);
    double *bwork = dalloc(recur_rnn_backward_workspace_size(cell, T, 0, D, H, 1), 0);
    recur_rnn_forward_f64(cell, NULL, NULL, NULL, NULL, NULL, w_ih, w_hh, NULL, NULL, NULL, NULL,
                          NULL, 0, T, 0, D, H, work);
    /* backward accumulates zero rows: the parameter gradients keep their values */
    recur_rnn_backward_f64(cell, NULL, NULL, NULL, dw, NULL, db, NULL, NULL, NULL, NULL, NULL,
                           NULL, w_ih, w_hh, NULL, 0, 1, T, 0, D, H, bwork);
    CHECK(all_equal(dw, (size_t)G * H * D, SENTINEL) && all_equal(db, (size_t)G * H, SENTINEL),
          "%s B=0: backward changed the parameter gradients", cell_name[cell]);
    double *swork = dalloc(recur_rnn_step_workspace_size(cell, 0, H), 0);
    recur_rnn_step_f64(cell, NULL, NULL, NULL, w_ih, w_hh, NULL, NULL, 0, D, H, swork);

    /* a negative size is a no-op: the state keeps its sentinel */
    double hs[2] = {SENTINEL, SENTINEL}, cs[2] = {SENTINEL, SENTINEL};
    recur_rnn_forward_f64(cell, NULL, hs, cs, NULL, NULL, w_ih, w_hh, NULL, NULL, NULL, NULL,
                          NULL, 0, -1, 1, D, 2, work);
    recur_rnn_forward_f64(cell, NULL, hs, cs, NULL, NULL, w_ih, w_hh, NULL, NULL, NULL, NULL,
                          NULL, 0, T, -2, D, 2, work);
    recur_rnn_backward_f64(cell, NULL, hs, cs, NULL, NULL, NULL, NULL, NULL, hs, cs, NULL, NULL,
                           w_ih, w_hh, NULL, 0, -1, -1, 1, D, 2, bwork);
    CHECK(all_equal(hs, 2, SENTINEL) && all_equal(cs, 2, SENTINEL),
          "%s: a negative T or B wrote the state", cell_name[cell]);

    /* H=0: no hidden units, every buffer is empty */
    double *work0 = dalloc(recur_rnn_forward_workspace_size(cell, 2, D, 0), 0);
    double *bwork0 = dalloc(recur_rnn_backward_workspace_size(cell, T, 2, D, 0, -1), 0);
    double *x = drandom((size_t)T * 2 * D, &g), *dx = dalloc((size_t)T * 2 * D, 0);
    recur_rnn_forward_f64(cell, NULL, NULL, NULL, NULL, x, NULL, NULL, NULL, NULL, NULL, NULL,
                          NULL, 0, T, 2, D, 0, work0);
    recur_rnn_backward_f64(cell, dx, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                           x, NULL, NULL, NULL, 0, -1, T, 2, D, 0, bwork0);
    CHECK(all_equal(dx, (size_t)T * 2 * D, 0), "%s H=0: dx is not zero", cell_name[cell]);
    free(w_ih), free(w_hh), free(dw), free(db), free(work), free(bwork), free(swork);
    free(work0), free(bwork0), free(x), free(dx);
}

/* D=0: no input features; the same as D=1 with a zero column of w_ih. */
static void rnn_no_input(recur_rnn_cell cell)
{
    const int T = 3, B = 2, H = 3, G = recur_rnn_gates(cell), lstm = cell == RECUR_RNN_LSTM;
    recur_rng g;
    recur_rng_seed(&g, 11);
    double *w_hh = drandom((size_t)G * H * H, &g), *b = drandom((size_t)G * H, &g),
           *x1 = drandom((size_t)T * B, &g), *w_ih1 = dalloc((size_t)G * H, 0);
    const size_t ny = (size_t)T * B * H, ns = recur_rnn_saved_size(cell, T, B, H);
    double *y0 = dalloc(ny, 0), *hn0 = dalloc(B * H, 0), *cn0 = dalloc(B * H, 0),
           *s0 = dalloc(ns, 0);
    double *y1 = dalloc(ny, 0), *hn1 = dalloc(B * H, 0), *cn1 = dalloc(B * H, 0),
           *s1 = dalloc(ns, 0);
    double *work0 = dalloc(recur_rnn_forward_workspace_size(cell, B, 0, H), 0);
    double *work1 = dalloc(recur_rnn_forward_workspace_size(cell, B, 1, H), 0);
    recur_rnn_forward_f64(cell, y0, hn0, lstm ? cn0 : NULL, s0, NULL, NULL, w_hh, b, b, NULL,
                          NULL, NULL, 0, T, B, 0, H, work0);
    recur_rnn_forward_f64(cell, y1, hn1, lstm ? cn1 : NULL, s1, x1, w_ih1, w_hh, b, b, NULL,
                          NULL, NULL, 0, T, B, 1, H, work1);
    CHECK(max_diff(y0, y1, ny) < 1e-15 && max_diff(hn0, hn1, B * H) < 1e-15,
          "%s D=0: differs from D=1 with zero weights (%g)", cell_name[cell],
          max_diff(y0, y1, ny));
    double *bwork = dalloc(recur_rnn_backward_workspace_size(cell, T, B, 0, H, -1), 0);
    double *dy = drandom(ny, &g), *dwh = dalloc((size_t)G * H * H, 0);
    recur_rnn_backward_f64(cell, NULL, NULL, NULL, NULL, dwh, NULL, NULL, dy, NULL, NULL, s0,
                           NULL, NULL, w_hh, NULL, 0, -1, T, B, 0, H, bwork);
    CHECK(isfinite(recur_sum_squares_f64(dwh, (int64_t)G * H * H)), "%s D=0: dw_hh not finite",
          cell_name[cell]);
    free(w_hh), free(b), free(x1), free(w_ih1), free(y0), free(hn0), free(cn0), free(s0);
    free(y1), free(hn1), free(cn1), free(s1), free(work0), free(work1), free(bwork), free(dy);
    free(dwh);
}

/* float32 goes through the packed products: the same NULL and empty cases. */
static void rnn_f32_edges(void)
{
    for (int cell = 0; cell <= RECUR_RNN_IDENTITY; cell++) {
        const int T = 4, B = 16, D = 3, H = 8, G = recur_rnn_gates(cell);
        const int lstm = cell == RECUR_RNN_LSTM;
        float *x = falloc((size_t)T * B * D, 0.25f), *w_ih = falloc((size_t)G * H * D, 0.1f),
              *w_hh = falloc((size_t)G * H * H, -0.05f), *zb = falloc((size_t)G * H, 0);
        float *y1 = falloc((size_t)T * B * H, 0), *y2 = falloc((size_t)T * B * H, 0);
        float *hn = falloc(B * H, 0), *cn = falloc(B * H, 0);
        const size_t ns = recur_rnn_saved_size(cell, T, B, H);
        float *s = falloc(ns, 0), *work = falloc(recur_rnn_forward_workspace_size(cell, B, D, H), 0);
        recur_rnn_forward_f32(cell, y1, hn, lstm ? cn : NULL, s, x, w_ih, w_hh, NULL, NULL, NULL,
                              NULL, NULL, 0, T, B, D, H, work);
        recur_rnn_forward_f32(cell, y2, hn, lstm ? cn : NULL, s, x, w_ih, w_hh, zb, zb, NULL,
                              NULL, NULL, 0, T, B, D, H, work);
        CHECK(memcmp(y1, y2, (size_t)T * B * H * sizeof *y1) == 0,
              "%s float32: NULL biases differ from zeros", cell_name[cell]);
        float *bwork = falloc(recur_rnn_backward_workspace_size(cell, T, B, D, H, -1), 0);
        recur_rnn_backward_f32(cell, NULL, NULL, NULL, NULL, NULL, NULL, NULL, y1, NULL, NULL, s,
                               x, w_ih, w_hh, NULL, 0, -1, T, B, D, H, bwork);
        float *work0 = falloc(recur_rnn_forward_workspace_size(cell, 0, D, H), 0);
        recur_rnn_forward_f32(cell, NULL, NULL, NULL, NULL, NULL, w_ih, w_hh, NULL, NULL, NULL,
                              NULL, NULL, 0, T, 0, D, H, work0);
        float *swork = falloc(recur_rnn_step_workspace_size(cell, B, H), 0);
        recur_rnn_step_f32(cell, hn, lstm ? cn : NULL, x, w_ih, w_hh, NULL, NULL, B, D, H, swork);
        free(x), free(w_ih), free(w_hh), free(zb), free(y1), free(y2), free(hn), free(cn);
        free(s), free(work), free(bwork), free(work0), free(swork);
    }
}

/* ---- nn.h ---- */

static void nn_edges(void)
{
    /* N=0: zero sums, nothing read or written; pointers to empty buffers may be NULL */
    double ls = SENTINEL, ws = SENTINEL;
    recur_cross_entropy_forward_f64(&ls, &ws, NULL, NULL, NULL, NULL, 0, 0, 0, 5);
    CHECK(ls == 0 && ws == 0, "cross_entropy N=0: loss %g weight %g", ls, ws);
    recur_cross_entropy_backward_f64(NULL, NULL, NULL, NULL, NULL, 0, 0, 1.0, 0, 5);
    CHECK(recur_nn_first_bad_id(NULL, 0, 5, 0, 0) == -1, "first_bad_id N=0");
    recur_embedding_forward_f64(NULL, NULL, NULL, 0, 4);
    recur_embedding_backward_f64(NULL, NULL, NULL, 0, 4);
    double row = SENTINEL;
    int64_t id = 1;
    recur_embedding_forward_f64(&row, &id, NULL, 1, 0); /* E=0: an empty row */
    recur_embedding_backward_f64(NULL, &id, NULL, 1, 0);
    CHECK(row == SENTINEL, "embedding E=0 wrote");
    recur_dropout_forward_f64(NULL, NULL, NULL, 0, 0.5, NULL);
    CHECK(recur_bce_with_logits_forward_f64(NULL, NULL, 0) == 0, "bce n=0");
    CHECK(recur_mse_forward_f64(NULL, NULL, 0) == 0, "mse n=0");
    recur_bce_with_logits_backward_f64(NULL, NULL, NULL, 1.0, 0);
    recur_mse_backward_f64(NULL, NULL, NULL, 1.0, 0);
    CHECK(recur_orthogonalize_rows_f64(NULL, 0, 3) == 0, "orthogonalize m=0");
    CHECK(recur_bce_with_logits_forward_f32(NULL, NULL, -5) == 0 &&
              recur_mse_forward_f32(NULL, NULL, -5) == 0,
          "negative n is not an empty sum");

    /* mask NULL is a mask of ones; ignored rows count for nothing */
    double logits[6] = {0.5, -1, 2, 0.25, 0.25, -3}, ones[2] = {1, 1}, lse1[2], lse2[2];
    int64_t targets[2] = {3, 1};
    double l1, w1, l2, w2;
    recur_cross_entropy_forward_f64(&l1, &w1, lse1, logits, targets, NULL, 0, 0, 2, 3);
    recur_cross_entropy_forward_f64(&l2, &w2, lse2, logits, targets, ones, 0, 0, 2, 3);
    CHECK(l1 == l2 && w1 == w2 && w1 == 2, "cross_entropy: NULL mask differs from ones");
    double expect = 0;
    for (int n = 0; n < 2; n++) {
        double s = 0;
        for (int v = 0; v < 3; v++) s += exp(logits[n * 3 + v]);
        expect += log(s) - logits[n * 3 + targets[n] - 1];
    }
    CHECK(fabs(l1 - expect) < 1e-12, "cross_entropy: %g, by hand %g", l1, expect);
    double g1[6], g2[6];
    recur_cross_entropy_backward_f64(g1, logits, lse1, targets, NULL, 0, 0, 0.5, 2, 3);
    recur_cross_entropy_backward_f64(g2, logits, lse1, targets, ones, 0, 0, 0.5, 2, 3);
    CHECK(max_diff(g1, g2, 6) == 0, "cross_entropy backward: NULL mask differs from ones");
    /* V=0 with every row ignored: nothing to read */
    int64_t ign[2] = {-100, -100};
    double lse0[2] = {SENTINEL, SENTINEL};
    recur_cross_entropy_forward_f64(&l1, &w1, lse0, NULL, ign, NULL, 1, -100, 2, 0);
    CHECK(l1 == 0 && w1 == 0, "cross_entropy V=0, all ignored: loss %g weight %g", l1, w1);
}

/* ---- optim.h ---- */

static void optim_edges(void)
{
    /* n=0 (and negative n): nothing touched, every pointer may be NULL */
    for (int64_t n = 0; n >= -1; n--) {
        recur_sgd_update_f32(NULL, NULL, NULL, n, 0.1, 0.9, 0, 0, 0, 1);
        recur_adam_update_f32(NULL, NULL, NULL, NULL, NULL, n, 0.1, 0.9, 0.999, 1e-8, 0, 0, 1);
        recur_rmsprop_update_f32(NULL, NULL, NULL, NULL, NULL, n, 0.1, 0.99, 1e-8, 0, 0);
        recur_adagrad_update_f32(NULL, NULL, NULL, n, 0.1, 1e-10, 0);
        recur_sgd_update_f64(NULL, NULL, NULL, n, 0.1, 0.9, 0, 0, 0, 1);
        recur_adam_update_f64(NULL, NULL, NULL, NULL, NULL, n, 0.1, 0.9, 0.999, 1e-8, 0, 0, 1);
        recur_rmsprop_update_f64(NULL, NULL, NULL, NULL, NULL, n, 0.1, 0.99, 1e-8, 0, 0);
        recur_adagrad_update_f64(NULL, NULL, NULL, n, 0.1, 1e-10, 0);
        CHECK(recur_sum_squares_f32(NULL, n) == 0 && recur_sum_squares_f64(NULL, n) == 0 &&
                  recur_max_abs_f32(NULL, n) == 0 && recur_max_abs_f64(NULL, n) == 0,
              "norms of n=%lld elements are not 0", (long long)n);
    }
    /* the optional buffers: NULL when the option is off */
    float p[3] = {1, -2, 3}, g[3] = {0.5f, 0.25f, -1}, m[3] = {0}, v[3] = {0}, sq[3] = {0};
    recur_sgd_update_f32(p, g, NULL, 3, 0.1, 0, 0, 0, 0, 1);
    CHECK(p[0] == 1 - 0.1f * 0.5f, "sgd without momentum: %g", p[0]);
    recur_adam_update_f32(p, g, m, v, NULL, 3, 0.1, 0.9, 0.999, 1e-8, 0, 0, 1);
    recur_rmsprop_update_f32(p, g, sq, NULL, NULL, 3, 0.01, 0.99, 1e-8, 0, 0);
    CHECK(isfinite(p[0]) && isfinite(p[1]) && isfinite(p[2]), "adam/rmsprop with NULL buffers");
    /* float64: the coefficients stay in double (0.1 is not rounded to float) */
    double pd[3] = {1, -2, 3}, gd[3] = {0.5, 0.25, -1}, md[3] = {0}, vd[3] = {0}, sqd[3] = {0};
    recur_sgd_update_f64(pd, gd, NULL, 3, 0.1, 0, 0, 0, 0, 1);
    CHECK(pd[0] == 1 - 0.1 * 0.5, "sgd_f64 without momentum: %.17g", pd[0]);
    recur_adam_update_f64(pd, gd, md, vd, NULL, 3, 0.1, 0.9, 0.999, 1e-8, 0, 0, 1);
    recur_rmsprop_update_f64(pd, gd, sqd, NULL, NULL, 3, 0.01, 0.99, 1e-8, 0, 0);
    CHECK(isfinite(pd[0]) && isfinite(pd[1]) && isfinite(pd[2]),
          "adam/rmsprop_f64 with NULL buffers");
}

/* ---- tensor_ops.h ---- */

static void tensor_ops_edges(void)
{
    /* an elementwise op over a shape holding a 0 writes nothing; pointers may be NULL */
    int64_t size[2] = {3, 0}, st[2] = {0, 1};
    double one = 1;
    CHECK(recur_binary(RECUR_OP_ADD, RECUR_FLOAT64, &one, 2, size, NULL, st, NULL, st, NULL, st) == 0,
          "binary over an empty shape");
    CHECK(recur_unary(RECUR_OP_TANH, RECUR_FLOAT64, NULL, NULL, 2, size, NULL, st, NULL, st) == 0,
          "unary over an empty shape");
    int64_t neg[1] = {-4};
    CHECK(recur_binary(RECUR_OP_ADD, RECUR_FLOAT64, &one, 1, neg, NULL, st, NULL, st, NULL, st) == 0,
          "binary over a negative size is not a no-op");
    /* ndim 0: one element */
    double a = 2, b = 3, out = 0;
    recur_binary(RECUR_OP_MUL, RECUR_FLOAT64, NULL, 0, NULL, &out, NULL, &a, NULL, &b, NULL);
    CHECK(out == 6, "binary with ndim 0: %g", out);

    /* reductions along a dim: O=0 or I=0 write nothing; K=0 sums to 0 */
    double sent = SENTINEL, outs[2] = {SENTINEL, SENTINEL};
    int64_t idx = 77;
    recur_sum_dim(RECUR_FLOAT64, NULL, &sent, 0, 3, 2, 0);
    recur_sum_dim(RECUR_FLOAT64, NULL, &sent, 2, 3, 0, 1);
    CHECK(sent == SENTINEL, "sum_dim with O=0 or I=0 wrote");
    recur_sum_dim(RECUR_FLOAT64, NULL, outs, 1, 0, 2, 0);
    CHECK(outs[0] == 0 && outs[1] == 0, "sum_dim K=0: %g %g", outs[0], outs[1]);
    recur_max_dim(RECUR_FLOAT64, NULL, &sent, &idx, 2, 0, 3, 0);
    recur_max_dim(RECUR_FLOAT64, NULL, &sent, &idx, 0, 4, 3, 0);
    CHECK(sent == SENTINEL && idx == 77, "max_dim with K=0 or O=0 wrote");
    double xs[4] = {1, 5, 2, 5}, best[2];
    recur_max_dim(RECUR_FLOAT64, xs, best, NULL, 2, 2, 1, 0); /* indices NULL */
    recur_max_dim(RECUR_FLOAT64, xs, NULL, &idx, 1, 4, 1, 0); /* values NULL */
    CHECK(best[0] == 5 && best[1] == 5 && idx == 2, "max_dim: %g %g %lld", best[0], best[1],
          (long long)idx);
    recur_softmax(RECUR_FLOAT64, NULL, NULL, 3, 0, 2, 0);
    recur_softmax(RECUR_FLOAT64, NULL, NULL, 0, 3, 2, 1);

    /* products: batch, M or N of 0 write nothing; K=0 gives c = beta*c */
    double c[4] = {1, 2, 3, 4};
    recur_gemm(RECUR_FLOAT64, 0, 2, 2, 2, 1, NULL, 0, 0, 2, NULL, 0, 0, 2, 0, c, 0, 2);
    recur_gemm(RECUR_FLOAT64, 1, 0, 2, 2, 1, NULL, 0, 0, 2, NULL, 0, 0, 2, 0, c, 0, 2);
    recur_gemm(RECUR_FLOAT64, 1, 2, 0, 2, 1, NULL, 0, 0, 2, NULL, 0, 0, 2, 0, c, 0, 2);
    CHECK(c[0] == 1 && c[3] == 4, "gemm with batch, M or N of 0 wrote");
    recur_gemm(RECUR_FLOAT64, 1, 2, 2, 0, 1, NULL, 0, 0, 0, NULL, 0, 0, 2, 0.5, c, 0, 2);
    CHECK(c[0] == 0.5 && c[3] == 2, "gemm K=0: c = beta*c gave %g %g", c[0], c[3]);

    /* whole-tensor reductions of an empty tensor */
    recur_tensor t = {.storage = recur_storage_new(0, RECUR_FLOAT64), .ndim = 2,
                      .dtype = RECUR_FLOAT64, .size = {0, 3}, .stride = {3, 1}};
    CHECK(t.storage != NULL, "storage of 0 elements");
    if (t.storage) {
        CHECK(recur_sum(&t) == 0 && recur_norm(&t) == 0 && recur_argext(&t, 0) == -1 &&
                  recur_allclose(&t, &t, 0, 0) == 1,
              "reductions of an empty tensor");
        recur_storage_release(t.storage);
    }
}

/* recur_threads_begin/end for a host's own kernel: a key per shape (the same values the
 * same key), the team for the shape's first calls, one thread once the fake times make
 * the team slower, and nothing timed inside a parallel region or with the team of 1. */
static void threads_for_host_kernels(void)
{
    const int64_t a[] = {7, 100, 64}, b[] = {7, 100, 65};
    CHECK(recur_threads_key(a, 3) == recur_threads_key(a, 3), "a key is a function of its values");
    CHECK(recur_threads_key(a, 3) != recur_threads_key(b, 3), "another shape, another key");
    CHECK(recur_threads_key(a, 3) != recur_threads_key(a, 2), "the count of values is part of the key");
    recur_threads_set(2);
    recur_threads_adapt(1);
    recur_threads_adapt_fake(0.001, 0.010);
    const uint64_t key = recur_threads_key(b, 3);
    int modes[8];
    for (int i = 0; i < 8; i++) {
        recur_threads_call c = recur_threads_begin(key);
        CHECK(c.slot != NULL, "call %d of a shape is timed", i + 1);
        modes[i] = c.mode;
        CHECK(recur_threads_in_force() == (c.mode ? 2 : 1), "call %d runs with the team it chose", i + 1);
        recur_threads_end(&c);
    }
    /* the start-up call and two more on the team, three on one thread, in turn; then
     * one thread, the faster under these times */
    static const int want[8] = {1, 1, 0, 1, 0, 1, 0, 0};
    for (int i = 0; i < 8; i++) CHECK(modes[i] == want[i], "call %d: mode %d, want %d", i + 1, modes[i], want[i]);
    CHECK(recur_threads_in_force() == 1, "the work after the call runs on one thread too");
    recur_threads_set(1);
    recur_threads_call one = recur_threads_begin(key);
    CHECK(one.slot == NULL && one.mode == 1, "a team of one is not timed");
    recur_threads_end(&one);
    recur_threads_adapt_fake(-1, -1);
    recur_threads_set(2);
    /* a host's kernel follows the machine's load too; a fake /proc/loadavg longer than
     * the controller keeps is cut, not overrun, and NULL or no processors is the
     * machine again */
    recur_threads_adapt_fake(0.010, 0.001);
    char text[300];
    memset(text, ' ', sizeof text);
    memcpy(text, "0.50 0.40 0.30 3/187 4501", 25);
    text[sizeof text - 1] = 0;
    recur_threads_load_fake(text, 2);
    for (int i = 0; i < 3; i++) {
        recur_threads_call c = recur_threads_begin(key);
        recur_threads_end(&c);
    }
    CHECK(recur_threads_busy() == 1, "three readings of 3 runnable on 2 processors: busy");
    recur_threads_call c = recur_threads_begin(key);
    CHECK(c.slot == NULL && c.mode == 0 && recur_threads_in_force() == 1,
          "a busy machine's call runs on one thread, untimed");
    recur_threads_end(&c);
    recur_threads_load_fake("0.50 0.40 0.30 3/187 4501", 0);
    CHECK(recur_threads_busy() == 0, "no processors: the machine again, and its readings start over");
    recur_threads_load_fake(NULL, 2);
    recur_threads_adapt_fake(-1, -1);
    recur_threads_set(2);
}

/* ---- decode.h ---- */

static void decode_edges(void)
{
    recur_choice greedy = {0, 0, 0}, sample = {1, 0, 0};
    int64_t bad = -7;
    CHECK(recur_choose(NULL, NULL, 0, &sample, NULL, NULL, &bad) == RECUR_CHOOSE_EMPTY && bad == -7,
          "choose n=0");
    CHECK(recur_choose_work_size(0) == 0, "choose work for n=0");
    /* greedy draws nothing, so needs neither generator nor work */
    const double s[3] = {1, 3, 3};
    const unsigned char banned[3] = {0, 1, 0};
    CHECK(recur_choose(s, NULL, 3, &greedy, NULL, NULL, &bad) == 1, "greedy: ties go to the lower id");
    CHECK(recur_choose(s, banned, 3, &greedy, NULL, NULL, &bad) == 2, "greedy skips a banned id");
    const double nan[2] = {0, NAN};
    CHECK(recur_choose(nan, NULL, 2, &sample, NULL, NULL, &bad) == RECUR_CHOOSE_NOT_FINITE && bad == 1,
          "choose: NaN at 1, reported before any draw");
    const unsigned char all[3] = {1, 1, 1};
    CHECK(recur_choose(s, all, 3, &sample, NULL, NULL, &bad) == RECUR_CHOOSE_ALL_BANNED, "all banned");
    const double neg[2] = {-INFINITY, -INFINITY};
    CHECK(recur_choose(neg, NULL, 2, &sample, NULL, NULL, &bad) == RECUR_CHOOSE_ALL_NEG_INF, "all -inf");
    /* one candidate: drawn whatever the uniform */
    recur_rng g;
    recur_rng_seed(&g, 3);
    double work[8]; /* recur_choose_work_size(2) is 48 bytes */
    const unsigned char one[2] = {1, 0};
    CHECK(recur_choose_work_size(2) <= sizeof work, "work size");
    CHECK(recur_choose(s, one, 2, &sample, &g, work, &bad) == 1, "the one allowed id is drawn");
}

int main(void)
{
    recur_blas_repair_core();
    for (int cell = 0; cell <= RECUR_RNN_IDENTITY; cell++) {
        static const int sizes[][4] = {{5, 3, 2, 4}, {0, 3, 2, 4}, {1, 1, 1, 1}, {4, 2, 3, 2}};
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
            for (int reverse = 0; reverse <= 1; reverse++)
                for (int trunc = -1; trunc <= 1; trunc += 2)
                    rnn_nulls(cell, sizes[k][0], sizes[k][1], sizes[k][2], sizes[k][3], reverse,
                              trunc);
        rnn_zero_steps(cell);
        rnn_empty_batch(cell);
        rnn_no_input(cell);
    }
    rnn_f32_edges();
    nn_edges();
    decode_edges();
    optim_edges();
    tensor_ops_edges();
    threads_for_host_kernels();
    printf("C API edges: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
