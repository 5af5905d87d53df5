/*
 * A program linked with rsbmalloc (built with valgrind client requests) that
 * plants one memory error, for valgrind.sh to check that memcheck reports it
 * as it would with glibc's malloc.
 *
 *   vg_prog clean      a threaded workload with no error (no report allowed)
 *   vg_prog uaf        read of a freed block
 *   vg_prog leak       1234 bytes lost
 *   vg_prog overflow   write one byte past a 40-byte block
 *   vg_prog uninit     branch on uninitialised malloc memory
 *   vg_prog realloc    read through the pointer realloc moved away from
 *
 * Every mode first checks that the blocks come from rsbmalloc, not from
 * valgrind's replacement malloc: malloc_usable_size(malloc(40)) is 48 with
 * rsbmalloc (a size class), 40 with valgrind's allocator.
 */
#define _GNU_SOURCE 1
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsbmalloc.h"

static volatile char sink;

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = {0};
    for (int i = 0; i < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 16) % 64;
        if (keep[k]) {
            if ((seed & 3) == 0) {
                char *q = realloc(keep[k], 1 + (seed >> 20) % 5000);
                if (!q) abort();
                q[0] = 1;
                keep[k] = q;
                continue;
            }
            free(keep[k]);
            keep[k] = NULL;
        } else {
            size_t n = 1 + (seed >> 8) % (i % 97 == 0 ? 3000000 : 3000);
            char *p = (seed & 1) ? calloc(1, n) : malloc(n);
            if (!p) abort();
            memset(p, (int)k, n);
            keep[k] = p;
        }
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "clean";
    char *probe = malloc(40);
    size_t u = malloc_usable_size(probe);
    rsb_stats_t st;
    rsb_stats(&st);
    printf("allocator: %s (malloc_usable_size(malloc(40)) = %zu, rsbmalloc in use %zu)\n",
           u == 48 && st.in_use > 0 ? "rsbmalloc" : "not rsbmalloc", u, st.in_use);

    if (strcmp(mode, "clean") == 0) {
        pthread_t t[3];
        for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
        for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
        void *a = NULL;
        if (posix_memalign(&a, 4096, 100) != 0) return 1;
        char *b = aligned_alloc(1 << 20, 5000);
        char *c = memalign(64, 3 << 20);
        memset(a, 1, 100);
        memset(b, 2, 5000);
        memset(c, 3, 3 << 20);
        free(a);
        free(b);
        free(c);
        malloc_trim(0);
    } else if (strcmp(mode, "uaf") == 0) {
        char *p = malloc(40);
        strcpy(p, "hello, rsbmalloc");
        free(p);
        sink = p[3]; /* use after free */
    } else if (strcmp(mode, "leak") == 0) {
        char *p = malloc(1234);
        memset(p, 1, 1234);
        p = NULL; /* lost */
    } else if (strcmp(mode, "overflow") == 0) {
        char *p = malloc(40);
        p[40] = 1; /* one past the end (inside the 48-byte class slot) */
        free(p);
    } else if (strcmp(mode, "uninit") == 0) {
        char *p = malloc(40);
        if (p[7] == 42) puts("42"); /* never written */
        free(p);
    } else if (strcmp(mode, "realloc") == 0) {
        char *p = malloc(24);
        memset(p, 1, 24);
        char *q = realloc(p, 24000);
        sink = p[2]; /* p was moved from */
        free(q);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    free(probe);
    return 0;
}
