/* Tensor storage and the plain-C operations over it.
 *
 * A tensor is a view (offset, sizes, strides in elements) on a reference-counted
 * storage block. Views share the block; it is freed when the last view releases it.
 * Nothing here knows about Lua: a C/C++ host can use these functions directly. */
#ifndef RECUR_TENSOR_H
#define RECUR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

RECUR_BEGIN_DECLS

#define RECUR_MAX_DIMS 8

typedef enum { RECUR_FLOAT32 = 0, RECUR_FLOAT64 = 1, RECUR_INT64 = 2 } recur_dtype;

typedef struct recur_storage {
    void *data;
    size_t nbytes;
    size_t capacity; /* bytes allocated (nbytes rounded up; see the block cache) */
    long refcount;
} recur_storage;

typedef struct recur_tensor {
    recur_storage *storage; /* NULL once released */
    int64_t offset;         /* in elements */
    int ndim;
    recur_dtype dtype;
    int64_t size[RECUR_MAX_DIMS];
    int64_t stride[RECUR_MAX_DIMS]; /* in elements */
} recur_tensor;

size_t recur_dtype_size(recur_dtype dtype);
const char *recur_dtype_name(recur_dtype dtype);

/* Storage: 64-byte aligned, zero-filled. count 0 gives a block too (of one cache
 * line), so every tensor has data; a negative count, or one whose byte size overflows,
 * returns NULL, as does running out of memory. retain and release take a block that
 * is not NULL. */
recur_storage *recur_storage_new(int64_t count, recur_dtype dtype);
void recur_storage_retain(recur_storage *s);
/* Bytes held by every storage block alive in the process (for GC pacing). */
size_t recur_storage_live_bytes(void);
void recur_storage_release(recur_storage *s);
/* Freed blocks of 16 KiB and more are cached for reuse up to a limit (64 MiB by
 * default; no single block above a quarter of the limit), because fresh pages cost a
 * page fault each. Setting the limit frees what is above it at once; clearing hands
 * every cached block back to the allocator. */
#define RECUR_CACHE_DEFAULT_LIMIT ((size_t)64 << 20)
void recur_cache_set_limit(size_t bytes);
size_t recur_cache_bytes(void);
void recur_cache_clear(void);

/* Checked size arithmetic: 1 and the result in *r, or 0 when it would overflow. */
static inline int recur_size_mul(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}
static inline int recur_size_add(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* Largest element count (and product of the non-zero sizes) of a shape: byte counts
 * and element offsets of any view then fit an int64 without overflow checks. */
#define RECUR_MAX_NUMEL (INT64_MAX / 8)

/* Product of sizes (1 for ndim 0), or -1 when a size is negative or the product of the non-zero
 * sizes exceeds RECUR_MAX_NUMEL. Zero sizes do not excuse the others: a (0, 2^40,
 * 2^40) shape is rejected, so that strides, offsets and loops over outer dimensions
 * of every tensor stay in range even when it holds no element. */
int64_t recur_numel_of(int ndim, const int64_t *size);
int64_t recur_numel(const recur_tensor *t);
int recur_is_contiguous(const recur_tensor *t);
void recur_contiguous_strides(int ndim, const int64_t *size, int64_t *stride);

/* The first element of t. t must not be released (storage NULL): undefined there. */
static inline void *recur_data(const recur_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * recur_dtype_size(t->dtype);
}
static inline float *recur_f32(const recur_tensor *t) { return (float *)recur_data(t); }
static inline double *recur_f64(const recur_tensor *t) { return (double *)recur_data(t); }
static inline int64_t *recur_i64(const recur_tensor *t) { return (int64_t *)recur_data(t); }

/* A double as int64: 1 and the truncated value in *r when it is representable, else
 * 0 and *r saturated (NaN to 0, below -2^63 to INT64_MIN, from 2^63 on to INT64_MAX).
 * C leaves the plain cast undefined there; every float-to-int64 conversion of recur
 * goes through this. */
int recur_double_to_int64(double x, int64_t *r);

/* Element access by 0-based flat index in row-major order of the view. The index is
 * not checked: 0 <= i < numel is the caller's to ensure. set_flat
 * saturates into int64 (recur_double_to_int64); get_flat_i64 reads an int64 tensor
 * exactly (get_flat rounds above 2^53). */
double recur_get_flat(const recur_tensor *t, int64_t i);
int64_t recur_get_flat_i64(const recur_tensor *t, int64_t i);
void recur_set_flat(recur_tensor *t, int64_t i, double v);

/* Copies src into dst element by element in row-major order (any strides, any
 * dtypes). Their numel must be equal (undefined otherwise). Float to int64
 * saturates; returns how many values could not be represented (NaN, infinities,
 * beyond the int64 range), 0 otherwise. */
int64_t recur_copy(recur_tensor *dst, const recur_tensor *src);

/* Seedable generator: xoshiro256** seeded through splitmix64, with uniform and
 * normal draws computed only with IEEE-exact arithmetic so that a seed gives
 * bitwise the same numbers on every machine. g is never NULL. */
typedef struct recur_rng { uint64_t s[4]; } recur_rng;
void recur_rng_seed(recur_rng *g, uint64_t seed); /* never yields the all-zero state */
/* An all-zero state is xoshiro's fixed point (zeros forever, so rejection loops never
 * end): next reseeds it as seed 0 rather than emitting zeros. */
uint64_t recur_rng_next(recur_rng *g);
double recur_rng_uniform(recur_rng *g);  /* [0, 1) with 53 random bits */
double recur_rng_normal(recur_rng *g);   /* standard normal, Marsaglia polar method */
double recur_det_log(double x);           /* natural log from + - * / only */

RECUR_END_DECLS

#endif
