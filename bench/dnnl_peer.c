/* oneDNN's recurrent primitives, the second peer of bench/peer.lua: the layer row of
 * bench/run.lua measured with oneDNN (Debian's libdnnl 2.6, OpenMP build), one JSON
 * line per call. oneDNN is only a peer: recur neither builds nor links against it;
 * bench/suite.lua compiles this file on demand when libdnnl-dev is installed:
 *
 *   cc -O2 -fopenmp bench/dnnl_peer.c -ldnnl -lm -o build/bench/dnnl_peer
 *   build/bench/dnnl_peer layer --cell lstm --T 100 --B 64 --D 512 --H 512
 *       [--mode train|infer] [--dtype float32|bfloat16] [--threads 2] [--iters 5]
 *       [--warmup 1] [--seed N (ignored)]
 *
 * cell: lstm, gru (the "linear before reset" GRU, which is PyTorch's and recur's
 * default) or rnn (tanh). mode train: forward_training then backward (input and
 * weight gradients, as the other peers' layer row), the state starting at zero;
 * infer: forward_inference alone. bfloat16 (infer only): input, weights and output in
 * bf16, bias in f32, the input converted once before timing (a bf16 model's input
 * already is). Only the time matters here, so the weights are random values in
 * oneDNN's plain ldigo layout, reordered once, before timing, into the layout (and
 * type) each primitive asks for: the forward's and, transposed, the backward's.
 * Times are wall-clock medians of the measured iterations (ms_forward: the forward's
 * part of a training iteration); gflops counts the GEMM flops as bench/suite.lua's
 * layer_flops does (forward 2TB*D*GH + 2TB*H*GH, backward twice that). Errors go to
 * stderr with exit status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    dnnl_status_t s_ = (call);                                                         \
    if (s_ != dnnl_success) {                                                          \
      fprintf(stderr, "dnnl_peer: %s failed (status %d) at line %d\n", #call, (int)s_, \
              __LINE__);                                                               \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "dnnl_peer: %s%s\n", msg, arg ? arg : "");
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *xs, int n) {
  qsort(xs, n, sizeof *xs, cmp_double);
  return n % 2 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

static int positive(const char *flag, const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > 1 << 30) die("expected a positive integer after ", flag);
  return (int)v;
}

typedef struct {
  const char *cell, *mode, *dtype;
  int T, B, D, H, threads, iters, warmup;
} options;

static options parse(int argc, char **argv) {
  options o = {.cell = NULL, .mode = "train", .dtype = "float32", .threads = 2, .iters = -1, .warmup = 1};
  if (argc < 2 || strcmp(argv[1], "layer") != 0) die("usage: dnnl_peer layer --cell lstm|gru|rnn --T --B --D --H ...", NULL);
  for (int i = 2; i < argc; i += 2) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("missing value after ", f);
    if (!strcmp(f, "--cell")) o.cell = v;
    else if (!strcmp(f, "--mode")) o.mode = v;
    else if (!strcmp(f, "--dtype")) o.dtype = v;
    else if (!strcmp(f, "--T")) o.T = positive(f, v);
    else if (!strcmp(f, "--B")) o.B = positive(f, v);
    else if (!strcmp(f, "--D")) o.D = positive(f, v);
    else if (!strcmp(f, "--H")) o.H = positive(f, v);
    else if (!strcmp(f, "--threads")) o.threads = positive(f, v);
    else if (!strcmp(f, "--iters")) o.iters = positive(f, v);
    else if (!strcmp(f, "--warmup")) o.warmup = atoi(v);
    else if (!strcmp(f, "--seed")) continue;
    else die("unknown flag ", f);
  }
  if (!o.cell || (strcmp(o.cell, "lstm") && strcmp(o.cell, "gru") && strcmp(o.cell, "rnn")))
    die("--cell must be lstm, gru or rnn", NULL);
  if (!o.T || !o.B || !o.D || !o.H) die("--T, --B, --D and --H are required", NULL);
  if (strcmp(o.mode, "train") && strcmp(o.mode, "infer")) die("--mode must be train or infer, got ", o.mode);
  if (strcmp(o.dtype, "float32") && strcmp(o.dtype, "bfloat16")) die("--dtype must be float32 or bfloat16, got ", o.dtype);
  if (!strcmp(o.dtype, "bfloat16") && strcmp(o.mode, "infer")) die("--dtype bfloat16 is measured for --mode infer only", NULL);
  if (o.iters < 0) o.iters = strcmp(o.mode, "train") ? 10 : 5;
  return o;
}

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static dnnl_memory_desc_t md(int ndims, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t d;
  CHECK(dnnl_memory_desc_init_by_tag(&d, ndims, dims, dt, tag));
  return d;
}

/* A memory of this descriptor filled with uniform values in [-a, a] (f32 only; others
 * are zeroed and filled by a reorder from an f32 memory). */
