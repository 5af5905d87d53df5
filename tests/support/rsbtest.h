/*
 * rsbtest.h — shared helpers for the rsbmalloc integration tests.
 *
 * One test source is compiled in several variants; exactly one of these is
 * defined by tests/integration/meson.build:
 *
 *   RSBT_VARIANT_PREFIXED  rsb_* API, linked with librsbmalloc-prefixed.a
 *                          (the system malloc stays in place beside it)
 *   RSBT_VARIANT_LINKED    libc names, executable linked with librsbmalloc.so
 *   RSBT_VARIANT_STATIC    libc names, executable linked with librsbmalloc.a
 *   RSBT_VARIANT_PRELOAD   libc names, not linked; run with LD_PRELOAD
 *   RSBT_VARIANT_GLIBC     libc names, no rsbmalloc at all (developer
 *                          sanity run of the harness against glibc; tests
 *                          that need rsbmalloc behaviour fail there)
 *
 * T(fn) names the function under test: rsb_fn or fn.
 */
#ifndef RSBTEST_H
#define RSBTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rsbmalloc.h>

#if defined(RSBT_VARIANT_PREFIXED)
#define RSBT_LIBC_NAMES 0
#define RSBT_VARIANT_NAME "prefixed"
#elif defined(RSBT_VARIANT_LINKED)
#define RSBT_LIBC_NAMES 1
#define RSBT_VARIANT_NAME "linked"
#elif defined(RSBT_VARIANT_STATIC)
#define RSBT_LIBC_NAMES 1
#define RSBT_VARIANT_NAME "static"
#elif defined(RSBT_VARIANT_PRELOAD)
#define RSBT_LIBC_NAMES 1
#define RSBT_VARIANT_NAME "preload"
#elif defined(RSBT_VARIANT_GLIBC)
#define RSBT_LIBC_NAMES 1
#define RSBT_VARIANT_NAME "glibc"
#else
#error "define one RSBT_VARIANT_*"
#endif

#if RSBT_LIBC_NAMES
#define T(fn) fn
/* Not declared by glibc 2.36's headers, exported by librsbmalloc.  Weak so
 * the preload and glibc variants link; the tests check they resolved. */
extern void free_sized(void *p, size_t size) __attribute__((weak));
extern void free_aligned_sized(void *p, size_t alignment, size_t size) __attribute__((weak));
extern void cfree(void *p) __attribute__((weak));
#if !defined(RSBT_VARIANT_LINKED) && !defined(RSBT_VARIANT_STATIC)
/* Resolved at run time from the preloaded library, NULL without it. */
#pragma weak rsb_stats
#pragma weak rsb_malloc_usable_size
#pragma weak rsb_malloc_trim
#pragma weak rsb_malloc
#pragma weak rsb_free
#endif
#define T_usable malloc_usable_size
#define T_trim malloc_trim
#else
#define T(fn) rsb_##fn
#define T_usable rsb_malloc_usable_size
#define T_trim rsb_malloc_trim
#endif

/* Values the optimiser cannot see through (no -Walloc-size warnings, no
 * folding of impossible requests). */
static volatile size_t rsbt_size_max = SIZE_MAX;
static volatile size_t rsbt_ptrdiff_max = PTRDIFF_MAX;

static inline size_t rsbt_v(size_t x)
{
    volatile size_t v = x;
    return v;
}

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* free_sized, falling back to free where it is not available (only in the
 * glibc sanity variant; the contract test checks the symbol exists). */
static inline void rsbt_free_sized(void *p, size_t n)
{
#if RSBT_LIBC_NAMES
    if (!free_sized) {
        free(p);
        return;
    }
#endif
    T(free_sized)(p, n);
}

/* ---------------------------------------------------------------- stats -- */

/* True when rsb_stats() is callable (always except the glibc variant). */
static inline int rsbt_have_stats(void)
{
#if RSBT_LIBC_NAMES && !defined(RSBT_VARIANT_LINKED) && !defined(RSBT_VARIANT_STATIC)
    return rsb_stats != NULL;
#else
    return 1;
#endif
}

