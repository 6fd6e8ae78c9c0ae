/* The recurrent kernels, written once over `real`. csrc/rnn.c includes this file twice,
 * with real = float and real = double; see include/recur/rnn.h for the equations, the buffer
 * layouts and the memory formula. Not a public header.
 *
 * Threads: the sequences of a batch do not interact, so the time loops run on
 * sub-batches, one per thread (forward_share, backward_share), each doing its own small
 * products and pointwise passes with no synchronisation at all between steps; the GEMMs
 * over all T*B rows are split by rows the same way (gemm_share). With one thread, or a
 * batch too small to split, one loop covers the whole batch: BLAS threads its GEMMs and
 * the pointwise passes use an OpenMP loop over rows when the work is large.
 * A batch too small to split (float32 with the kernels, see use_units) splits the
 * hidden units instead: every thread runs every step for its own units of every gate
 * (rnn_units), their columns of the product (below 4 sequences straight from w_hh,
 * rnn_gemm_few; from 4 on, its panels of a copy packed per gate), and then the
 * pointwise pass on them; the threads meet once per step, where a step's h (backward:
 * its gate gradients) is whole. Each thread reads only its rows (forward) or columns
 * (backward) of w_hh, which stay in its own L2 from step to step.
 *
 * float32 with the packed kernels (csrc/rnn_gemm.h, RNN_PACKED): w_ih and w_hh are
 * packed once per call and every step does its own input projection (forward) and input
 * gradient (backward) against them, so that nothing runs between the time loop and
 * the call's one parallel region but the parameter gradients. Otherwise, and when w_ih
 * is too big to stay in the caches between steps (rnn_project_all), the input
 * projection and dx are GEMMs over all T*B rows, before and after the loop; in float32
 * on recur's blocked kernel, whose sums are the per-step kernel's, so that the choice
 * changes no result. */

#define FN(name) RNN_CONCAT(name, RNN_SUFFIX)

/* Saved buffer of one forward, in this order:
 *   act   (T,B,G*H)  gate activations (rnn: h_t itself); holds the pre-activations
 *                    until the step's pointwise pass
 *   extra (T,B,H)    lstm: c_{t-1}; gru: W_hn h_{t-1} + b_hn; classic gru: r*h_{t-1}
 *   hprev (T,B,H)    h_{t-1}: the left operand of the step GEMM and of dW_hh
 * Rows past a sequence's length are never read back. */
typedef struct {
    real *act, *extra, *hprev;
} FN(rnn_saved);

static FN(rnn_saved) FN(saved_layout)(recur_rnn_cell cell, real *saved, int T, int B, int H)
{
    size_t GH = (size_t)recur_rnn_gates(cell) * H, TB = (size_t)T * B;
    FN(rnn_saved) s;
    s.act = saved;
    s.extra = saved + TB * GH;
    s.hprev = s.extra + (rnn_has_extra(cell) ? TB * H : 0);
    return s;
}

/* C (M,N) = alpha op(A) op(B) + beta C (row-major) for the GEMMs over all T*B rows,
 * with the rows of C split over the threads: one single-threaded GEMM each (gemm_share
 * does share `part` of `parts`) and one join at the end. OpenBLAS's own threading
 * synchronises its threads many times per call, which costs little on an idle machine
 * and a great deal on a busy one.
 * With init (N) given, every row of C is first set to it and beta is 1: OpenBLAS
 * zeroes C in a pass of its own for beta = 0, so a row worth starting from (the biases)
 * costs nothing more. float runs recur's blocked kernel instead of BLAS (its results
 * are the same on any number of threads, and it needs no zeroing pass either). */
static void FN(gemm_share)(int part, int parts, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M,
                           int N, int K, real alpha, const real *A, int lda, const real *B, int ldb,
                           real beta, real *C, int ldc, const real *init, int own)
{
#if RNN_PACKED
    /* own (float): recur's blocked kernel, whose results do not depend on the split
     * (csrc/rnn_gemm.h); it shares the rows out in blocks of its own */
    if (own && alpha == 1 && rnn_gemm_packed_available()) {
        rnn_gemm_blocked(ta == CblasTrans, tb == CblasTrans, M, N, K, A, lda, B, ldb, init,
                         beta != 0, C, ldc, part, parts);
        return;
    }
#else
    (void)own;
#endif
    int m0 = (int)((int64_t)M * part / parts), m1 = (int)((int64_t)M * (part + 1) / parts);
    /* row m of op(A) is row m of A, or column m when A is transposed */
    const real *A_k = ta == CblasNoTrans ? A + (size_t)m0 * lda : A + m0;
    if (init)
        for (int m = m0; m < m1; m++) memcpy(C + (size_t)m * ldc, init, (size_t)N * sizeof(real));
    if (m1 > m0)
        GEMM(CblasRowMajor, ta, tb, m1 - m0, N, K, alpha, A_k, lda, B, ldb, init ? 1 : beta,
             C + (size_t)m0 * ldc, ldc);
}

static void FN(gemm_rows)(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                          real alpha, const real *A, int lda, const real *B, int ldb, real beta,
                          real *C, int ldc, const real *init, int own)
{
    int nth = rnn_gemm_threads(M, N, K);
    if (nth > 1) {
#pragma omp parallel num_threads(nth)
        FN(gemm_share)(omp_get_thread_num(), omp_get_num_threads(), ta, tb, M, N, K, alpha, A, lda,
                       B, ldb, beta, C, ldc, init, own);
    } else {
        FN(gemm_share)(0, 1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, init, own);
    }
}

/* The right operand of a step's product C = A op(w): w as stored, (N,K) when trans
 * (op(w) = w^T) else (K,N), rows ldw apart; and its packed copy (csrc/rnn_gemm.h) when
 * the sequence has one, else NULL. The copy holds `blocks` blocks of N columns of
 * op(w), each in panels of its own (a gate each where the threads split the units, so
 * that a thread's units are whole panels of every gate). */
typedef struct {
    const real *w;
    int ldw, trans, N, K, blocks;
    float *packed;
} FN(rnn_operand);

static FN(rnn_operand) FN(operand)(const real *w, int ldw, int trans, int N, int K)
{
    FN(rnn_operand) op = {w, ldw, trans, N, K, 1, NULL};
    return op;
}

/* Gives op a packed copy at *space (advanced past it) when use is set; fill_operand
 * writes it. Float only: the double kernels are the reference and keep to BLAS. */
static void FN(place_operand)(FN(rnn_operand) *op, float **space, int use)
{
#if RNN_PACKED
    if (!use) return;
    op->packed = *space;
    *space += op->blocks * rnn_gemm_packed_size(op->N, op->K);
#else
    (void)op, (void)space, (void)use;
#endif
}

/* Share `part` of `parts` of the packing of op (nothing when it has no packed copy). */
static void FN(fill_operand)(FN(rnn_operand) op, int part, int parts)
{
#if RNN_PACKED
    if (!op.packed) return;
    for (int b = 0; b < op.blocks; b++)
        rnn_gemm_pack(op.packed + b * rnn_gemm_packed_size(op.N, op.K),
                      op.w + (op.trans ? (size_t)b * op.N * op.ldw : (size_t)b * op.N), op.ldw,
                      op.trans, op.N, op.K, part, parts);
#else
    (void)op, (void)part, (void)parts;
#endif
}

/* C (M,N) = A (M,K) op(w) + (bias (N) repeated, or with accumulate C, else 0), A and C
 * with row strides lda, ldc; a bias only where w is packed or the units split.
 * par: spread over the threads (only outside the batch split). Splitting the units
 * (u.split), this thread's columns alone: units u.j0..u.j1-1 of each block of H. */
