/* The recurrent kernels, written once over `real`. csrc/rnn.c includes this file twice,
 * with real = float and real = double; see csrc/rnn.h for the equations, the buffer
 * layouts and the memory formula. Not a public header.
 *
 * Threads: the sequences of a batch do not interact, so the time loops run on
 * sub-batches, one per thread, each doing its own small GEMMs and pointwise passes
 * with no synchronisation at all between steps; the GEMMs over all T*B rows (before and
 * after the loops) are split by rows the same way (gemm_rows). With one thread, or a
 * batch too small to split, one loop covers the whole batch: OpenBLAS threads its
 * GEMMs and the pointwise passes use an OpenMP loop over rows when the work is large. */

#define FN(name) RNN_CONCAT(name, RNN_SUFFIX)

/* Saved buffer of one forward, in this order:
 *   act   (T,B,G*H)  gate activations (rnn: h_t itself); holds the pre-activations
 *                    (without biases) until the step's pointwise pass
 *   extra (T,B,H)    lstm: c_{t-1}; gru: W_hn h_{t-1} + b_hn; classic gru: r*h_{t-1}
 *   hprev (T,B,H)    h_{t-1}: the left operand of the step GEMM and of dW_hh
 * Rows past a sequence's length are never read back. */
typedef struct {
    real *act, *extra, *hprev;
} FN(rnn_saved);

static FN(rnn_saved) FN(saved_layout)(rnn_cell cell, real *saved, int T, int B, int H)
{
    size_t GH = (size_t)rnn_gates(cell) * H, TB = (size_t)T * B;
    FN(rnn_saved) s;
    s.act = saved;
    s.extra = saved + TB * GH;
    s.hprev = s.extra + (rnn_has_extra(cell) ? TB * H : 0);
    return s;
}

static inline real FN(sigmoid)(real v) { return 1 / (1 + EXP(-v)); }

/* C (M,N) = alpha op(A) op(B) + beta C (row-major) for the GEMMs over all T*B rows,
 * with the rows of C split over the threads: one single-threaded GEMM each and one join
 * at the end. OpenBLAS's own threading synchronises its threads many times per call,
 * which costs little on an idle machine and a great deal on a busy one. */
