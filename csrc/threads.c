/* The team of threads for each call on a machine whose cores other processes share
 * (include/recur/runtime.h): recur's recurrent kernels, float and bf16 alike, time
 * every call on one thread and on the whole team and run the faster, and run on one
 * thread while the machine has more runnable threads than processors (see "an
 * oversubscribed machine" below).
 *
 * When another process keeps a core busy, a thread of ours is descheduled now and then
 * for a whole time slice (milliseconds), and every call that waits for it, at a
 * barrier or at the end of a parallel region, waits that long: a small model then ran
 * 10x slower on 2 threads than on 1. libgomp reads its wait policy once, before recur
 * is loaded, so the cure has to be recur's own: each forward and backward call is
 * timed, and a bandit per call shape (kernel, cell, sizes) keeps the last three times
 * of each call on one thread and on the whole team, runs the faster by their medians
 * and tries the other once the calls since the last try have taken 32 times the
 * other's median (and 4 calls at least); a try's time joins the other's last times, and
 * a try that beat the mode in use is followed by another 4 calls later, as are the
 * first choice and a switch made because the mode in use slowed down (a slow stretch
 * of a shared machine makes both, and either kept the other mode out for 32 of its
 * slow times, often the rest of a run). The first choice waits for three times of
 * each mode, taken in turn, and goes by their medians: the first calls of a shape are
 * cold (weights packed, buffers first touched), and a team chosen against from one
 * cold time was not tried again for 32 times that time, longer than a whole benchmark
 * (a 3-layer model on 2 threads ran 1.6x slower than with the adaptation off); on a
 * busy machine one team call in a few escapes the wait, and the fastest of two times
 * would pick the team there. A try costs at most about 3% on a quiet
 * machine (one thread instead of the team) and on a busy one (a team call there took
 * 32 ms instead of 0.6 on one thread, at batch-1 generation). On a busy machine any
 * call can be descheduled for a time slice, one thread or two: a median does not move
 * for one such call, and the choice changes only for a mode 10% faster. The team in force is set for OpenMP and OpenBLAS
 * both, so the work between the recurrent calls (losses, output layers, the
 * optimiser, generation's softmax) follows the same choice. A quiet machine loses one
 * call in up to 256 to a probe on one thread; a busy one, one call in up to 256 to a
 * late team.
 *
 * Results do not depend on the choice: the kernels give the same bits on any team
 * where they do today (the batch split gives every sequence the same arithmetic). */

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "blas.h"
#include "recur/runtime.h"

#define ADAPT_SLOTS 64
#define ADAPT_TRY_CALLS 4 /* fewest calls between two tries of the other mode */
#define ADAPT_TRY_BUDGET 32 /* and their time: this many of the other mode's time */
#define ADAPT_MARGIN 0.09531017980432486 /* log 1.1 */
#define ADAPT_FIRST 3 /* times of each mode before the first choice */

typedef struct {
    uint64_t key;
    double lt[2][3]; /* the last 3 log seconds: [0] one thread, [1] the team */
    int n[2];        /* times in lt (at most 3), and where the next goes */
    int at[2];
    int calls;       /* calls since the last try of the other mode */
    double spent;    /* and their seconds */
    int cur;         /* the mode chosen */
    int chosen;      /* whether cur is chosen: both modes have had ADAPT_FIRST times */
    int soon;        /* the last try beat cur: the next one comes after ADAPT_TRY_CALLS */
    int warm;        /* the team's first call, which starts its threads, is over */
} adapt_slot;

/* What a mode's times say: the median of the last three (one call descheduled for a
 * time slice, on a busy machine, moves nothing), the mean of two, or the one. */
static double adapt_estimate(const adapt_slot *s, int m)
{
    const double *t = s->lt[m];
    if (s->n[m] == 1) return t[0];
    if (s->n[m] == 2) return 0.5 * (t[0] + t[1]);
    double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
    return t[2] < lo ? lo : t[2] > hi ? hi : t[2];
}

static void adapt_push(adapt_slot *s, int m, double l)
{
    s->lt[m][s->at[m]] = l;
    s->at[m] = (s->at[m] + 1) % 3;
    if (s->n[m] < 3) s->n[m]++;
}