static void FN(step_gemm)(FN(rnn_operand) op, int M, const real *A, int lda, const real *bias,
                          int accumulate, real *C, int ldc, int par, rnn_units u)
{
#if RNN_PACKED
    if (u.split && op.packed) {
        /* units are whole panels of every block (rnn_units_share) */
        for (int b = 0; b < op.blocks; b++)
            rnn_gemm_packed_panels(M, op.N, op.K, A, lda,
                                   op.packed + b * rnn_gemm_packed_size(op.N, op.K), bias,
                                   accumulate, C + (size_t)b * op.N, ldc, u.j0 / RNN_PANEL,
                                   (u.j1 + RNN_PANEL - 1) / RNN_PANEL);
        return;
    }
    if (u.split) {
        for (int c = 0; c < op.N; c += u.H)
            rnn_gemm_few(op.trans, M, c + u.j0, c + u.j1, op.K, A, lda, op.w, op.ldw, bias,
                         accumulate, C, ldc);
        return;
    }
    if (op.packed) {
        rnn_gemm_packed(M, op.N, op.K, A, lda, op.packed, bias, accumulate, C, ldc, par);
        return;
    }
    if (M >= RNN_PACKED_MIN_ROWS && rnn_gemm_packed_available()) {
        /* a lone step (step(), T = 1): the blocked kernel, whose sums are the packed
         * kernel's, so that step() gives forward's bits */
        if (par) {
#pragma omp parallel
            rnn_gemm_blocked(0, op.trans, M, op.N, op.K, A, lda, op.w, op.ldw, NULL, accumulate, C,
                             ldc, omp_get_thread_num(), omp_get_num_threads());
        } else {
            rnn_gemm_blocked(0, op.trans, M, op.N, op.K, A, lda, op.w, op.ldw, NULL, accumulate, C,
                             ldc, 0, 1);
        }
        return;
    }
#endif
    (void)par, (void)u, (void)bias; /* BLAS threads its GEMMs itself; never a bias here */
    GEMM(CblasRowMajor, CblasNoTrans, op.trans ? CblasTrans : CblasNoTrans, M, op.N, op.K, 1, A,
         lda, op.w, op.ldw, accumulate ? 1 : 0, C, ldc);
}

/* Where the packed operands go in a workspace whose first `used` elements are taken:
 * the next 64-byte boundary (the kernels load whole cache lines). */
static float *FN(packed_space)(real *workspace, size_t used)
{
    return (float *)(((uintptr_t)(workspace + used) + 63) & ~(uintptr_t)63);
}

/* Whether a sequence's steps use packed operands: with the kernels there, more than
 * one step (packing costs about one product) and at least 4 rows in every step's
 * product (fewer split the units instead, see use_units). */
static int FN(use_packed)(int T, int rows)
{
#if RNN_PACKED
    return T > 1 && rows >= RNN_PACKED_MIN_ROWS && rnn_gemm_packed_available();
#else
    (void)T, (void)rows;
    return 0;
#endif
}

/* Whether the threads split a sequence's units rather than its batch: float32 with
 * the kernels, a batch too small to split (below, every step forked for its products
 * and again for its pointwise pass), and a cell whose step is one product (the classic
 * gru's are two, with r*h between). Fewer than 4 sequences multiply by w_hh as stored
 * (rnn_gemm_few), more by a copy packed per gate, which a lone step (step(), whose
 * workspace has no room for it) does without. The products are the same sums however
 * the units are shared, so the results do not depend on the thread count. */
static int FN(use_units)(recur_rnn_cell cell, int T, int B)
{
    return RNN_PACKED && (B < RNN_PACKED_MIN_ROWS || (B < RNN_UNITS_MAX_ROWS && T > 1)) &&
           cell != RECUR_RNN_GRU_CLASSIC && rnn_gemm_packed_available();
}

/* ---- forward ------------------------------------------------------------- */

/* The pointwise work of one row (one sequence at one step), one function per cell,
 * over restrict pointers so that GCC vectorises the loop over j (with float, SIGMOID and
 * TANH are csrc/rnn_math.h's branch-free functions). ROW_CLONES compiles the float
 * ones for AVX2 and AVX-512 as well, picked at load time; with -ffp-contract=off every
 * version rounds alike, so the results do not depend on the machine.
 * Pre-activations arrive in the gate blocks (x w_ih^T + biases, see recur_rnn_forward, plus
 * h w_hh^T except for the gru) and leave as activations. */

/* lstm: c, h are updated in place, e gets c_{t-1} */
ROW_CLONES static void FN(lstm_forward_row)(real *restrict ai, real *restrict af,
                                            real *restrict ag, real *restrict ao,
                                            real *restrict e, real *restrict c, real *restrict h,
                                            real *restrict y, int H)
{
    for (int j = 0; j < H; j++) {
        real i = SIGMOID(ai[j]);
        real f = SIGMOID(af[j]);
        real g = TANH(ag[j]);
        real o = SIGMOID(ao[j]);
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        e[j] = c[j];
        real cn = f * c[j] + i * g;
        c[j] = cn;
        real hv = o * TANH(cn);
        h[j] = hv;
        y[j] = hv;
    }
}

/* gru: gh holds h w_hh^T (r, z, n blocks H apart), bhn is b_hn (the n block's
 * pre-activation has b_in only); h is updated in place, e gets W_hn h + b_hn; n units */
ROW_CLONES static void FN(gru_forward_row)(real *restrict ar, real *restrict az,
                                           real *restrict an, real *restrict e,
                                           real *restrict h, real *restrict y,
                                           const real *restrict gh, const real *restrict bhn,
                                           int H, int n)
{
    for (int j = 0; j < n; j++) {
        real r = SIGMOID(ar[j] + gh[j]);
        real z = SIGMOID(az[j] + gh[H + j]);
        real hn = gh[2 * H + j] + bhn[j];
        real n = TANH(an[j] + r * hn);
        ar[j] = r;
        az[j] = z;
        an[j] = n;
        e[j] = hn;
        real hv = (1 - z) * n + z * h[j];
        h[j] = hv;
        y[j] = hv;
    }
}

/* rnn: a gets h_t, which h and y get too */
ROW_CLONES static void FN(rnn_forward_row)(recur_rnn_cell cell, real *restrict a, real *restrict h,
                                           real *restrict y, int H)
{
    if (cell == RECUR_RNN_TANH) {
        for (int j = 0; j < H; j++) {
            real hv = TANH(a[j]);
            a[j] = hv;
            h[j] = hv;
            y[j] = hv;
        }
    } else if (cell == RECUR_RNN_RELU) {
        for (int j = 0; j < H; j++) {
            real hv = a[j] > 0 ? a[j] : 0;
            a[j] = hv;
            h[j] = hv;
            y[j] = hv;
        }
    } else { /* RECUR_RNN_IDENTITY: a already holds h_t */
        for (int j = 0; j < H; j++) {
            real hv = a[j];
            h[j] = hv;
            y[j] = hv;
        }
    }
}

/* classic gru, first half: r and z from gh = h w_hr,z^T, and rh = r*h */
ROW_CLONES static void FN(classic_rz_row)(real *restrict ar, real *restrict az,
                                          real *restrict rh, const real *restrict h,
                                          const real *restrict gh, int H)
{
    for (int j = 0; j < H; j++) {
        real r = SIGMOID(ar[j] + gh[j]);
        ar[j] = r;
        az[j] = SIGMOID(az[j] + gh[H + j]);
        rh[j] = r * h[j];
    }
}

