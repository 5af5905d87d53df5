/*
 * embedded-bench: the embedded allocators' benchmarks (galloc's
 * random_actions and heap_exhaustion, simple-chunk-allocator's tick
 * benchmark) plus a latency-tail run, reimplemented in C, for rsbmalloc's
 * freestanding heap (librsbmalloc_heap.a) and a first-fit baseline
 * (firstfit.c).  Hosted (Linux, x86-64): the heaps still get one fixed
 * region each, as on bare metal.
 *
 * usage: embedded-bench [--alloc rsb|firstfit|all] [--seconds S] [--heap MIB]
 *                       [--seeds N] [--ops N] [--reps R] BENCH...
 *   random_actions  random alloc (100..1000 B, alignment 1..1024) / free /
 *                   realloc (100..10000 B) for S seconds of CPU time on a
 *                   256 MiB heap; score = actions (galloc's benchmark)
 *   exhaustion      utilisation at the first failed allocation on a 1 MiB
 *                   heap: fixed 16, 64, 256, 4096 B; random 1..4096 B (mean
 *                   and minimum over N seeds); galloc's 10000..300000 B with
 *                   alignment 1..1024
 *   ticks           simple-chunk-allocator's benchmark: random sizes
 *                   64..16383 B, alignment 1..64, every ~10th iteration the 7
 *                   oldest blocks are freed, for S seconds on a 160 MiB
 *                   region; rdtscp ticks per allocation
 *   rounds          heap-exhaustion rounds in S seconds: fill the 1 MiB heap
 *                   with random 1..4096 B blocks until the first failure,
 *                   free them all, again (the "exhaustion rounds")
 *   frag            N (default 1M) random operations at 50 % load on a 1 MiB
 *                   heap (alloc of 1..4096 B while less than half of the
 *                   heap is asked for, else free of a random block), then the
 *                   largest block that still fits (found by bisection), as
 *                   a share of the free bytes (heap size minus the bytes
 *                   the live blocks asked for); for --seeds seeds (the first
 *                   is the figure, mean and minimum beside it); --max-size M:
 *                   sizes 1..M instead
 *   pairs           N free+alloc pairs over 512 live blocks of 16..1024 B
 *                   (a random block is freed and a new random size takes
 *                   its slot); pair_loop() holds the timed part, for
 *                   callgrind --toggle-collect=pair_loop
 *   tail            N (default 1M) operations, alloc or free of a random slot
 *                   (sizes: 70% 1..256 B, 25% ..8 KiB, 5% ..64 KiB) on a
 *                   16 MiB heap, then the same on a 1 MiB heap that keeps
 *                   running full; percentiles of rdtscp ticks per operation,
 *                   each the minimum over R runs of the same sequence
 *                   (--reps, default 5)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#include "firstfit.h"
#include "rsbmalloc_heap.h"

/* --- the allocators under test ---------------------------------------------- */

typedef struct allocator {
    const char *name;
    void *(*init)(void *mem, size_t len);
    void *(*alloc)(void *h, size_t size);
    void *(*alloc_aligned)(void *h, size_t align, size_t size);
    void *(*realloc)(void *h, void *p, size_t size);
    void (*free)(void *h, void *p);
} allocator;

static void *rsb_init_(void *m, size_t n) { return rsb_heap_init(m, n); }
static void *rsb_alloc_(void *h, size_t n) { return rsb_heap_alloc(h, n); }
static void *rsb_aligned_(void *h, size_t a, size_t n) { return rsb_heap_alloc_aligned(h, a, n); }
static void *rsb_realloc_(void *h, void *p, size_t n) { return rsb_heap_realloc(h, p, n); }
static void rsb_free_(void *h, void *p) { rsb_heap_free(h, p); }