static void FN(gemm_rows)(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                          real alpha, const real *A, int lda, const real *B, int ldb, real beta,
                          real *C, int ldc)
{
    int nth = rnn_gemm_threads(M, N, K);
    if (nth <= 1) {
        GEMM(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel num_threads(nth)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads();
        int m0 = (int)((int64_t)M * k / n), m1 = (int)((int64_t)M * (k + 1) / n);
        /* row m of op(A) is row m of A, or column m when A is transposed */
        const real *A_k = ta == CblasNoTrans ? A + (size_t)m0 * lda : A + m0;
        if (m1 > m0)
            GEMM(CblasRowMajor, ta, tb, m1 - m0, N, K, alpha, A_k, lda, B, ldb, beta,
                 C + (size_t)m0 * ldc, ldc);
    }
}

/* ---- forward ------------------------------------------------------------- */

/* One step's pointwise pass over nb rows for the cells whose recurrent product is one
 * GEMM (rnn, lstm, gru): nonlinearities, state update, output.
 * act is (nb,G*H): x w_ih^T + h_{t-1} w_hh^T in (gru: x w_ih^T only), activations out;
 * gh is (nb,G*H) = h_{t-1} w_hh^T for the gru, unused otherwise;
 * extra is (nb,H); h, c are (nb,H) states updated in place; y_t is (nb,H); hnext is
 * (nb,H), the next step's h_{t-1}, or NULL after the last step; bi, bh are (G*H)
 * (zeros when there is no bias); lens is (nb) or NULL. */
static void FN(forward_pointwise)(rnn_cell cell, real *act, real *extra, real *h, real *c,
                                  real *y_t, real *hnext, const real *gh, const real *bi,
                                  const real *bh, const int64_t *lens, int t, int nb, int H,
                                  int par)
{
    const int G = rnn_gates(cell), GH = G * H;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nb; b++) {
        real *y_b = y_t + (size_t)b * H;
        real *h_b = h + (size_t)b * H;
        real *hn_b = hnext ? hnext + (size_t)b * H : NULL;
        if (lens && t >= lens[b]) {
            /* past the end (or, reversed, before the start): state frozen, output zero */
            for (int j = 0; j < H; j++) y_b[j] = 0;
            if (hn_b) memcpy(hn_b, h_b, (size_t)H * sizeof(real));
            continue;
        }
        real *a = act + (size_t)b * GH;
        const real *g = gh ? gh + (size_t)b * GH : NULL;
        real *e_b = extra + (size_t)b * H;
        if (cell == RNN_LSTM) {
            real *c_b = c + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                real i = FN(sigmoid)(a[j] + bi[j] + bh[j]);
                real f = FN(sigmoid)(a[H + j] + bi[H + j] + bh[H + j]);
                real gg = TANH(a[2 * H + j] + bi[2 * H + j] + bh[2 * H + j]);
                real o = FN(sigmoid)(a[3 * H + j] + bi[3 * H + j] + bh[3 * H + j]);
                a[j] = i;
                a[H + j] = f;
                a[2 * H + j] = gg;
                a[3 * H + j] = o;
                e_b[j] = c_b[j];
                real cn = f * c_b[j] + i * gg;
                c_b[j] = cn;
                h_b[j] = y_b[j] = o * TANH(cn);
            }
        } else if (cell == RNN_GRU) {
            for (int j = 0; j < H; j++) {
                real r = FN(sigmoid)(a[j] + bi[j] + g[j] + bh[j]);
                real z = FN(sigmoid)(a[H + j] + bi[H + j] + g[H + j] + bh[H + j]);
                real hn = g[2 * H + j] + bh[2 * H + j];
                real n = TANH(a[2 * H + j] + bi[2 * H + j] + r * hn);
                a[j] = r;
                a[H + j] = z;
                a[2 * H + j] = n;
                e_b[j] = hn;
                h_b[j] = y_b[j] = (1 - z) * n + z * h_b[j];
            }
        } else if (cell == RNN_TANH) {
            for (int j = 0; j < H; j++) h_b[j] = y_b[j] = a[j] = TANH(a[j] + bi[j] + bh[j]);
        } else { /* RNN_RELU */
            for (int j = 0; j < H; j++) {
                real v = a[j] + bi[j] + bh[j];
                h_b[j] = y_b[j] = a[j] = v > 0 ? v : 0;
            }
        }
        if (hn_b) memcpy(hn_b, h_b, (size_t)H * sizeof(real));
    }
}

/* Classic GRU, first half of a step: r and z from gh[:, 0:2H] = h w_hr,z^T, and
 * extra = r*h, the left operand of the n product. Rows past the end get r*h = 0. */
static void FN(forward_classic_rz)(real *act, real *extra, const real *h, const real *gh,
                                   const real *bi, const real *bh, const int64_t *lens, int t,
                                   int nb, int H, int par)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nb; b++) {
        real *a = act + (size_t)b * GH;
        const real *g = gh + (size_t)b * GH;
        const real *h_b = h + (size_t)b * H;
        real *e_b = extra + (size_t)b * H;
        if (lens && t >= lens[b]) {
            for (int j = 0; j < H; j++) e_b[j] = 0;
            continue;
        }
        for (int j = 0; j < H; j++) {
            real r = FN(sigmoid)(a[j] + bi[j] + g[j] + bh[j]);
            a[j] = r;
            a[H + j] = FN(sigmoid)(a[H + j] + bi[H + j] + g[H + j] + bh[H + j]);
            e_b[j] = r * h_b[j];
        }
    }
}