static pthread_mutex_t adapt_lock = PTHREAD_MUTEX_INITIALIZER;
static adapt_slot adapt_slots[ADAPT_SLOTS];
static int team;          /* the user's team: recur_threads_set, else OpenMP's default */
static int in_force;      /* the team OpenMP and OpenBLAS have now */
static int adapt_on = 1;
static double adapt_fake[2] = {-1, -1};
static int load_cores;             /* online processors; -1: no /proc/loadavg */
static double load_next;           /* when the next reading may be taken */
static unsigned load_history;      /* one bit per reading, newest lowest: others want a core */
static int load_readings;          /* readings taken, up to 4 */
static int load_busy;              /* the verdict of the last readings */
static int team_ran;               /* a call has run on the team since the team was set */
static char load_fake[128];        /* specs: what /proc/loadavg says ("": read it) */
static int load_fake_cores;        /* and the processors */

/* Sets OpenMP's and OpenBLAS's thread counts, unless they are n already. */
static void adapt_apply(int n)
{
    if (n == in_force) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    in_force = n;
}

static void adapt_init(void)
{
    if (team == 0) team = in_force = omp_get_max_threads();
}

void recur_threads_set(int n)
{
    pthread_mutex_lock(&adapt_lock);
    team = n;
    in_force = 0; /* forces adapt_apply to set both */
    adapt_apply(n);
    memset(adapt_slots, 0, sizeof adapt_slots); /* times of another team say nothing */
    load_history = 0; /* nor readings that counted it */
    load_busy = 0;
    load_readings = 0;
    team_ran = 0;
    pthread_mutex_unlock(&adapt_lock);
}

int recur_threads_get(void)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    int n = team;
    pthread_mutex_unlock(&adapt_lock);
    return n;
}

int recur_threads_in_force(void)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    int n = in_force;
    pthread_mutex_unlock(&adapt_lock);
    return n;
}

void recur_threads_adapt(int on)
{
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    adapt_on = on != 0;
    if (!adapt_on) adapt_apply(team);
    pthread_mutex_unlock(&adapt_lock);
}

int recur_threads_adapt_enabled(void)
{
    return adapt_on;
}

void recur_threads_adapt_fake(double one, double full)
{
    pthread_mutex_lock(&adapt_lock);
    /* fake times and the clock's do not mix; new fake times keep the old ones, so that
     * a spec can change the machine's load under the controller */
    if ((one < 0) != (adapt_fake[0] < 0)) memset(adapt_slots, 0, sizeof adapt_slots);
    adapt_fake[0] = one;
    adapt_fake[1] = full;
    pthread_mutex_unlock(&adapt_lock);
}

void recur_threads_load_fake(const char *loadavg, int cores)
{
    pthread_mutex_lock(&adapt_lock);
    const int fake = loadavg && cores > 0;
    /* readings of the machine and fake ones do not mix; new fake readings join the old
     * ones, so that a spec can change the load under the controller */
    if (fake != (load_fake[0] != 0)) {
        load_history = 0;
        load_busy = 0;
        load_readings = 0;
    }
    load_fake[0] = 0;
    if (fake) {
        strncpy(load_fake, loadavg[0] ? loadavg : " ", sizeof load_fake - 1);
        load_fake[sizeof load_fake - 1] = 0;
    }
    load_fake_cores = cores;
    pthread_mutex_unlock(&adapt_lock);
}

int recur_threads_busy(void)
{
    pthread_mutex_lock(&adapt_lock);
    int busy = load_busy;
    pthread_mutex_unlock(&adapt_lock);
    return busy;
}

