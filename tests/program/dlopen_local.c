/*
 * dlopen(librsbmalloc.so, RTLD_NOW | RTLD_LOCAL) in a program that uses
 * glibc malloc: the library loads (no static-TLS exhaustion), does not
 * interpose, and its rsb_* functions (found with dlsym) work from several
 * threads beside glibc's malloc, including cross-thread frees and fork.
 *
 * usage: dlopen_local /path/to/librsbmalloc.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rsbmalloc.h>

static void *(*p_malloc)(size_t);
static void (*p_free)(void *);
static void *(*p_realloc)(void *, size_t);
static void *(*p_calloc)(size_t, size_t);
static int (*p_posix_memalign)(void **, size_t, size_t);
static size_t (*p_usable)(const void *);
static void (*p_stats)(rsb_stats_t *);

static void fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    exit(1);
}

#define NT 4
#define NB 2000
static void *handoff[NT][NB];

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < NB; i++) {
        size_t n = (size_t)(i * 37 + id) % 5000 + 1;
        if (i % 500 == 0)
            n = 3u << 20;               /* huge */
        unsigned char *p = p_malloc(n);
        if (!p)
            fail("rsb_malloc failed in a thread");
        memset(p, id + 1, n);
        handoff[id][i] = p;
        /* glibc's malloc keeps working beside it */
        void *g = malloc(n);
        if (!g)
            fail("glibc malloc failed");
        memset(g, 0, n);
        free(g);
    }
    return NULL;
}

static void *freer(void *arg)
{
    int id = (int)(intptr_t)arg;
    int from = (id + 1) % NT;            /* cross-thread free */
    for (int i = 0; i < NB; i++) {
        unsigned char *p = handoff[from][i];
        size_t n = (size_t)(i * 37 + from) % 5000 + 1;
        if (i % 500 == 0)
            n = 3u << 20;
        if (p[0] != from + 1 || p[n - 1] != from + 1)
            fail("block corrupted before its cross-thread free");
        if (i % 3 == 0) {
            p = p_realloc(p, n * 2 + 300000);
            if (!p || p[0] != from + 1)
                fail("rsb_realloc lost data");
        }
        p_free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        fail("usage: dlopen_local LIB.so");
    if (dlsym(RTLD_DEFAULT, "rsb_malloc"))
        fail("rsbmalloc is already loaded: run this test without LD_PRELOAD");
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "FAIL: dlopen(%s): %s\n", argv[1], dlerror());
        return 1;
    }
    p_malloc = (void *(*)(size_t))dlsym(h, "rsb_malloc");
    p_free = (void (*)(void *))dlsym(h, "rsb_free");
    p_realloc = (void *(*)(void *, size_t))dlsym(h, "rsb_realloc");
    p_calloc = (void *(*)(size_t, size_t))dlsym(h, "rsb_calloc");
    p_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(h, "rsb_posix_memalign");
    p_usable = (size_t (*)(const void *))dlsym(h, "rsb_malloc_usable_size");
    p_stats = (void (*)(rsb_stats_t *))dlsym(h, "rsb_stats");
    if (!p_malloc || !p_free || !p_realloc || !p_calloc || !p_posix_memalign || !p_usable || !p_stats)
        fail("dlsym of an rsb_* function failed");
    /* RTLD_LOCAL: nothing leaks into the global scope */
    if (dlsym(RTLD_DEFAULT, "rsb_malloc"))
        fail("rsb_malloc visible in the global scope after RTLD_LOCAL");
    void *(*m)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (!m || !dladdr((void *)m, &info) || strstr(info.dli_fname, "rsbmalloc"))
        fail("malloc resolves to librsbmalloc although it was loaded RTLD_LOCAL");
    void *(*lm)(size_t) = (void *(*)(size_t))dlsym(h, "malloc");
    if (!lm)
        fail("librsbmalloc.so has no malloc");

    rsb_stats_t st0, st1;
    p_stats(&st0);

    /* single-thread basics */
    void *a = p_malloc(17), *b = p_calloc(100, 100), *c = NULL;
    if (!a || !b || p_posix_memalign(&c, 1 << 16, 1000) || !c || (uintptr_t)c % (1 << 16))
        fail("basic rsb_* calls");
    if (p_usable(a) < 17 || p_usable(b) < 10000)
        fail("rsb_malloc_usable_size");
    for (int i = 0; i < 10000; i++)
        if (((unsigned char *)b)[i])
            fail("rsb_calloc not zero");
    p_free(a), p_free(b), p_free(c);
    /* the library's exported malloc (called directly) is the rsb one */
    void *d = lm(1000);
    if (!d || p_usable(d) < 1000)
        fail("librsbmalloc's own malloc symbol");
    p_free(d);

    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i))
            fail("pthread_create");
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NT; i++)
        if (pthread_create(&t[i], NULL, freer, (void *)(intptr_t)i))
            fail("pthread_create");
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);

    /* fork: both allocators usable in the child */
    pid_t pid = fork();
    if (pid == 0) {
        void *x = p_malloc(5000), *y = malloc(5000);
        if (!x || !y)
            _exit(2);
        p_free(x);
        free(y);
        _exit(0);
    }
    int ws;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws))
        fail("child after fork could not allocate with both allocators");

    int (*trim)(size_t) = (int (*)(size_t))dlsym(h, "rsb_malloc_trim");
    if (trim)
        trim(0);
    p_stats(&st1);
    if (st1.in_use > st0.in_use + 65536)
        fail("rsb_stats in_use did not return to its start value: leaked blocks");
    printf("dlopen_local ok\n");
    return 0;
}
