/* The recurrent kernels, written once over `real`. csrc/rnn.c includes this file twice,
 * with real = float and real = double; see csrc/rnn.h for the equations, the buffer
 * layouts and the memory formula. Not a public header. */

#define FN(name) RNN_CONCAT(name, RNN_SUFFIX)

/* Saved buffer of one forward, in this order:
 *   act   (T,B,G*H)  gate activations (rnn: h_t itself); holds x w_ih^T before the step
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

/* ---- forward ------------------------------------------------------------- */

/* One step's pointwise pass for the cells whose recurrent product is done in one GEMM
 * (rnn, lstm, gru): nonlinearities, state update, output.
 * act is (B,G*H): x w_ih^T in, activations out; gh is (B,G*H) = h_{t-1} w_hh^T;
 * extra is (B,H); h, c are (B,H) states updated in place; y_t is (B,H);
 * bi, bh are (G*H) (zeros when there is no bias). */
static void FN(forward_pointwise)(rnn_cell cell, real *act, real *extra, real *h, real *c,
                                  real *y_t, const real *gh, const real *bi, const real *bh,
                                  const int64_t *lengths, int t, int B, int H)
{
    const int G = rnn_gates(cell), GH = G * H;
#pragma omp parallel for schedule(static) if ((int64_t)B * GH >= RNN_OMP_MIN)
    for (int b = 0; b < B; b++) {
        real *y_b = y_t + (size_t)b * H;
        if (lengths && t >= lengths[b]) {
            /* past the end (or, reversed, before the start): state frozen, output zero */
            for (int j = 0; j < H; j++) y_b[j] = 0;
            continue;
        }
        real *a = act + (size_t)b * GH;
        const real *g = gh + (size_t)b * GH;
        real *h_b = h + (size_t)b * H;
        real *e_b = extra + (size_t)b * H;
        if (cell == RNN_LSTM) {
            real *c_b = c + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                real i = FN(sigmoid)(a[j] + bi[j] + g[j] + bh[j]);
                real f = FN(sigmoid)(a[H + j] + bi[H + j] + g[H + j] + bh[H + j]);
                real gg = TANH(a[2 * H + j] + bi[2 * H + j] + g[2 * H + j] + bh[2 * H + j]);
                real o = FN(sigmoid)(a[3 * H + j] + bi[3 * H + j] + g[3 * H + j] + bh[3 * H + j]);
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
            for (int j = 0; j < H; j++) h_b[j] = y_b[j] = a[j] = TANH(a[j] + bi[j] + g[j] + bh[j]);
        } else { /* RNN_RELU */
            for (int j = 0; j < H; j++) {
                real v = a[j] + bi[j] + g[j] + bh[j];
                h_b[j] = y_b[j] = a[j] = v > 0 ? v : 0;
            }
        }
    }
}

/* Classic GRU, first half of a step: r and z from gh[:, 0:2H] = h w_hr,z^T, and
 * extra = r*h, the left operand of the n product. Rows past the end get r*h = 0. */