/* classic gru, second half: ghn = (r*h) w_hn^T; z is already an activation */
ROW_CLONES static void FN(classic_n_row)(const real *restrict az, real *restrict an,
                                         real *restrict h, real *restrict y,
                                         const real *restrict ghn, int H)
{
    for (int j = 0; j < H; j++) {
        real z = az[j];
        real n = TANH(an[j] + ghn[j]);
        an[j] = n;
        real hv = (1 - z) * n + z * h[j];
        h[j] = hv;
        y[j] = hv;
    }
}

/* One step's pointwise pass over nb rows for the cells whose recurrent product is one
 * GEMM (rnn, lstm, gru): nonlinearities, state update, output.
 * act is (nb,G*H): x w_ih^T + h_{t-1} w_hh^T in (gru: x w_ih^T only), activations out;
 * gh is (nb,G*H) = h_{t-1} w_hh^T for the gru, unused otherwise;
 * extra is (nb,H); h, c are (nb,H) states updated in place; y_t is (nb,H); hnext is
 * (nb,H), the next step's h_{t-1}, or NULL after the last step; bhn is the gru's b_hn
 * (H); lens is (nb) or NULL. */
static void FN(forward_pointwise_one)(recur_rnn_cell cell, real *act, real *extra, real *h, real *c,
                                      real *y_t, real *hnext, const real *gh, const real *bhn,
                                      const int64_t *lens, int t, int b, int H, rnn_units u)
{
    /* units j0..j1-1 of every gate block (all H but where the threads split the units) */
    const int GH = recur_rnn_gates(cell) * H, j0 = u.j0, nj = u.j1 - u.j0;
    real *y_b = y_t + (size_t)b * H + j0;
    real *h_b = h + (size_t)b * H + j0;
    real *hn_b = hnext ? hnext + (size_t)b * H + j0 : NULL;
    if (lens && t >= lens[b]) {
        /* past the end (or, reversed, before the start): state frozen, output zero */
        for (int j = 0; j < nj; j++) y_b[j] = 0;
    } else {
        real *a = act + (size_t)b * GH + j0;
        real *e_b = extra + (size_t)b * H + j0;
        if (cell == RECUR_RNN_LSTM)
            FN(lstm_forward_row)(a, a + H, a + 2 * H, a + 3 * H, e_b, c + (size_t)b * H + j0, h_b,
                                 y_b, nj);
        else if (cell == RECUR_RNN_GRU)
            FN(gru_forward_row)(a, a + H, a + 2 * H, e_b, h_b, y_b, gh + (size_t)b * GH + j0,
                                bhn + j0, H, nj);
        else
            FN(rnn_forward_row)(cell, a, h_b, y_b, nj);
    }
    if (hn_b) memcpy(hn_b, h_b, (size_t)nj * sizeof(real));
}

static void FN(forward_pointwise)(recur_rnn_cell cell, real *act, real *extra, real *h, real *c,
                                  real *y_t, real *hnext, const real *gh, const real *bhn,
                                  const int64_t *lens, int t, int nb, int H, int par, rnn_units u)
{
    RNN_ROWS(par, nb, FN(forward_pointwise_one)(cell, act, extra, h, c, y_t, hnext, gh, bhn,
                                                lens, t, row_, H, u));
}

/* Classic GRU, first half of a step: r and z from gh[:, 0:2H] = h w_hr,z^T, and
 * extra = r*h, the left operand of the n product. Rows past the end get r*h = 0. */
static void FN(forward_classic_rz_one)(real *act, real *extra, const real *h, const real *gh,
                                       const int64_t *lens, int t, int b, int H)
{
    const int GH = 3 * H;
    real *a = act + (size_t)b * GH;
    real *e_b = extra + (size_t)b * H;
    if (lens && t >= lens[b])
        for (int j = 0; j < H; j++) e_b[j] = 0;
    else
        FN(classic_rz_row)(a, a + H, e_b, h + (size_t)b * H, gh + (size_t)b * GH, H);
}

static void FN(forward_classic_rz)(real *act, real *extra, const real *h, const real *gh,
                                   const int64_t *lens, int t, int nb, int H, int par)
{
    RNN_ROWS(par, nb, FN(forward_classic_rz_one)(act, extra, h, gh, lens, t, row_, H));
}

/* Classic GRU, second half: gh[:, 2H:3H] = (r*h) w_hn^T, then n and the update. */
static void FN(forward_classic_n_one)(real *act, real *h, real *y_t, real *hnext,
                                      const real *gh, const int64_t *lens, int t, int b, int H)
{
    const int GH = 3 * H;
    real *y_b = y_t + (size_t)b * H;
    real *h_b = h + (size_t)b * H;
    if (!(lens && t >= lens[b])) {
        real *a = act + (size_t)b * GH;
        FN(classic_n_row)(a + H, a + 2 * H, h_b, y_b, gh + (size_t)b * GH + 2 * H, H);
    } else {
        for (int j = 0; j < H; j++) y_b[j] = 0;
    }
    if (hnext) memcpy(hnext + (size_t)b * H, h_b, (size_t)H * sizeof(real));
}

static void FN(forward_classic_n)(real *act, real *h, real *y_t, real *hnext, const real *gh,
                                  const int64_t *lens, int t, int nb, int H, int par)
{
    RNN_ROWS(par, nb, FN(forward_classic_n_one)(act, h, y_t, hnext, gh, lens, t, row_, H));
}

/* What every thread's share of a forward reads (see recur_rnn_forward). */
typedef struct {
    recur_rnn_cell cell;
    real *y, *hn, *cn;
    FN(rnn_saved) s;
    const real *x, *h0, *c0;
    const int64_t *lengths;
    int reverse, T, B, D, H;
    /* the steps' right operands: w_ih (when packed, the steps do the input projection
     * themselves) and w_hh (the classic gru: its r, z rows, and whh_n its n rows) */
    FN(rnn_operand) wih, whh, whh_n;
    const real *binit, *bhn; /* biases, see load_biases */
    int project_steps;       /* split units, few rows in all: the steps project x */
} FN(rnn_fwd);

/* Units u.j0..u.j1-1 of nb rows H apart: dst = src, or zeros without src. */
static void FN(copy_units)(real *dst, const real *src, int nb, int H, rnn_units u)
{
    const size_t n = (size_t)(u.j1 - u.j0) * sizeof(real);
    for (int i = 0; i < nb; i++) {
        real *d = dst + (size_t)i * H + u.j0;
        if (src) memmove(d, src + (size_t)i * H + u.j0, n);
        else memset(d, 0, n);
    }
}

/* Threads that split the units meet here (see the top of this file). */
static void FN(units_barrier)(rnn_units u)
{
    if (u.parts > 1) {
#pragma omp barrier
    }
}

/* The time loop of forward for rows b0..b0+nb-1 of the batch (B rows per step), or
 * for units u.j0..u.j1-1 of every row when the threads split the units.
 * hn, cn are (B,H) running states, gh is (nb,G*H) scratch. */