/* Classic GRU, second half: gh[:, 2H:3H] = (r*h) w_hn^T, then n and the update. */
static void FN(forward_classic_n)(real *act, real *h, real *y_t, real *hnext, const real *gh,
                                  const real *bi, const real *bh, const int64_t *lens, int t,
                                  int nb, int H, int par)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nb; b++) {
        real *y_b = y_t + (size_t)b * H;
        real *h_b = h + (size_t)b * H;
        if (!(lens && t >= lens[b])) {
            real *a = act + (size_t)b * GH;
            const real *g = gh + (size_t)b * GH;
            for (int j = 0; j < H; j++) {
                real z = a[H + j];
                real n = TANH(a[2 * H + j] + bi[2 * H + j] + g[2 * H + j] + bh[2 * H + j]);
                a[2 * H + j] = n;
                h_b[j] = y_b[j] = (1 - z) * n + z * h_b[j];
            }
        } else {
            for (int j = 0; j < H; j++) y_b[j] = 0;
        }
        if (hnext) memcpy(hnext + (size_t)b * H, h_b, (size_t)H * sizeof(real));
    }
}

/* The time loop of forward for rows b0..b0+nb-1 of the batch (B rows per step).
 * hn, cn are (B,H) running states, gh is (nb,G*H) scratch. */
static void FN(forward_rows)(rnn_cell cell, real *y, real *hn, real *cn, FN(rnn_saved) s,
                             const real *w_hh, const real *bi, const real *bh, const real *h0,
                             const real *c0, const int64_t *lengths, int reverse, int T, int B,
                             int H, int b0, int nb, real *gh, int par)
{
    const int G = rnn_gates(cell), GH = G * H;
    const size_t BH = (size_t)B * H, nbH = (size_t)nb * H;
    const int64_t *lens = lengths ? lengths + b0 : NULL;
    real *h = hn + (size_t)b0 * H, *c = cn ? cn + (size_t)b0 * H : NULL;

    /* hn (and cn) carry the running state; a sequence's state stops changing after its
     * last step, so they end up holding the final states. */
    if (h0) memmove(h, h0 + (size_t)b0 * H, nbH * sizeof(real));
    else memset(h, 0, nbH * sizeof(real));
    if (cell == RNN_LSTM) {
        if (c0) memmove(c, c0 + (size_t)b0 * H, nbH * sizeof(real));
        else memset(c, 0, nbH * sizeof(real));
    }
    memcpy(s.hprev + (reverse ? T - 1 : 0) * BH + (size_t)b0 * H, h, nbH * sizeof(real));

    for (int step = 0; step < T; step++) {
        const int t = reverse ? T - 1 - step : step;
        const size_t row = (size_t)t * B + b0; /* first row of this sub-batch at time t */
        real *act_t = s.act + row * GH;
        real *extra_t = s.extra + row * H;
        real *hprev_t = s.hprev + row * H;
        real *y_t = y + row * H;
        real *hnext = NULL; /* the next step's h_{t-1}, written by the pointwise pass */
        if (step + 1 < T) hnext = s.hprev + ((size_t)(reverse ? t - 1 : t + 1) * B + b0) * H;
        if (cell == RNN_GRU_CLASSIC) {
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, 2 * H, H, 1, hprev_t, H, w_hh, H, 0,
                 gh, GH);
            FN(forward_classic_rz)(act_t, extra_t, hprev_t, gh, bi, bh, lens, t, nb, H, par);
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, H, H, 1, extra_t, H,
                 w_hh + (size_t)2 * H * H, H, 0, gh + 2 * H, GH);
            FN(forward_classic_n)(act_t, h, y_t, hnext, gh, bi, bh, lens, t, nb, H, par);
        } else if (cell == RNN_GRU) {
            /* n needs W_hn h apart from W_in x: the product goes to its own buffer */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, GH, H, 1, hprev_t, H, w_hh, H, 0,
                 gh, GH);
            FN(forward_pointwise)(cell, act_t, extra_t, h, c, y_t, hnext, gh, bi, bh, lens, t, nb,
                                  H, par);
        } else {
            /* lstm, rnn: the product adds straight onto x w_ih^T */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, GH, H, 1, hprev_t, H, w_hh, H, 1,
                 act_t, GH);
            FN(forward_pointwise)(cell, act_t, extra_t, h, c, y_t, hnext, NULL, bi, bh, lens, t,
                                  nb, H, par);
        }
    }
}