static void *ff_init_(void *m, size_t n) { return ff_init(m, n); }
static void *ff_alloc_(void *h, size_t n) { return ff_alloc(h, n); }
static void *ff_aligned_(void *h, size_t a, size_t n) { return ff_alloc_aligned(h, a, n); }
static void *ff_realloc_(void *h, void *p, size_t n) { return ff_realloc(h, p, n); }
static void ff_free_(void *h, void *p) { ff_free(h, p); }

static const allocator allocators[] = {
    {"rsbmalloc heap", rsb_init_, rsb_alloc_, rsb_aligned_, rsb_realloc_, rsb_free_},
    {"first-fit list", ff_init_, ff_alloc_, ff_aligned_, ff_realloc_, ff_free_},
};

/* --- helpers ------------------------------------------------------------------ */

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t rnd(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}
/* Uniform in [lo, hi]. */
static size_t range(size_t lo, size_t hi) { return lo + (size_t)(rnd() % (hi - lo + 1)); }

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline uint64_t ticks(void) {
    unsigned aux;
    return __rdtscp(&aux);
}

/* A page-aligned region, touched once so that page faults stay out of the
 * measurements. */
static unsigned char *region(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(p, 1, len);
    return p;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p) {
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* realloc keeping the block's alignment (a realloc that moves a block is
 * only 16-byte aligned): move it by hand if it came out misaligned. */
static void *realloc_aligned(const allocator *A, void *h, void *p, size_t old, size_t n, size_t align) {
    void *q = A->realloc(h, p, n);
    if (!q || align <= 16 || ((uintptr_t)q & (align - 1)) == 0) return q;
    void *r = A->alloc_aligned(h, align, n);
    if (!r) return q;
    memcpy(r, q, old < n ? old : n);
    A->free(h, q);
    return r;
}

/* --- random_actions ------------------------------------------------------------ */

struct live {
    void *p;
    size_t n, align;
};

static void random_actions(const allocator *A, double seconds, size_t heap_mib) {
    size_t len = heap_mib << 20;
    unsigned char *m = region(len);
    void *h = A->init(m, len);
    size_t cap = 1 << 20, nlive = 0;
    struct live *v = malloc(cap * sizeof *v);
    uint64_t actions = 0, failed = 0;
    double t0 = cpu_seconds(), t1 = t0;
    for (;;) {
        for (int k = 0; k < 1024; k++) {
            uint64_t r = rnd();
            switch (r % 3) {
            case 0: {
                size_t n = 100 + (size_t)((r >> 8) % 901), align = (size_t)1 << ((r >> 24) % 11);
                void *p = A->alloc_aligned(h, align, n);
                if (p && nlive < cap)
                    v[nlive++] = (struct live){p, n, align};
                else
                    failed++;
                break;
            }
            case 1:
                if (nlive) {
                    size_t i = (size_t)((r >> 8) % nlive);
                    A->free(h, v[i].p);
                    v[i] = v[--nlive];
                }
                break;
            case 2:
                if (nlive) {
                    size_t i = (size_t)((r >> 8) % nlive), n = 100 + (size_t)((r >> 32) % 9901);
                    void *q = realloc_aligned(A, h, v[i].p, v[i].n, n, v[i].align);
                    if (q)
                        v[i].p = q, v[i].n = n;
                    else
                        failed++;
                }
                break;
            }
        }
        actions += 1024;
        if ((t1 = cpu_seconds()) - t0 >= seconds) break;
    }
    printf("random_actions  %-15s %6.2f M actions in %.2f s of CPU (%.2f M/s), %zu live at the end, "
           "%llu failed, %zu MiB heap\n",
           A->name, (double)actions / 1e6, t1 - t0, (double)actions / 1e6 / (t1 - t0), nlive,
           (unsigned long long)failed, heap_mib);
    free(v);
    munmap(m, len);
}

/* --- heap_exhaustion --------------------------------------------------------------- */

