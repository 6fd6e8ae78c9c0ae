/* Fused recurrent kernels (see rnn.h). The kernels are written once in rnn_generic.h
 * over a `real` type and compiled here for float and for double. */
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "blas.h"
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

/* for (int row_ = 0; row_ < n; row_++) body;  as an OpenMP loop when par. Not an if()
 * clause: a parallel region with if(0) still opens a one-thread team, about 3 us each
 * time, and the time loops run several of them per step on every thread. */
#define RNN_ROWS(par, n, ...)                                                                  \
    do {                                                                                       \
        if (par) {                                                                             \
            _Pragma("omp parallel for schedule(static)")                                       \
            for (int row_ = 0; row_ < (n); row_++) __VA_ARGS__;                                \
        } else {                                                                               \
            for (int row_ = 0; row_ < (n); row_++) __VA_ARGS__;                                \
        }                                                                                      \
    } while (0)

/* Columns per thread's share of a bias gradient's column sums. */
#define RNN_COLSUM_CHUNK 64

#define RNN_CONCAT_(a, b) a##b
#define RNN_CONCAT(a, b) RNN_CONCAT_(a, b)

/* ---- threads on a busy machine ------------------------------------------------
 *
 * When another process keeps a core busy, a thread of ours is descheduled now and then
 * for a whole time slice (milliseconds), and every call that waits for it, at a
 * barrier or at the end of a parallel region, waits that long: a small model then ran
 * 10x slower on 2 threads than on 1. libgomp reads its wait policy once, before recur
 * is loaded, so the cure has to be recur's own: each forward and backward call is
 * timed, and a bandit per call shape (kernel, cell, sizes) keeps the last three times
 * of each call on one thread and on the whole team, runs the faster by their medians
 * and tries the other once the calls since the last try have taken 32 times what the
 * other took last (and 4 calls at least). The first choice waits for three times of
 * each mode, taken in turn: the first calls of a shape are cold (weights packed,
 * buffers first touched), and a team chosen against from one cold time was not tried
 * again for 32 times that time, longer than a whole benchmark (a 3-layer model on 2
 * threads ran 1.6x slower than with the adaptation off). A try costs at most about 3% on a quiet
 * machine (one thread instead of the team) and on a busy one (a team call there took
 * 32 ms instead of 0.6 on one thread, at batch-1 generation). On a busy machine any
 * call can be descheduled for a time slice, one thread or two: a median does not move
 * for one such call, and the choice changes only for a mode 10% faster. The team in force is set for OpenMP and OpenBLAS
 * both, so the work between the recurrent calls (losses, output layers, the
 * optimiser, generation's softmax) follows the same choice. A quiet machine loses one
 * call in up to 256 to a probe on one thread; a busy one, one call in up to 256 to a
 * late team.
 *
 * Results do not depend on the choice: the kernels give the same bits on any team
 * where they do today (the batch split gives every sequence the same arithmetic). */
#define ADAPT_SLOTS 64
#define ADAPT_TRY_CALLS 4 /* fewest calls between two tries of the other mode */
#define ADAPT_TRY_BUDGET 32 /* and their time: this many of the other mode's time */
#define ADAPT_MARGIN 0.09531017980432486 /* log 1.1 */
#define ADAPT_FIRST 3 /* times of each mode before the first choice */

typedef struct {
    uint64_t key;
    double lt[2][3]; /* the last 3 log seconds: [0] one thread, [1] the team */
    int n[2];        /* times in lt (at most 3), and where the next goes */
    int at[2];
    int calls;       /* calls since the last try of the other mode */
    double spent;    /* and their seconds */
    int cur;         /* the mode chosen */
    int chosen;      /* whether cur is chosen: both modes have had ADAPT_FIRST times */
    int warm;        /* the team's first call, which starts its threads, is over */
} rnn_adapt_slot;

/* What a mode's times say: the median of the last three (one call descheduled for a
 * time slice, on a busy machine, moves nothing), the mean of two, or the one. */