/* Biases as two dense (G*H) vectors, zeros standing in for missing ones, so the
 * pointwise loops never branch on them. */
static void FN(load_biases)(real *bi, real *bh, const real *b_ih, const real *b_hh, int GH)
{
    for (int k = 0; k < GH; k++) {
        bi[k] = b_ih ? b_ih[k] : 0;
        bh[k] = b_hh ? b_hh[k] : 0;
    }
}

void FN(rnn_forward)(rnn_cell cell, real *y, real *hn, real *cn, real *saved, const real *x,
                     const real *w_ih, const real *w_hh, const real *b_ih, const real *b_hh,
                     const real *h0, const real *c0, const int64_t *lengths, int reverse,
                     int T, int B, int D, int H, real *workspace)
{
    // y is (T,B,H), hn and cn are (B,H), x is (T,B,D), w_ih is (G*H,D), w_hh is (G*H,H),
    // b_ih and b_hh are (G*H) or NULL, h0 and c0 are (B,H) or NULL, lengths is (B) or NULL,
    // saved is rnn_saved_size(), workspace is rnn_forward_workspace_size()
    const int G = rnn_gates(cell), GH = G * H;
    FN(rnn_saved) s = FN(saved_layout)(cell, saved, T, B, H);
    real *gh = workspace;            /* (B,G*H) recurrent product of one step */
    real *bi = gh + (size_t)B * GH;  /* (G*H) */
    real *bh = bi + GH;              /* (G*H) */
    FN(load_biases)(bi, bh, b_ih, b_hh, GH);

    /* the input projection of all steps at once: act = x w_ih^T, (T*B,D) x (D,G*H) */
    FN(gemm_rows)(CblasNoTrans, CblasTrans, T * B, GH, D, 1, x, D, w_ih, D, 0, s.act, GH);

    int nth = rnn_split_threads(B, G, H);
    if (nth > 1) {
#pragma omp parallel num_threads(nth)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads();
            int b0 = (int)((int64_t)B * k / n), b1 = (int)((int64_t)B * (k + 1) / n);
            FN(forward_rows)(cell, y, hn, cn, s, w_hh, bi, bh, h0, c0, lengths, reverse, T, B, H,
                             b0, b1 - b0, gh + (size_t)b0 * GH, 0);
        }
    } else {
        FN(forward_rows)(cell, y, hn, cn, s, w_hh, bi, bh, h0, c0, lengths, reverse, T, B, H, 0,
                         B, gh, rnn_parallel_rows(B, G, H));
    }
}

void FN(rnn_step)(rnn_cell cell, real *h, real *c, const real *x, const real *w_ih,
                  const real *w_hh, const real *b_ih, const real *b_hh, int B, int D, int H,
                  real *workspace)
{
    // h and c are (B,H) updated in place, x is (B,D), workspace is rnn_step_workspace_size()
    /* a forward of one step whose saved buffer and output live in the workspace */
    real *saved = workspace;
    real *y = saved + rnn_saved_size(cell, 1, B, H);
    real *fwork = y + (size_t)B * H;
    FN(rnn_forward)(cell, y, h, c, saved, x, w_ih, w_hh, b_ih, b_hh, h, c, NULL, 0, 1, B, D, H,
                    fwork);
}

/* ---- backward ------------------------------------------------------------ */

/* One step's pointwise backward over nr = nb*S rows: row i*S + s is sequence i of the
 * sub-batch in output window s (S = 1 without truncation).
 * dh, dc are (nr,H) carried gradients of h_t, c_t, replaced in place by their direct
 * contribution to h_{t-1}, c_{t-1} (the GEMM with w_hh adds the rest).
 * dA is (nr,G*H): gradients of the gate pre-activations on the recurrent side;
 * dAxn is (nr,H), gru only: the n pre-activation gradient on the input side (it lacks
 * the factor r). act (nb,G*H), extra (nb,H), hprev (nb,H) are the saved rows of step t.
 * Classic gru: this is the first half; r's gradient needs (dA_n w_hn), done after. */
