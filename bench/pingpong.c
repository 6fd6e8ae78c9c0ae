/* How far apart the machine puts two of its processors: the round trip of one cache
 * line between a thread pinned to processor 0 and one pinned to processor 1, each
 * waiting for the other's write before writing back. On a VM the host decides where
 * the virtual processors run, and it moves them: on the Zen 4 of 2026-12-03 the same
 * pair measured 60-125 ns at some moments and 330-410 ns at others, a few seconds
 * apart (most likely two cores that share an L3, and two that do not). Team calls that share
 * data between the threads slow down with it, so the figure goes with any benchmark
 * run that looks out of line.
 *
 *   cc -O2 -pthread bench/pingpong.c -o build/bench/pingpong
 *   build/bench/pingpong [--repeat 10] [--trips 200000] [--gap-ms 500]
 *
 * One JSON line: ns (the median round trip over --repeat runs), and every run's. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int ball __attribute__((aligned(64)));
static int trips = 200000;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* processor 1's side: sends the ball back each time it arrives */
static void *returner(void *arg)
{
    (void)arg;
    pin(1);
    for (int i = 0; i < trips; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 1) {}
        atomic_store_explicit(&ball, 0, memory_order_release);
    }
    return NULL;
}

/* one run: the mean round trip in nanoseconds, or a negative number on failure */
static double run(void)
{
    pthread_t t;
    atomic_store(&ball, 0);
    if (pthread_create(&t, NULL, returner, NULL) != 0) return -1;
    double t0 = now();
    for (int i = 0; i < trips; i++) {
        atomic_store_explicit(&ball, 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 0) {}
    }
    double t1 = now();
    pthread_join(t, NULL);
    return (t1 - t0) * 1e9 / trips;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int repeat = 10, gap_ms = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--trips") == 0) trips = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--gap-ms") == 0) gap_ms = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "pingpong: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (repeat < 1 || repeat > 1000 || trips < 1 || gap_ms < 0) {
        fprintf(stderr, "pingpong: --repeat 1..1000, --trips >= 1, --gap-ms >= 0\n");
        return 2;
    }
    /* both processors must be ours: with one, the two threads would take turns on it a
     * time slice per trip */
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0 || !CPU_ISSET(0, &mine) || !CPU_ISSET(1, &mine) ||
        pin(0) != 0) {
        fprintf(stderr, "pingpong: processors 0 and 1 are not both available\n");
        return 1;
    }
    double *ns = malloc(sizeof *ns * repeat), *sorted = malloc(sizeof *ns * repeat);
    if (!ns || !sorted) return 1;
    for (int r = 0; r < repeat; r++) {
        ns[r] = run();
        if (ns[r] < 0) {
            fprintf(stderr, "pingpong: cannot start the second thread\n");
            return 1;
        }
        struct timespec gap = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
        if (r + 1 < repeat) nanosleep(&gap, NULL);
    }
    memcpy(sorted, ns, sizeof *ns * repeat);
    qsort(sorted, repeat, sizeof *sorted, cmp);
    printf("{\"row\": \"pingpong\", \"cpus\": [0, 1], \"ns\": %.0f, \"runs\": [", sorted[repeat / 2]);
    for (int r = 0; r < repeat; r++) printf("%s%.0f", r ? ", " : "", ns[r]);
    printf("]}\n");
    free(ns);
    free(sorted);
    return 0;
}