static inline size_t rsbt_in_use(void)
{
    rsb_stats_t st;
    memset(&st, 0, sizeof st);
    rsb_stats(&st);
    return st.in_use;
}

/* --------------------------------------------------------------- pattern -- */

static inline uint64_t rsbt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The pattern seed of a block: derived from its address and size. */
static inline uint64_t rsbt_seed(const void *p, size_t n)
{
    return rsbt_mix((uint64_t)(uintptr_t)p * 0x100000001b3ull ^ (uint64_t)n);
}

/*
 * Blocks up to 64 KiB are patterned completely; larger ones on their first
 * and last 4 KiB plus 64 bytes at every 4 KiB boundary up to 1 MiB (every
 * page is touched, so RSS is real and overlaps are found, at a fraction of
 * the cost), at every 64 KiB boundary above.
 * The byte at offset i is byte (i % 8) of mix(seed + i / 8).
 */
#define RSBT_DENSE_MAX (64 * 1024)
#define RSBT_PAGED_MAX (1024 * 1024)

static inline unsigned char rsbt_byte_at(uint64_t seed, size_t i)
{
    return (unsigned char)(rsbt_mix(seed + i / 8) >> (8 * (i % 8)));
}

/* Calls fn(p, from, to, seed, ctx) over the patterned ranges of a block of
 * pattern length n, clipped to limit. */
typedef int (*rsbt_range_fn)(unsigned char *p, size_t from, size_t to, uint64_t seed, size_t *bad);

static inline int rsbt_fill_range(unsigned char *p, size_t from, size_t to, uint64_t seed, size_t *bad)
{
    (void)bad;
    size_t i = from;
    while (i < to && (i & 7))
        p[i] = rsbt_byte_at(seed, i), i++;
    for (; i + 8 <= to; i += 8) {
        uint64_t w = rsbt_mix(seed + i / 8);
        memcpy(p + i, &w, 8);
    }
    for (; i < to; i++)
        p[i] = rsbt_byte_at(seed, i);
    return 0;
}

static inline int rsbt_check_range(unsigned char *p, size_t from, size_t to, uint64_t seed, size_t *bad)
{
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (p[i] != rsbt_byte_at(seed, i))
            goto fail;
    for (; i + 8 <= to; i += 8) {
        uint64_t w = rsbt_mix(seed + i / 8), g;
        memcpy(&g, p + i, 8);
        if (g != w) {
            for (size_t j = i; j < i + 8; j++)
                if (p[j] != rsbt_byte_at(seed, j)) {
                    i = j;
                    goto fail;
                }
        }
    }
    for (; i < to; i++)
        if (p[i] != rsbt_byte_at(seed, i))
            goto fail;
    return 0;
fail:
    if (bad)
        *bad = i;
    return -1;
}

static inline int rsbt_walk(void *vp, size_t n, size_t limit, uint64_t seed, rsbt_range_fn fn, size_t *bad)
{
    unsigned char *p = vp;
    if (limit > n)
        limit = n;
#define RSBT_RANGE(a, b)                                                        \
    do {                                                                        \
        size_t a_ = (a), b_ = (b) < limit ? (b) : limit;                        \
        if (a_ < b_ && fn(p, a_, b_, seed, bad))                                \
            return -1;                                                          \
    } while (0)
    if (n <= RSBT_DENSE_MAX) {
        RSBT_RANGE(0, n);
        return 0;
    }
    RSBT_RANGE(0, 4096);
    size_t tail = (n - 4096) & ~(size_t)7;
    size_t stride = n <= RSBT_PAGED_MAX ? 4096 : 65536;
    for (size_t off = stride; off < tail; off += stride)
        RSBT_RANGE(off, off + 64);
    RSBT_RANGE(tail, n);
#undef RSBT_RANGE
    return 0;
}

/* Fill a block of n bytes with the pattern of seed. */
static inline void rsbt_fill(void *p, size_t n, uint64_t seed)
{
    rsbt_walk(p, n, n, seed, rsbt_fill_range, NULL);
}

/* Check the pattern (written for length n) on the first limit bytes.
 * Returns 0 if intact, else -1 with *bad the first bad offset. */