/* Bytes handed out (sizes asked for) at the first failure, per region size. */
static double fill(const allocator *A, unsigned char *m, size_t len, size_t lo, size_t hi,
                   unsigned max_align_log) {
    void *h = A->init(m, len);
    size_t bytes = 0;
    for (;;) {
        size_t n = range(lo, hi);
        size_t align = max_align_log ? (size_t)1 << range(0, max_align_log) : 1;
        if (!A->alloc_aligned(h, align, n)) break;
        bytes += n;
    }
    return 100.0 * (double)bytes / (double)len;
}

static void exhaustion(const allocator *A, size_t heap_kib, unsigned seeds) {
    size_t len = heap_kib << 10;
    unsigned char *m = region(len);
    static const size_t fixed[] = {16, 64, 256, 4096};
    printf("exhaustion      %-15s %zu KiB heap:", A->name, heap_kib);
    for (unsigned i = 0; i < 4; i++) printf(" %zu B %.2f%%,", fixed[i], fill(A, m, len, fixed[i], fixed[i], 0));
    double sum = 0, min = 100;
    for (unsigned s = 0; s < seeds; s++) {
        rng = 0x9e3779b97f4a7c15ull * (s + 1);
        double u = fill(A, m, len, 1, 4096, 0);
        sum += u;
        if (u < min) min = u;
    }
    printf(" random 1..4096 B %.2f%% (min %.2f%%, %u seeds),", sum / seeds, min, seeds);
    if (heap_kib >= 4096) {
        sum = 0;
        for (unsigned s = 0; s < seeds; s++) {
            rng = 0x9e3779b97f4a7c15ull * (s + 1);
            sum += fill(A, m, len, 10000, 300000, 10);
        }
        printf(" galloc's 10000..300000 B aligned %.2f%%", sum / seeds);
    }
    printf("\n");
    munmap(m, len);
}

/* --- simple-chunk-allocator's tick benchmark ------------------------------------- */

/* Tick counts: exact below 2^16 in a histogram, every larger one kept (they
 * are rare), so that runs of any length fit in memory. */
struct tickstat {
    uint64_t hist[1 << 16];
    uint64_t *big;
    size_t nbig, capbig, n;
    uint64_t sum, min;
};

static void ts_add(struct tickstat *t, uint64_t v) {
    t->n++;
    t->sum += v;
    if (v < t->min) t->min = v;
    if (v < (1 << 16)) {
        t->hist[v]++;
        return;
    }
    if (t->nbig == t->capbig) {
        t->capbig = t->capbig ? 2 * t->capbig : 4096;
        t->big = realloc(t->big, t->capbig * sizeof *t->big);
    }
    t->big[t->nbig++] = v;
}

/* The value at percentile p (big must be sorted). */
static uint64_t ts_pct(const struct tickstat *t, double p) {
    uint64_t rank = (uint64_t)(p / 100.0 * (double)(t->n - 1) + 0.5), seen = 0;
    for (uint64_t v = 0; v < (1 << 16); v++)
        if ((seen += t->hist[v]) > rank) return v;
    return t->big[rank - seen < t->nbig ? rank - seen : t->nbig - 1];
}