static void FN(backward_pointwise)(rnn_cell cell, real *dA, real *dAxn, real *dh, real *dc,
                                   const real *act, const real *extra, const real *hprev,
                                   const int64_t *lens, int t, int nr, int S, int H, int par)
{
    const int G = rnn_gates(cell), GH = G * H;
#pragma omp parallel for schedule(static) if (par)
    for (int row = 0; row < nr; row++) {
        int b = row / S;
        real *dA_r = dA + (size_t)row * GH;
        if (lens && t >= lens[b]) {
            /* frozen step: the state passes through unchanged, so do its gradients */
            for (int k = 0; k < GH; k++) dA_r[k] = 0;
            if (cell == RNN_GRU)
                for (int j = 0; j < H; j++) dAxn[(size_t)row * H + j] = 0;
            continue;
        }
        const real *a = act + (size_t)b * GH;
        const real *e_b = extra + (size_t)b * H;
        const real *hp = hprev + (size_t)b * H;
        real *dh_r = dh + (size_t)row * H;
        if (cell == RNN_LSTM) {
            real *dc_r = dc + (size_t)row * H;
            for (int j = 0; j < H; j++) {
                real i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
                real tc = TANH(f * e_b[j] + i * g); /* c_t recomputed exactly as in forward */
                real dhv = dh_r[j];
                real dcv = dc_r[j] + dhv * o * (1 - tc * tc);
                dA_r[j] = dcv * g * i * (1 - i);
                dA_r[H + j] = dcv * e_b[j] * f * (1 - f);
                dA_r[2 * H + j] = dcv * i * (1 - g * g);
                dA_r[3 * H + j] = dhv * tc * o * (1 - o);
                dc_r[j] = dcv * f;
                dh_r[j] = 0;
            }
        } else if (cell == RNN_GRU) {
            real *dxn_r = dAxn + (size_t)row * H;
            for (int j = 0; j < H; j++) {
                real r = a[j], z = a[H + j], n = a[2 * H + j];
                real dhv = dh_r[j];
                real dan = dhv * (1 - z) * (1 - n * n);
                dA_r[j] = dan * e_b[j] * r * (1 - r);
                dA_r[H + j] = dhv * (hp[j] - n) * z * (1 - z);
                dA_r[2 * H + j] = dan * r;
                dxn_r[j] = dan;
                dh_r[j] = dhv * z;
            }
        } else if (cell == RNN_GRU_CLASSIC) {
            for (int j = 0; j < H; j++) {
                real z = a[H + j], n = a[2 * H + j];
                real dhv = dh_r[j];
                dA_r[H + j] = dhv * (hp[j] - n) * z * (1 - z);
                dA_r[2 * H + j] = dhv * (1 - z) * (1 - n * n);
                dh_r[j] = dhv * z;
            }
        } else if (cell == RNN_TANH) {
            for (int j = 0; j < H; j++) {
                dA_r[j] = dh_r[j] * (1 - a[j] * a[j]);
                dh_r[j] = 0;
            }
        } else { /* RNN_RELU */
            for (int j = 0; j < H; j++) {
                dA_r[j] = a[j] > 0 ? dh_r[j] : 0;
                dh_r[j] = 0;
            }
        }
    }
}

/* Classic GRU, second half: drh (nr,H) = dA_n w_hn is the gradient of r*h_{t-1}. */
static void FN(backward_classic_r)(real *dA, real *dh, const real *drh, const real *act,
                                   const real *hprev, const int64_t *lens, int t, int nr, int S,
                                   int H, int par)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if (par)
    for (int row = 0; row < nr; row++) {
        int b = row / S;
        if (lens && t >= lens[b]) continue;
        const real *a = act + (size_t)b * GH;
        const real *hp = hprev + (size_t)b * H;
        const real *drh_r = drh + (size_t)row * H;
        real *dA_r = dA + (size_t)row * GH;
        real *dh_r = dh + (size_t)row * H;
        for (int j = 0; j < H; j++) {
            real r = a[j];
            dA_r[j] = drh_r[j] * hp[j] * r * (1 - r);
            dh_r[j] += drh_r[j] * r;
        }
    }
}

