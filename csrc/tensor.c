/* Tensor storage, element access, copies and the seedable generator. */
#include "recur/tensor.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

size_t recur_dtype_size(recur_dtype dtype)
{
    return dtype == RECUR_FLOAT32 ? 4 : 8;
}

const char *recur_dtype_name(recur_dtype dtype)
{
    switch (dtype) {
    case RECUR_FLOAT32: return "float32";
    case RECUR_FLOAT64: return "float64";
    case RECUR_INT64: return "int64";
    }
    return "?";
}

/* Block cache. Touching fresh pages is expensive (a page fault per 4 KiB, and
 * glibc returns blocks above 128 KiB to the kernel on free), and a training loop
 * allocates the same sizes every iteration. Freed blocks of at least
 * CACHE_MIN_BYTES are kept on a short list and handed out again for an equal
 * rounded size, up to cache_limit bytes in all. A block above a quarter of the limit
 * is never kept: one huge tensor freed must not stay resident for the process's life
 * (the default 64 MiB keeps training-sized blocks; hosts tune it with
 * recur_cache_set_limit). */
#define CACHE_MIN_BYTES (16 * 1024)
#define CACHE_SLOTS 256

typedef struct {
    void *data;
    size_t capacity;
} cached_block;

static cached_block cache[CACHE_SLOTS];
static int cache_count;
static size_t cache_bytes;
static size_t cache_limit = RECUR_CACHE_DEFAULT_LIMIT;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Sizes are rounded up to a quarter of their power of two, so a block can serve
 * requests that differ a little (the last chunk of an epoch, say). */
static size_t rounded_capacity(size_t nbytes)
{
    if (nbytes <= 64) return 64;
    size_t p = 64;
    while (p < nbytes / 4) p <<= 1;
    size_t q = p / 4 > 64 ? p / 4 : 64;
    return (nbytes + q - 1) / q * q;
}

static void *cache_take(size_t capacity)
{
    void *data = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int i = cache_count - 1; i >= 0; i--) {
        if (cache[i].capacity == capacity) {
            data = cache[i].data;
            cache_bytes -= capacity;
            cache[i] = cache[--cache_count];
            break;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return data;
}

/* Returns 1 when the cache kept the block. */
static int cache_put(void *data, size_t capacity)
{
    int kept = 0;
    pthread_mutex_lock(&cache_lock);
    if (cache_count < CACHE_SLOTS && capacity <= cache_limit / 4 &&
        cache_bytes + capacity <= cache_limit) {
        cache[cache_count++] = (cached_block){data, capacity};
        cache_bytes += capacity;
        kept = 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return kept;
}

void recur_cache_set_limit(size_t bytes)
{
    pthread_mutex_lock(&cache_lock);
    cache_limit = bytes;
    while (cache_count > 0 && cache_bytes > cache_limit) {
        cached_block b = cache[--cache_count];
        cache_bytes -= b.capacity;
        free(b.data);
    }
    pthread_mutex_unlock(&cache_lock);
}

size_t recur_cache_bytes(void)
{
    pthread_mutex_lock(&cache_lock);
    size_t n = cache_bytes;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

void recur_cache_clear(void)
{
    size_t limit = cache_limit;
    recur_cache_set_limit(0);
    pthread_mutex_lock(&cache_lock);
    cache_limit = limit;
    pthread_mutex_unlock(&cache_lock);
}

/* Lua unloads the module when its state closes; the cached blocks go with it. */
__attribute__((destructor)) static void cache_release_at_unload(void)
{
    recur_cache_set_limit(0);
}

/* Bytes of all storage blocks alive in the process (cached blocks not counted). */
static size_t live_bytes;

size_t recur_storage_live_bytes(void)
{
    return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

recur_storage *recur_storage_new(int64_t count, recur_dtype dtype)
{
    size_t elem = recur_dtype_size(dtype);
    if (count < 0 || (uint64_t)count > (SIZE_MAX / 2) / elem) return NULL;
    size_t nbytes = (size_t)count * elem;
    size_t capacity = rounded_capacity(nbytes); /* a multiple of 64, as aligned_alloc wants */
    recur_storage *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->data = capacity >= CACHE_MIN_BYTES ? cache_take(capacity) : NULL;
    if (!s->data) s->data = aligned_alloc(64, capacity);
    if (!s->data) {
        recur_cache_clear(); /* memory may be sitting in the cache: give it back and retry */
        s->data = aligned_alloc(64, capacity);
    }
    if (!s->data) {
        free(s);
        return NULL;
    }
    memset(s->data, 0, nbytes);
    __atomic_add_fetch(&live_bytes, capacity, __ATOMIC_RELAXED);
    s->nbytes = nbytes;
    s->capacity = capacity;
    s->refcount = 1;
    return s;
}

void recur_storage_retain(recur_storage *s)
{
    __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
}

void recur_storage_release(recur_storage *s)
{
    if (s && __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) == 0) {
        __atomic_sub_fetch(&live_bytes, s->capacity, __ATOMIC_RELAXED);
        if (!(s->capacity >= CACHE_MIN_BYTES && cache_put(s->data, s->capacity))) free(s->data);
        free(s);
    }
}

int64_t recur_numel_of(int ndim, const int64_t *size)
{
    int64_t nonzero = 1;
    int empty = 0;
    for (int d = 0; d < ndim; d++) {
        if (size[d] < 0) return -1;
        if (size[d] == 0) empty = 1;
        else if (!recur_size_mul(nonzero, size[d], &nonzero) || nonzero > RECUR_MAX_NUMEL)
            return -1;
    }
    return empty ? 0 : nonzero;
}

int64_t recur_numel(const recur_tensor *t)
{
    return recur_numel_of(t->ndim, t->size);
}

void recur_contiguous_strides(int ndim, const int64_t *size, int64_t *stride)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= size[d] > 0 ? size[d] : 1;
    }
}

int recur_is_contiguous(const recur_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] == 1) continue; /* the stride of a size-1 dim never matters */
        if (t->stride[d] != s) return 0;
        s *= t->size[d];
    }
    return 1;
}