static void chunk_ticks(const allocator *A, double seconds, size_t heap_mib) {
    size_t len = heap_mib << 20;
    unsigned char *m = region(len);
    void *h = A->init(m, len);
    struct tickstat *t = calloc(1, sizeof *t);
    t->min = UINT64_MAX;
    size_t cap = (size_t)1 << 24; /* live blocks */
    void **fifo = malloc(cap * sizeof *fifo);
    size_t head = 0, tail = 0, ok = 0, freed = 0;
    static const size_t aligns[] = {1, 2, 4, 8, 16, 32, 64};
    double t0 = cpu_seconds();
    while (t->n & 255 || cpu_seconds() - t0 < seconds) {
        size_t align = aligns[rnd() % 7], size = range(64, 16383);
        uint64_t a = ticks();
        void *p = A->alloc_aligned(h, align, size);
        ts_add(t, ticks() - a);
        if (p && tail - head < cap) {
            fifo[tail++ % cap] = p;
            ok++;
        }
        if (tail - head > 10 && rnd() % 10 == 0)
            for (int k = 0; k < 7; k++) {
                A->free(h, fifo[head++ % cap]);
                freed++;
            }
    }
    qsort(t->big, t->nbig, sizeof *t->big, cmp_u64);
    printf("ticks           %-15s %.0f s, %zu MiB: %9zu allocations, %9zu successful, %9zu deallocations\n",
           A->name, seconds, heap_mib, t->n, ok, freed);
    printf("                %-15s median=%6llu average=%7llu min=%5llu p99=%7llu p99.9=%7llu p99.99=%8llu max=%9llu ticks\n",
           "", (unsigned long long)ts_pct(t, 50), (unsigned long long)(t->sum / t->n),
           (unsigned long long)t->min, (unsigned long long)ts_pct(t, 99), (unsigned long long)ts_pct(t, 99.9),
           (unsigned long long)ts_pct(t, 99.99), (unsigned long long)ts_pct(t, 100));
    free(t->big);
    free(t);
    free(fifo);
    munmap(m, len);
}

/* --- latency tail ------------------------------------------------------------------ */

static size_t tail_size(void) {
    uint64_t r = rnd() % 100;
    return r < 70 ? range(1, 256) : r < 95 ? range(257, 8192) : range(8193, 65536);
}

/* The same operation sequence (same seed, same heap, same addresses) runs
 * `reps` times; each operation's time is its minimum over the runs, which
 * removes most timer interrupts and other preemption (the maximum of a
 * single run is set by those, ~1M ticks on a virtual machine). */
static void tail_run(const allocator *A, size_t len, size_t slots, size_t ops, unsigned reps,
                     const char *what) {
    unsigned char *m = region(len);
    void **s = malloc(slots * sizeof *s);
    uint64_t *ta = malloc(ops * sizeof *ta), *tf = malloc(ops * sizeof *tf);
    size_t na = 0, nf = 0, failed = 0;
    uint64_t raw_max = 0;
    for (unsigned rep = 0; rep < reps; rep++) {
        rng = 12345;
        void *h = A->init(m, len);
        memset(s, 0, slots * sizeof *s);
        na = nf = failed = 0;
        for (size_t i = 0; i < ops; i++) {
            size_t k = (size_t)(rnd() % slots);
            uint64_t t;
            if (s[k]) {
                uint64_t a = ticks();
                A->free(h, s[k]);
                t = ticks() - a;
                tf[nf] = rep && tf[nf] < t ? tf[nf] : t;
                nf++;
                s[k] = NULL;
            } else {
                size_t n = tail_size();
                uint64_t a = ticks();
                s[k] = A->alloc(h, n);
                t = ticks() - a;
                ta[na] = rep && ta[na] < t ? ta[na] : t;
                na++;
                failed += !s[k];
            }
            if (t > raw_max) raw_max = t;
        }
    }
    qsort(ta, na, sizeof *ta, cmp_u64);
    qsort(tf, nf, sizeof *tf, cmp_u64);
    printf("tail            %-15s %s: %zu ops (%zu allocs, %zu failed, %zu frees), min of %u runs\n", A->name,
           what, ops, na, failed, nf, reps);
    printf("                %-15s alloc p50=%4llu p99=%5llu p99.9=%6llu p99.99=%7llu max=%8llu ticks\n", "",
           (unsigned long long)pct(ta, na, 50), (unsigned long long)pct(ta, na, 99),
           (unsigned long long)pct(ta, na, 99.9), (unsigned long long)pct(ta, na, 99.99),
           (unsigned long long)ta[na - 1]);
    printf("                %-15s free  p50=%4llu p99=%5llu p99.9=%6llu p99.99=%7llu max=%8llu ticks\n", "",
           (unsigned long long)pct(tf, nf, 50), (unsigned long long)pct(tf, nf, 99),
           (unsigned long long)pct(tf, nf, 99.9), (unsigned long long)pct(tf, nf, 99.99),
           (unsigned long long)tf[nf - 1]);
    printf("                %-15s (largest single measurement, interrupts included: %llu ticks)\n", "",
           (unsigned long long)raw_max);
    free(s);
    free(ta);
    free(tf);
    munmap(m, len);
}