static inline int rsbt_check(void *p, size_t n, size_t limit, uint64_t seed, size_t *bad)
{
    return rsbt_walk(p, n, limit, seed, rsbt_check_range, bad);
}

/* ------------------------------------------------------------- /proc ---- */

/* Value in KiB of a "Key:   123 kB" line of /proc/self/status, or -1. */
static inline long rsbt_status_kb(const char *key)
{
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    size_t kl = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (!strncmp(l, key, kl) && l[kl] == ':')
            return strtol(l + kl + 1, NULL, 10);
    return -1;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0).  Returns 0 on success. */
static inline int rsbt_reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, "5", 1);
    close(fd);
    return w == 1 ? 0 : -1;
}

/* ------------------------------------------------- child with stderr ---- */

typedef struct rsbt_child {
    int status;       /* waitpid status */
    int timed_out;    /* killed after the deadline */
    char err[4096];   /* captured stderr, NUL-terminated */
    size_t err_len;
} rsbt_child_t;

/* Run fn(arg) in a forked child with stderr captured through a pipe; the
 * child exits 0 if fn returns.  Waits at most timeout_s seconds. */
static inline int rsbt_run_child(void (*fn)(void *), void *arg, double timeout_s, rsbt_child_t *out)
{
    int fds[2];
    memset(out, 0, sizeof *out);
    if (pipe(fds))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int done = 0;
    for (;;) {
        ssize_t r;
        char junk[512];
        while (1) {
            if (out->err_len < sizeof out->err - 1)
                r = read(fds[0], out->err + out->err_len, sizeof out->err - 1 - out->err_len);
            else
                r = read(fds[0], junk, sizeof junk);
            if (r > 0) {
                if (out->err_len < sizeof out->err - 1)
                    out->err_len += (size_t)r;
                continue;
            }
            break;
        }
        if (!done) {
            pid_t w = waitpid(pid, &out->status, WNOHANG);
            if (w == pid)
                done = 1;
        }
        if (done && r == 0)
            break;              /* exited and pipe drained to EOF */
        if (done && r < 0 && errno != EAGAIN)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (!done && el > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &out->status, 0);
            out->timed_out = 1;
            break;
        }
        if (done && el > timeout_s + 5)
            break;              /* a grandchild holds the pipe */
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    out->err[out->err_len] = 0;
    close(fds[0]);
    /* Under qemu-user (the arm64 run, scripts/test-arm64) the emulator, not
     * the program, adds this line after the child died of a signal; a real
     * kernel writes nothing.  Only that exact last line is dropped. */
    static const char qemu_sig[] = "qemu: uncaught target signal ";
    char *last = out->err_len ? memrchr(out->err, '\n', out->err_len - 1) : NULL;
    last = last ? last + 1 : out->err;
    if (out->err_len && out->err[out->err_len - 1] == '\n' &&
        strncmp(last, qemu_sig, sizeof qemu_sig - 1) == 0 && WIFSIGNALED(out->status)) {
        out->err_len = (size_t)(last - out->err);
        out->err[out->err_len] = 0;
    }
    return 0;
}

/* Does s contain the hex digits of addr (any case, 0x prefix and leading
 * zeros optional)? */
static inline int rsbt_mentions_addr(const char *s, const void *addr)
{
    char want[32];
    snprintf(want, sizeof want, "%lx", (unsigned long)(uintptr_t)addr);
    size_t wl = strlen(want);
    for (const char *c = s; *c; c++) {
        size_t i = 0;
        while (i < wl && c[i] && (c[i] | 0x20) == want[i])
            i++;
        if (i == wl) {
            /* must not be a suffix of a longer different number */
            int prev_ok = c == s || !((c[-1] >= '1' && c[-1] <= '9') || ((c[-1] | 0x20) >= 'a' && (c[-1] | 0x20) <= 'f'));
            char nx = c[wl] | 0x20;
            int next_ok = !((nx >= '0' && nx <= '9') || (nx >= 'a' && nx <= 'f'));
            if (prev_ok && next_ok)
                return 1;
        }
    }
    return 0;
}

static inline int rsbt_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif /* RSBTEST_H */