int recur_double_to_int64(double x, int64_t *r)
{
    if (x >= -0x1p63 && x < 0x1p63) { /* false for NaN */
        *r = (int64_t)x;
        return 1;
    }
    *r = x != x ? 0 : x < 0 ? INT64_MIN : INT64_MAX;
    return 0;
}

static inline int64_t saturate_int64(double x)
{
    int64_t r;
    recur_double_to_int64(x, &r);
    return r;
}

/* Offset in elements of the i-th element in row-major order of the view. */
static int64_t flat_offset(const recur_tensor *t, int64_t i)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->size[d];
        off += (i % n) * t->stride[d];
        i /= n;
    }
    return off;
}

double recur_get_flat(const recur_tensor *t, int64_t i)
{
    int64_t off = flat_offset(t, i);
    switch (t->dtype) {
    case RECUR_FLOAT32: return ((float *)t->storage->data)[off];
    case RECUR_FLOAT64: return ((double *)t->storage->data)[off];
    case RECUR_INT64: return (double)((int64_t *)t->storage->data)[off];
    }
    return 0;
}

int64_t recur_get_flat_i64(const recur_tensor *t, int64_t i)
{
    if (t->dtype != RECUR_INT64) return saturate_int64(recur_get_flat(t, i));
    return ((int64_t *)t->storage->data)[flat_offset(t, i)];
}

void recur_set_flat(recur_tensor *t, int64_t i, double v)
{
    int64_t off = flat_offset(t, i);
    switch (t->dtype) {
    case RECUR_FLOAT32: ((float *)t->storage->data)[off] = (float)v; break;
    case RECUR_FLOAT64: ((double *)t->storage->data)[off] = v; break;
    case RECUR_INT64: ((int64_t *)t->storage->data)[off] = saturate_int64(v); break;
    }
}

/* Advances an N-d row-major counter over a view, updating the element offset. */
static inline void step_counter(const recur_tensor *t, int64_t *idx, int64_t *off)
{
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (++idx[d] < t->size[d]) {
            *off += t->stride[d];
            return;
        }
        *off -= (idx[d] - 1) * t->stride[d];
        idx[d] = 0;
    }
}

int64_t recur_copy(recur_tensor *dst, const recur_tensor *src)
{
    int64_t n = recur_numel(dst), bad = 0;
    if (n <= 0) return 0;
    if (dst->dtype == src->dtype && recur_is_contiguous(dst) && recur_is_contiguous(src)) {
        memmove(recur_data(dst), recur_data(src), (size_t)n * recur_dtype_size(dst->dtype));
        return 0;
    }
    /* Generic path: both views walked in row-major order. int64 to int64 is copied
     * as integers so that ids above 2^53 survive. */
    int64_t di[RECUR_MAX_DIMS] = {0}, si[RECUR_MAX_DIMS] = {0};
    int64_t doff = dst->offset, soff = src->offset;
    void *dd = dst->storage->data, *sd = src->storage->data;
    for (int64_t k = 0; k < n; k++) {
        if (dst->dtype == RECUR_INT64 && src->dtype == RECUR_INT64) {
            ((int64_t *)dd)[doff] = ((int64_t *)sd)[soff];
        } else {
            double v = src->dtype == RECUR_FLOAT32 ? ((float *)sd)[soff]
                     : src->dtype == RECUR_FLOAT64 ? ((double *)sd)[soff]
                                                   : (double)((int64_t *)sd)[soff];
            switch (dst->dtype) {
            case RECUR_FLOAT32: ((float *)dd)[doff] = (float)v; break;
            case RECUR_FLOAT64: ((double *)dd)[doff] = v; break;
            case RECUR_INT64: {
                int64_t r;
                bad += !recur_double_to_int64(v, &r);
                ((int64_t *)dd)[doff] = r;
                break;
            }
            }
        }
        step_counter(dst, di, &doff);
        step_counter(src, si, &soff);
    }
    return bad;
}

/* ---- generator ---------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* splitmix64's output is a bijection of its counter, so of four successive outputs at
 * most one is zero: the state is never all zeros. */
void recur_rng_seed(recur_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t recur_rng_next(recur_rng *g)
{
    uint64_t *s = g->s;
    if (__builtin_expect((s[0] | s[1] | s[2] | s[3]) == 0, 0)) recur_rng_seed(g, 0);
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double recur_rng_uniform(recur_rng *g)
{
    return (double)(recur_rng_next(g) >> 11) * 0x1.0p-53;
}

/* log(x) for x > 0 using only IEEE-exact operations (frexp, +, -, *, /), so that
 * normal draws do not depend on the platform's libm. log(m) = 2 atanh(s) with
 * s = (m-1)/(m+1), |s| < 0.172 after scaling m into [sqrt(1/2), sqrt(2)). */
double recur_det_log(double x)
{
    int e;
    double m = frexp(x, &e); /* x = m * 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2;
        e -= 1;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

double recur_rng_normal(recur_rng *g)
{
    /* Marsaglia's polar method; the second value of each pair is discarded so
     * the generator's state alone determines the next draw. */
    for (;;) {
        double u = 2 * recur_rng_uniform(g) - 1, v = 2 * recur_rng_uniform(g) - 1;
        double s = u * u + v * v;
        if (s >= 1 || s == 0) continue;
        return u * sqrt(-2 * recur_det_log(s) / s);
    }
}
