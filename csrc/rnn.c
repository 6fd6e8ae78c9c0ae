/* Fused recurrent kernels (see rnn.h). The kernels are written once in rnn_generic.h
 * over a `real` type and compiled here for float and for double. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "blas.h"
#include "parallel.h"
#include "recur/rnn.h"
#include "recur/runtime.h"
#include "rnn_gemm.h"
#include "rnn_math.h"

/* Below this many gate elements per step a pointwise pass outside the batch split runs
 * on one thread: forking costs a few microseconds, more than a step's pointwise work. */
#define RNN_OMP_MIN 16384
/* Fewest sequences per thread when the time loop is split over the batch; below it
 * one loop covers the batch and OpenBLAS threads its GEMMs instead. */
#define RNN_MIN_ROWS 8
/* Fewest gate elements in a whole sequence (T*B*G*H) for the batch split: it forks once
 * per call, tens of microseconds on a virtual machine whose idle threads sleep. At
 * (T,B,G*H) = (20,16,128) the split already halved an LSTM's time on 2 threads; at
 * (10,16,64) it lost. */
#define RNN_SPLIT_MIN 32768
/* Fewest rows of a backward product over all T*B rows for recur's blocked kernel
 * (float32), and fewest rows per step for the packed per-step products: below, BLAS. */
#define RNN_BLOCKED_MIN_ROWS 16
#define RNN_PACKED_MIN_ROWS 4
/* Multiply-adds from which a GEMM over all T*B rows is split over the threads by us. */
#define RNN_GEMM_SPLIT_MIN (1 << 22)

/* for (row_ = 0; row_ < n; row_++) body;  as an OpenMP loop when par (parallel.h: the
 * time loops run several of these per step on every thread, most of them serial). */
#define RNN_ROWS(par, n, ...) RECUR_FOR(par, row_, n, __VA_ARGS__)

/* Columns per thread's share of a bias gradient's column sums. */
#define RNN_COLSUM_CHUNK 64

#define RNN_CONCAT_(a, b) a##b
#define RNN_CONCAT(a, b) RNN_CONCAT_(a, b)


int recur_rnn_gates(recur_rnn_cell cell)
{
    switch (cell) {
    case RECUR_RNN_LSTM: return 4;
    case RECUR_RNN_GRU:
    case RECUR_RNN_GRU_CLASSIC: return 3;
    default: return 1;
    }
}

/* Whether the saved buffer holds a (T,B,H) row besides the gates and h_{t-1}. */
static int rnn_has_extra(recur_rnn_cell cell)
{
    return cell == RECUR_RNN_LSTM || cell == RECUR_RNN_GRU || cell == RECUR_RNN_GRU_CLASSIC;
}

/* Output windows carried side by side in backward: k+1 with bptt_truncate = k when it
 * truncates anything, else one. */
static int rnn_slots(int T, int bptt_truncate)
{
    return bptt_truncate >= 0 && bptt_truncate + 1 < T ? bptt_truncate + 1 : 1;
}

#define RNN_STREAM_BYTES ((size_t)8 << 20)

/* Whether w_hh is so large that every thread streaming all of it at every step (the
 * batch split) costs more than a step's synchronisation: then the steps run on all the
 * threads together, each multiplying every row by its share of the weights' panels
 * (rnn_gemm_packed's par). Measured on AVX2 only (Zen 3, 32 MB of L3): the LSTM at
 * (T,B,D,H) = (50,32,1024,1024), w_hh 16 MB, took 384-455 ms for its forward on 2
 * threads against 479-515 split over the batch, and 1019-1033 ms against 1190-1238 for
 * forward + backward; the GRU at (50,32,1024,1024), w_hh 12 MB, 242-279 ms against
 * 269-362 and 665-673 against 722-792; at (100,64,512,512), 3-4 MB, the batch split
 * stayed as fast or faster. The sums are the same either way. */
static int rnn_weights_stream(int G, int H)
{
    /* not sysconf's L3 size: in a virtual machine it can be the host's (256 MB here,
     * where the guest has 32 MB) */
    return rnn_gemm_use_level(0) == 2 && (size_t)G * H * H * sizeof(float) >= RNN_STREAM_BYTES;
}

/* Threads for a time loop split over the batch (1: no split). Each thread runs its own
 * sub-batch through every step with single-threaded GEMMs (OpenMP OpenBLAS runs
 * serially inside a parallel region), so the steps need no synchronisation. Not with
 * the pthreads OpenBLAS, whose concurrent calls would each start their own threads. */
static int rnn_split_threads(int T, int B, int G, int H)
{
    int nth = omp_get_max_threads();
    if (nth <= 1 || omp_in_parallel()) return 1;
    if ((int64_t)T * B * G * H < RNN_SPLIT_MIN || openblas_get_parallel() == 1) return 1;
    if (rnn_weights_stream(G, H)) return 1;
    int most = B / RNN_MIN_ROWS;
    if (most < 2) return 1;
    return nth < most ? nth : most;
}