static dnnl_memory_t alloc(const dnnl_memory_desc_t *d, float a) {
  dnnl_memory_t m;
  void *p;
  CHECK(dnnl_memory_create(&m, d, engine, DNNL_MEMORY_ALLOCATE));
  CHECK(dnnl_memory_get_data_handle(m, &p));
  size_t bytes = dnnl_memory_desc_get_size(d);
  if (d->data_type == dnnl_f32) {
    float *f = p;
    uint32_t s = 12345u;
    for (size_t i = 0; i < bytes / sizeof(float); i++) {
      s = s * 1664525u + 1013904223u;
      f[i] = a * ((s >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
  } else {
    memset(p, 0, bytes);
  }
  return m;
}

/* src converted into a new memory of descriptor d (oneDNN's reorder: layout and type). */
static dnnl_memory_t reorder_into(dnnl_memory_t src, const dnnl_memory_desc_t *d) {
  const dnnl_memory_desc_t *sd;
  dnnl_primitive_desc_t rpd;
  dnnl_primitive_t r;
  dnnl_memory_t dst = alloc(d, 0);
  CHECK(dnnl_memory_get_memory_desc(src, &sd));
  CHECK(dnnl_reorder_primitive_desc_create(&rpd, sd, engine, d, engine, NULL));
  CHECK(dnnl_primitive_create(&r, rpd));
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
  CHECK(dnnl_primitive_execute(r, stream, 2, args));
  CHECK(dnnl_stream_wait(stream));
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(rpd);
  return dst;
}

static const dnnl_memory_desc_t *arg_md(dnnl_primitive_desc_t pd, int arg) {
  return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* The descriptor of one cell's forward (bwd = 0) or backward primitive. NULL
 * descriptors: no initial or final state (zeros in, not returned), as the other peers'
 * row, which starts from zeros and backpropagates the output sequence's gradient only. */
static void rnn_desc(dnnl_rnn_desc_t *desc, const char *cell, dnnl_prop_kind_t prop, const dnnl_memory_desc_t *src,
                     const dnnl_memory_desc_t *wl, const dnnl_memory_desc_t *wi, const dnnl_memory_desc_t *bias,
                     const dnnl_memory_desc_t *dst, const dnnl_memory_desc_t *dsrc, const dnnl_memory_desc_t *dwl,
                     const dnnl_memory_desc_t *dwi, const dnnl_memory_desc_t *dbias, const dnnl_memory_desc_t *ddst) {
  dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
  int bwd = prop == dnnl_backward;
  if (!strcmp(cell, "lstm")) {
    if (bwd)
      CHECK(dnnl_lstm_backward_desc_init(desc, prop, dir, src, NULL, NULL, wl, wi, bias, dst, NULL, NULL, dsrc, NULL,
                                         NULL, dwl, dwi, dbias, ddst, NULL, NULL, 0));
    else
      CHECK(dnnl_lstm_forward_desc_init(desc, prop, dir, src, NULL, NULL, wl, wi, bias, dst, NULL, NULL, 0));
  } else if (!strcmp(cell, "gru")) {
    if (bwd)
      CHECK(dnnl_lbr_gru_backward_desc_init(desc, prop, dir, src, NULL, wl, wi, bias, dst, NULL, dsrc, NULL, dwl, dwi,
                                            dbias, ddst, NULL, 0));
    else
      CHECK(dnnl_lbr_gru_forward_desc_init(desc, prop, dir, src, NULL, wl, wi, bias, dst, NULL, 0));
  } else {
    if (bwd)
      CHECK(dnnl_vanilla_rnn_backward_desc_init(desc, prop, dnnl_eltwise_tanh, dir, src, NULL, wl, wi, bias, dst, NULL,
                                                dsrc, NULL, dwl, dwi, dbias, ddst, NULL, 0, 0.f, 0.f));
    else
      CHECK(dnnl_vanilla_rnn_forward_desc_init(desc, prop, dnnl_eltwise_tanh, dir, src, NULL, wl, wi, bias, dst, NULL, 0,
                                               0.f, 0.f));
  }
}

static const char *impl_name(dnnl_primitive_desc_t pd) {
  const char *s = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
  return s;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

int main(int argc, char **argv) {
  options o = parse(argc, argv);
  /* oneDNN's OpenMP pool is the caller's: its size is this thread's nthreads ICV */
  omp_set_num_threads(o.threads);
  CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
  CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));

  const int train = !strcmp(o.mode, "train"), bf16 = !strcmp(o.dtype, "bfloat16");
  const int G = !strcmp(o.cell, "lstm") ? 4 : !strcmp(o.cell, "gru") ? 3 : 1;
  const int GB = !strcmp(o.cell, "gru") ? 4 : G; /* the lbr GRU has a 4th bias, b_hn */
  const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
  const float a = 1.0f / sqrtf((float)o.H); /* PyTorch's initial range */
  const dnnl_format_tag_t any = dnnl_format_tag_any;

  /* x (T,B,D) -> y (T,B,H); weights (layers 1, directions 1, in, gates, H) */
  dnnl_dims_t d_src = {o.T, o.B, o.D}, d_dst = {o.T, o.B, o.H};
  dnnl_dims_t d_wl = {1, 1, o.D, G, o.H}, d_wi = {1, 1, o.H, G, o.H}, d_b = {1, 1, GB, o.H};
  dnnl_memory_desc_t src32 = md(3, d_src, dnnl_f32, dnnl_tnc), src = md(3, d_src, dt, dnnl_tnc),
                     dst = md(3, d_dst, dt, dnnl_tnc), wl_user = md(5, d_wl, dnnl_f32, dnnl_ldigo),
                     wi_user = md(5, d_wi, dnnl_f32, dnnl_ldigo), bias = md(4, d_b, dnnl_f32, dnnl_ldgo),
                     wl_any = md(5, d_wl, dt, any), wi_any = md(5, d_wi, dt, any);

  dnnl_rnn_desc_t fd;
  dnnl_primitive_desc_t fpd;
  dnnl_primitive_t fwd;
  rnn_desc(&fd, o.cell, train ? dnnl_forward_training : dnnl_forward_inference, &src, &wl_any, &wi_any, &bias, &dst,
           NULL, NULL, NULL, NULL, NULL);
  dnnl_status_t made = dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL);
  if (made == dnnl_unimplemented) {
    /* this CPU has no kernel for the row (bf16 without AVX-512 BF16): peer.lua prints n/a */
    printf("{\"row\": \"layer\", \"impl\": \"onednn\", \"cell\": \"%s\", \"mode\": \"%s\", "
           "\"dtype\": \"%s\", \"T\": %d, \"B\": %d, \"D\": %d, \"H\": %d, "
           "\"unsupported\": \"oneDNN has no %s kernel on this CPU\"}\n",
           o.cell, o.mode, o.dtype, o.T, o.B, o.D, o.H, o.dtype);
    return 0;
  }
  CHECK(made);
  CHECK(dnnl_primitive_create(&fwd, fpd));

  dnnl_memory_t x32 = alloc(&src32, 1.0f), wl_u = alloc(&wl_user, a), wi_u = alloc(&wi_user, a);
  dnnl_memory_t b = alloc(&bias, a);
  dnnl_memory_t x = bf16 ? reorder_into(x32, &src) : x32;
  /* once, before timing: the weights in the layout (and type) the primitive chose */
  dnnl_memory_t wl = reorder_into(wl_u, arg_md(fpd, DNNL_ARG_WEIGHTS_LAYER));
  dnnl_memory_t wi = reorder_into(wi_u, arg_md(fpd, DNNL_ARG_WEIGHTS_ITER));
  dnnl_memory_t y = alloc(arg_md(fpd, DNNL_ARG_DST_LAYER), 0);
  dnnl_memory_t ws = train ? alloc(arg_md(fpd, DNNL_ARG_WORKSPACE), 0) : NULL;
  dnnl_exec_arg_t fargs[] = {{DNNL_ARG_SRC_LAYER, x}, {DNNL_ARG_WEIGHTS_LAYER, wl}, {DNNL_ARG_WEIGHTS_ITER, wi},
                             {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST_LAYER, y}, {DNNL_ARG_WORKSPACE, ws}};
  int nfargs = train ? 6 : 5;

  dnnl_primitive_desc_t bpd = NULL;
  dnnl_primitive_t bwd = NULL;
  dnnl_memory_t grads[3] = {NULL, NULL, NULL};
  dnnl_exec_arg_t bargs[11];
  if (train) {
    dnnl_rnn_desc_t bd;
    dnnl_memory_desc_t dsrc = md(3, d_src, dnnl_f32, dnnl_tnc), ddst = md(3, d_dst, dnnl_f32, dnnl_tnc),
                       dwl = md(5, d_wl, dnnl_f32, any), dwi = md(5, d_wi, dnnl_f32, any),
                       dbias = md(4, d_b, dnnl_f32, dnnl_ldgo);
    rnn_desc(&bd, o.cell, dnnl_backward, &src, &wl_any, &wi_any, &bias, &dst, &dsrc, &dwl, &dwi, &dbias, &ddst);
    CHECK(dnnl_primitive_desc_create(&bpd, &bd, NULL, engine, fpd));
    CHECK(dnnl_primitive_create(&bwd, bpd));
    /* backward reads the weights in its own layout (transposed): a second copy */
    dnnl_memory_t wl_b = reorder_into(wl_u, arg_md(bpd, DNNL_ARG_WEIGHTS_LAYER));
    dnnl_memory_t wi_b = reorder_into(wi_u, arg_md(bpd, DNNL_ARG_WEIGHTS_ITER));
    dnnl_memory_t gy = alloc(arg_md(bpd, DNNL_ARG_DIFF_DST_LAYER), 1.0f);
    dnnl_memory_t gx = alloc(arg_md(bpd, DNNL_ARG_DIFF_SRC_LAYER), 0);
    grads[0] = alloc(arg_md(bpd, DNNL_ARG_DIFF_WEIGHTS_LAYER), 0);
    grads[1] = alloc(arg_md(bpd, DNNL_ARG_DIFF_WEIGHTS_ITER), 0);
    grads[2] = alloc(arg_md(bpd, DNNL_ARG_DIFF_BIAS), 0);
    dnnl_exec_arg_t a2[] = {{DNNL_ARG_SRC_LAYER, x}, {DNNL_ARG_WEIGHTS_LAYER, wl_b}, {DNNL_ARG_WEIGHTS_ITER, wi_b},
                            {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST_LAYER, y}, {DNNL_ARG_WORKSPACE, ws},
                            {DNNL_ARG_DIFF_DST_LAYER, gy}, {DNNL_ARG_DIFF_SRC_LAYER, gx},
                            {DNNL_ARG_DIFF_WEIGHTS_LAYER, grads[0]}, {DNNL_ARG_DIFF_WEIGHTS_ITER, grads[1]},
                            {DNNL_ARG_DIFF_BIAS, grads[2]}};
    memcpy(bargs, a2, sizeof a2);
  }

  double *times = malloc(sizeof(double) * o.iters), *ftimes = malloc(sizeof(double) * o.iters);
  double tmin = 1e300;
  for (int i = 0; i < o.warmup + o.iters; i++) {
    /* the gradients are zeroed outside the clock, as the other peers zero theirs */
    for (int g = 0; train && g < 3; g++) {
      void *p;
      const dnnl_memory_desc_t *gd;
      CHECK(dnnl_memory_get_data_handle(grads[g], &p));
      CHECK(dnnl_memory_get_memory_desc(grads[g], &gd));
      memset(p, 0, dnnl_memory_desc_get_size(gd));
    }
    double t0 = now();
    CHECK(dnnl_primitive_execute(fwd, stream, nfargs, fargs));
    CHECK(dnnl_stream_wait(stream));
    double t1 = now();
    if (train) {
      CHECK(dnnl_primitive_execute(bwd, stream, 11, bargs));
      CHECK(dnnl_stream_wait(stream));
    }
    double t2 = now();
    if (i >= o.warmup) {
      times[i - o.warmup] = t2 - t0;
      ftimes[i - o.warmup] = t1 - t0;
      if (t2 - t0 < tmin) tmin = t2 - t0;
    }
  }
  double s = median(times, o.iters), fs = median(ftimes, o.iters);
  double fwd_flops = 2.0 * o.T * o.B * o.D * G * o.H + 2.0 * o.T * o.B * o.H * G * o.H;
  double flops = train ? 3 * fwd_flops : fwd_flops;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const dnnl_version_t *v = dnnl_version();
  printf("{\"row\": \"layer\", \"impl\": \"onednn\", \"cell\": \"%s\", \"mode\": \"%s\", \"dtype\": \"%s\", "
         "\"T\": %d, \"B\": %d, \"D\": %d, \"H\": %d, \"threads\": %d, \"iters\": %d, \"ms\": %.9g, "
         "\"ms_min\": %.9g, \"ms_forward\": %.9g, \"gflops\": %.9g, \"peak_rss_mb\": %.1f, "
         "\"isa\": \"%s\", \"impl_forward\": \"%s\", \"impl_backward\": \"%s\", \"onednn_version\": \"%d.%d.%d\"}\n",
         o.cell, o.mode, o.dtype, o.T, o.B, o.D, o.H, o.threads, o.iters, s * 1e3, tmin * 1e3, fs * 1e3,
         flops / s / 1e9, ru.ru_maxrss / 1024.0, isa_name(dnnl_get_effective_cpu_isa()), impl_name(fpd),
         bpd ? impl_name(bpd) : "", v->major, v->minor, v->patch);
  return 0;
}