/* out (nb,N) = in (nb*S,N) summed over each row's S windows: a step's gate gradients
 * are the sum over the output windows that reach it. */
static void FN(sum_windows)(real *out, const real *in, int nb, int S, int N, int par)
{
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < nb; b++) {
        real *o = out + (size_t)b * N;
        const real *in_b = in + (size_t)b * S * N;
        for (int k = 0; k < N; k++) o[k] = in_b[k];
        for (int s = 1; s < S; s++)
            for (int k = 0; k < N; k++) o[k] += in_b[(size_t)s * N + k];
    }
}

/* db (N) += column sums of m (M rows, leading dimension ld). */
static void FN(add_colsum)(real *db, const real *m, int64_t M, int N, int ld)
{
    enum { CHUNK = 64 };
    const int nchunk = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (M * N >= RNN_OMP_MIN)
    for (int ch = 0; ch < nchunk; ch++) {
        int lo = ch * CHUNK, hi = lo + CHUNK < N ? lo + CHUNK : N;
        real acc[CHUNK] = {0};
        for (int64_t r = 0; r < M; r++) {
            const real *m_r = m + r * ld;
            for (int k = lo; k < hi; k++) acc[k - lo] += m_r[k];
        }
        for (int k = lo; k < hi; k++) db[k] += acc[k - lo];
    }
}

/* Backward workspace, as counted by rnn_backward_workspace_size. The carried and
 * per-window buffers hold row b*S + s for sequence b in window s, so that a sub-batch's
 * rows are contiguous. */
typedef struct {
    real *dG;    /* (T,B,G*H) gate gradients, recurrent side */
    real *dxn;   /* (T,B,H) gru: n gradient, input side */
    real *dh;    /* (B*S,H) carried dh */
    real *dc;    /* (B*S,H) carried dc, lstm */
    real *drh;   /* (B*S,H) classic gru: d(r*h) */
    real *winA;  /* (B*S,G*H) per-window gate gradients, S > 1 */
    real *winxn; /* (B*S,H) gru, per-window, S > 1 */
} FN(rnn_bwork);

/* The time loop of backward for rows b0..b0+nb-1 of the batch: fills dG and dxn rows
 * and adds into dh0, dc0 rows. */