static double adapt_estimate(const rnn_adapt_slot *s, int m)
{
    const double *t = s->lt[m];
    if (s->n[m] == 1) return t[0];
    if (s->n[m] == 2) return 0.5 * (t[0] + t[1]);
    double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
    return t[2] < lo ? lo : t[2] > hi ? hi : t[2];
}

static void adapt_forget(rnn_adapt_slot *s, int m)
{
    s->n[m] = s->at[m] = 0;
}

static void adapt_push(rnn_adapt_slot *s, int m, double l)
{
    s->lt[m][s->at[m]] = l;
    s->at[m] = (s->at[m] + 1) % 3;
    if (s->n[m] < 3) s->n[m]++;
}

static pthread_mutex_t adapt_lock = PTHREAD_MUTEX_INITIALIZER;
static rnn_adapt_slot adapt_slots[ADAPT_SLOTS];
static int team;          /* the user's team: recur_threads_set, else OpenMP's default */
static int in_force;      /* the team OpenMP and OpenBLAS have now */
static int adapt_on = 1;
static double adapt_fake[2] = {-1, -1};

/* Sets OpenMP's and OpenBLAS's thread counts, unless they are n already. */
static void adapt_apply(int n)
{
    if (n == in_force) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    in_force = n;
}

static void adapt_init(void)
{
    if (team == 0) team = in_force = omp_get_max_threads();
}

void recur_threads_set(int n)
{
    pthread_mutex_lock(&adapt_lock);
    team = n;
    in_force = 0; /* forces adapt_apply to set both */
    adapt_apply(n);
    memset(adapt_slots, 0, sizeof adapt_slots); /* times of another team say nothing */
    pthread_mutex_unlock(&adapt_lock);
}

int recur_threads_get(void)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    int n = team;
    pthread_mutex_unlock(&adapt_lock);
    return n;
}

int recur_threads_in_force(void)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    int n = in_force;
    pthread_mutex_unlock(&adapt_lock);
    return n;
}

void recur_threads_adapt(int on)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    adapt_on = on != 0;
    if (!adapt_on) adapt_apply(team);
    pthread_mutex_unlock(&adapt_lock);
}

int recur_threads_adapt_enabled(void)
{
    return adapt_on;
}

void recur_threads_adapt_fake(double one, double full)
{
    pthread_mutex_lock(&adapt_lock);
    /* fake times and the clock's do not mix; new fake times keep the old ones, so that
     * a spec can change the machine's load under the controller */
    if ((one < 0) != (adapt_fake[0] < 0)) memset(adapt_slots, 0, sizeof adapt_slots);
    adapt_fake[0] = one;
    adapt_fake[1] = full;
    pthread_mutex_unlock(&adapt_lock);
}

/* One timed call: its slot (NULL: not adapted), the mode it runs in (0 one thread,
 * 1 the team), whether that is a probe of the slower mode, and when it started. */
typedef struct {
    rnn_adapt_slot *slot;
    int mode, probe;
    double start;
} rnn_adapt_call;

static double adapt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


/* Picks the team for a call of shape key and sets it. The team runs first (its first
 * call pays for starting the threads and is forgotten), then the two modes in turn
 * until each has ADAPT_FIRST times. */
static rnn_adapt_call rnn_adapt_begin(uint64_t key)
{
    rnn_adapt_call c = {NULL, 1, 0, 0};
    if (omp_in_parallel()) return c;
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    if (adapt_on && team > 1) {
        key |= 1; /* 0 marks a free slot */
        /* open addressing from the key's home slot; a full table recycles the home */
        const unsigned home = (unsigned)(key >> 58) % ADAPT_SLOTS;
        rnn_adapt_slot *s = NULL;
        for (unsigned i = 0; i < ADAPT_SLOTS && !s; i++) {
            rnn_adapt_slot *t = &adapt_slots[(home + i) % ADAPT_SLOTS];
            if (t->key == key || t->key == 0) s = t;
        }
        if (!s) s = &adapt_slots[home];
        if (s->key != key) {
            memset(s, 0, sizeof *s);
            s->key = key;
        }
        if (!s->chosen) c.mode = s->n[1] <= s->n[0];
        else if (s->calls >= ADAPT_TRY_CALLS &&
                 s->spent >= ADAPT_TRY_BUDGET * exp(adapt_estimate(s, !s->cur))) {
            c.mode = !s->cur;
            c.probe = 1;
        } else {
            c.mode = s->cur;
        }
        c.slot = s;
        adapt_apply(c.mode ? team : 1);
    }
    pthread_mutex_unlock(&adapt_lock);
    if (c.slot) c.start = adapt_now();
    return c;
}

