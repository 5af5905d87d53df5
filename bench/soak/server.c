/*
 * bench/soak/server.c — a synthetic server for scripts/soak.
 *
 * T worker threads (64 by default) keep a live set of mixed-size blocks in a
 * table of slots, in cycles of three phases:
 *
 *   grow    each thread fills the empty slots of its own part of the table
 *           until the live set reaches --live-mib, then the load runs for
 *           --grow seconds: time slices in which every thread replaces
 *           --ops random blocks (free + malloc of a new size) in another
 *           thread's part, so nearly every free is of a block that another
 *           thread allocated;
 *   shrink  every thread frees all but --keep percent of the blocks of
 *           another thread's part (chosen at random), then the same load at
 *           the lower level for --shrink seconds;
 *   idle    no allocator call at all for --idle seconds (the threads wait on
 *           a barrier).
 *
 * The work is fixed, not timed: every slice does the same operations with
 * the same sizes (fixed seeds) whatever the allocator, and a slice that
 * finishes early sleeps until its end, so the load is a steady rate rather
 * than a busy loop.  A slow allocator stretches the phase instead ("overrun"
 * in the phase-end line).
 *
 * Sizes: half of the blocks 16-256 B, 45 % 256 B-4 KiB, 5 % 4-64 KiB, each
 * log-uniform.  Every block is written in full at allocation and checked
 * (a tag at both ends and in the middle) before it is freed: a lost or
 * overwritten block stops the program with an error.  The table lives in
 * mmap'ed memory, outside the allocator under test.
 *
 * Output, one line each, flushed:
 *   soak-server: phase cycle=C name=NAME epoch=S
 *   soak-server: phase-end cycle=C name=NAME epoch=S live=BYTES rss=KIB
 *                pss=KIB anon=KIB slices=N overrun=N
 *   soak-server: ok ops=N allocs=N frees=N bytes=N checked=N
 * (the counts are the same for every allocator: the same work was done).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct config {
    unsigned threads;
    double live_mib;
    unsigned cycles;
    double grow_s, shrink_s, idle_s;
    unsigned keep_pct;
    unsigned slice_ms;
    unsigned ops;
};

static struct config cfg = {
    .threads = 64, .live_mib = 256, .cycles = 3,
    .grow_s = 10, .shrink_s = 10, .idle_s = 10,
    .keep_pct = 10, .slice_ms = 250, .ops = 100,
};

/* The table: slot i holds a block of size[i] bytes, or NULL.  Part p of the
 * table is slots [p * per_part, (p + 1) * per_part).  Within a step every
 * part is touched by exactly one thread (a permutation of the parts), and
 * steps are separated by barriers, so no slot needs a lock. */
static void **slot;
static uint32_t *size_of;
static size_t per_part;
static size_t share; /* live bytes per part at full level */

enum command { CMD_FILL, CMD_CHURN, CMD_THIN, CMD_DRAIN, CMD_EXIT };
static enum command cmd;
static unsigned cmd_shift; /* thread t works on part (t + shift) % T */
static uint64_t cmd_seed;
static pthread_barrier_t start_bar, done_bar;

static atomic_uint_fast64_t n_allocs, n_frees, n_bytes, n_checked, n_ops;
static atomic_uint_fast64_t n_full; /* parts that ran out of slots */

static void die(const char *what) {
    fprintf(stderr, "soak-server: %s\n", what);
    fflush(stderr);
    _exit(1);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(splitmix(s) >> 11) * 0x1p-53; }

static size_t log_uniform(uint64_t *s, double lo, double hi) {
    size_t n = (size_t)exp(log(lo) + uniform(s) * (log(hi) - log(lo)));
    return n < (size_t)lo ? (size_t)lo : n;
}

static size_t pick_size(uint64_t *s) {
    double u = uniform(s);
    if (u < 0.50) return log_uniform(s, 16, 256);
    if (u < 0.95) return log_uniform(s, 256, 4096);
    return log_uniform(s, 4096, 65536);
}

/* The expected block size of pick_size, for sizing the table. */
static double mean_size(void) {
    double m1 = (256.0 - 16) / log(256.0 / 16), m2 = (4096.0 - 256) / log(16.0),
           m3 = (65536.0 - 4096) / log(16.0);
    return 0.50 * m1 + 0.45 * m2 + 0.05 * m3;
}

static uint64_t tag_of(size_t i, uint32_t n) {
    uint64_t s = (uint64_t)i * 0x100000001b3ull ^ n;
    return splitmix(&s) | 1;
}

static void put(size_t i, size_t n) {
    unsigned char *p = malloc(n);
    if (!p) die("malloc returned NULL");
    uint64_t tag = tag_of(i, (uint32_t)n);
    memset(p, (int)(tag & 0xff), n);
    memcpy(p, &tag, 8);
    memcpy(p + n - 8, &tag, 8); /* n >= 16: no overlap with the first */
    if (n >= 48) memcpy(p + (n / 2 & ~(size_t)7), &tag, 8);
    slot[i] = p;
    size_of[i] = (uint32_t)n;
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
}