static void FN(backward_rows)(rnn_cell cell, real *dh0, real *dc0, const real *dy,
                              const real *dhn, const real *dcn, FN(rnn_saved) s,
                              const real *w_hh, const int64_t *lengths, int reverse,
                              int truncated, int S, int T, int B, int H, int b0, int nb,
                              FN(rnn_bwork) w, int par)
{
    const int G = rnn_gates(cell), GH = G * H;
    const int lstm = cell == RNN_LSTM, gru = cell == RNN_GRU, classic = cell == RNN_GRU_CLASSIC;
    const int nr = nb * S; /* rows of this sub-batch in the carried buffers */
    const int64_t *lens = lengths ? lengths + b0 : NULL;
    real *dh = w.dh + (size_t)b0 * S * H, *dc = w.dc + (size_t)b0 * S * H;
    real *drh = w.drh + (size_t)b0 * S * H;
    real *winA = w.winA + (size_t)b0 * S * GH, *winxn = w.winxn + (size_t)b0 * S * H;

    memset(dh, 0, (size_t)nr * H * sizeof(real));
    if (lstm) memset(dc, 0, (size_t)nr * H * sizeof(real));
    for (int p = 0; p < T; p++) {
        /* backward visits the steps in the reverse of forward's order */
        const int t = reverse ? p : T - 1 - p;
        const int slot = p % S;
        const size_t row = (size_t)t * B + b0;
        const real *act_t = s.act + row * GH;
        const real *extra_t = s.extra + row * H;
        const real *hprev_t = s.hprev + row * H;
        real *dA = S > 1 ? winA : w.dG + row * GH;
        real *dAxn = S > 1 ? winxn : w.dxn + row * H;

        /* the output of step t opens a window: with truncation in a fresh slot (the
         * window that used it closed after the previous step), otherwise it is added to
         * the one carried gradient */
        for (int i = 0; i < nb; i++) {
            real *dh_i = dh + ((size_t)i * S + slot) * H;
            real *dc_i = dc + ((size_t)i * S + slot) * H;
            if (truncated) {
                memset(dh_i, 0, (size_t)H * sizeof(real));
                if (lstm) memset(dc_i, 0, (size_t)H * sizeof(real));
            }
            int64_t len = lens ? lens[i] : T;
            if (t >= len) continue; /* outputs past the end are constant zeros */
            if (dy) {
                const real *dy_i = dy + row * H + (size_t)i * H;
                for (int j = 0; j < H; j++) dh_i[j] += dy_i[j];
            }
            /* the final state is an output of the sequence's last step */
            if (t == (reverse ? 0 : len - 1)) {
                const size_t off = (size_t)(b0 + i) * H;
                if (dhn)
                    for (int j = 0; j < H; j++) dh_i[j] += dhn[off + j];
                if (lstm && dcn)
                    for (int j = 0; j < H; j++) dc_i[j] += dcn[off + j];
            }
        }

        FN(backward_pointwise)(cell, dA, dAxn, dh, dc, act_t, extra_t, hprev_t, lens, t, nr, S, H,
                               par);
        if (classic) {
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, H, H, 1, dA + 2 * H, GH,
                 w_hh + (size_t)2 * H * H, H, 0, drh, H);
            FN(backward_classic_r)(dA, dh, drh, act_t, hprev_t, lens, t, nr, S, H, par);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, H, 2 * H, 1, dA, GH, w_hh, H, 1,
                 dh, H);
        } else {
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, H, GH, 1, dA, GH, w_hh, H, 1, dh,
                 H);
        }
        if (S > 1) {
            FN(sum_windows)(w.dG + row * GH, winA, nb, S, GH, par);
            if (gru) FN(sum_windows)(w.dxn + row * H, winxn, nb, S, H, par);
        }

        /* a sequence's first step passes its gradients on to h0, c0 */
        for (int i = 0; i < nb; i++) {
            int64_t len = lens ? lens[i] : T;
            if (t != (reverse ? len - 1 : 0)) continue;
            const size_t off = (size_t)(b0 + i) * H;
            for (int sl = 0; sl < S; sl++) {
                const real *dh_i = dh + ((size_t)i * S + sl) * H;
                const real *dc_i = dc + ((size_t)i * S + sl) * H;
                if (dh0)
                    for (int j = 0; j < H; j++) dh0[off + j] += dh_i[j];
                if (lstm && dc0)
                    for (int j = 0; j < H; j++) dc0[off + j] += dc_i[j];
            }
        }
    }
}

