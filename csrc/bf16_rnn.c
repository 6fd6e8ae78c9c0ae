/* Inference forward with bfloat16 weights (see bf16_rnn.h).
 *
 * lstm and rnn: each step is one product, [x_t h_{t-1}] [w_ih w_hh]^T from the biases,
 * so nothing of size T*B*G*H is written or read back (the float32 kernels' input
 * projection over all steps is 52 MB at (T,B,H) = (100,64,512) for an LSTM). The gru's n
 * gate needs w_in x_t apart from w_hn h: two products a step, x_t w_ih^T and h w_hh^T,
 * from a batch of GRU_STEP_ROWS up; a smaller batch, whose steps would read w_ih again
 * for a row or two, projects every step's input first, one product of T*B rows split
 * by rows over the threads. The time loop is split by the batch as the fp32 kernels
 * split it (each thread its own sequences through every step, no synchronisation
 * between steps); a batch too small for that, with steps large enough to share, splits
 * the units (forward_units: each thread its units of every gate, one meeting a step);
 * a lone step (generation's) is one loop whose products are split by columns when
 * large. */
#include <string.h>

#include <omp.h>

#include "bf16.h"
#include "bf16_int8.h"
#include "bf16_rnn.h"
#include "recur/runtime.h"
#include "rnn_math.h"

/* Fewest sequences per thread in a batch split. */
#define BF16_MIN_ROWS 8

/* Fewest sequences for which a gru projects its input step by step. All steps at once
 * wrote T*B*3H floats and read them back a step at a time, from memory at (T,B,H) =
 * (100,64,512) (39 MB), and ran the projection over 3200 rows a thread, 10% below the
 * steps' products over 32. */
#define GRU_STEP_ROWS 16

/* The pointwise rows, as in rnn_generic.h, compiled for AVX-512 and AVX2 as well, and
 * with a*b + c contracted into FMAs (the float32 kernels keep -ffp-contract=off, for
 * the same bits on every machine; bf16 results are bf16's, and only CPUs with FMA
 * run this file's paths). The exp inside sigmoid and tanh is mostly multiply-adds: an
 * LSTM (100, 64, 512, 512) forward, 67.7-72.3 -> 66.3-66.7 ms on a Zen 4. Every
 * unit's result is the same whichever thread or lane computes it. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define BF16_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#endif
#endif
#ifndef BF16_CLONES
#define BF16_CLONES
#endif

/* The rows also write what the float32 backward reads (rnn_generic.h's saved buffer)
 * when s is given: the gate activations into s (G*H) and the extra row into e (H).
 * Inference passes NULL and skips those stores (a tenth of an LSTM row's time). Each
 * row runs units 0..n-1 of the pointers it gets, its gate blocks H apart: a whole row
 * (n = H), or a thread's units of it (pointers offset to the first). */

/* lstm: a holds the i, f, g, o pre-activations; c, h updated in place, y gets h; e
 * gets c_{t-1} */
#define LSTM_COLUMN(j)                                                                     \
    const float i = rnn_sigmoidf(a[j]), f = rnn_sigmoidf(a[H + j]);                      \
    const float g = rnn_tanhf(a[2 * H + j]), o = rnn_sigmoidf(a[3 * H + j]);             \
    const float cp = c[j], cn = f * cp + i * g, hv = o * rnn_tanhf(cn);                  \
    c[j] = cn;                                                                           \
    h[j] = hv;                                                                           \
    y[j] = hv