static void drop(size_t i) {
    unsigned char *p = slot[i];
    size_t n = size_of[i];
    uint64_t tag = tag_of(i, (uint32_t)n), a, b, c = tag;
    memcpy(&a, p, 8);
    memcpy(&b, p + n - 8, 8);
    if (n >= 48) memcpy(&c, p + (n / 2 & ~(size_t)7), 8);
    /* p[n / 4] lies outside the three tags once n >= 64 */
    if (a != tag || b != tag || c != tag || (n >= 64 && p[n / 4] != (tag & 0xff))) {
        fprintf(stderr, "soak-server: block %zu (%zu bytes at %p) was overwritten\n", i, n, (void *)p);
        die("block content check failed");
    }
    free(p);
    slot[i] = NULL;
    size_of[i] = 0;
    atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_checked, 1, memory_order_relaxed);
}

static void *worker(void *arg) {
    unsigned t = (unsigned)(uintptr_t)arg;
    for (;;) {
        pthread_barrier_wait(&start_bar);
        enum command c = cmd;
        if (c == CMD_EXIT) return NULL;
        unsigned part = (t + cmd_shift) % cfg.threads;
        size_t base = part * per_part;
        uint64_t rng = cmd_seed ^ ((uint64_t)t << 32 | part);
        splitmix(&rng);
        if (c == CMD_FILL) {
            size_t have = 0;
            for (size_t i = base; i < base + per_part; i++) have += size_of[i];
            size_t i = base;
            while (have < share) {
                while (i < base + per_part && slot[i]) i++;
                if (i == base + per_part) {
                    atomic_fetch_add(&n_full, 1);
                    break;
                }
                size_t n = pick_size(&rng);
                put(i, n);
                have += n;
            }
        } else if (c == CMD_CHURN) {
            /* Replace random live blocks of another thread's part. */
            for (unsigned k = 0; k < cfg.ops; k++) {
                size_t i = base + (size_t)(splitmix(&rng) % per_part);
                size_t n = pick_size(&rng);
                if (!slot[i]) continue;
                drop(i);
                put(i, n);
                atomic_fetch_add_explicit(&n_ops, 1, memory_order_relaxed);
            }
        } else if (c == CMD_THIN) {
            for (size_t i = base; i < base + per_part; i++)
                if (slot[i] && splitmix(&rng) % 100 >= cfg.keep_pct) drop(i);
        } else if (c == CMD_DRAIN) {
            for (size_t i = base; i < base + per_part; i++)
                if (slot[i]) drop(i);
        }
        pthread_barrier_wait(&done_bar);
    }
}

static void run_step(enum command c, unsigned shift, uint64_t seed) {
    cmd = c;
    cmd_shift = shift;
    cmd_seed = seed;
    pthread_barrier_wait(&start_bar);
    pthread_barrier_wait(&done_bar);
}

static double now_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_until(double mono) {
    double d = mono - now_mono();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Rss, Pss and Pss_Anon of this process in KiB, read with system calls into
 * a static buffer (no allocation). */
static void memory_kib(long *rss, long *pss, long *anon) {
    static char buf[4096];
    *rss = *pss = *anon = -1;
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        long *dst = !strncmp(line, "Rss:", 4)        ? rss
                    : !strncmp(line, "Pss:", 4)      ? pss
                    : !strncmp(line, "Pss_Anon:", 9) ? anon
                                                     : NULL;
        if (dst) *dst = strtol(strchr(line, ':') + 1, NULL, 10);
    }
}

static size_t live_bytes(void) {
    size_t sum = 0;
    for (size_t i = 0; i < per_part * cfg.threads; i++) sum += size_of[i];
    return sum;
}

static void phase_begin(unsigned cycle, const char *name) {
    printf("soak-server: phase cycle=%u name=%s epoch=%.3f\n", cycle, name, now_epoch());
    fflush(stdout);
}

static void phase_end(unsigned cycle, const char *name, unsigned slices, unsigned overrun) {
    long rss, pss, anon;
    memory_kib(&rss, &pss, &anon);
    printf("soak-server: phase-end cycle=%u name=%s epoch=%.3f live=%zu rss=%ld pss=%ld anon=%ld "
           "slices=%u overrun=%u\n",
           cycle, name, now_epoch(), live_bytes(), rss, pss, anon, slices, overrun);
    fflush(stdout);
}

/* Slices of the load for `seconds`: a fixed number of them, each ending no
 * earlier than its scheduled time. */
