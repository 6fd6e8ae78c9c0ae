/* Fused recurrent kernels (see rnn.h). The kernels are written once in rnn_generic.h
 * over a `real` type and compiled here for float and for double. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "blas.h"
#include "rnn.h"

/* Below this many gate elements per step the time loop runs on one thread: forking
 * costs a few microseconds, more than a step's pointwise work. */
#define RNN_OMP_MIN 16384
/* Fewest sequences per thread when the time loop is split over the batch; below it
 * one loop covers the batch and OpenBLAS threads its GEMMs instead. */
#define RNN_MIN_ROWS 8
/* Multiply-adds from which a GEMM over all T*B rows is split over the threads by us. */
#define RNN_GEMM_SPLIT_MIN (1 << 22)

#define RNN_CONCAT_(a, b) a##b
#define RNN_CONCAT(a, b) RNN_CONCAT_(a, b)

int rnn_gates(rnn_cell cell)
{
    switch (cell) {
    case RNN_LSTM: return 4;
    case RNN_GRU:
    case RNN_GRU_CLASSIC: return 3;
    default: return 1;
    }
}

/* Whether the saved buffer holds a (T,B,H) row besides the gates and h_{t-1}. */
static int rnn_has_extra(rnn_cell cell)
{
    return cell == RNN_LSTM || cell == RNN_GRU || cell == RNN_GRU_CLASSIC;
}

/* Output windows carried side by side in backward: k+1 with bptt_truncate = k when it
 * truncates anything, else one. */
static int rnn_slots(int T, int bptt_truncate)
{
    return bptt_truncate >= 0 && bptt_truncate + 1 < T ? bptt_truncate + 1 : 1;
}

/* Threads for a time loop split over the batch (1: no split). Each thread runs its own
 * sub-batch through every step with single-threaded GEMMs (OpenMP OpenBLAS runs
 * serially inside a parallel region), so the steps need no synchronisation. Not with
 * the pthreads OpenBLAS, whose concurrent calls would each start their own threads. */
static int rnn_split_threads(int B, int G, int H)
{
    int nth = omp_get_max_threads();
    if (nth <= 1 || omp_in_parallel()) return 1;
    if ((int64_t)B * G * H < RNN_OMP_MIN || openblas_get_parallel() == 1) return 1;
    int most = B / RNN_MIN_ROWS;
    if (most < 2) return 1;
    return nth < most ? nth : most;
}

/* Threads for one large GEMM split by rows of the result (1: let OpenBLAS decide). */
static int rnn_gemm_threads(int M, int N, int K)
{
    int nth = omp_get_max_threads();
    if (nth <= 1 || omp_in_parallel() || openblas_get_parallel() == 1) return 1;
    if ((int64_t)M * N * K < RNN_GEMM_SPLIT_MIN || M < 2 * RNN_MIN_ROWS) return 1;
    return nth;
}

/* Whether a pointwise pass over `rows` rows is worth an OpenMP loop (only outside the
 * batch split: then OpenBLAS threads the GEMMs and the pointwise loops run alone). */
static int rnn_parallel_rows(int64_t rows, int G, int H)
{
    return rows * G * H >= RNN_OMP_MIN && omp_get_max_threads() > 1 && !omp_in_parallel();
}

size_t rnn_saved_size(rnn_cell cell, int T, int B, int H)
{
    size_t TBH = (size_t)T * B * H;
    return TBH * ((size_t)rnn_gates(cell) + (size_t)rnn_has_extra(cell) + 1);
}

size_t rnn_forward_workspace_size(rnn_cell cell, int B, int H)
{
    size_t GH = (size_t)rnn_gates(cell) * H;
    return (size_t)B * GH + 2 * GH;
}

size_t rnn_backward_workspace_size(rnn_cell cell, int T, int B, int H, int bptt_truncate)
{
    size_t G = (size_t)rnn_gates(cell), S = (size_t)rnn_slots(T, bptt_truncate);
    size_t TBH = (size_t)T * B * H, SBH = S * B * H;
    size_t n = TBH * G + SBH;                 /* dG, carried dh */
    if (cell == RNN_GRU) n += TBH;            /* dxn */
    if (cell == RNN_LSTM) n += SBH;           /* carried dc */
    if (cell == RNN_GRU_CLASSIC) n += SBH;    /* d(r*h) */
    if (S > 1) n += SBH * G + (cell == RNN_GRU ? SBH : 0); /* per-window gate gradients */
    return n;
}

size_t rnn_step_workspace_size(rnn_cell cell, int B, int H)
{
    return rnn_saved_size(cell, 1, B, H) + (size_t)B * H + rnn_forward_workspace_size(cell, B, H);
}

/* tanh for float through exp in double: with e = exp(-2|x|), (1 - e)/(1 + e) carries an
 * absolute rounding error near 1e-16, far below a float's precision for any result above
 * 1e-8 (below, tanh(x) = x in float). Measured over 10^7 points in [-4, 4] and a sweep of
 * small x, it is within half an ulp of tanh(x), where glibc's tanhf is within 2.1 ulps,
 * and three times faster: tanhf's expm1f was the largest cost of the LSTM pointwise passes. */
static inline float rnn_tanhf(float x)
{
    double ax = fabs((double)x);
    if (ax < 1e-8) return x;
    if (ax > 10) return x > 0 ? 1.0f : -1.0f; /* tanh(10) rounds to 1 in float */
    double e = exp(-2 * ax);
    double r = (1 - e) / (1 + e);
    return (float)(x < 0 ? -r : r);
}

#define real float
#define RNN_SUFFIX _f32
#define GEMM recur_sgemm
#define EXP expf
#define TANH rnn_tanhf
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef EXP
#undef TANH

#define real double
#define RNN_SUFFIX _f64
#define GEMM recur_dgemm
#define EXP exp
#define TANH tanh
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef EXP
#undef TANH