BF16_CLONES static void lstm_row(const float *restrict a, float *restrict c, float *restrict h,
                                 float *restrict y, float *restrict s, float *restrict e, int H,
                                 int n)
{
    if (!s) {
        for (int j = 0; j < n; j++) {
            LSTM_COLUMN(j);
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        LSTM_COLUMN(j);
        s[j] = i;
        s[H + j] = f;
        s[2 * H + j] = g;
        s[3 * H + j] = o;
        e[j] = cp;
    }
}

/* gru (reset after): a holds x w_ih^T + binit, gh holds h w_hh^T; e gets W_hn h + b_hn */
#define GRU_COLUMN(j)                                                                      \
    const float r = rnn_sigmoidf(a[j] + gh[j]);                                          \
    const float z = rnn_sigmoidf(a[H + j] + gh[H + j]);                                  \
    const float hn = gh[2 * H + j] + bhn[j];                                             \
    const float n = rnn_tanhf(a[2 * H + j] + r * hn);                                    \
    const float hv = (1 - z) * n + z * h[j];                                             \
    h[j] = hv;                                                                           \
    y[j] = hv

BF16_CLONES static void gru_row(const float *restrict a, const float *restrict gh,
                                const float *restrict bhn, float *restrict h, float *restrict y,
                                float *restrict s, float *restrict e, int H, int n)
{
    if (!s) {
        for (int j = 0; j < n; j++) {
            GRU_COLUMN(j);
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        GRU_COLUMN(j);
        s[j] = r;
        s[H + j] = z;
        s[2 * H + j] = n;
        e[j] = hn;
    }
}

/* rnn: s gets h_t */
BF16_CLONES static void rnn_row(recur_rnn_cell cell, const float *restrict a, float *restrict h,
                                float *restrict y, float *restrict s, int n)
{
    for (int j = 0; j < n; j++) {
        float hv = cell == RECUR_RNN_TANH ? rnn_tanhf(a[j]) : cell == RECUR_RNN_RELU ? (a[j] > 0 ? a[j] : 0) : a[j];
        h[j] = hv;
        y[j] = hv;
        if (s) s[j] = hv;
    }
}

typedef struct {
    recur_rnn_cell cell;
    float *y, *h, *c;
    float *yspare; /* (B,H): where a step without y writes its output */
    /* what backward reads, (T,B,G*H), (T,B,H), (T,B,H) (rnn_generic.h's saved buffer),
     * or NULL */
    float *sact, *sextra, *shprev;
    const float *x;
    float *act;   /* (B,G*H) one step's pre-activations (the gru's: input side), or the
                   * gru's (T,B,G*H) when it projects every step first */
    float *gh;    /* gru: (B,G*H) the recurrent product */
    uint32_t *ab; /* lstm, rnn: (B, pairs of D + pairs of H) [x_t h] rounded; gru: (B,
                   * pairs of H) h rounded */
    uint32_t *ab2; /* the same size: the next step's, when the threads split the units */
    uint32_t *xb; /* gru step by step: (B, pairs of D) x_t rounded; else NULL */
    const uint32_t *w, *whh;
    const float *binit, *bhn;
    const int64_t *lengths;
    int reverse, T, B, D, H;
} bf16_fwd;

/* One step's nonlinearities and state update for sequences b0..b0+nb-1 at time t,
 * units j0..j1-1: act (nb,G*H) the pre-activations (the gru: input side), gh (nb,G*H)
 * the gru's recurrent product. */
static void pointwise(const bf16_fwd *f, const float *act, const float *gh, int t, int b0, int nb,
                      int j0, int j1)
{
    const recur_rnn_cell cell = f->cell;
    const int H = f->H, GH = recur_rnn_gates(cell) * H, n = j1 - j0;
    const size_t row = (size_t)t * f->B + b0;
    for (int i = 0; i < nb; i++) {
        float *h_i = f->h + (size_t)(b0 + i) * H + j0;
        float *y_i = (f->y ? f->y + (row + i) * H : f->yspare + (size_t)(b0 + i) * H) + j0;
        if (f->lengths && t >= f->lengths[b0 + i]) {
            memset(y_i, 0, (size_t)n * sizeof(float));
            continue;
        }
        const float *a = act + (size_t)i * GH + j0;
        float *s_i = f->sact ? f->sact + (row + i) * GH + j0 : NULL;
        float *e_i = f->sact ? f->sextra + (row + i) * H + j0 : NULL;
        if (cell == RECUR_RNN_LSTM) lstm_row(a, f->c + (size_t)(b0 + i) * H + j0, h_i, y_i, s_i, e_i, H, n);
        else if (cell == RECUR_RNN_GRU) gru_row(a, gh + (size_t)i * GH + j0, f->bhn + j0, h_i, y_i, s_i, e_i, H, n);
        else rnn_row(cell, a, h_i, y_i, s_i, n);
    }
}

/* The time loop for sequences b0..b0+nb-1. */
static void forward_rows(const bf16_fwd *f, int b0, int nb, int par)
{
    const recur_rnn_cell cell = f->cell;
    const int T = f->T, B = f->B, D = f->D, H = f->H, GH = recur_rnn_gates(cell) * H;
    const int gru = cell == RECUR_RNN_GRU, DP = bf16_pairs(D), HP = bf16_pairs(H);
    const int ldab = gru ? HP : DP + HP, hoff = gru ? 0 : DP; /* where h's pairs start */
    const float *h = f->h + (size_t)b0 * H;
    float *gh = f->gh + (size_t)b0 * GH;
    uint32_t *ab = f->ab + (size_t)b0 * ldab;
    for (int step = 0; step < T; step++) {
        const int t = f->reverse ? T - 1 - step : step;
        const size_t row = (size_t)t * B + b0;
        float *act;
        if (f->shprev) memcpy(f->shprev + row * H, h, (size_t)nb * H * sizeof(float));
        bf16_convert_rows(ab + hoff, ldab, h, H, nb, H);
        if (gru) {
            if (f->xb) {
                act = f->act + (size_t)b0 * GH;
                uint32_t *xb = f->xb + (size_t)b0 * DP;
                bf16_convert_rows(xb, DP, f->x + row * D, D, nb, D);
                bf16_gemm(nb, GH, 2 * DP, xb, f->w, f->binit, 0, act, GH, par);
            } else {
                act = f->act + row * GH;
            }
            bf16_gemm(nb, GH, 2 * HP, ab, f->whh, NULL, 0, gh, GH, par);
        } else {
            /* binit + [x_t h] [w_ih w_hh]^T in one product */
            act = f->act + (size_t)b0 * GH;
            bf16_convert_rows(ab, ldab, f->x + row * D, D, nb, D);
            bf16_gemm(nb, GH, 2 * ldab, ab, f->w, f->binit, 0, act, GH, par);
        }
        pointwise(f, act, gh, t, b0, nb, 0, H);
    }
}

/* Rounds units j0..j1-1 of h (B,H) into the operand rows ab (ldab apart, h's pairs
 * from pair hoff), and pairs q0..q1-1 of x, a step's B rows (D apart), when given. */
static void round_share(const bf16_fwd *f, uint32_t *ab, int ldab, int hoff, int j0, int j1,
                        const float *x, int q0, int q1)
{
    const int B = f->B, D = f->D, H = f->H;
    bf16_convert_rows(ab + hoff + j0 / 2, ldab, f->h + j0, H, B, j1 - j0);
    const int k0 = 2 * q0, k1 = 2 * q1 < D ? 2 * q1 : D;
    if (x && k1 > k0) bf16_convert_rows(ab + q0, ldab, x + k0, D, B, k1 - k0);
}

/* The time loop of a batch too small to split by sequences, split by units: thread
 * `part` of `parts` takes units j0..j1-1 (whole panels) of every gate of every sequence.
 * Each step it multiplies the whole operand [x_t h] (the gru: h) by its panels of each
 * gate's block of the weights, runs the pointwise pass on its units, and rounds its
 * units of the new h, and its share of the next x, into the next step's operand; then
 * the threads meet, once a step. The operand alternates between two buffers, so that a
 * thread writing the next step's never overwrites what another still reads in this
 * one. Before, the product was split by columns in a region of its own each step and
 * the pointwise pass ran on one thread between them. The products are bf16_gemm's sums
 * however the panels are shared, so the results do not depend on the thread count. */
static void forward_units(const bf16_fwd *f, int part, int parts)
{
    const recur_rnn_cell cell = f->cell;
    const int T = f->T, B = f->B, D = f->D, H = f->H, G = recur_rnn_gates(cell), GH = G * H;
    const int gru = cell == RECUR_RNN_GRU, DP = bf16_pairs(D), HP = bf16_pairs(H);
    const int ldab = gru ? HP : DP + HP, hoff = gru ? 0 : DP;
    const int groups = H / BF16_PANEL;
    const int j0 = groups * part / parts * BF16_PANEL, j1 = groups * (part + 1) / parts * BF16_PANEL;
    const int q0 = DP * part / parts, q1 = DP * (part + 1) / parts;
    uint32_t *ab[2] = {f->ab, f->ab2};
    const int t_first = f->reverse ? T - 1 : 0;
    round_share(f, ab[0], ldab, hoff, j0, j1, gru ? NULL : f->x + (size_t)t_first * B * D, q0, q1);
#pragma omp barrier
    for (int step = 0; step < T; step++) {
        const int t = f->reverse ? T - 1 - step : step;
        const size_t row = (size_t)t * B;
        const uint32_t *cur = ab[step & 1];
        if (f->shprev)
            for (int b = 0; b < B; b++)
                memcpy(f->shprev + (row + b) * H + j0, f->h + (size_t)b * H + j0, (size_t)(j1 - j0) * sizeof(float));
        float *act = gru ? f->act + row * GH : f->act;
        for (int g = 0; g < G; g++) {
            const int p0 = (g * H + j0) / BF16_PANEL, p1 = (g * H + j1) / BF16_PANEL;
            if (gru) bf16_gemm_panels(B, GH, 2 * HP, cur, f->whh, NULL, 0, f->gh, GH, p0, p1);
            else bf16_gemm_panels(B, GH, 2 * ldab, cur, f->w, f->binit, 0, act, GH, p0, p1);
        }
        pointwise(f, act, f->gh, t, 0, B, j0, j1);
        if (step + 1 < T) {
            const int tn = f->reverse ? t - 1 : t + 1;
            round_share(f, ab[~step & 1], ldab, hoff, j0, j1, gru ? NULL : f->x + (size_t)tn * B * D, q0, q1);
#pragma omp barrier
        }
    }
}

size_t bf16_rnn_workspace_size(recur_rnn_cell cell, int T, int B, int D, int H)
{
    const size_t GH = (size_t)recur_rnn_gates(cell) * H, TB = (size_t)T * B;
    const size_t DP = bf16_pairs(D), HP = bf16_pairs(H);
    size_t n = (size_t)B * H; /* floats and pairs, 4 bytes each; yspare first */
    if (cell == RECUR_RNN_GRU && B >= GRU_STEP_ROWS) n += (size_t)B * (2 * GH + DP + HP);
    else if (cell == RECUR_RNN_GRU) n += TB * GH + (size_t)B * GH + TB * DP + 2 * (size_t)B * HP;
    else n += (size_t)B * GH + 2 * (size_t)B * (DP + HP);
    return n * 4 + 128;
}

void bf16_rnn_forward(recur_rnn_cell cell, float *y, float *h, float *c, float *saved,
                      const float *x, const uint32_t *w, const uint32_t *whh, const float *binit,
                      const float *bhn, const int64_t *lengths, int reverse, int T, int B, int D,
                      int H, void *work)
{
    // y is (T,B,H) or NULL, h and c are (B,H), x is (T,B,D)
    if (T <= 0 || B <= 0 || H <= 0) return;
    const int GH = recur_rnn_gates(cell) * H, DP = bf16_pairs(D), gru = cell == RECUR_RNN_GRU;
    const size_t TB = (size_t)T * B;
    /* the team for this call, or one thread on a busy machine (csrc/threads.c) */
    const recur_threads_call call =
        recur_threads_begin(recur_threads_key((int64_t[]){2, cell, T, B, D, H, reverse}, 7));
    const int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    float *spare = work;
    bf16_fwd f = {.cell = cell, .y = y, .h = h, .c = c, .yspare = spare, .x = x,
                  .act = spare + (size_t)B * H, .w = w, .whh = whh,
                  .binit = binit, .bhn = bhn, .lengths = lengths, .reverse = reverse, .T = T,
                  .B = B, .D = D, .H = H};
    if (saved) {
        f.sact = saved;
        f.sextra = saved + TB * GH;
        f.shprev = f.sextra + (cell == RECUR_RNN_LSTM || gru ? TB * H : 0);
    }
    if (gru && B >= GRU_STEP_ROWS) {
        f.gh = f.act + (size_t)B * GH;
        f.xb = (uint32_t *)(f.gh + (size_t)B * GH);
        f.ab = f.xb + (size_t)B * DP;
    } else if (gru) {
        /* the gru's n gate needs W_in x and W_hn h apart: the input projection of every
         * step first, one product of T*B rows, split by rows over the threads */
        f.gh = f.act + TB * GH;
        uint32_t *xb = (uint32_t *)(f.gh + (size_t)B * GH);
        f.ab = xb + TB * DP;
        f.ab2 = f.ab + (size_t)B * bf16_pairs(H);
        const int M = T * B;
        if (nth > 1 && M >= 2 * BF16_MIN_ROWS) {
#pragma omp parallel num_threads(nth)
            {
                const int p = omp_get_thread_num(), np = omp_get_num_threads();
                const int m0 = (int)((int64_t)M * p / np), m1 = (int)((int64_t)M * (p + 1) / np);
                bf16_convert_rows(xb + (size_t)m0 * DP, DP, x + (size_t)m0 * D, D, m1 - m0, D);
                bf16_gemm(m1 - m0, GH, 2 * DP, xb + (size_t)m0 * DP, w, binit, 0,
                          f.act + (size_t)m0 * GH, GH, 0);
            }
        } else {
            bf16_convert_rows(xb, DP, x, D, M, D);
            bf16_gemm(M, GH, 2 * DP, xb, w, binit, 0, f.act, GH,
                      nth > 1 && (int64_t)M * GH * D >= BF16_PAR_MIN);
        }
    } else {
        f.gh = f.act;
        f.ab = (uint32_t *)(f.act + (size_t)B * GH);
        f.ab2 = f.ab + (size_t)B * (DP + bf16_pairs(H));
    }

    const int split = nth > 1 && B >= 2 * BF16_MIN_ROWS ? (nth < B / BF16_MIN_ROWS ? nth : B / BF16_MIN_ROWS) : 1;
    if (split > 1) {
#pragma omp parallel num_threads(split)
        {
            const int p = omp_get_thread_num(), np = omp_get_num_threads();
            const int b0 = (int)((int64_t)B * p / np), b1 = (int)((int64_t)B * (p + 1) / np);
            forward_rows(&f, b0, b1 - b0, 0);
        }
    } else {
        const int64_t K = gru ? H : D + H;
        const int par = nth > 1 && (int64_t)B * GH * K >= BF16_PAR_MIN;
        /* units in whole panels of every gate (each gate's block starts on a panel),
         * for more than one step: a lone step (generation's) gains nothing from its
         * pointwise pass split, and pays for one more meeting */
        const int units = par && T > 1 && H % BF16_PANEL == 0 && f.ab2
                              ? (nth < H / BF16_PANEL ? nth : H / BF16_PANEL)
                              : 1;
        if (units > 1) {
#pragma omp parallel num_threads(units)
            forward_units(&f, omp_get_thread_num(), omp_get_num_threads());
        } else {
            forward_rows(&f, 0, B, par);
        }
    }
    recur_threads_end(&call);
}

/* ---- int8 ---------------------------------------------------------------------- */

size_t i8_rnn_workspace_size(recur_rnn_cell cell, int B, int D, int H)
{
    const size_t GH = (size_t)recur_rnn_gates(cell) * H;
    /* yspare, act, gh, the two row scales (floats); the quantized rows (bytes) */
    size_t floats = (size_t)B * H + 2 * (size_t)B * GH + 2 * (size_t)B;
    size_t bytes = (size_t)B * 4 * (i8_quads(D) + i8_quads(H));
    return floats * 4 + bytes + 128;
}

void i8_rnn_forward(recur_rnn_cell cell, float *y, float *h, float *c, const float *x,
                    const i8_matrix *wih, const i8_matrix *whh, const float *binit,
                    const float *bhn, const int64_t *lengths, int reverse, int T, int B, int D,
                    int H, void *work)
{
    // y is (T,B,H) or NULL, h and c are (B,H), x is (T,B,D)
    if (T <= 0 || B <= 0 || H <= 0) return;
    const int GH = recur_rnn_gates(cell) * H, gru = cell == RECUR_RNN_GRU;
    float *spare = work;
    bf16_fwd f = {.cell = cell, .y = y, .h = h, .c = c, .yspare = spare, .x = x, .bhn = bhn,
                  .lengths = lengths, .reverse = reverse, .T = T, .B = B, .D = D, .H = H};
    const recur_threads_call call =
        recur_threads_begin(recur_threads_key((int64_t[]){3, cell, T, B, D, H, reverse}, 7));
    float *act = spare + (size_t)B * H, *gh = act + (size_t)B * GH;
    float *xs = gh + (size_t)B * GH, *hs = xs + B;
    uint8_t *xq = (uint8_t *)(hs + B), *hq = xq + (size_t)B * 4 * i8_quads(D);
    const int par = !omp_in_parallel() && omp_get_max_threads() > 1 &&
                    (int64_t)B * GH * (D + H) >= BF16_PAR_MIN;
    for (int step = 0; step < T; step++) {
        const int t = reverse ? T - 1 - step : step;
        const size_t row = (size_t)t * B;
        /* act = binit + x_t w_ih^T, then h w_hh^T onto it (the gru: into gh) */
        for (int b = 0; b < B; b++) memcpy(act + (size_t)b * GH, binit, (size_t)GH * sizeof(float));
        i8_quantize_rows(xq, xs, x + row * D, D, B, D);
        i8_gemm(B, GH, D, xq, xs, wih->packed, wih->scale, wih->rowsum, act, GH, par);
        i8_quantize_rows(hq, hs, h, H, B, H);
        if (gru) memset(gh, 0, (size_t)B * GH * sizeof(float));
        i8_gemm(B, GH, H, hq, hs, whh->packed, whh->scale, whh->rowsum, gru ? gh : act, GH, par);
        pointwise(&f, act, gh, t, 0, B, 0, H);
    }
    recur_threads_end(&call);
}
