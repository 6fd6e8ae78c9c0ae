/* What the C tests under spec/c/ share: CHECK(cond, printf-style message) counts a check
 * and, when cond is false, a failure, printed with its file and line (a test's main
 * prints `checks` and `failures` and exits non-zero after a failure); buffers filled
 * with one value (SENTINEL marks what a call must leave alone) or with normal draws. */
#ifndef RECUR_SPEC_CTEST_H
#define RECUR_SPEC_CTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "recur/tensor.h"

static int failures, checks;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            printf(__VA_ARGS__);                                                           \
            printf("\n");                                                                  \
        }                                                                                  \
    } while (0)

#define SENTINEL 12345.0

/* n values v (a buffer of one when n = 0, so that it is never NULL); free() it */
static inline double *dalloc(size_t n, double v)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

static inline float *falloc(size_t n, float v)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

/* n draws of N(0, 0.25) */
static inline double *drandom(size_t n, recur_rng *g)
{
    double *p = dalloc(n, 0);
    for (size_t i = 0; i < n; i++) p[i] = 0.5 * recur_rng_normal(g);
    return p;
}

#endif