static void FN(forward_rows)(const FN(rnn_fwd) *f, int b0, int nb, real *gh, int par, rnn_units u)
{
    const recur_rnn_cell cell = f->cell;
    const int T = f->T, B = f->B, D = f->D, H = f->H, G = recur_rnn_gates(cell), GH = G * H;
    const FN(rnn_saved) s = f->s;
    const size_t BH = (size_t)B * H;
    const int64_t *lens = f->lengths ? f->lengths + b0 : NULL;
    real *h = f->hn + (size_t)b0 * H, *c = f->cn ? f->cn + (size_t)b0 * H : NULL;

    /* hn (and cn) carry the running state; a sequence's state stops changing after its
     * last step, so they end up holding the final states. */
    FN(copy_units)(h, f->h0 ? f->h0 + (size_t)b0 * H : NULL, nb, H, u);
    if (cell == RECUR_RNN_LSTM) FN(copy_units)(c, f->c0 ? f->c0 + (size_t)b0 * H : NULL, nb, H, u);
    FN(copy_units)(s.hprev + (f->reverse ? T - 1 : 0) * BH + (size_t)b0 * H, h, nb, H, u);
    FN(units_barrier)(u);

    for (int step = 0; step < T; step++) {
        const int t = f->reverse ? T - 1 - step : step;
        const size_t row = (size_t)t * B + b0; /* first row of this sub-batch at time t */
        real *act_t = s.act + row * GH;
        real *extra_t = s.extra + row * H;
        real *hprev_t = s.hprev + row * H;
        real *y_t = f->y + row * H;
        real *hnext = NULL; /* the next step's h_{t-1}, written by the pointwise pass */
        if (step + 1 < T) hnext = s.hprev + ((size_t)(f->reverse ? t - 1 : t + 1) * B + b0) * H;
#if RNN_PACKED
        /* the input projection of this step, from the biases: binit + x_t w_ih^T */
        if (f->wih.packed || f->project_steps)
            FN(step_gemm)(f->wih, nb, f->x + row * D, D, f->binit, 0, act_t, GH, par, u);
#else
        (void)D;
#endif
        if (cell == RECUR_RNN_GRU_CLASSIC) { /* never splits the units */
            FN(step_gemm)(f->whh, nb, hprev_t, H, NULL, 0, gh, GH, par, u);
            FN(forward_classic_rz)(act_t, extra_t, hprev_t, gh, lens, t, nb, H, par);
            FN(step_gemm)(f->whh_n, nb, extra_t, H, NULL, 0, gh + 2 * H, GH, par, u);
            FN(forward_classic_n)(act_t, h, y_t, hnext, gh, lens, t, nb, H, par);
        } else if (cell == RECUR_RNN_GRU) {
            /* n needs W_hn h apart from W_in x: the product goes to its own buffer */
            FN(step_gemm)(f->whh, nb, hprev_t, H, NULL, 0, gh, GH, par, u);
            FN(forward_pointwise)(cell, act_t, extra_t, h, c, y_t, hnext, gh, f->bhn, lens, t, nb,
                                  H, par, u);
        } else {
            /* lstm, rnn: the product adds straight onto x w_ih^T */
            FN(step_gemm)(f->whh, nb, hprev_t, H, NULL, 1, act_t, GH, par, u);
            FN(forward_pointwise)(cell, act_t, extra_t, h, c, y_t, hnext, NULL, NULL, lens, t, nb,
                                  H, par, u);
        }
        /* the next step's product reads all of hnext */
        if (hnext) FN(units_barrier)(u);
    }
}

/* The row every step's pre-activations start from, binit (G*H): b_ih + b_hh, except in
 * the gru's n block, whose b_hn goes inside r*(...) and is kept apart in bhn (H).
 * Zeros stand in for missing biases. */
static void FN(load_biases)(recur_rnn_cell cell, real *binit, real *bhn, const real *b_ih,
                            const real *b_hh, int H)
{
    const int GH = recur_rnn_gates(cell) * H, split = cell == RECUR_RNN_GRU ? 2 * H : GH;
    for (int k = 0; k < GH; k++) {
        real bi = b_ih ? b_ih[k] : 0, bh = b_hh ? b_hh[k] : 0;
        binit[k] = k < split ? bi + bh : bi;
        if (k >= split) bhn[k - split] = bh;
    }
}

/* Thread `part` of `parts`: its share of the packing, then (once every share is packed)
 * its sub-batch through all the steps; or, splitting the units, its units of every
 * sequence (nothing is packed then). */
static void FN(forward_share)(const FN(rnn_fwd) *f, int part, int parts, real *gh, int par,
                              int units)
{
    const int B = f->B, GH = recur_rnn_gates(f->cell) * f->H;
    FN(fill_operand)(f->wih, part, parts);
    FN(fill_operand)(f->whh, part, parts);
    if (f->cell == RECUR_RNN_GRU_CLASSIC) FN(fill_operand)(f->whh_n, part, parts);
    if (units) {
        const rnn_units u = rnn_units_share(f->H, part, parts);
#if RNN_PACKED
        if (!f->project_steps) {
            /* the input projection of all steps for this thread's units alone (the
             * blocked kernel sums each element alike however its columns are split),
             * so that no thread waits for another's before the steps */
            const int G = recur_rnn_gates(f->cell), H = f->H, D = f->D, M = f->T * B;
            for (int g = 0; g < G; g++) {
                const int c0 = g * H + u.j0;
                rnn_gemm_blocked(0, 1, M, u.j1 - u.j0, D, f->x, D, f->wih.w + (size_t)c0 * D, D,
                                 f->binit + c0, 0, f->s.act + c0, GH, 0, 1);
            }
        }
#endif
        FN(forward_rows)(f, 0, B, gh, 0, u);
        return;
    }
    if (parts > 1) {
#pragma omp barrier
    }
    int b0 = (int)((int64_t)B * part / parts), b1 = (int)((int64_t)B * (part + 1) / parts);
    FN(forward_rows)(f, b0, b1 - b0, gh + (size_t)b0 * GH, par, rnn_units_all(f->H));
}

void FN(recur_rnn_forward)(recur_rnn_cell cell, real *y, real *hn, real *cn, real *saved, const real *x,
                     const real *w_ih, const real *w_hh, const real *b_ih, const real *b_hh,
                     const real *h0, const real *c0, const int64_t *lengths, int reverse,
                     int T, int B, int D, int H, real *workspace)
{
    // y is (T,B,H), hn and cn are (B,H), x is (T,B,D), w_ih is (G*H,D), w_hh is (G*H,H),
    // b_ih and b_hh are (G*H) or NULL, h0 and c0 are (B,H) or NULL, lengths is (B) or NULL,
    // saved is recur_rnn_saved_size(), workspace is recur_rnn_forward_workspace_size()
    if (T < 0 || B <= 0 || D < 0 || H <= 0) return; /* nothing to write (rnn.h) */
    if (T == 0) {
        /* no step: the final state is the initial one */
        const size_t BH = (size_t)B * H;
        if (h0) memmove(hn, h0, BH * sizeof(real));
        else memset(hn, 0, BH * sizeof(real));
        if (cell == RECUR_RNN_LSTM) {
            if (c0) memmove(cn, c0, BH * sizeof(real));
            else memset(cn, 0, BH * sizeof(real));
        }
        return;
    }
    /* the team for this call (or one thread, on a busy machine: csrc/threads.c) */
    const recur_threads_call call = recur_threads_begin(
        recur_threads_key((int64_t[]){0, sizeof(real), cell, T, B, D, H, reverse}, 8));
    const int G = recur_rnn_gates(cell), GH = G * H, classic = cell == RECUR_RNN_GRU_CLASSIC;
    real *gh = workspace;              /* (B,G*H) recurrent product of one step */
    real *binit = gh + (size_t)B * GH; /* (G*H) */
    real *bhn = binit + GH;            /* (H), gru */
    FN(load_biases)(cell, binit, bhn, b_ih, b_hh, H);

    FN(rnn_fwd) f = {cell, y, hn, cn, FN(saved_layout)(cell, saved, T, B, H), x, h0, c0, lengths,
                     reverse, T, B, D, H, FN(operand)(w_ih, D, 1, GH, D),
                     FN(operand)(w_hh, H, 1, classic ? 2 * H : GH, H),
                     FN(operand)(classic ? w_hh + (size_t)2 * H * H : w_hh, H, 1, H, H), binit, bhn,
                     0};
    /* up to 15 sequences split the units (their steps' products straight from w_hh
     * below 4, on a copy packed per gate from 4; the input projection over all rows,
     * or in the steps below 4 sequences when there are few rows in all: a lone step,
     * generation's), more split the batch */
    const int units = FN(use_units)(cell, T, B), packs = units && B >= RNN_PACKED_MIN_ROWS;
    f.project_steps = units && !packs && T * B < RNN_BLOCKED_MIN_ROWS;
    const int nth = units ? rnn_units_threads(B, G, H) : rnn_split_threads(T, B, G, H);
    const int use = packs || (!units && FN(use_packed)(T, B / nth));
    float *space = use ? FN(packed_space)(workspace, rnn_forward_base_size(cell, B, H)) : NULL;
    const int all = packs || (use && rnn_project_all(GH, D, B / nth));
    if (packs) f.whh.blocks = G, f.whh.N = H; /* a thread's units: the same panels of every gate */
    FN(place_operand)(&f.wih, &space, use && !all);
    FN(place_operand)(&f.whh, &space, use);
    if (classic) FN(place_operand)(&f.whh_n, &space, use);
    if ((!use || all) && !units) {
        /* the input projection of all steps at once, with the biases:
         * act = binit + x w_ih^T, (T*B,D) x (D,G*H) (splitting the units, every thread
         * projects its own in forward_share) */
        FN(gemm_rows)(CblasNoTrans, CblasTrans, T * B, GH, D, 1, x, D, w_ih, D, 1, f.s.act, GH,
                      binit, B >= RNN_PACKED_MIN_ROWS);
    }

    /* one parallel region for all the steps (or none: then BLAS and the pointwise
     * loops thread themselves, which they cannot inside an inactive region) */
    if (nth > 1) {
#pragma omp parallel num_threads(nth)
        FN(forward_share)(&f, omp_get_thread_num(), omp_get_num_threads(), gh, 0, units);
    } else {
        FN(forward_share)(&f, 0, 1, gh, units ? 0 : rnn_parallel_rows(B, G, H), units);
    }
    recur_threads_end(&call);
}