static void FN(forward_classic_rz)(real *act, real *extra, const real *h, const real *gh,
                                   const real *bi, const real *bh, const int64_t *lengths,
                                   int t, int B, int H)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if ((int64_t)B * GH >= RNN_OMP_MIN)
    for (int b = 0; b < B; b++) {
        real *a = act + (size_t)b * GH;
        const real *g = gh + (size_t)b * GH;
        const real *h_b = h + (size_t)b * H;
        real *e_b = extra + (size_t)b * H;
        if (lengths && t >= lengths[b]) {
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
static void FN(forward_classic_n)(real *act, real *h, real *y_t, const real *gh, const real *bi,
                                  const real *bh, const int64_t *lengths, int t, int B, int H)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if ((int64_t)B * GH >= RNN_OMP_MIN)
    for (int b = 0; b < B; b++) {
        real *y_b = y_t + (size_t)b * H;
        if (lengths && t >= lengths[b]) {
            for (int j = 0; j < H; j++) y_b[j] = 0;
            continue;
        }
        real *a = act + (size_t)b * GH;
        const real *g = gh + (size_t)b * GH;
        real *h_b = h + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            real z = a[H + j];
            real n = TANH(a[2 * H + j] + bi[2 * H + j] + g[2 * H + j] + bh[2 * H + j]);
            a[2 * H + j] = n;
            h_b[j] = y_b[j] = (1 - z) * n + z * h_b[j];
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
    const size_t BH = (size_t)B * H;
    FN(rnn_saved) s = FN(saved_layout)(cell, saved, T, B, H);
    real *gh = workspace;            /* (B,G*H) recurrent product of one step */
    real *bi = gh + (size_t)B * GH;  /* (G*H) */
    real *bh = bi + GH;              /* (G*H) */
    FN(load_biases)(bi, bh, b_ih, b_hh, GH);

    /* hn (and cn) carry the running state; a sequence's state stops changing after its
     * last step, so they end up holding the final states. */
    if (h0) { if (hn != h0) memcpy(hn, h0, BH * sizeof(real)); }
    else memset(hn, 0, BH * sizeof(real));
    if (cell == RNN_LSTM) {
        if (c0) { if (cn != c0) memcpy(cn, c0, BH * sizeof(real)); }
        else memset(cn, 0, BH * sizeof(real));
    }

    /* the input projection of all steps at once: act = x w_ih^T, (T*B,D) x (D,G*H) */
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T * B, GH, D, 1, x, D, w_ih, D, 0, s.act, GH);

    for (int step = 0; step < T; step++) {
        int t = reverse ? T - 1 - step : step;
        real *act_t = s.act + (size_t)t * B * GH;
        real *extra_t = s.extra + (size_t)t * BH;
        real *hprev_t = s.hprev + (size_t)t * BH;
        real *y_t = y + (size_t)t * BH;
        memcpy(hprev_t, hn, BH * sizeof(real));
        if (cell == RNN_GRU_CLASSIC) {
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, 2 * H, H, 1, hprev_t, H, w_hh, H, 0,
                 gh, GH);
            FN(forward_classic_rz)(act_t, extra_t, hprev_t, gh, bi, bh, lengths, t, B, H);
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, H, 1, extra_t, H,
                 w_hh + (size_t)2 * H * H, H, 0, gh + 2 * H, GH);
            FN(forward_classic_n)(act_t, hn, y_t, gh, bi, bh, lengths, t, B, H);
        } else {
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, GH, H, 1, hprev_t, H, w_hh, H, 0, gh,
                 GH);
            FN(forward_pointwise)(cell, act_t, extra_t, hn, cn, y_t, gh, bi, bh, lengths, t, B, H);
        }
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

/* One step's pointwise backward for R = S*B rows (S carried output windows, row
 * slot*B + b). dh, dc are (R,H) carried gradients of h_t, c_t, replaced in place by their
 * direct contribution to h_{t-1}, c_{t-1} (the GEMM with w_hh adds the rest).
 * dA is (R,G*H): gradients of the gate pre-activations on the recurrent side;
 * dAxn is (R,H), gru only: the n pre-activation gradient on the input side (it lacks
 * the factor r). act (B,G*H), extra (B,H), hprev (B,H) are the saved rows of step t.
 * Classic gru: this is the first half; r's gradient needs (dA_n w_hn), done after. */