static void tail(const allocator *A, size_t ops, unsigned reps) {
    tail_run(A, (size_t)16 << 20, 2048, ops, reps, "16 MiB heap, 2048 slots");
    tail_run(A, (size_t)1 << 20, 2048, ops, reps, "1 MiB heap kept full, 2048 slots");
}

/* --- exhaustion rounds --------------------------------------------------------------- */

static void rounds(const allocator *A, double seconds) {
    size_t len = (size_t)1 << 20;
    unsigned char *m = region(len);
    void *h = A->init(m, len);
    void **v = malloc((len / 16) * sizeof *v);
    uint64_t n = 0, blocks = 0;
    double t0 = cpu_seconds(), t1;
    do {
        size_t k = 0;
        for (;;) {
            void *p = A->alloc(h, range(1, 4096));
            if (!p) break;
            v[k++] = p;
        }
        blocks += k;
        while (k) A->free(h, v[--k]);
        n++;
    } while ((t1 = cpu_seconds()) - t0 < seconds);
    printf("rounds          %-15s %llu exhaustion rounds in %.2f s of CPU (%.0f/s), %.0f blocks per round, 1 MiB heap\n",
           A->name, (unsigned long long)n, t1 - t0, (double)n / (t1 - t0), (double)blocks / (double)n);
    free(v);
    munmap(m, len);
}

/* --- fragmentation at 50 % load ------------------------------------------------------- */