void FN(recur_rnn_step)(recur_rnn_cell cell, real *h, real *c, const real *x, const real *w_ih,
                  const real *w_hh, const real *b_ih, const real *b_hh, int B, int D, int H,
                  real *workspace)
{
    // h and c are (B,H) updated in place, x is (B,D), workspace is recur_rnn_step_workspace_size()
    /* a forward of one step whose saved buffer and output live in the workspace */
    real *saved = workspace;
    real *y = saved + recur_rnn_saved_size(cell, 1, B, H);
    real *fwork = y + (size_t)B * H;
    FN(recur_rnn_forward)(cell, y, h, c, saved, x, w_ih, w_hh, b_ih, b_hh, h, c, NULL, 0, 1, B, D, H,
                    fwork);
}

/* ---- backward ------------------------------------------------------------ */

/* The pointwise backward of one row, one function per cell (vectorised and cloned
 * like the forward rows). dh (and dc) hold the gradient of h_t (c_t) and leave holding
 * its direct part in h_{t-1} (c_{t-1}); the dA blocks get the gradients of the gate
 * pre-activations on the recurrent side. */

/* lstm: i, f, g, o activations; cp = c_{t-1} */
ROW_CLONES static void FN(lstm_backward_row)(real *restrict dai, real *restrict daf,
                                             real *restrict dag, real *restrict dao,
                                             real *restrict dh, real *restrict dc,
                                             const real *restrict ai, const real *restrict af,
                                             const real *restrict ag, const real *restrict ao,
                                             const real *restrict cp, int H)
{
    for (int j = 0; j < H; j++) {
        real i = ai[j], f = af[j], g = ag[j], o = ao[j];
        real tc = TANH(f * cp[j] + i * g); /* c_t recomputed exactly as in forward */
        real dhv = dh[j];
        real dcv = dc[j] + dhv * o * (1 - tc * tc);
        dai[j] = dcv * g * i * (1 - i);
        daf[j] = dcv * cp[j] * f * (1 - f);
        dag[j] = dcv * i * (1 - g * g);
        dao[j] = dhv * tc * o * (1 - o);
        dc[j] = dcv * f;
        dh[j] = 0;
    }
}

/* gru: r, z, n activations; ghn = W_hn h_{t-1} + b_hn; hp = h_{t-1}; dxn gets the n
 * gradient on the input side (without the factor r) */
ROW_CLONES static void FN(gru_backward_row)(real *restrict dar, real *restrict daz,
                                            real *restrict dan, real *restrict dxn,
                                            real *restrict dh, const real *restrict ar,
                                            const real *restrict az, const real *restrict an,
                                            const real *restrict ghn, const real *restrict hp,
                                            int H)
{
    for (int j = 0; j < H; j++) {
        real r = ar[j], z = az[j], n = an[j];
        real dhv = dh[j];
        real dn = dhv * (1 - z) * (1 - n * n);
        dar[j] = dn * ghn[j] * r * (1 - r);
        daz[j] = dhv * (hp[j] - n) * z * (1 - z);
        dan[j] = dn * r;
        dxn[j] = dn;
        dh[j] = dhv * z;
    }
}

/* classic gru, first half: the z and n gradients (r's needs dA_n w_hn, done after) */
ROW_CLONES static void FN(classic_backward_row)(real *restrict daz, real *restrict dan,
                                                real *restrict dh, const real *restrict az,
                                                const real *restrict an,
                                                const real *restrict hp, int H)
{
    for (int j = 0; j < H; j++) {
        real z = az[j], n = an[j];
        real dhv = dh[j];
        daz[j] = dhv * (hp[j] - n) * z * (1 - z);
        dan[j] = dhv * (1 - z) * (1 - n * n);
        dh[j] = dhv * z;
    }
}

/* rnn: a is h_t */
ROW_CLONES static void FN(rnn_backward_row)(recur_rnn_cell cell, real *restrict da, real *restrict dh,
                                            const real *restrict a, int H)
{
    if (cell == RECUR_RNN_TANH) {
        for (int j = 0; j < H; j++) {
            da[j] = dh[j] * (1 - a[j] * a[j]);
            dh[j] = 0;
        }
    } else if (cell == RECUR_RNN_RELU) {
        for (int j = 0; j < H; j++) {
            da[j] = a[j] > 0 ? dh[j] : 0;
            dh[j] = 0;
        }
    } else { /* RECUR_RNN_IDENTITY: the derivative is 1 */
        for (int j = 0; j < H; j++) {
            da[j] = dh[j];
            dh[j] = 0;
        }
    }
}

/* One step's pointwise backward over nr = nb*S rows: row i*S + s is sequence i of the
 * sub-batch in output window s (S = 1 without truncation).
 * dh, dc are (nr,H) carried gradients of h_t, c_t, replaced in place by their direct
 * contribution to h_{t-1}, c_{t-1} (the GEMM with w_hh adds the rest).
 * dA is (nr,G*H): gradients of the gate pre-activations on the recurrent side;
 * dAxn is (nr,H), gru only: the n pre-activation gradient on the input side (it lacks
 * the factor r). act (nb,G*H), extra (nb,H), hprev (nb,H) are the saved rows of step t.
 * Classic gru: this is the first half; r's gradient needs (dA_n w_hn), done after. */