static void FN(backward_pointwise)(rnn_cell cell, real *dA, real *dAxn, real *dh, real *dc,
                                   const real *act, const real *extra, const real *hprev,
                                   const int64_t *lengths, int t, int R, int B, int H)
{
    const int G = rnn_gates(cell), GH = G * H;
#pragma omp parallel for schedule(static) if ((int64_t)R * GH >= RNN_OMP_MIN)
    for (int row = 0; row < R; row++) {
        int b = row % B;
        real *dA_r = dA + (size_t)row * GH;
        if (lengths && t >= lengths[b]) {
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

/* Classic GRU, second half: drh (R,H) = dA_n w_hn is the gradient of r*h_{t-1}. */
static void FN(backward_classic_r)(real *dA, real *dh, const real *drh, const real *act,
                                   const real *hprev, const int64_t *lengths, int t, int R,
                                   int B, int H)
{
    const int GH = 3 * H;
#pragma omp parallel for schedule(static) if ((int64_t)R * GH >= RNN_OMP_MIN)
    for (int row = 0; row < R; row++) {
        int b = row % B;
        if (lengths && t >= lengths[b]) continue;
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

/* out (B,N) = sum over S slots of in (S*B,N): the step's gate gradients summed over the
 * output windows that reach it. */
static void FN(sum_slots)(real *out, const real *in, int S, int B, int N)
{
    const size_t BN = (size_t)B * N;
#pragma omp parallel for schedule(static) if ((int64_t)S * B * N >= RNN_OMP_MIN)
    for (int b = 0; b < B; b++) {
        real *o = out + (size_t)b * N;
        for (int k = 0; k < N; k++) o[k] = in[(size_t)b * N + k];
        for (int s = 1; s < S; s++) {
            const real *in_s = in + s * BN + (size_t)b * N;
            for (int k = 0; k < N; k++) o[k] += in_s[k];
        }
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
    const size_t BH = (size_t)B * H, TB = (size_t)T * B;
    const int lstm = cell == RNN_LSTM, gru = cell == RNN_GRU, classic = cell == RNN_GRU_CLASSIC;
    FN(rnn_saved) s = FN(saved_layout)(cell, (real *)saved, T, B, H);
    const int truncated = bptt_truncate >= 0 && bptt_truncate + 1 < T;
    const int S = rnn_slots(T, bptt_truncate);

    /* workspace, as counted by rnn_backward_workspace_size */
    real *dG = workspace;                          /* (T,B,G*H) gate gradients, recurrent side */
    real *dxn = dG + TB * GH;                      /* (T,B,H) gru: n gradient, input side */
    real *dh = dxn + (gru ? TB * H : 0);           /* (S,B,H) carried dh */
    real *dc = dh + S * BH;                        /* (S,B,H) carried dc, lstm */
    real *drh = dc + (lstm ? S * BH : 0);          /* (S,B,H) classic gru: d(r*h) */
    real *slotA = drh + (classic ? S * BH : 0);    /* (S,B,G*H) per-window gate gradients */
    real *slotxn = slotA + (S > 1 ? S * BH * G : 0); /* (S,B,H) gru, per-window */

    for (int p = 0; p < T; p++) {
        /* backward visits the steps in the reverse of forward's order */
        int t = reverse ? p : T - 1 - p;
        const int slot = p % S;
        const int nact = truncated ? (p + 1 < S ? p + 1 : S) : 1; /* windows reaching t */
        const int R = nact * B;
        const real *act_t = s.act + (size_t)t * B * GH;
        const real *extra_t = s.extra + (size_t)t * BH;
        const real *hprev_t = s.hprev + (size_t)t * BH;
        real *dA = S > 1 ? slotA : dG + (size_t)t * B * GH;
        real *dAxn = S > 1 ? slotxn : dxn + (size_t)t * BH;

        /* the output of step t opens a window: with truncation in a fresh slot (the
         * window that used it has closed), otherwise added to the one carried gradient */
        real *dh_s = dh + slot * BH, *dc_s = dc + slot * BH;
        if (truncated || p == 0) {
            memset(dh_s, 0, BH * sizeof(real));
            if (lstm) memset(dc_s, 0, BH * sizeof(real));
        }
        for (int b = 0; b < B; b++) {
            int64_t len = lengths ? lengths[b] : T;
            if (t >= len) continue; /* outputs past the end are constant zeros */
            real *dh_b = dh_s + (size_t)b * H;
            if (dy) {
                const real *dy_b = dy + (size_t)t * BH + (size_t)b * H;
                for (int j = 0; j < H; j++) dh_b[j] += dy_b[j];
            }
            /* the final state is an output of the sequence's last step */
            if (t == (reverse ? 0 : len - 1)) {
                if (dhn)
                    for (int j = 0; j < H; j++) dh_b[j] += dhn[(size_t)b * H + j];
                if (lstm && dcn)
                    for (int j = 0; j < H; j++) dc_s[(size_t)b * H + j] += dcn[(size_t)b * H + j];
            }
        }

        FN(backward_pointwise)(cell, dA, dAxn, dh, dc, act_t, extra_t, hprev_t, lengths, t, R,
                               B, H);
        if (classic) {
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, H, H, 1, dA + 2 * H, GH,
                 w_hh + (size_t)2 * H * H, H, 0, drh, H);
            FN(backward_classic_r)(dA, dh, drh, act_t, hprev_t, lengths, t, R, B, H);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, H, 2 * H, 1, dA, GH, w_hh, H, 1,
                 dh, H);
        } else {
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, H, GH, 1, dA, GH, w_hh, H, 1, dh,
                 H);
        }
        if (S > 1) {
            FN(sum_slots)(dG + (size_t)t * B * GH, slotA, nact, B, GH);
            if (gru) FN(sum_slots)(dxn + (size_t)t * BH, slotxn, nact, B, H);
        }

        /* a sequence's first step passes its gradients on to h0, c0 */
        for (int b = 0; b < B; b++) {
            int64_t len = lengths ? lengths[b] : T;
            if (t != (reverse ? len - 1 : 0)) continue;
            for (int sl = 0; sl < nact; sl++) {
                const real *dh_b = dh + sl * BH + (size_t)b * H;
                const real *dc_b = dc + sl * BH + (size_t)b * H;
                if (dh0)
                    for (int j = 0; j < H; j++) dh0[(size_t)b * H + j] += dh_b[j];
                if (lstm && dc0)
                    for (int j = 0; j < H; j++) dc0[(size_t)b * H + j] += dc_b[j];
            }
        }
    }

    /* parameter and input gradients over all T*B rows at once */
    const int64_t M = (int64_t)TB;
    if (gru) {
        /* the r, z blocks are shared by both sides; the n block differs (dxn vs dG) */
        if (dw_ih) {
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, 2 * H, D, (int)M, 1, dG, GH, x, D, 1,
                 dw_ih, D);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H, D, (int)M, 1, dxn, H, x, D, 1,
                 dw_ih + (size_t)2 * H * D, D);
        }
        if (db_ih) {
            FN(add_colsum)(db_ih, dG, M, 2 * H, GH);
            FN(add_colsum)(db_ih + 2 * H, dxn, M, H, H);
        }
        if (dx) {
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, D, 2 * H, 1, dG, GH, w_ih, D,
                 1, dx, D);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, D, H, 1, dxn, H,
                 w_ih + (size_t)2 * H * D, D, 1, dx, D);
        }
    } else {
        if (dw_ih)
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, GH, D, (int)M, 1, dG, GH, x, D, 1, dw_ih,
                 D);
        if (db_ih) FN(add_colsum)(db_ih, dG, M, GH, GH);
        if (dx)
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, D, GH, 1, dG, GH, w_ih, D, 1, dx,
                 D);
    }
    if (dw_hh) {
        if (classic) {
            /* the n block's left operand was r*h_{t-1}, kept in extra */
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, 2 * H, H, (int)M, 1, dG, GH, s.hprev, H,
                 1, dw_hh, H);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, (int)M, 1, dG + 2 * H, GH, s.extra,
                 H, 1, dw_hh + (size_t)2 * H * H, H);
        } else {
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, GH, H, (int)M, 1, dG, GH, s.hprev, H, 1,
                 dw_hh, H);
        }
    }
    if (db_hh) FN(add_colsum)(db_hh, dG, M, GH, GH);
}

#undef FN
