/*
 * bench/shapes/shape.h — what every workload shape shares.
 *
 * Each shape is a standalone program that allocates with plain malloc, free
 * and realloc, so scripts/bench can run it once per allocator under
 * LD_PRELOAD and time the whole process (wall time and peak RSS from wait4).
 * The programs are written for this suite from the description of the
 * public benchmarks they mirror (bench/README.md, "Workload shapes"); none
 * is a copy of another suite's code.
 *
 * Common command line:
 *   -t N      threads (where the shape has threads)
 *   -s F      scale the amount of work by F (default 1: ~0.3-3 s under glibc
 *             on the 2-core reference machine)
 *   -m WORD   a shape-specific mode (e.g. the free order of batch)
 *   --smoke   tiny inputs: checks that the shape runs and verifies its data
 *
 * Every shape checks its own data (block stamps, arithmetic identities,
 * covers), so an allocator that hands out overlapping or corrupted memory
 * makes it fail with exit status 1.  On success it prints one line,
 *   <name>: ok key=value ... peak_rss_kib=K malloc=<object that provides malloc>
 * which scripts/bench parses (the peak RSS is the process's VmHWM; the last
 * field proves the preload took).
 *
 * The shapes are compiled with -fno-builtin-malloc (and free, realloc,
 * calloc): otherwise GCC may drop a malloc/free pair whose block looks
 * unused, or fuse malloc+memset into calloc, and the benchmark would no
 * longer make the calls it claims to make.
 */
#ifndef RSB_SHAPE_H
#define RSB_SHAPE_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct shape {
    const char *name;
    int threads;
    double scale;
    int smoke;
    const char *mode;
};

__attribute__((noreturn, format(printf, 2, 3), unused))
static void shape_fail(const struct shape *sh, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: FAILED: ", sh->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

__attribute__((noreturn, unused))
static void shape_usage(const struct shape *sh, const char *extra)
{
    fprintf(stderr, "usage: %s [-t THREADS] [-s SCALE] [-m MODE] [--smoke]%s%s\n",
            sh->name, extra ? "\n" : "", extra ? extra : "");
    exit(2);
}

/* Parse the common options; threads defaults to default_threads. */
__attribute__((unused))
static void shape_init(struct shape *sh, const char *name, int argc, char **argv,
                       int default_threads, const char *default_mode, const char *usage)
{
    sh->name = name;
    sh->threads = default_threads;
    sh->scale = 1.0;
    sh->smoke = 0;
    sh->mode = default_mode;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--smoke") == 0) {
            sh->smoke = 1;
        } else if (strcmp(a, "-t") == 0 && i + 1 < argc) {
            sh->threads = atoi(argv[++i]);
        } else if (strcmp(a, "-s") == 0 && i + 1 < argc) {
            sh->scale = strtod(argv[++i], NULL);
        } else if (strcmp(a, "-m") == 0 && i + 1 < argc) {
            sh->mode = argv[++i];
        } else {
            shape_usage(sh, usage);
        }
    }
    if (sh->threads < 1 || sh->threads > 4096 || !(sh->scale > 0))
        shape_usage(sh, usage);
}

/* The amount of work: `full` scaled by -s, or `smoke` with --smoke. */
__attribute__((unused))
static long shape_count(const struct shape *sh, long full, long smoke)
{
    if (sh->smoke)
        return smoke;
    double n = (double)full * sh->scale;
    return n < 1 ? 1 : (long)n;
}

/* Which shared object provides malloc: the first definition in load order,
 * as the dynamic linker binds it for everybody. */
__attribute__((unused))
static const char *shape_malloc_provider(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
        return "(unknown)";
    return info.dli_fname[0] ? info.dli_fname : "(main program)";
}

/* The process's peak RSS in KiB (VmHWM), read with plain system calls so
 * that the reading allocates nothing; -1 if unknown.  The harness uses this
 * rather than wait4's ru_maxrss: at exec the kernel carries the parent's
 * high-water mark over into ru_maxrss (with vfork, the parent's own), so that
 * figure would be the Python driver's RSS for every small shape. */