static double adapt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- an oversubscribed machine ---------------------------------------------------
 * Timing alone decides badly when another process holds a core: most team calls then
 * escape the wait and a few wait a whole time slice (1-10 ms, 25-100 times a call at
 * batch-1 generation), so the median of a few times says "team" while the mean cost
 * is several times one thread's; a mean of a few times misjudges the other way on a
 * quiet machine, where a lone slow call flips a small shape to one thread (both
 * measured: bench/history.md, "On a Zen 4, the first session"). So the controller
 * also asks the kernel how many threads are runnable on the whole machine (the fourth
 * field of /proc/loadavg counts the reader too), at most every LOAD_PERIOD seconds and
 * at each of the first four calls. With the team in use the count includes our own
 * threads (libgomp's idle workers spin, so they count while a team is in use), and
 * others want a core when it exceeds the processors. The machine is busy when LOAD_VOTES of
 * the last four readings say so, or, before there are four, more than half of those
 * taken: a team call on a loaded machine can cost a whole time slice, and with three
 * votes needed from the start the first two calls of every process paid it (one
 * wrong first reading costs one call on one thread: the second releases it). Then
 * every call runs on one thread, untimed, and the readings go on with our own share
 * counted as one thread: others still want a core when the count less one exceeds
 * the processors the rest of the team would need.
 * Two readings that find room again end it. Where /proc/loadavg cannot be read the
 * timing alone decides. */
#define LOAD_PERIOD 0.005
#define LOAD_VOTES 3

/* Runnable threads on the machine, the caller included; -1 when unknown. */
static int load_runnable(void)
{
    char buf[128];
    if (load_fake[0]) {
        memcpy(buf, load_fake, sizeof buf);
    } else {
        int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) return -1;
        buf[n] = 0;
    }
    const char *p = buf; /* "0.52 0.58 0.59 3/187 4501": the fourth field's numerator */
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (!p) return -1;
        p++;
    }
    char *end;
    long r = strtol(p, &end, 10);
    return end != p && *end == '/' && r > 0 && r < (1 << 20) ? (int)r : -1;
}

/* Whether other work keeps the team from having its cores: a reading now and then,
 * with the lock held. */
static int load_check(void)
{
    const int faked = load_fake[0] != 0;
    if (!faked && (load_cores < 0 || adapt_fake[0] >= 0)) return 0; /* fake times: quiet */
    if (!faked) {
        /* the first four readings come at once: a benchmark, or a host's first
         * tokens, should not wait 15 ms for the verdict */
        double now = adapt_now();
        if (now < load_next && load_readings >= 4) return load_busy;
        load_next = now + LOAD_PERIOD;
        if (load_cores == 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            load_cores = n > 0 && n < (1 << 20) ? (int)n : 1;
        }
    }
    const int cores = faked ? load_fake_cores : load_cores;
    const int r = load_runnable();
    if (r < 0) {
        if (!faked) load_cores = -1;
        load_history = 0;
        load_busy = 0;
        return 0;
    }
    /* ours: the team, or one thread while the machine is found busy or before any
     * call has woken the team's workers (a process's first readings: counting the
     * team there took us and one other process for our team alone, and the first
     * calls ran on the team, a time slice lost at each). Workers still spinning after
     * other parallel work can make those readings say busy on a quiet machine: then a
     * few calls run on one thread until the workers sleep and two readings release it. */
    const int others = load_busy || !team_ran ? r - 1 : r - team;
    load_history = (load_history << 1 | (others > cores - team)) & 15u;
    if (load_readings < 4) load_readings++;
    const int votes = __builtin_popcount(load_history);
    load_busy = load_readings < 4 ? 2 * votes > load_readings : votes >= LOAD_VOTES;
    return load_busy;
}


/* Picks the team for a call of shape key and sets it. The team runs first (its first
 * call pays for starting the threads and is forgotten), then the two modes in turn
 * until each has ADAPT_FIRST times. */