/* The largest n for which an allocation succeeds now (freed again). */
static size_t largest_fit(const allocator *A, void *h, size_t hi) {
    size_t lo = 0; /* alloc(lo) succeeds (or lo == 0), alloc(hi + 1) is not tried */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        void *p = A->alloc(h, mid);
        if (p) {
            A->free(h, p);
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* One run: the largest block that fits after `ops` operations, as a share
 * of the free bytes (heap size minus the bytes asked for by live blocks). */
static size_t frag_max = 4096;

static double frag_run(const allocator *A, unsigned char *m, size_t len, size_t ops, struct live *v,
                       size_t *live_out, size_t *nlive_out) {
    size_t nlive = 0, live_bytes = 0;
    void *h = A->init(m, len);
    for (size_t i = 0; i < ops; i++) {
        if (live_bytes < len / 2 || !nlive) {
            size_t n = range(1, frag_max);
            void *p = A->alloc(h, n);
            if (p) {
                v[nlive++] = (struct live){p, n, 16};
                live_bytes += n;
            }
        } else {
            size_t k = (size_t)(rnd() % nlive);
            A->free(h, v[k].p);
            live_bytes -= v[k].n;
            v[k] = v[--nlive];
        }
    }
    size_t big = largest_fit(A, h, len);
    *live_out = live_bytes;
    *nlive_out = nlive;
    return 100.0 * (double)big / (double)(len - live_bytes);
}

static void frag(const allocator *A, size_t ops, unsigned seeds) {
    size_t len = (size_t)1 << 20, live = 0, nlive = 0;
    unsigned char *m = region(len);
    struct live *v = malloc((len / 16) * sizeof *v);
    double sum = 0, min = 100, first = 0;
    for (unsigned s = 0; s < seeds; s++) {
        rng = 0x2545f4914f6cdd1dull * (s + 1);
        double r = frag_run(A, m, len, ops, v, &live, &nlive);
        if (s == 0) first = r;
        sum += r;
        if (r < min) min = r;
    }
    printf("frag            %-15s %zu ops at 50%% load, 1 MiB heap, random 1..%zu B: largest block that fits, as a share of "
           "the free bytes: %.1f%% (seed 1, %zu live blocks), mean of %u seeds %.1f%%, min %.1f%%\n",
           A->name, ops, frag_max, first, nlive, seeds, sum / seeds, min);
    free(v);
    munmap(m, len);
}

/* --- free+alloc pairs ----------------------------------------------------------------- */

static uint64_t pair_sizes_rng;

__attribute__((noinline)) static void pair_loop(const allocator *A, void *h, void **slot, size_t pairs) {
    uint64_t x = pair_sizes_rng;
    for (size_t i = 0; i < pairs; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t r = x * 0x2545f4914f6cdd1dull;
        size_t k = (size_t)(r & 511), n = 16 + (size_t)((r >> 16) % 1009);
        A->free(h, slot[k]);
        slot[k] = A->alloc(h, n);
    }
    pair_sizes_rng = x;
}

static void pairs(const allocator *A, size_t n) {
    size_t len = (size_t)16 << 20;
    unsigned char *m = region(len);
    void *h = A->init(m, len);
    void *slot[512];
    for (int k = 0; k < 512; k++) slot[k] = A->alloc(h, range(16, 1024));
    pair_sizes_rng = 0x9e3779b97f4a7c15ull;
    double t0 = cpu_seconds();
    pair_loop(A, h, slot, n);
    double t1 = cpu_seconds();
    size_t lost = 0;
    for (int k = 0; k < 512; k++) {
        lost += slot[k] == NULL;
        A->free(h, slot[k]);
    }
    printf("pairs           %-15s %zu free+alloc pairs, 512 live blocks of 16..1024 B, 16 MiB heap: %.1f ns per pair, "
           "%zu failed\n",
           A->name, n, (t1 - t0) * 1e9 / (double)n, lost);
    munmap(m, len);
}

/* --- main -------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    double seconds = 1;
    size_t heap_mib = 0, ops = 1000000;
    unsigned seeds = 100, reps = 5;
    int which = -1; /* all */
    int nb = 0;
    const char *bench[8];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--alloc") && i + 1 < argc) {
            i++;
            which = !strcmp(argv[i], "rsb") ? 0 : !strcmp(argv[i], "firstfit") ? 1 : -1;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--heap") && i + 1 < argc) {
            heap_mib = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
            seeds = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--max-size") && i + 1 < argc) {
            frag_max = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            ops = strtoul(argv[++i], NULL, 0);
        } else if (nb < 8) {
            bench[nb++] = argv[i];
        }
    }
    if (!nb) {
        fprintf(stderr, "usage: %s [--alloc rsb|firstfit|all] [--seconds S] [--heap MIB] [--seeds N] [--ops N] [--reps N] "
                        "random_actions|exhaustion|ticks|tail|rounds|frag|pairs...\n", argv[0]);
        return 2;
    }
    for (int b = 0; b < nb; b++)
        for (int a = 0; a < 2; a++) {
            if (which >= 0 && a != which) continue;
            const allocator *A = &allocators[a];
            rng = 0x853c49e6748fea9bull;
            if (!strcmp(bench[b], "random_actions"))
                random_actions(A, seconds, heap_mib ? heap_mib : 256);
            else if (!strcmp(bench[b], "exhaustion"))
                exhaustion(A, heap_mib ? heap_mib << 10 : 1024, seeds);
            else if (!strcmp(bench[b], "ticks"))
                chunk_ticks(A, seconds, heap_mib ? heap_mib : 160);
            else if (!strcmp(bench[b], "tail"))
                tail(A, ops, reps);
            else if (!strcmp(bench[b], "rounds"))
                rounds(A, seconds);
            else if (!strcmp(bench[b], "frag"))
                frag(A, ops, seeds);
            else if (!strcmp(bench[b], "pairs"))
                pairs(A, ops);
            else {
                fprintf(stderr, "unknown benchmark %s\n", bench[b]);
                return 2;
            }
            fflush(stdout);
        }
    return 0;
}