static void rnn_adapt_end(const rnn_adapt_call *c)
{
    if (!c->slot) return;
    double dt = adapt_now() - c->start;
    pthread_mutex_lock(&adapt_lock);
    rnn_adapt_slot *s = c->slot;
    if (adapt_fake[c->mode] >= 0) dt = adapt_fake[c->mode];
    double l = log(dt > 1e-9 ? dt : 1e-9);
    const int m = c->mode;
    /* the team's first time (thread start-up) is forgotten; a probe's time replaces
     * what is known of its mode, which is stale by then */
    if (m == 1 && !s->warm) {
        s->warm = 1;
        pthread_mutex_unlock(&adapt_lock);
        return;
    }
    if (c->probe) adapt_forget(s, m);
    adapt_push(s, m, l);
    if (!s->chosen) {
        if (s->n[0] >= ADAPT_FIRST && s->n[1] >= ADAPT_FIRST) {
            s->chosen = 1;
            s->cur = adapt_estimate(s, 0) < adapt_estimate(s, 1) ? 0 : 1;
            s->calls = -1; /* this call is not one of those that pay for the next try */
            s->spent = -dt;
        }
    } else if (adapt_estimate(s, !s->cur) < adapt_estimate(s, s->cur) - ADAPT_MARGIN) {
        s->cur = !s->cur;
        s->calls = 0;
        s->spent = 0;
    }
    if (c->probe) {
        s->calls = 0;
        s->spent = 0;
    } else {
        s->calls++;
        s->spent += dt;
    }
    /* what runs until the next recurrent call: the mode chosen (the team until then),
     * not a probe's */
    adapt_apply(s->chosen && !s->cur ? 1 : team);
    pthread_mutex_unlock(&adapt_lock);
}

/* A call's shape as a key for rnn_adapt_begin. */
static uint64_t rnn_adapt_key(int kind, int dtype, recur_rnn_cell cell, int T, int B, int D, int H,
                              int extra)
{
    uint64_t k = 1469598103934665603ull;
    const int64_t v[] = {kind, dtype, cell, T, B, D, H, extra};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) k = (k ^ (uint64_t)v[i]) * 1099511628211ull;
    /* splitmix64's finaliser: every input bit reaches the top bits (the home slot) */
    k = (k ^ (k >> 30)) * 0xBF58476D1CE4E5B9ull;
    k = (k ^ (k >> 27)) * 0x94D049BB133111EBull;
    return k ^ (k >> 31);
}

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
 * ms -> 1212-1251. The sums are the same either way (csrc/rnn_gemm.h). */
#define RNN_PROJECT_ALL_BYTES ((size_t)8 << 20)

static int rnn_project_all(int GH, int D)
{
    static size_t limit; /* looked up once; threads that race store the same value */
    size_t lim = __atomic_load_n(&limit, __ATOMIC_RELAXED);
    if (!lim) {
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        lim = rnn_gemm_use_level(0) == 3 ? RNN_PROJECT_ALL_BYTES : l2 > 0 ? (size_t)l2 : (size_t)512 << 10;
        __atomic_store_n(&limit, lim, __ATOMIC_RELAXED);
    }
    return (size_t)GH * D * sizeof(float) > lim;
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
        f += rnn_gemm_packed_size(GH, H);
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

/* The float pointwise rows are also compiled for AVX2 (x86-64-v3) and AVX-512
 * (x86-64-v4), the widest the CPU has picked at load time: two and four times the lanes
 * of the portable SSE build (on a Zen 5, AVX-512 halved the LSTM forward pass's time
 * against AVX2). Needs GCC's target_clones (an ifunc, so ELF). */
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define RNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef RNN_CLONES
#define RNN_CLONES
#endif

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