void FN(rnn_backward)(rnn_cell cell, real *dx, real *dh0, real *dc0, real *dw_ih, real *dw_hh,
                      real *db_ih, real *db_hh, const real *dy, const real *dhn, const real *dcn,
                      const real *saved, const real *x, const real *w_ih, const real *w_hh,
                      const int64_t *lengths, int reverse, int bptt_truncate, int T, int B,
                      int D, int H, real *workspace)
{
    // dx is (T,B,D), dh0 and dc0 are (B,H), dw_ih is (G*H,D), dw_hh is (G*H,H),
    // db_ih and db_hh are (G*H), dy is (T,B,H), dhn and dcn are (B,H), x is (T,B,D),
    // saved is rnn_saved_size(), workspace is rnn_backward_workspace_size()
    const int G = rnn_gates(cell), GH = G * H;
    const size_t TB = (size_t)T * B;
    const int gru = cell == RNN_GRU, classic = cell == RNN_GRU_CLASSIC;
    FN(rnn_saved) s = FN(saved_layout)(cell, (real *)saved, T, B, H);
    const int truncated = bptt_truncate >= 0 && bptt_truncate + 1 < T;
    const int S = rnn_slots(T, bptt_truncate);
    const size_t SBH = (size_t)S * B * H;

    FN(rnn_bwork) w;
    w.dG = workspace;
    w.dxn = w.dG + TB * GH;
    w.dh = w.dxn + (gru ? TB * H : 0);
    w.dc = w.dh + SBH;
    w.drh = w.dc + (cell == RNN_LSTM ? SBH : 0);
    w.winA = w.drh + (classic ? SBH : 0);
    w.winxn = w.winA + (S > 1 ? SBH * G : 0);

    int nth = rnn_split_threads(B, G, H);
    if (nth > 1) {
#pragma omp parallel num_threads(nth)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads();
            int b0 = (int)((int64_t)B * k / n), b1 = (int)((int64_t)B * (k + 1) / n);
            FN(backward_rows)(cell, dh0, dc0, dy, dhn, dcn, s, w_hh, lengths, reverse, truncated,
                              S, T, B, H, b0, b1 - b0, w, 0);
        }
    } else {
        FN(backward_rows)(cell, dh0, dc0, dy, dhn, dcn, s, w_hh, lengths, reverse, truncated, S, T,
                          B, H, 0, B, w, rnn_parallel_rows((int64_t)B * S, G, H));
    }

    /* parameter and input gradients over all T*B rows at once */
    const int M = (int)TB;
    const real *dG = w.dG, *dxn = w.dxn;
    if (gru) {
        /* the r, z blocks are shared by both sides; the n block differs (dxn vs dG) */
        if (dw_ih) {
            FN(gemm_rows)(CblasTrans, CblasNoTrans, 2 * H, D, M, 1, dG, GH, x, D, 1, dw_ih,
                 D);
            FN(gemm_rows)(CblasTrans, CblasNoTrans, H, D, M, 1, dxn, H, x, D, 1,
                 dw_ih + (size_t)2 * H * D, D);
        }
        if (db_ih) {
            FN(add_colsum)(db_ih, dG, M, 2 * H, GH);
            FN(add_colsum)(db_ih + 2 * H, dxn, M, H, H);
        }
        if (dx) {
            FN(gemm_rows)(CblasNoTrans, CblasNoTrans, M, D, 2 * H, 1, dG, GH, w_ih, D, 1, dx,
                 D);
            FN(gemm_rows)(CblasNoTrans, CblasNoTrans, M, D, H, 1, dxn, H,
                 w_ih + (size_t)2 * H * D, D, 1, dx, D);
        }
    } else {
        if (dw_ih)
            FN(gemm_rows)(CblasTrans, CblasNoTrans, GH, D, M, 1, dG, GH, x, D, 1, dw_ih, D);
        if (db_ih) FN(add_colsum)(db_ih, dG, M, GH, GH);
        if (dx)
            FN(gemm_rows)(CblasNoTrans, CblasNoTrans, M, D, GH, 1, dG, GH, w_ih, D, 1, dx, D);
    }
    if (dw_hh) {
        if (classic) {
            /* the n block's left operand was r*h_{t-1}, kept in extra */
            FN(gemm_rows)(CblasTrans, CblasNoTrans, 2 * H, H, M, 1, dG, GH, s.hprev, H, 1,
                 dw_hh, H);
            FN(gemm_rows)(CblasTrans, CblasNoTrans, H, H, M, 1, dG + 2 * H, GH, s.extra, H, 1,
                 dw_hh + (size_t)2 * H * H, H);
        } else {
            FN(gemm_rows)(CblasTrans, CblasNoTrans, GH, H, M, 1, dG, GH, s.hprev, H, 1, dw_hh,
                 H);
        }
    }
    if (db_hh) FN(add_colsum)(db_hh, dG, M, GH, GH);
}

#undef FN