recur_threads_call recur_threads_begin(uint64_t key)
{
    recur_threads_call c = {NULL, 1, 0, 0};
    if (omp_in_parallel()) return c;
    pthread_mutex_lock(&adapt_lock);
    adapt_init();
    if (adapt_on && team > 1 && load_check()) {
        /* others want our cores: one thread, and no time recorded, since times on a
         * loaded machine say nothing of the quiet one */
        c.mode = 0;
        adapt_apply(1);
    } else if (adapt_on && team > 1) {
        key |= 1; /* 0 marks a free slot */
        /* open addressing from the key's home slot; a full table recycles the home */
        const unsigned home = (unsigned)(key >> 58) % ADAPT_SLOTS;
        adapt_slot *s = NULL;
        for (unsigned i = 0; i < ADAPT_SLOTS && !s; i++) {
            adapt_slot *t = &adapt_slots[(home + i) % ADAPT_SLOTS];
            if (t->key == key || t->key == 0) s = t;
        }
        if (!s) s = &adapt_slots[home];
        if (s->key != key) {
            memset(s, 0, sizeof *s);
            s->key = key;
        }
        if (!s->chosen) c.mode = s->n[1] <= s->n[0];
        else if (s->calls >= ADAPT_TRY_CALLS &&
                 (s->soon || s->spent >= ADAPT_TRY_BUDGET * exp(adapt_estimate(s, !s->cur)))) {
            c.mode = !s->cur;
            c.probe = 1;
        } else {
            c.mode = s->cur;
        }
        c.slot = s;
        team_ran |= c.mode;
        adapt_apply(c.mode ? team : 1);
    }
    pthread_mutex_unlock(&adapt_lock);
    if (c.slot) c.start = adapt_now();
    return c;
}

void recur_threads_end(const recur_threads_call *c)
{
    if (!c->slot) return;
    double dt = adapt_now() - c->start;
    pthread_mutex_lock(&adapt_lock);
    adapt_slot *s = c->slot;
    if (adapt_fake[c->mode] >= 0) dt = adapt_fake[c->mode];
    double l = log(dt > 1e-9 ? dt : 1e-9);
    const int m = c->mode;
    /* the team's first time (thread start-up) is forgotten */
    if (m == 1 && !s->warm) {
        s->warm = 1;
        pthread_mutex_unlock(&adapt_lock);
        return;
    }
    /* A probe's time joins its mode's last ones rather than replacing them: on a busy
     * machine one team call in a few escapes the wait, and when one such time decided,
     * the team ran again until two slow calls outvoted it (batch-1 generation on 2
     * threads with a core taken: 1.3-1.4x the time on one). A probe that beats the
     * chosen mode is followed by another after ADAPT_TRY_CALLS calls, so that a
     * machine that has become quiet is seen two probes later. */
    const int cur = s->cur;
    adapt_push(s, m, l);
    if (!s->chosen) {
        if (s->n[0] >= ADAPT_FIRST && s->n[1] >= ADAPT_FIRST) {
            s->chosen = 1;
            s->cur = adapt_estimate(s, 0) < adapt_estimate(s, 1) ? 0 : 1;
            s->calls = -1; /* this call is not one of those that pay for the next try */
            s->spent = -dt;
            s->soon = 1; /* checked once more soon: its six times may all be a slow stretch's */
        }
    } else if (adapt_estimate(s, !s->cur) < adapt_estimate(s, s->cur) - ADAPT_MARGIN) {
        /* the mode in use slowed down past the other's times on record: the other is
         * tried again after ADAPT_TRY_CALLS calls, not after 32 of its (old) times,
         * so that a slow stretch of the machine (another tenant, a host's noise) does
         * not keep the mode it chased away out for the rest of a run */
        s->cur = !s->cur;
        s->calls = 0;
        s->spent = 0;
        s->soon = 1;
    }
    if (c->probe) {
        s->soon = s->cur == cur && l < adapt_estimate(s, cur) - ADAPT_MARGIN;
        s->calls = 0;
        s->spent = 0;
    } else {
        s->calls++;
        s->spent += dt;
    }
    /* what runs until the next recurrent call: the mode chosen (the team until then),
     * not a probe's */
    adapt_apply(s->chosen && !s->cur ? 1 : team);
    pthread_mutex_unlock(&adapt_lock);
}

/* A call's shape as a key: FNV-1a over the values, then splitmix64's finaliser, so
 * that every input bit reaches the top bits (the home slot). */
uint64_t recur_threads_key(const int64_t *v, int n)
{
    uint64_t k = 1469598103934665603ull;
    for (int i = 0; i < n; i++) k = (k ^ (uint64_t)v[i]) * 1099511628211ull;
    k = (k ^ (k >> 30)) * 0xBF58476D1CE4E5B9ull;
    k = (k ^ (k >> 27)) * 0x94D049BB133111EBull;
    return k ^ (k >> 31);
}