static void FN(backward_pointwise_one)(recur_rnn_cell cell, real *dA, real *dAxn, real *dh,
                                       real *dc, const real *act, const real *extra,
                                       const real *hprev, const int64_t *lens, int t, int row,
                                       int S, int H, rnn_units u)
{
    /* units j0..j1-1 of every gate block, as in forward_pointwise_one */
    const int G = recur_rnn_gates(cell), GH = G * H, j0 = u.j0, nj = u.j1 - u.j0;
    const int b = row / S;
    real *dA_r = dA + (size_t)row * GH + j0;
    if (lens && t >= lens[b]) {
        /* frozen step: the state passes through unchanged, so do its gradients */
        for (int g = 0; g < G; g++)
            for (int j = 0; j < nj; j++) dA_r[(size_t)g * H + j] = 0;
        if (cell == RECUR_RNN_GRU)
            for (int j = 0; j < nj; j++) dAxn[(size_t)row * H + j0 + j] = 0;
        return;
    }
    const real *a = act + (size_t)b * GH + j0;
    const real *e_b = extra + (size_t)b * H + j0;
    const real *hp = hprev + (size_t)b * H + j0;
    real *dh_r = dh + (size_t)row * H + j0;
    if (cell == RECUR_RNN_LSTM)
        FN(lstm_backward_row)(dA_r, dA_r + H, dA_r + 2 * H, dA_r + 3 * H, dh_r,
                              dc + (size_t)row * H + j0, a, a + H, a + 2 * H, a + 3 * H, e_b, nj);
    else if (cell == RECUR_RNN_GRU)
        FN(gru_backward_row)(dA_r, dA_r + H, dA_r + 2 * H, dAxn + (size_t)row * H + j0, dh_r, a,
                             a + H, a + 2 * H, e_b, hp, nj);
    else if (cell == RECUR_RNN_GRU_CLASSIC)
        FN(classic_backward_row)(dA_r + H, dA_r + 2 * H, dh_r, a + H, a + 2 * H, hp, nj);
    else
        FN(rnn_backward_row)(cell, dA_r, dh_r, a, nj);
}

static void FN(backward_pointwise)(recur_rnn_cell cell, real *dA, real *dAxn, real *dh, real *dc,
                                   const real *act, const real *extra, const real *hprev,
                                   const int64_t *lens, int t, int nr, int S, int H, int par,
                                   rnn_units u)
{
    RNN_ROWS(par, nr, FN(backward_pointwise_one)(cell, dA, dAxn, dh, dc, act, extra, hprev, lens,
                                                 t, row_, S, H, u));
}

/* Classic GRU, second half: drh (nr,H) = dA_n w_hn is the gradient of r*h_{t-1}. */
ROW_CLONES static void FN(classic_r_row)(real *restrict dar, real *restrict dh,
                                         const real *restrict drh, const real *restrict ar,
                                         const real *restrict hp, int H)
{
    for (int j = 0; j < H; j++) {
        real r = ar[j];
        dar[j] = drh[j] * hp[j] * r * (1 - r);
        dh[j] += drh[j] * r;
    }
}

static void FN(backward_classic_r_one)(real *dA, real *dh, const real *drh, const real *act,
                                       const real *hprev, const int64_t *lens, int t, int row,
                                       int S, int H)
{
    const int GH = 3 * H, b = row / S;
    if (lens && t >= lens[b]) return;
    FN(classic_r_row)(dA + (size_t)row * GH, dh + (size_t)row * H, drh + (size_t)row * H,
                      act + (size_t)b * GH, hprev + (size_t)b * H, H);
}

static void FN(backward_classic_r)(real *dA, real *dh, const real *drh, const real *act,
                                   const real *hprev, const int64_t *lens, int t, int nr, int S,
                                   int H, int par)
{
    RNN_ROWS(par, nr, FN(backward_classic_r_one)(dA, dh, drh, act, hprev, lens, t, row_, S, H));
}

/* out (nb,N) = in (nb*S,N) summed over each row's S windows: a step's gate gradients
 * are the sum over the output windows that reach it. Only units u.j0..u.j1-1 of each
 * block of H columns. */
static void FN(sum_windows_one)(real *out, const real *in, int b, int S, int N, int H,
                                rnn_units u)
{
    real *o = out + (size_t)b * N;
    const real *in_b = in + (size_t)b * S * N;
    for (int g = 0; g < N; g += H) {
        for (int k = g + u.j0; k < g + u.j1; k++) o[k] = in_b[k];
        for (int s = 1; s < S; s++)
            for (int k = g + u.j0; k < g + u.j1; k++) o[k] += in_b[(size_t)s * N + k];
    }
}

static void FN(sum_windows)(real *out, const real *in, int nb, int S, int N, int H, int par,
                            rnn_units u)
{
    RNN_ROWS(par, nb, FN(sum_windows_one)(out, in, row_, S, N, H, u));
}

/* db (N) += column sums of m (M rows, leading dimension ld), and db2 too unless NULL:
 * b_ih and b_hh share their gradient wherever they enter the same pre-activation, and
 * one pass over the (T*B,G*H) gradients is half the memory traffic of two. Share `part`
 * of `parts` of the columns (0 of 1: all, with an OpenMP loop when large). */
static void FN(add_colsum_one)(real *db, real *db2, const real *m, int64_t M, int N, int ld,
                               int ch)
{
    int lo = ch * RNN_COLSUM_CHUNK, hi = lo + RNN_COLSUM_CHUNK < N ? lo + RNN_COLSUM_CHUNK : N;
    real acc[RNN_COLSUM_CHUNK] = {0};
    for (int64_t r = 0; r < M; r++) {
        const real *m_r = m + r * ld;
        for (int k = lo; k < hi; k++) acc[k - lo] += m_r[k];
    }
    for (int k = lo; k < hi; k++) db[k] += acc[k - lo];
    if (db2)
        for (int k = lo; k < hi; k++) db2[k] += acc[k - lo];
}

static void FN(add_colsum)(real *db, real *db2, const real *m, int64_t M, int N, int ld, int part,
                           int parts)
{
    const int nchunk = (N + RNN_COLSUM_CHUNK - 1) / RNN_COLSUM_CHUNK;
    const int c0 = nchunk * part / parts, c1 = nchunk * (part + 1) / parts;
    RNN_ROWS(parts == 1 && M * N >= RNN_OMP_MIN && !omp_in_parallel(), c1 - c0,
             FN(add_colsum_one)(db, db2, m, M, N, ld, c0 + row_));
}

/* Backward workspace, as counted by recur_rnn_backward_workspace_size. The carried and
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

/* What every thread's share of a backward reads (see recur_rnn_backward). */
typedef struct {
    recur_rnn_cell cell;
    real *dx, *dh0, *dc0, *dw_ih, *dw_hh, *db_ih, *db_hh;
    const real *dy, *dhn, *dcn, *x, *w_ih;
    FN(rnn_saved) s;
    FN(rnn_bwork) w;
    const int64_t *lengths;
    int reverse, truncated, S, T, B, D, H;
    /* the steps' right operands: w_hh (the classic gru: its r, z rows, and whh_n its n
     * rows) and, when packed, w_ih for the steps' own dx (the gru: r, z rows and n rows) */
    FN(rnn_operand) whh, whh_n, wih, wih_n;
} FN(rnn_bwd);

/* The time loop of backward for rows b0..b0+nb-1 of the batch (or units u.j0..u.j1-1 of
 * every row, as in forward_rows): fills dG and dxn rows, adds into dh0, dc0 rows, and
 * into dx rows when w_ih is packed. */
