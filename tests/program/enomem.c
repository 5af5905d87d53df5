/*
 * Sizes the system cannot give: every entry point returns NULL with errno
 * ENOMEM (posix_memalign returns ENOMEM), as glibc's do, instead of a
 * pointer that kills the program on first touch; sizes the kernel grants
 * still succeed; under an address-space limit (RLIMIT_AS, as `ulimit -v`)
 * every entry point fails cleanly at the limit, and after the program frees
 * what it holds, allocation works again, from another thread too (no lock
 * was left held).  Run by diffrun.sh under glibc and under rsbmalloc: the
 * printed lines must be the same.  System-wide settings are read, never
 * changed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "progcheck.h"

#define CHECK(cond, ...)                      \
    do {                                      \
        if (!(cond)) {                        \
            fprintf(stderr, "FAIL: ");        \
            fprintf(stderr, __VA_ARGS__);     \
            fprintf(stderr, "\n");            \
            exit(1);                          \
        }                                     \
    } while (0)

static size_t meminfo_kib(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    size_t v = 0, n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') v = strtoull(line + n + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

static long read_long(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f && fscanf(f, "%ld", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t v = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0) v = strtoull(line + 7, NULL, 10) * 1024;
    if (f) fclose(f);
    return v;
}

/* Each entry point asked for size bytes must fail with ENOMEM; "what" names
 * the situation in the output. */
static void all_fail(const char *what, size_t size) {
    void *p;
    errno = 0;
    p = malloc(size);
    CHECK(p == NULL && errno == ENOMEM, "%s: malloc(%zu) = %p, errno %d", what, size, p, errno);
    errno = 0;
    p = calloc(1, size);
    CHECK(p == NULL && errno == ENOMEM, "%s: calloc(1, %zu) = %p, errno %d", what, size, p, errno);
    errno = 0;
    p = calloc(size / 64, 64);
    CHECK(p == NULL && errno == ENOMEM, "%s: calloc(%zu, 64) = %p, errno %d", what, size / 64, p, errno);
    char *small = malloc(100);
    CHECK(small != NULL, "%s: malloc(100) failed", what);
    memset(small, 0x5a, 100);
    errno = 0;
    p = realloc(small, size);
    CHECK(p == NULL && errno == ENOMEM, "%s: realloc(p, %zu) = %p, errno %d", what, size, p, errno);
    for (int i = 0; i < 100; i++) CHECK(small[i] == 0x5a, "%s: the block realloc failed on changed", what);
    free(small);
    void *q = (void *)&q;
    errno = 0;
    int rc = posix_memalign(&q, 64, size);
    /* (errno after posix_memalign is unspecified: glibc sets it, rsbmalloc
     * leaves it) */
    CHECK(rc == ENOMEM && q == (void *)&q, "%s: posix_memalign = %d, *out %s", what, rc,
          q == (void *)&q ? "untouched" : "written");
    errno = 0;
    p = aligned_alloc(4096, size & ~(size_t)4095);
    CHECK(p == NULL && errno == ENOMEM, "%s: aligned_alloc = %p, errno %d", what, p, errno);
    errno = 0;
    p = memalign(1 << 21, size);
    CHECK(p == NULL && errno == ENOMEM, "%s: memalign = %p, errno %d", what, p, errno);
    errno = 0;
    p = valloc(size);
    CHECK(p == NULL && errno == ENOMEM, "%s: valloc = %p, errno %d", what, p, errno);
    errno = 0;
    p = pvalloc(size);
    CHECK(p == NULL && errno == ENOMEM, "%s: pvalloc = %p, errno %d", what, p, errno);
    printf("%s: malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc, pvalloc: NULL, ENOMEM\n",
           what);
}

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        void *p = malloc((size_t)(i % 64) * 64 + 1);
        CHECK(p != NULL, "another thread: malloc failed after the limit was lifted");
        free(p);
    }
    void *big = malloc((size_t)32 << 20);
    CHECK(big != NULL, "another thread: malloc(32 MiB) failed");
    memset(big, 1, (size_t)32 << 20);
    free(big);
    return NULL;
}

int main(void) {
    rsbt_expect_allocator();
    setvbuf(stdout, NULL, _IONBF, 0); /* no buffer to allocate once the limit is set */
    size_t ram_swap = (meminfo_kib("MemTotal") + meminfo_kib("SwapTotal")) * 1024;
    long mode = read_long("/proc/sys/vm/overcommit_memory");
    CHECK(ram_swap > 0, "no /proc/meminfo");

    /* 1. More than RAM + swap: the kernel refuses such a mapping in its
     * default (heuristic) mode and in strict mode; mode 1 grants everything,
     * so there is nothing to check. */
    if (mode == 1) {
        printf("overcommit_memory is 1 (always): sizes above RAM + swap are granted; not checked\n");
    } else {
        all_fail("above RAM + swap", ram_swap + ram_swap / 2);
        all_fail("half the address space", (size_t)PTRDIFF_MAX / 2);
    }
    /* What the kernel grants still succeeds. */
    size_t grant = (size_t)256 << 20;
    char *g = malloc(grant);
    CHECK(g != NULL, "malloc(256 MiB) failed");
    g[0] = g[grant - 1] = 1;
    free(g);
    g = calloc(1, grant);
    CHECK(g != NULL && g[grant / 2] == 0, "calloc(256 MiB) failed or not zero");
    free(g);
    printf("256 MiB: granted\n");

    /* 2. Under an address-space limit (what `ulimit -v` sets). */
    size_t limit = vm_size() + ((size_t)192 << 20);
    struct rlimit rl = {limit, limit};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));
    all_fail("at the RLIMIT_AS limit", (size_t)512 << 20);
    /* Fill up to the limit with blocks of every regime, then free. */
    enum { MAXB = 100000 };
    static void *held[MAXB];
    size_t sizes[] = {100, 3000, 70000, 600000, (size_t)3 << 20};
    int n = 0;
    for (unsigned k = 0; n < MAXB; k++) {
        errno = 0;
        void *p = malloc(sizes[k % 5]);
        if (!p) {
            CHECK(errno == ENOMEM, "filling: NULL with errno %d", errno);
            break;
        }
        memset(p, 1, sizes[k % 5] < 4096 ? sizes[k % 5] : 4096);
        held[n++] = p;
    }
    CHECK(n > 0 && n < MAXB, "filling: %d blocks before the limit", n);
    printf("filled up to the limit: NULL, ENOMEM\n");
    while (n > 0) free(held[--n]);
    malloc_trim(0);
    /* Everything works again, here and in another thread. */
    void *again = malloc((size_t)64 << 20);
    CHECK(again != NULL, "malloc(64 MiB) after freeing: NULL");
    memset(again, 2, (size_t)64 << 20);
    free(again);
    rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_AS, &rl); /* an unprivileged process may only lower it: then a thread must fit as is */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    printf("after freeing: allocation works again, in another thread too\n");
    return 0;
}