static void load(double seconds, unsigned cycle, unsigned phase, unsigned *slices, unsigned *overrun) {
    unsigned n = (unsigned)(seconds * 1000 / cfg.slice_ms + 0.5);
    double t0 = now_mono();
    *slices = n;
    *overrun = 0;
    for (unsigned k = 0; k < n; k++) {
        /* shift 1..T-1: never the thread's own part */
        unsigned shift = 1 + (k * 7 + cycle * 13 + phase) % (cfg.threads > 1 ? cfg.threads - 1 : 1);
        if (cfg.threads == 1) shift = 0;
        run_step(CMD_CHURN, shift, (uint64_t)cycle << 40 | (uint64_t)phase << 32 | k);
        double end = t0 + (k + 1) * cfg.slice_ms / 1000.0;
        if (now_mono() > end) (*overrun)++;
        sleep_until(end);
    }
}

static void usage(const char *argv0, int status) {
    fprintf(status ? stderr : stdout,
            "usage: %s [--threads N] [--live-mib M] [--cycles C] [--grow S] [--shrink S]\n"
            "          [--idle S] [--keep PCT] [--slice-ms MS] [--ops N]\n",
            argv0);
    exit(status);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage(argv[0], 0);
        if (i + 1 >= argc) usage(argv[0], 2);
        double v = strtod(argv[++i], NULL);
        if (!strcmp(a, "--threads")) cfg.threads = (unsigned)v;
        else if (!strcmp(a, "--live-mib")) cfg.live_mib = v;
        else if (!strcmp(a, "--cycles")) cfg.cycles = (unsigned)v;
        else if (!strcmp(a, "--grow")) cfg.grow_s = v;
        else if (!strcmp(a, "--shrink")) cfg.shrink_s = v;
        else if (!strcmp(a, "--idle")) cfg.idle_s = v;
        else if (!strcmp(a, "--keep")) cfg.keep_pct = (unsigned)v;
        else if (!strcmp(a, "--slice-ms")) cfg.slice_ms = (unsigned)v;
        else if (!strcmp(a, "--ops")) cfg.ops = (unsigned)v;
        else usage(argv[0], 2);
    }
    if (cfg.threads < 1 || cfg.threads > 4096 || cfg.live_mib <= 0 || cfg.slice_ms < 1 ||
        cfg.keep_pct > 100)
        usage(argv[0], 2);

    share = (size_t)(cfg.live_mib * 1048576.0 / cfg.threads);
    per_part = (size_t)(share / mean_size() * 2) + 64;
    size_t n = per_part * cfg.threads;
    slot = mmap(NULL, n * sizeof *slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_of = mmap(NULL, n * sizeof *size_of, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slot == MAP_FAILED || size_of == MAP_FAILED) die("mmap of the table failed");

    pthread_barrier_init(&start_bar, NULL, cfg.threads + 1);
    pthread_barrier_init(&done_bar, NULL, cfg.threads + 1);
    pthread_t *tid = mmap(NULL, cfg.threads * sizeof *tid, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tid == MAP_FAILED) die("mmap failed");
    for (unsigned t = 0; t < cfg.threads; t++)
        if (pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)t) != 0) die("pthread_create failed");

    printf("soak-server: start threads=%u live_mib=%g cycles=%u grow=%g shrink=%g idle=%g keep=%u "
           "slice_ms=%u ops=%u slots=%zu epoch=%.3f\n",
           cfg.threads, cfg.live_mib, cfg.cycles, cfg.grow_s, cfg.shrink_s, cfg.idle_s, cfg.keep_pct,
           cfg.slice_ms, cfg.ops, n, now_epoch());
    fflush(stdout);

    unsigned slices, overrun;
    for (unsigned c = 1; c <= cfg.cycles; c++) {
        phase_begin(c, "grow");
        run_step(CMD_FILL, 0, (uint64_t)c << 40 | 0xf111);
        load(cfg.grow_s, c, 1, &slices, &overrun);
        phase_end(c, "grow", slices, overrun);

        phase_begin(c, "shrink");
        run_step(CMD_THIN, c % cfg.threads ? c % cfg.threads : 1, (uint64_t)c << 40 | 0x7417);
        load(cfg.shrink_s, c, 2, &slices, &overrun);
        phase_end(c, "shrink", slices, overrun);

        phase_begin(c, "idle");
        sleep_until(now_mono() + cfg.idle_s);
        phase_end(c, "idle", 0, 0);
    }
    run_step(CMD_DRAIN, 0, 0);
    if (live_bytes() != 0) die("blocks left after the drain");
    cmd = CMD_EXIT;
    pthread_barrier_wait(&start_bar);
    for (unsigned t = 0; t < cfg.threads; t++) pthread_join(tid[t], NULL);
    if (atomic_load(&n_allocs) != atomic_load(&n_frees)) die("allocations and frees differ");
    printf("soak-server: ok ops=%" PRIuFAST64 " allocs=%" PRIuFAST64 " frees=%" PRIuFAST64
           " bytes=%" PRIuFAST64 " checked=%" PRIuFAST64 " full_parts=%" PRIuFAST64 "\n",
           atomic_load(&n_ops), atomic_load(&n_allocs), atomic_load(&n_frees), atomic_load(&n_bytes),
           atomic_load(&n_checked), atomic_load(&n_full));
    return 0;
}