static void FN(backward_rows)(const FN(rnn_bwd) *f, int b0, int nb, int par, rnn_units u)
{
    const recur_rnn_cell cell = f->cell;
    const int T = f->T, B = f->B, D = f->D, H = f->H, S = f->S, G = recur_rnn_gates(cell), GH = G * H;
    const int lstm = cell == RECUR_RNN_LSTM, gru = cell == RECUR_RNN_GRU, classic = cell == RECUR_RNN_GRU_CLASSIC;
    const int reverse = f->reverse;
    const FN(rnn_saved) s = f->s;
    const FN(rnn_bwork) w = f->w;
    const real *dy = f->dy, *dhn = f->dhn, *dcn = f->dcn;
    real *dh0 = f->dh0, *dc0 = f->dc0;
    const int nr = nb * S; /* rows of this sub-batch in the carried buffers */
    const int64_t *lens = f->lengths ? f->lengths + b0 : NULL;
    real *dh = w.dh + (size_t)b0 * S * H, *dc = w.dc + (size_t)b0 * S * H;
    real *drh = w.drh + (size_t)b0 * S * H;
    real *winA = w.winA + (size_t)b0 * S * GH, *winxn = w.winxn + (size_t)b0 * S * H;

    const int j0 = u.j0, j1 = u.j1;
    FN(copy_units)(dh, NULL, nr, H, u);
    if (lstm) FN(copy_units)(dc, NULL, nr, H, u);
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
            if (f->truncated) {
                FN(copy_units)(dh_i, NULL, 1, H, u);
                if (lstm) FN(copy_units)(dc_i, NULL, 1, H, u);
            }
            int64_t len = lens ? lens[i] : T;
            if (t >= len) continue; /* outputs past the end are constant zeros */
            if (dy) {
                const real *dy_i = dy + row * H + (size_t)i * H;
                for (int j = j0; j < j1; j++) dh_i[j] += dy_i[j];
            }
            /* the final state is an output of the sequence's last step */
            if (t == (reverse ? 0 : len - 1)) {
                const size_t off = (size_t)(b0 + i) * H;
                if (dhn)
                    for (int j = j0; j < j1; j++) dh_i[j] += dhn[off + j];
                if (lstm && dcn)
                    for (int j = j0; j < j1; j++) dc_i[j] += dcn[off + j];
            }
        }

        FN(backward_pointwise)(cell, dA, dAxn, dh, dc, act_t, extra_t, hprev_t, lens, t, nr, S, H,
                               par, u);
        /* the product reads every unit's gate gradients */
        FN(units_barrier)(u);
        if (classic) { /* never splits the units */
            FN(step_gemm)(f->whh_n, nr, dA + 2 * H, GH, NULL, 0, drh, H, par, u);
            FN(backward_classic_r)(dA, dh, drh, act_t, hprev_t, lens, t, nr, S, H, par);
            FN(step_gemm)(f->whh, nr, dA, GH, NULL, 1, dh, H, par, u);
        } else {
            FN(step_gemm)(f->whh, nr, dA, GH, NULL, 1, dh, H, par, u);
        }
        if (S > 1) {
            FN(sum_windows)(w.dG + row * GH, winA, nb, S, GH, H, par, u);
            if (gru) FN(sum_windows)(w.dxn + row * H, winxn, nb, S, H, H, par, u);
            FN(units_barrier)(u); /* the next step overwrites winA, read whole until here */
        }
        if (f->dx && f->wih.packed) {
            /* this step's input gradient: dx_t += dG_t w_ih (the gru: dxn_t for n); never
             * when the units are split */
            real *dx_t = f->dx + row * D;
            FN(step_gemm)(f->wih, nb, w.dG + row * GH, GH, NULL, 1, dx_t, D, par, u);
            if (gru) FN(step_gemm)(f->wih_n, nb, w.dxn + row * H, H, NULL, 1, dx_t, D, par, u);
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
                    for (int j = j0; j < j1; j++) dh0[off + j] += dh_i[j];
                if (lstm && dc0)
                    for (int j = j0; j < j1; j++) dc0[off + j] += dc_i[j];
            }
        }
    }
}

/* A GEMM over all T*B rows (see gemm_share), share `part` of `parts`; one share of one
 * is the whole product, split over the threads by gemm_rows when large. */
static void FN(gemm_part)(int part, int parts, CBLAS_TRANSPOSE ta, int M, int N, int K,
                          const real *A, int lda, const real *B, int ldb, real *C, int ldc)
{
    /* float's blocked kernel for the weight gradients, and for dx unless it has only a
     * few rows (a short sequence at batch 1: packing w_ih would cost three times the
     * memory traffic of BLAS's GEMV, which reads it once) */
    const int own = ta == CblasTrans || M >= RNN_BLOCKED_MIN_ROWS;
    if (parts == 1)
        FN(gemm_rows)(ta, CblasNoTrans, M, N, K, 1, A, lda, B, ldb, 1, C, ldc, NULL, own);
    else if (!own) {
        /* a few rows (split units, short sequence): BLAS may sum a share of them in
         * another order than all of them, so one thread does all as on one thread */
        if (part == 0)
            FN(gemm_share)(0, 1, ta, CblasNoTrans, M, N, K, 1, A, lda, B, ldb, 1, C, ldc, NULL, 0);
    } else
        FN(gemm_share)(part, parts, ta, CblasNoTrans, M, N, K, 1, A, lda, B, ldb, 1, C, ldc, NULL,
                       own);
}

/* dW_ih += dG^T x and dW_hh += dG^T h_{t-1} (dG (M,GH)) from one packing of dG^T
 * (rnn_gemm_blocked_pair): the same chains as two gemm_part calls; and with db1, the
 * column sums of dG added to db1 and db2 as add_colsum adds them. Float's kernels
 * only; share `part` of `parts`, or all threads when parts is 1. */
static void FN(weight_grads_pair)(int part, int parts, int GH, int M, const real *dG, const real *x,
                                  int D, real *dw_ih, const real *hprev, int H, real *dw_hh,
                                  real *db1, real *db2)
{
#if RNN_PACKED
    if (parts == 1) {
        const int nth = rnn_gemm_threads(GH, D + H, M);
        if (nth > 1) {
#pragma omp parallel num_threads(nth)
            rnn_gemm_blocked_pair(1, GH, M, dG, GH, D, x, D, dw_ih, D, H, hprev, H, dw_hh, H, 1,
                                  db1, db2, omp_get_thread_num(), omp_get_num_threads());
            return;
        }
        part = 0;
    }
    rnn_gemm_blocked_pair(1, GH, M, dG, GH, D, x, D, dw_ih, D, H, hprev, H, dw_hh, H, 1, db1, db2,
                          part, parts);
#else
    (void)part, (void)parts, (void)GH, (void)M, (void)dG, (void)x, (void)D, (void)dw_ih,
        (void)hprev, (void)H, (void)dw_hh, (void)db1, (void)db2;
#endif
}

/* The parameter gradients (and dx unless the steps did it) over all T*B rows at once,
 * share `part` of `parts`: each product split by rows of its result, the bias sums by
 * columns, so that the shares write disjoint parts and need no synchronisation. */