__attribute__((unused))
static long shape_peak_rss_kib(void)
{
    static char buf[16384];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    const char *p = strstr(buf, "VmHWM:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

/* The success line:
 *   "<name>: ok threads=T <details> peak_rss_kib=K malloc=<provider>". */
__attribute__((format(printf, 2, 3), unused))
static void shape_ok(const struct shape *sh, const char *fmt, ...)
{
    long rss = shape_peak_rss_kib();
    va_list ap;
    printf("%s: ok threads=%d ", sh->name, sh->threads);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" peak_rss_kib=%ld malloc=%s\n", rss, shape_malloc_provider());
}

/* ---- random numbers: xorshift64*, one generator per thread ------------- */

typedef struct {
    uint64_t s;
} rng_t;

static inline rng_t rng_make(uint64_t seed)
{
    rng_t r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
    return r;
}

static inline uint64_t rng_next(rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n). */
static inline uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi)
{
    return lo + rng_below(r, (uint32_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: every doubling of the size is about equally
 * likely, so small blocks dominate the count and large ones the bytes.
 * (A draw outside [lo, hi] is drawn again.) */
static inline size_t rng_logsize(rng_t *r, size_t lo, size_t hi)
{
    unsigned lg_lo = 63u - (unsigned)__builtin_clzll(lo);
    unsigned lg_hi = 63u - (unsigned)__builtin_clzll(hi);
    for (;;) {
        unsigned lg = lg_lo + rng_below(r, lg_hi - lg_lo + 1);
        size_t base = (size_t)1 << lg;
        size_t n = base + (rng_next(r) & (base - 1));
        if (n >= lo && n <= hi)
            return n;
    }
}

/* ---- block stamps -------------------------------------------------------- */

static inline uint64_t shape_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Write a tag into a fresh block of n bytes: its first (up to) 8 bytes and
 * its last byte, the parts a program writes first (a header, a terminator). */
static inline void shape_stamp(void *p, size_t n, uint64_t tag)
{
    unsigned char *c = (unsigned char *)p;
    uint64_t v = shape_mix(tag ^ ((uint64_t)n << 40));
    memcpy(c, &v, n < 8 ? n : 8);
    if (n > 8)
        c[n - 1] = (unsigned char)(v >> 56);
}

/* Is the stamp still there?  A block that another live block overlaps, or
 * that the allocator scribbled on, fails this. */
static inline int shape_stamp_ok(const void *p, size_t n, uint64_t tag)
{
    const unsigned char *c = (const unsigned char *)p;
    uint64_t v = shape_mix(tag ^ ((uint64_t)n << 40));
    if (memcmp(c, &v, n < 8 ? n : 8) != 0)
        return 0;
    return n <= 8 || c[n - 1] == (unsigned char)(v >> 56);
}

__attribute__((unused))
static void *shape_malloc(const struct shape *sh, size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        shape_fail(sh, "malloc(%zu) returned NULL", n);
    return p;
}

/* ---- bookkeeping outside the allocator ------------------------------------ */

/* Zeroed memory from mmap for the harness's own tables (thread handles,
 * per-thread records, tables of block pointers): they stay out of the
 * allocator under test, so they neither change its allocation pattern nor
 * get corrupted when a broken allocator hands out a block twice. */
__attribute__((unused))
static void *shape_meta(const struct shape *sh, size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        shape_fail(sh, "mmap of %zu bytes for bookkeeping failed", n);
    return p;
}

__attribute__((unused))
static void shape_meta_free(void *p, size_t n)
{
    munmap(p, n ? n : 1);
}

/* ---- threads -------------------------------------------------------------- */

/* Run fn(arg + i * arg_size) on n new threads and wait for all of them. */
__attribute__((unused))
static void shape_run_threads(const struct shape *sh, int n, void *(*fn)(void *), void *arg,
                              size_t arg_size)
{
    pthread_t *t = (pthread_t *)shape_meta(sh, sizeof(pthread_t) * (size_t)n);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (char *)arg + (size_t)i * arg_size) != 0)
            shape_fail(sh, "pthread_create failed (thread %d of %d)", i, n);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    shape_meta_free(t, sizeof(pthread_t) * (size_t)n);
}

#endif
