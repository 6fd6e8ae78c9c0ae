/* What a host calls once, before its first BLAS call: the OpenBLAS kernel repair
 * (csrc/blas_core.c). The Lua module does it when it loads; a C host that uses the
 * kernels without Lua calls it itself. The matrix-product wrappers over CBLAS stay
 * internal (csrc/blas.h), so that no public header needs <cblas.h>. */
#ifndef RECUR_RUNTIME_H
#define RECUR_RUNTIME_H

#include <stdint.h>

#include "export.h"

RECUR_BEGIN_DECLS

/* On a CPU newer than the loaded OpenBLAS, switches it from its fallback kernels to
 * the AVX2 or AVX-512 ones. Returns the kernel family chosen, or NULL when nothing was
 * changed. Call it before any BLAS call. */
const char *recur_blas_repair_core(void);

/* Threads (csrc/threads.c). recur_threads_set(n) sets the team for OpenMP and OpenBLAS
 * together; recur_threads_get() returns it. On a machine whose cores are busy with
 * other work a team of n can be slower than one thread (a thread that was descheduled
 * holds up the others), so recur times its recurrent kernels at both sizes, per call
 * shape, and runs each call, and the work after it, with whichever was faster,
 * re-trying the other now and then. Results are the same either way.
 * recur_threads_adapt(0) keeps the whole team; recur_threads_in_force() is the team
 * in use now. recur_threads_adapt_fake(one, full), for tests: the controller sees
 * every call take `one` seconds on one thread and `full` on the team instead of the
 * clock's times (negative: the clock again); going from the clock to fake times or
 * back forgets what was measured. */
void recur_threads_set(int n);
int recur_threads_get(void);
void recur_threads_adapt(int on);
int recur_threads_adapt_enabled(void);
int recur_threads_in_force(void);
void recur_threads_adapt_fake(double one, double full);
/* Besides the times, the controller reads how many threads are runnable on the
 * machine (Linux's /proc/loadavg): while other work wants the cores the team would
 * use, every call runs on one thread (recur_threads_busy() is then 1).
 * recur_threads_load_fake(loadavg, cores), for tests: every call reads the text
 * `loadavg` (up to 127 bytes) as if from /proc/loadavg, on a machine of `cores`
 * processors (loadavg NULL: the machine again). With fake times and no fake load the
 * machine counts as quiet. */
void recur_threads_load_fake(const char *loadavg, int cores);
int recur_threads_busy(void);

/* The same choice for a kernel of the host's own (recur's bf16 and int8 kernels use
 * it too): recur_threads_begin(key) picks the team for a call of the shape `key`
 * (recur_threads_key over whatever sizes decide the call's time) and sets OpenMP's
 * and OpenBLAS's counts to it; recur_threads_end(&call), after the call, records its
 * time. Inside a parallel region, or with the adaptation off, the call is not timed. */
typedef struct {
    void *slot; /* the shape's record, NULL when the call is not timed */
    int mode;   /* 0 one thread, 1 the team */
    int probe;  /* a try of the mode not chosen */
    double start;
} recur_threads_call;
uint64_t recur_threads_key(const int64_t *v, int n);
recur_threads_call recur_threads_begin(uint64_t key);
void recur_threads_end(const recur_threads_call *call);

RECUR_END_DECLS

#endif
