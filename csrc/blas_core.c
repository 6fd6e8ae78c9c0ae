/* OpenBLAS's kernels on CPUs newer than the OpenBLAS.
 *
 * A DYNAMIC_ARCH OpenBLAS (Debian's is one) picks its kernels from the CPU model when
 * it is loaded. A model released after that OpenBLAS (Debian 12 ships 0.3.21, of
 * 2022) is missing from its tables, and it falls back to its SSE3 "Prescott" kernels
 * even on a CPU with AVX-512: on an Intel Xeon of model 207, a 512x512x512 sgemm ran
 * at 17 GFLOP/s per core with the fallback and at 132 with the SkylakeX kernels.
 *
 * recur_blas_repair_core repairs that case only. When OpenBLAS runs kernels older
 * than AVX2 on a CPU whose cores and OS support AVX2 and FMA, and nobody chose the
 * kernels through OPENBLAS_CORETYPE, it sets that variable to SkylakeX (AVX-512F, BW,
 * CD, DQ, VL) or Haswell (AVX2, FMA) and re-runs OpenBLAS's start-up, which reads it:
 * gotoblas_dynamic_quit and gotoblas_dynamic_init, exported by DYNAMIC_ARCH builds and
 * looked up weakly, so that other builds are left alone. The variable is removed again
 * once OpenBLAS has read it: a host's environment, and what its child processes
 * inherit, stay as they were (recur.blas_info() tells a script which kernels to pass on).
 * No BLAS call may be running meanwhile: the Lua module calls this while it loads, and
 * a host that runs BLAS on other threads at that moment sets RECUR_BLAS_REPAIR=0. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>

#include "blas.h"

extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

/* OpenBLAS's x86 kernel families without AVX2: on a CPU with AVX2 they can only be a
 * fallback. */
static int older_than_avx2(const char *core)
{
    static const char *const names[] = {
        "prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
        "nano", "katmai", "coppermine", "northwood", "banias", "athlon", "opteron",
        "opteron_sse3", "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller",
        NULL};
    for (int i = 0; names[i]; i++)
        if (strcasecmp(core, names[i]) == 0) return 1;
    return 0;
}

const char *recur_blas_repair_core(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return NULL;
    /* RECUR_BLAS_REPAIR: "0" never repairs; "force" repairs a fallback even when the
     * user's OPENBLAS_CORETYPE chose it (how a spec reaches this path on a CPU that
     * OpenBLAS knows); otherwise the user's choice stands. */
    const char *mode = getenv("RECUR_BLAS_REPAIR");
    if (mode && strcmp(mode, "0") == 0) return NULL;
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && !(mode && strcmp(mode, "force") == 0)) return NULL;
    const char *core = openblas_get_corename();
    if (!core || !older_than_avx2(core)) return NULL;
    /* __builtin_cpu_supports also checks that the OS saves the wider registers */
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return NULL;
    const char *better = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                 __builtin_cpu_supports("avx512cd") &&
                                 __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512vl")
                             ? "SkylakeX"
                             : "Haswell";
    char *saved = user ? strdup(user) : NULL;
    if ((user && !saved) || setenv("OPENBLAS_CORETYPE", better, 1) != 0) {
        free(saved);
        return NULL;
    }
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    /* the environment as it was */
    if (saved) setenv("OPENBLAS_CORETYPE", saved, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    free(saved);
    return better;
#else
    return NULL;
#endif
}
