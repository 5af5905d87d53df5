/*
 * Linked with -static against librsbmalloc.a: the link must succeed without
 * "multiple definition" (libc.a's malloc.o must not be pulled in), and the
 * malloc used by libc itself (strdup, stdio, qsort) must be rsbmalloc's.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rsbmalloc.h>

static int fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    return 1;
}

static void *thr(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        void *p = malloc((size_t)i % 3000 + 1);
        if (!p)
            return (void *)1;
        free(p);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int main(void)
{
    rsb_stats_t s0, s1;
    rsb_stats(&s0);
    void *p = malloc(3 << 20);
    rsb_stats(&s1);
    if (!p || s1.in_use < s0.in_use + (3 << 20))
        return fail("malloc is not rsbmalloc's in the static link");
    free(p);

    static char big[100000];
    memset(big, 'y', sizeof big - 1);
    rsb_stats(&s0);
    char *d = strdup(big);
    rsb_stats(&s1);
    if (!d || s1.in_use < s0.in_use + sizeof big)
        return fail("libc's strdup does not allocate from rsbmalloc");
    free(d);

    /* the rest of the family links and works */
    void *q = NULL;
    if (posix_memalign(&q, 4096, 100) || !q)
        return fail("posix_memalign");
    free(q);
    q = aligned_alloc(64, 64);
    free(q);
    q = memalign(128, 10);
    free(q);
    q = valloc(10);
    free(q);
    q = pvalloc(10);
    free(q);
    q = reallocarray(NULL, 10, 10);
    q = realloc(q, 1000);
    free(q);
    (void)malloc_usable_size(NULL);
    malloc_trim(0);
    struct mallinfo2 mi = mallinfo2();
    (void)mi;

    int *arr = malloc(100000 * sizeof *arr);
    if (!arr)
        return fail("malloc");
    for (int i = 0; i < 100000; i++)
        arr[i] = (i * 7919) % 100000;
    qsort(arr, 100000, sizeof *arr, cmp);   /* qsort may malloc a buffer */
    for (int i = 0; i < 100000; i++)
        if (arr[i] != i)
            return fail("qsort result");
    free(arr);

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thr, NULL);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r)
            return fail("thread malloc");
    }
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return fail("fopen");
    char line[256];
    while (fgets(line, sizeof line, f))
        ;
    fclose(f);
    printf("static_prog ok\n");
    return 0;
}