static void FN(param_grads)(const FN(rnn_bwd) *f, int part, int parts)
{
    const int H = f->H, D = f->D, GH = recur_rnn_gates(f->cell) * H, M = f->T * f->B;
    const int gru = f->cell == RECUR_RNN_GRU, classic = f->cell == RECUR_RNN_GRU_CLASSIC;
    const real *dG = f->w.dG, *dxn = f->w.dxn, *x = f->x, *w_ih = f->w_ih;
    real *dw_ih = f->dw_ih, *dw_hh = f->dw_hh, *db_ih = f->db_ih, *db_hh = f->db_hh;
    real *dx = f->wih.packed ? NULL : f->dx;
    /* b_ih and b_hh take the same column sums of dG (the gru: in its r, z blocks) */
    real *db1 = db_ih ? db_ih : db_hh, *db2 = db_ih ? db_hh : NULL;
    if (gru) {
        /* the r, z blocks are shared by both sides; the n block differs (dxn vs dG) */
        if (dw_ih) {
            FN(gemm_part)(part, parts, CblasTrans, 2 * H, D, M, dG, GH, x, D, dw_ih, D);
            FN(gemm_part)(part, parts, CblasTrans, H, D, M, dxn, H, x, D,
                          dw_ih + (size_t)2 * H * D, D);
        }
        if (db1) FN(add_colsum)(db1, db2, dG, M, 2 * H, GH, part, parts);
        if (db_ih) FN(add_colsum)(db_ih + 2 * H, NULL, dxn, M, H, H, part, parts);
        if (db_hh) FN(add_colsum)(db_hh + 2 * H, NULL, dG + 2 * H, M, H, GH, part, parts);
        if (dx) {
            FN(gemm_part)(part, parts, CblasNoTrans, M, D, 2 * H, dG, GH, w_ih, D, dx, D);
            FN(gemm_part)(part, parts, CblasNoTrans, M, D, H, dxn, H, w_ih + (size_t)2 * H * D, D,
                          dx, D);
        }
    } else {
        /* the lstm and the rnn: both weight gradients take dG^T on the left */
        if (dw_ih && dw_hh && !classic && RNN_PACKED && rnn_gemm_packed_available()) {
            /* the bias sums too, as dG^T is packed */
            FN(weight_grads_pair)(part, parts, GH, M, dG, x, D, dw_ih, f->s.hprev, H, dw_hh, db1,
                                  db2);
            dw_hh = NULL, db1 = NULL;
        } else if (dw_ih) {
            FN(gemm_part)(part, parts, CblasTrans, GH, D, M, dG, GH, x, D, dw_ih, D);
        }
        if (db1) FN(add_colsum)(db1, db2, dG, M, GH, GH, part, parts);
        if (dx) FN(gemm_part)(part, parts, CblasNoTrans, M, D, GH, dG, GH, w_ih, D, dx, D);
    }
    if (dw_hh) {
        if (classic) {
            /* the n block's left operand was r*h_{t-1}, kept in extra */
            FN(gemm_part)(part, parts, CblasTrans, 2 * H, H, M, dG, GH, f->s.hprev, H, dw_hh, H);
            FN(gemm_part)(part, parts, CblasTrans, H, H, M, dG + 2 * H, GH, f->s.extra, H,
                          dw_hh + (size_t)2 * H * H, H);
        } else {
            FN(gemm_part)(part, parts, CblasTrans, GH, H, M, dG, GH, f->s.hprev, H, dw_hh, H);
        }
    }
}

/* Thread `part` of `parts`: its share of the packing; its sub-batch (or, splitting the
 * units, its units of every sequence, as in forward_share) through all the steps; once
 * every thread is done (the parameter gradients need every row), its share of the
 * parameter gradients. */
static void FN(backward_share)(const FN(rnn_bwd) *f, int part, int parts, int par, int units)
{
    const int B = f->B;
    FN(fill_operand)(f->whh, part, parts);
    if (f->cell == RECUR_RNN_GRU_CLASSIC) FN(fill_operand)(f->whh_n, part, parts);
    FN(fill_operand)(f->wih, part, parts);
    if (f->cell == RECUR_RNN_GRU) FN(fill_operand)(f->wih_n, part, parts);
    if (units) {
        FN(backward_rows)(f, 0, B, 0, rnn_units_share(f->H, part, parts));
    } else {
        if (parts > 1) {
#pragma omp barrier
        }
        int b0 = (int)((int64_t)B * part / parts), b1 = (int)((int64_t)B * (part + 1) / parts);
        FN(backward_rows)(f, b0, b1 - b0, par, rnn_units_all(f->H));
    }
    if (parts > 1) {
#pragma omp barrier
    }
    FN(param_grads)(f, part, parts);
}

void FN(recur_rnn_backward)(recur_rnn_cell cell, real *dx, real *dh0, real *dc0, real *dw_ih, real *dw_hh,
                      real *db_ih, real *db_hh, const real *dy, const real *dhn, const real *dcn,
                      const real *saved, const real *x, const real *w_ih, const real *w_hh,
                      const int64_t *lengths, int reverse, int bptt_truncate, int T, int B,
                      int D, int H, real *workspace)
{
    // dx is (T,B,D), dh0 and dc0 are (B,H), dw_ih is (G*H,D), dw_hh is (G*H,H),
    // db_ih and db_hh are (G*H), dy is (T,B,H), dhn and dcn are (B,H), x is (T,B,D),
    // saved is recur_rnn_saved_size(), workspace is recur_rnn_backward_workspace_size()
    if (T < 0 || B <= 0 || D < 0 || H <= 0) return; /* nothing to accumulate (rnn.h) */
    if (T == 0) {
        /* no step: the final state is the initial one, and so are their gradients */
        const size_t BH = (size_t)B * H;
        if (dh0 && dhn)
            for (size_t i = 0; i < BH; i++) dh0[i] += dhn[i];
        if (cell == RECUR_RNN_LSTM && dc0 && dcn)
            for (size_t i = 0; i < BH; i++) dc0[i] += dcn[i];
        return;
    }
    const recur_threads_call call = recur_threads_begin(recur_threads_key(
        (int64_t[]){1, sizeof(real), cell, T, B, D, H, reverse + 2 * (bptt_truncate + 1)}, 8));
    const int G = recur_rnn_gates(cell), GH = G * H;
    const size_t TB = (size_t)T * B;
    const int gru = cell == RECUR_RNN_GRU, classic = cell == RECUR_RNN_GRU_CLASSIC;
    const int S = rnn_slots(T, bptt_truncate);
    const size_t SBH = (size_t)S * B * H;

    FN(rnn_bwork) w;
    w.dG = workspace;
    w.dxn = w.dG + TB * GH;
    w.dh = w.dxn + (gru ? TB * H : 0);
    w.dc = w.dh + SBH;
    w.drh = w.dc + (cell == RECUR_RNN_LSTM ? SBH : 0);
    w.winA = w.drh + (classic ? SBH : 0);
    w.winxn = w.winA + (S > 1 ? SBH * G : 0);

    FN(rnn_bwd) f = {cell, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dy, dhn, dcn, x, w_ih,
                     FN(saved_layout)(cell, (real *)saved, T, B, H), w, lengths, reverse,
                     bptt_truncate >= 0 && bptt_truncate + 1 < T, S, T, B, D, H,
                     FN(operand)(w_hh, H, 0, H, classic ? 2 * H : GH),
                     FN(operand)(classic ? w_hh + (size_t)2 * H * H : w_hh, H, 0, H, H),
                     FN(operand)(w_ih, D, 0, D, gru ? 2 * H : GH),
                     FN(operand)(gru ? w_ih + (size_t)2 * H * D : w_ih, D, 0, D, H)};
    const int units = FN(use_units)(cell, T, B), packs = units && B >= RNN_PACKED_MIN_ROWS;
    const int nth = units ? rnn_units_threads(B, G, H) : rnn_split_threads(T, B, G, H);
    const int use = packs || (!units && FN(use_packed)(T, B / nth * S));
    float *space = use ? FN(packed_space)(workspace, rnn_backward_base_size(cell, T, B, H,
                                                                            bptt_truncate))
                       : NULL;
    FN(place_operand)(&f.whh, &space, use);
    if (classic) FN(place_operand)(&f.whh_n, &space, use);
    const int all = packs || (use && rnn_project_all(GH, D, B / nth));
    FN(place_operand)(&f.wih, &space, use && dx && !all);
    if (gru) FN(place_operand)(&f.wih_n, &space, use && dx && !all);

    /* one parallel region for everything (or none, as in forward) */
    if (nth > 1) {
#pragma omp parallel num_threads(nth)
        FN(backward_share)(&f, omp_get_thread_num(), omp_get_num_threads(), 0, units);
    } else {
        FN(backward_share)(&f, 0, 1, units ? 0 : rnn_parallel_rows((int64_t)B * S, G, H), units);
    }
    recur_threads_end(&call);
}

#undef FN
