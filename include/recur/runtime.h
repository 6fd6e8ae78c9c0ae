/* What a host calls once, before its first BLAS call: the OpenBLAS kernel repair
 * (csrc/blas_core.c). The Lua module does it when it loads; a C host that uses the
 * kernels without Lua calls it itself. The matrix-product wrappers over CBLAS stay
 * internal (csrc/blas.h), so that no public header needs <cblas.h>. */
#ifndef RECUR_RUNTIME_H
#define RECUR_RUNTIME_H

#include "export.h"

RECUR_BEGIN_DECLS

/* On a CPU newer than the loaded OpenBLAS, switches it from its fallback kernels to
 * the AVX2 or AVX-512 ones. Returns the kernel family chosen, or NULL when nothing was
 * changed. Call it before any BLAS call. */
const char *recur_blas_repair_core(void);

RECUR_END_DECLS

#endif
