/* Fused recurrent kernels (see rnn.h). The kernels are written once in rnn_generic.h
 * over a `real` type and compiled here for float and for double. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "rnn.h"

/* Below this many gate elements per step a pointwise pass runs on one thread: forking
 * costs a few microseconds, more than the loop itself. */
#define RNN_OMP_MIN 16384

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

#define real float
#define RNN_SUFFIX _f32
#define GEMM cblas_sgemm
#define EXP expf
#define TANH tanhf
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef EXP
#undef TANH

#define real double
#define RNN_SUFFIX _f64
#define GEMM cblas_dgemm
#define EXP exp
#define TANH tanh
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef EXP
#undef TANH