/* The hidden units j0..j1-1 (of H) that a time loop's thread computes: all of them,
 * or, when the threads split the units rather than the batch (split, rnn_generic.h),
 * share `part` of `parts` in whole groups of RNN_UNITS_GROUP units, so that no two
 * threads write the same cache line of a row. */
typedef struct {
    int split, parts, j0, j1, H;
} rnn_units;

#define RNN_UNITS_GROUP RNN_PANEL /* whole panels of the packed copies, too */

/* Fewest sequences whose steps split the batch rather than the units: two threads'
 * worth of RNN_MIN_ROWS. */
#define RNN_UNITS_MAX_ROWS (2 * RNN_MIN_ROWS)

static rnn_units rnn_units_all(int H)
{
    rnn_units u = {0, 1, 0, H, H};
    return u;
}

static rnn_units rnn_units_share(int H, int part, int parts)
{
    const int groups = (H + RNN_UNITS_GROUP - 1) / RNN_UNITS_GROUP;
    const int j0 = (int)((int64_t)groups * part / parts) * RNN_UNITS_GROUP;
    const int j1 = (int)((int64_t)groups * (part + 1) / parts) * RNN_UNITS_GROUP;
    rnn_units u = {1, parts, j0, j1 < H ? j1 : H, H};
    return u;
}

/* Fewest multiply-adds per step of a few sequences (B*G*H*H) for splitting their units
 * over the threads, which then meet once per step (Zen 4, 2 threads, T = 100, B = 1:
 * a tanh rnn at H = 200, 40000, took 0.32-0.39 ms for its backward split against
 * 0.50-0.53 on one thread; an LSTM at H = 64, 16384, gained nothing). */
#define RNN_UNITS_SPLIT_MIN 32768

/* Threads for a time loop that splits the units (1: one thread runs it alone): at most
 * one per group of units, and only for steps worth a meeting. */
static int rnn_units_threads(int B, int G, int H)
{
    int nth = omp_get_max_threads();
    if (nth <= 1 || omp_in_parallel() || openblas_get_parallel() == 1) return 1;
    if ((int64_t)B * G * H * H < RNN_UNITS_SPLIT_MIN) return 1;
    const int groups = (H + RNN_UNITS_GROUP - 1) / RNN_UNITS_GROUP;
    return nth < groups ? nth : groups;
}

/* Threads for one large GEMM split by rows of the result (1: let OpenBLAS decide). */
static int rnn_gemm_threads(int M, int N, int K)
{
    int nth = omp_get_max_threads();
    if (nth <= 1 || omp_in_parallel() || openblas_get_parallel() == 1) return 1;
    if ((int64_t)M * N * K < RNN_GEMM_SPLIT_MIN || M < 2 * RNN_MIN_ROWS) return 1;
    return nth;
}

/* Whether the input projection (and dx) run over all T*B rows at once on the blocked
 * kernel rather than in every step against packed w_ih: when w_ih (G*H,D) is too big
 * to stay in the caches from one step to the next, every step would stream all of it
 * for a few rows. With AVX-512 (Zen 5, 1 MB of L2 per core) the per-step kernel kept up
 * to 8 MB: at (T,B,D,H) = (50,32,1024,1024), w_ih 16 MB, an LSTM layer's training step
 * took 10-18% less time on one core projecting all rows, and at (100,64,512,512), 4 MB,
 * the steps were 6% faster. The AVX2 per-step kernel (Zen 3, 512 KB of L2) runs a
 * step's few rows at 40-65 GFLOP/s against the blocked kernel's 70-77, so there every
 * w_ih that L2 cannot hold is projected at once: (100,64,512,512) on one core, 1311-1371
 * ms -> 1212-1251. With few rows per thread and step, a step streams all of w_ih for
 * them: Zaremba's medium word model (batch 20 on 2 threads, 10 rows each; w_ih 6.8 MB)
 * ran its two layers' forward in 54 ms per step through the steps and 46 projecting
 * all rows, the backward in 84 and 73; so with fewer than RNN_PROJECT_ALL_ROWS rows a
 * w_ih that L2 cannot hold is projected at once there too. The sums are the same
 * either way (csrc/rnn_gemm.h). */
#define RNN_PROJECT_ALL_BYTES ((size_t)8 << 20)
#define RNN_PROJECT_ALL_ROWS 16

static int rnn_project_all(int GH, int D, int rows)
{
    static size_t limit; /* looked up once; threads that race store the same value */
    size_t lim = __atomic_load_n(&limit, __ATOMIC_RELAXED);
    if (!lim) {
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        lim = l2 > 0 ? (size_t)l2 : (size_t)512 << 10;
        __atomic_store_n(&limit, lim, __ATOMIC_RELAXED);
    }
    const size_t bytes = (size_t)GH * D * sizeof(float);
    if (rnn_gemm_use_level(0) == 3 && rows >= RNN_PROJECT_ALL_ROWS) return bytes > RNN_PROJECT_ALL_BYTES;
    return bytes > lim;
}

