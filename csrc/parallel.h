/* Loops that OpenMP splits over the threads only when they are large enough.
 *
 * Not an if() clause: a parallel region whose if() is false still opens a team of one
 * thread, and that costs more than a small kernel's work. On a Zen 5 virtual machine an
 * embedding lookup of one id took 1.66 us through `omp parallel for if (...)` and
 * 0.2 us with the serial loop beside it, and a step of batch-1 generation calls a dozen
 * such kernels. Not a public header. */
#ifndef RECUR_PARALLEL_H
#define RECUR_PARALLEL_H

/* for (int64_t i = 0; i < n; i++) body;  as an OpenMP loop (static schedule) when par */
#define RECUR_FOR(par, i, n, ...)                                                              \
    do {                                                                                       \
        if (par) {                                                                             \
            _Pragma("omp parallel for schedule(static)")                                       \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__;                                     \
        } else {                                                                               \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__;                                     \
        }                                                                                      \
    } while (0)

#endif
