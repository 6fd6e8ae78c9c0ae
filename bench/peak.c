/* The machine's fp32 FMA peak, the ceiling the layer rows are measured against
 * (bench/peer.lua's `peak` row): every thread runs independent chains of AVX-512 (or,
 * on a CPU without it, AVX2) fused multiply-adds on registers, with no memory traffic,
 * so the figure is the cores' arithmetic throughput at the clock they reach under
 * this load. bench/suite.lua compiles it on demand:
 *
 *   cc -O2 -pthread bench/peak.c -o build/bench/peak
 *   build/bench/peak [--threads 1,2] [--ms 300] [--repeat 5]
 *
 * One JSON line per thread count: gflops (the median of --repeat runs of about --ms
 * each, all threads together; the best run is gflops_max), the vector width used.
 * An FMA is 2 flops per lane. CHAINS independent accumulators cover the FMA latency
 * (4 cycles) times the FMA ports (2) with room to spare.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CHAINS 12
#define INNER 1000 /* FMAs per chain between checks of the clock */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
  long rounds;    /* in: rounds of INNER FMAs per chain */
  int avx512;     /* in */
  float sink;     /* out: keeps the chains alive */
} job;

/* CHAINS accumulators written out, so that they live in registers (an array of them
 * would be kept in memory, and each FMA would wait for a store and a load). */
#define FMA12(fma)                                                                       \
  a0 = fma(a0, m, c), a1 = fma(a1, m, c), a2 = fma(a2, m, c), a3 = fma(a3, m, c),         \
  a4 = fma(a4, m, c), a5 = fma(a5, m, c), a6 = fma(a6, m, c), a7 = fma(a7, m, c),         \
  a8 = fma(a8, m, c), a9 = fma(a9, m, c), a10 = fma(a10, m, c), a11 = fma(a11, m, c)

__attribute__((target("avx512f"))) static float chains_avx512(long rounds) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3);
  __m512 a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
  __m512 a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < INNER; i++) FMA12(_mm512_fmadd_ps);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float chains_avx2(long rounds) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
  __m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
  __m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < INNER; i++) FMA12(_mm256_fmadd_ps);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

static void *run(void *p) {
  job *j = p;
  j->sink = j->avx512 ? chains_avx512(j->rounds) : chains_avx2(j->rounds);
  return NULL;
}

/* Seconds for `threads` threads each running `rounds` rounds. */
static double timed(int threads, long rounds, int avx512) {
  pthread_t tid[64];
  job jobs[64];
  double t0 = now();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){.rounds = rounds, .avx512 = avx512};
    pthread_create(&tid[t], NULL, run, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  return now() - t0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *list = "1,2";
  double ms = 300;
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) list = argv[i + 1];
    else if (!strcmp(argv[i], "--ms")) ms = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "peak: unknown flag %s (--threads 1,2 --ms 300 --repeat 5)\n", argv[i]);
      return 1;
    }
  }
  if (argc % 2 == 0) {
    fprintf(stderr, "peak: missing value after %s\n", argv[argc - 1]);
    return 1;
  }
  if (ms <= 0 || repeat < 1 || repeat > 100) {
    fprintf(stderr, "peak: --ms must be > 0 and --repeat in 1..100\n");
    return 1;
  }
  __builtin_cpu_init();
  const int avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    fprintf(stderr, "peak: this CPU has neither AVX-512 nor AVX2 with FMA\n");
    return 1;
  }
  const int lanes = avx512 ? 16 : 8;
  /* calibrate one thread's rounds to about --ms */
  long rounds = 1;
  double s;
  while ((s = timed(1, rounds, avx512)) < 0.02) rounds *= 2;
  rounds = (long)(rounds * (ms / 1e3) / s) + 1;

  char *copy = strdup(list), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int threads = atoi(tok);
    if (threads < 1 || threads > 64) {
      fprintf(stderr, "peak: --threads takes a list of counts in 1..64, got '%s'\n", tok);
      return 1;
    }
    double flops = 2.0 * lanes * CHAINS * INNER * (double)rounds * threads, g[100];
    for (int r = 0; r < repeat; r++) g[r] = flops / timed(threads, rounds, avx512) / 1e9;
    qsort(g, repeat, sizeof g[0], cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"row\": \"peak\", \"impl\": \"fma\", \"threads\": %d, \"gflops\": %.2f, \"gflops_max\": %.2f, "
           "\"gflops_per_thread\": %.2f, \"vector_bits\": %d, \"repeat\": %d, \"peak_rss_mb\": %.1f}\n",
           threads, g[repeat / 2], g[repeat - 1], g[repeat / 2] / threads, lanes * 32, repeat,
           ru.ru_maxrss / 1024.0);
    fflush(stdout);
  }
  free(copy);
  return 0;
}