/* Whether a pointwise pass over `rows` rows is worth an OpenMP loop (only outside the
 * batch split: then OpenBLAS threads the GEMMs and the pointwise loops run alone). */
static int rnn_parallel_rows(int64_t rows, int G, int H)
{
    return rows * G * H >= RNN_OMP_MIN && omp_get_max_threads() > 1 && !omp_in_parallel();
}

size_t recur_rnn_saved_size(recur_rnn_cell cell, int T, int B, int H)
{
    size_t TBH = (size_t)T * B * H;
    return TBH * ((size_t)recur_rnn_gates(cell) + (size_t)rnn_has_extra(cell) + 1);
}

/* Elements for w_ih and w_hh packed as the steps' right operands (rnn_gemm.h), in
 * forward or in backward, whichever needs more, and 16 to start them on a 64-byte
 * boundary. Counted in floats: only float32 packs, float64 leaves the space unused. */
static size_t rnn_packed_floats(recur_rnn_cell cell, int D, int H)
{
    const int GH = recur_rnn_gates(cell) * H;
    /* forward: x w_ih^T and h w_hh^T; backward: dG w_ih and dG w_hh */
    size_t f = rnn_gemm_packed_size(GH, D), b;
    if (cell == RECUR_RNN_GRU_CLASSIC) {
        f += rnn_gemm_packed_size(2 * H, H) + rnn_gemm_packed_size(H, H);
        b = rnn_gemm_packed_size(H, H) + rnn_gemm_packed_size(H, 2 * H);
    } else {
        /* w_hh in one block, or a block per gate where the threads split the units */
        const size_t whole = rnn_gemm_packed_size(GH, H);
        const size_t gates = (size_t)recur_rnn_gates(cell) * rnn_gemm_packed_size(H, H);
        f += whole > gates ? whole : gates;
        b = rnn_gemm_packed_size(H, GH);
    }
    if (cell == RECUR_RNN_GRU) b += rnn_gemm_packed_size(D, 2 * H) + rnn_gemm_packed_size(D, H);
    else b += rnn_gemm_packed_size(D, GH);
    return (f > b ? f : b) + 16;
}

/* The workspaces without the packed weights (which a single step does without). */
static size_t rnn_forward_base_size(recur_rnn_cell cell, int B, int H)
{
    size_t GH = (size_t)recur_rnn_gates(cell) * H;
    return (size_t)B * GH + 2 * GH;
}

static size_t rnn_backward_base_size(recur_rnn_cell cell, int T, int B, int H, int bptt_truncate)
{
    size_t G = (size_t)recur_rnn_gates(cell), S = (size_t)rnn_slots(T, bptt_truncate);
    size_t TBH = (size_t)T * B * H, SBH = S * B * H;
    size_t n = TBH * G + SBH;                 /* dG, carried dh */
    if (cell == RECUR_RNN_GRU) n += TBH;            /* dxn */
    if (cell == RECUR_RNN_LSTM) n += SBH;           /* carried dc */
    if (cell == RECUR_RNN_GRU_CLASSIC) n += SBH;    /* d(r*h) */
    if (S > 1) n += SBH * G + (cell == RECUR_RNN_GRU ? SBH : 0); /* per-window gate gradients */
    return n;
}

size_t recur_rnn_forward_workspace_size(recur_rnn_cell cell, int B, int D, int H)
{
    return rnn_forward_base_size(cell, B, H) + rnn_packed_floats(cell, D, H);
}

size_t recur_rnn_backward_workspace_size(recur_rnn_cell cell, int T, int B, int D, int H, int bptt_truncate)
{
    return rnn_backward_base_size(cell, T, B, H, bptt_truncate) + rnn_packed_floats(cell, D, H);
}

size_t recur_rnn_step_workspace_size(recur_rnn_cell cell, int B, int H)
{
    return recur_rnn_saved_size(cell, 1, B, H) + (size_t)B * H + rnn_forward_base_size(cell, B, H);
}

#define real float
#define RNN_SUFFIX _f32
#define GEMM recur_sgemm
#define SIGMOID rnn_sigmoidf
#define TANH rnn_tanhf
#define ROW_CLONES RNN_CLONES
#define RNN_PACKED 1
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef SIGMOID
#undef TANH
#undef ROW_CLONES
#undef RNN_PACKED

/* double is the reference (gradient checks): libm, exact to half an ulp or so */
static inline double rnn_sigmoid(double v) { return 1 / (1 + exp(-v)); }

#define real double
#define RNN_SUFFIX _f64
#define GEMM recur_dgemm
#define SIGMOID rnn_sigmoid
#define TANH tanh
#define ROW_CLONES
#define RNN_PACKED 0
#include "rnn_generic.h"
#undef real
#undef RNN_SUFFIX
#undef GEMM
#undef SIGMOID
#undef TANH
#undef ROW_CLONES
#undef RNN_PACKED
