/*
 * Thread exit: pthread_key destructors free memory (some allocated by other
 * threads), allocate again during destructor rounds, and glibc frees its
 * own per-thread memory after them; threads exit through pthread_exit from
 * nested calls, detached threads exit while others allocate.  In the end
 * every destructor ran and rsbmalloc's in_use is back where it started.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rsbmalloc.h>

#include "progcheck.h"

static pthread_key_t k_plain, k_realloc, k_again;
static atomic_long dtor_plain, dtor_again, dtor_again_second;
static atomic_long live_detached;

struct tls_blob {
    size_t n;
    unsigned char data[];
};

static struct tls_blob *blob_new(size_t n, unsigned char v)
{
    struct tls_blob *b = malloc(sizeof *b + n);
    if (!b)
        rsbt_prog_fail("malloc in thread");
    b->n = n;
    memset(b->data, v, n);
    return b;
}

static void blob_check_free(struct tls_blob *b, unsigned char v)
{
    for (size_t i = 0; i < b->n; i += 1 + i / 32)
        if (b->data[i] != v)
            rsbt_prog_fail("thread-specific block corrupted before its destructor");
    free(b);
}

static void d_plain(void *p)
{
    blob_check_free(p, 0x11);
    atomic_fetch_add(&dtor_plain, 1);
}

static void d_realloc(void *p)
{
    /* grow, then free: realloc during teardown */
    struct tls_blob *b = realloc(p, sizeof *b + 600000);
    if (!b)
        rsbt_prog_fail("realloc in a TSD destructor");
    free(b);
}

static void d_again(void *p)
{
    /* first round: free, allocate a new value and set it again (glibc then
     * runs another destructor round); second round: just free */
    uintptr_t round = *(uintptr_t *)p;
    free(p);
    if (round == 0) {
        uintptr_t *q = malloc(64);
        if (!q)
            rsbt_prog_fail("malloc in a TSD destructor");
        *q = 1;
        pthread_setspecific(k_again, q);
        atomic_fetch_add(&dtor_again, 1);
    } else {
        atomic_fetch_add(&dtor_again_second, 1);
    }
}

static void nested_exit(int depth, void *ret);
/* called through a pointer: gcc's -Winfinite-recursion misreads the
 * pthread_exit base case */
static void (*volatile nested_exit_p)(int, void *) = nested_exit;

static void nested_exit(int depth, void *ret)
{
    char *tmp = malloc(100 + (size_t)depth);
    if (!tmp)
        rsbt_prog_fail("malloc");
    free(tmp);
    if (depth > 0)
        nested_exit_p(depth - 1, ret);
    else
        pthread_exit(ret);
}

struct targ {
    void *from_main;   /* freed in our destructor: allocated by another thread */
    int id;
    int detached;
};

static void *thread_main(void *arg)
{
    struct targ *a = arg;
    pthread_setspecific(k_plain, blob_new((size_t)(a->id % 5000) + 1, 0x11));
    pthread_setspecific(k_realloc, a->from_main);
    uintptr_t *r0 = malloc(32);
    if (!r0)
        rsbt_prog_fail("malloc");
    *r0 = 0;
    pthread_setspecific(k_again, r0);
    /* glibc allocates per-thread state on first use of some functions */
    char buf[64];
    snprintf(buf, sizeof buf, "%d %f", a->id, a->id / 3.0);
    void *big = malloc(3 << 20);
    if (!big)
        rsbt_prog_fail("malloc 3 MiB");
    memset(big, 1, 3 << 20);
    free(big);
    int detached = a->detached;
    free(a);
    if (detached)
        atomic_fetch_sub(&live_detached, 1);
    if (((uintptr_t)r0 >> 4) & 1)
        nested_exit(5, NULL);
    return NULL;
}

static void start(int id, int detached, pthread_t *t)
{
    struct targ *a = malloc(sizeof *a);
    if (!a)
        rsbt_prog_fail("malloc");
    a->id = id;
    a->detached = detached;
    a->from_main = blob_new(200, 0x22);
    pthread_attr_t at;
    pthread_attr_init(&at);
    if (detached)
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(t, &at, thread_main, a))
        rsbt_prog_fail("pthread_create");
    pthread_attr_destroy(&at);
}

int main(void)
{
    rsbt_expect_allocator();
    const char *expect = getenv("RSBT_EXPECT");
    void (*stats)(rsb_stats_t *) = (void (*)(rsb_stats_t *))dlsym(RTLD_DEFAULT, "rsb_stats");
    int (*trim)(size_t) = (int (*)(size_t))dlsym(RTLD_DEFAULT, "rsb_malloc_trim");
    rsb_stats_t s0, s1;
    if (stats)
        stats(&s0);

    if (pthread_key_create(&k_plain, d_plain) || pthread_key_create(&k_realloc, d_realloc) ||
        pthread_key_create(&k_again, d_again))
        rsbt_prog_fail("pthread_key_create");

    const int joined = 3000, detached = 1000;
    atomic_store(&live_detached, detached);
    for (int i = 0; i < joined; i += 4) {
        pthread_t t[4];
        for (int k = 0; k < 4; k++)
            start(i + k, 0, &t[k]);
        for (int k = 0; k < 4; k++)
            pthread_join(t[k], NULL);
    }
    for (int i = 0; i < detached; i++) {
        pthread_t t;
        start(joined + i, 1, &t);
        if (i % 50 == 49)
            usleep(1000);
    }
    /* wait for the detached ones to pass their last allocation, then for
     * their destructors to finish */
    for (int spin = 0; atomic_load(&live_detached) > 0 && spin < 20000; spin++)
        usleep(1000);
    long want = joined + detached;
    for (int spin = 0; (atomic_load(&dtor_plain) < want || atomic_load(&dtor_again_second) < want) && spin < 20000; spin++)
        usleep(1000);
    if (atomic_load(&dtor_plain) != want || atomic_load(&dtor_again) != want || atomic_load(&dtor_again_second) != want) {
        fprintf(stderr, "FAIL: destructors ran %ld/%ld/%ld times, want %ld\n", atomic_load(&dtor_plain),
                atomic_load(&dtor_again), atomic_load(&dtor_again_second), want);
        return 1;
    }
    usleep(100000);   /* detached threads finish glibc's own teardown frees */
    if (expect && !strcmp(expect, "rsb")) {
        if (!stats || !trim)
            rsbt_prog_fail("rsb_stats / rsb_malloc_trim not found");
        trim(0);
        stats(&s1);
        if (s1.in_use > s0.in_use + 256 * 1024) {
            fprintf(stderr, "FAIL: in_use %zu -> %zu after 4000 threads exited: thread-exit frees lost\n",
                    s0.in_use, s1.in_use);
            return 1;
        }
    }
    printf("thread_exit ok: %ld threads, every destructor ran\n", want);
    return 0;
}
