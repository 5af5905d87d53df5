/*
 * bench/fastpath.c — the single-thread malloc+free fast path, for callgrind.
 *
 *   rsbbench-fastpath ALLOCATOR PATTERN ITERATIONS
 *
 * ALLOCATOR  system  the process's malloc/free (glibc or LD_PRELOADed)
 *            rsb     rsb_malloc/rsb_free, linked in (if built with it)
 *            none    stubs that return a static buffer: the loop's own cost
 * PATTERN    32      malloc(32) + free, ITERATIONS times
 *            mixed   sizes 8, 16, ..., 256 in turn
 *            ring    a ring of 1,000 live blocks of random sizes 8..256 B:
 *                    each step frees the oldest block and allocates a new
 *                    one (the blocks a pair touches are not the ones it
 *                    just used, as in a program with a working set)
 *
 * scripts/bench runs it under valgrind --tool=callgrind with ITERATIONS = N
 * and 2N: the difference of the two instruction totals divided by N is the
 * cost of one pair with start-up and exit cancelled out, and subtracting the
 * "none" figure leaves the instructions spent inside the allocator.
 * Instruction counts do not depend on machine noise, so this number is
 * stable where wall-clock times are not.
 *
 * The calls go through volatile function pointers: the compiler can neither
 * inline them nor drop a malloc/free pair whose result looks unused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if BENCH_HAVE_RSB
#include <rsbmalloc.h>
#endif

static unsigned char stub_buf[256] __attribute__((aligned(16)));

#define RING 1000 /* live blocks of the ring pattern */

__attribute__((noinline)) static void *stub_malloc(size_t n)
{
    __asm__ volatile("" ::"r"(n) : "memory");
    return stub_buf;
}

__attribute__((noinline)) static void stub_free(void *p)
{
    __asm__ volatile("" ::"r"(p) : "memory");
}

/* The ring pattern: RING live blocks of random sizes 8..256 B; each step
 * frees the oldest and allocates a new one.  The random sizes come from the
 * loop itself (xorshift), so the "none" run pays for them too and they
 * cancel out.  A function of its own, so that the other loops in main()
 * compile as they did before it existed. */
__attribute__((noinline)) static int run_ring(void *(*volatile *do_malloc)(size_t),
                                              void (*volatile *do_free)(void *),
                                              long iterations)
{
    static unsigned char *live[RING];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < RING; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if ((live[k] = (*do_malloc)(8 + (size_t)(x >> 40) % 249)) == NULL)
            return 1;
        live[k][0] = (unsigned char)k;
    }
    size_t k = 0;
    for (long i = 0; i < iterations; i++) {
        (*do_free)(live[k]);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned char *p = (*do_malloc)(8 + (size_t)(x >> 40) % 249);
        if (p == NULL)
            return 1;
        p[0] = (unsigned char)i;
        live[k] = p;
        if (++k == RING)
            k = 0;
    }
    for (k = 0; k < RING; k++)
        (*do_free)(live[k]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s system|rsb|none 32|mixed|ring ITERATIONS\n", argv[0]);
        return 2;
    }
    void *(*volatile do_malloc)(size_t) = malloc;
    void (*volatile do_free)(void *) = free;
    if (strcmp(argv[1], "none") == 0) {
        do_malloc = stub_malloc;
        do_free = stub_free;
    } else if (strcmp(argv[1], "rsb") == 0) {
#if BENCH_HAVE_RSB
        do_malloc = rsb_malloc;
        do_free = rsb_free;
#else
        fprintf(stderr, "%s: built without rsbmalloc\n", argv[0]);
        return 2;
#endif
    } else if (strcmp(argv[1], "system") != 0) {
        fprintf(stderr, "%s: unknown allocator '%s'\n", argv[0], argv[1]);
        return 2;
    }
    int mixed = strcmp(argv[2], "mixed") == 0;
    int ring = strcmp(argv[2], "ring") == 0;
    if (!mixed && !ring && strcmp(argv[2], "32") != 0) {
        fprintf(stderr, "%s: unknown pattern '%s'\n", argv[0], argv[2]);
        return 2;
    }
    long iterations = strtol(argv[3], NULL, 10);

    /* A real program has other live blocks of the sizes it uses, so the
     * allocator's page or bin for each size is never empty.  Keep a few live
     * throughout: without them some allocators (mimalloc) retire the page on
     * every free, and the loop would time that slow path, not the fast one. */
    static void *keep[32][4];
    for (size_t s = 0; s < 32; s++)
        for (size_t k = 0; k < 4; k++)
            if ((keep[s][k] = do_malloc(8 + s * 8)) == NULL)
                return 1;

    int rc = 0;
    size_t size = 32;
    if (ring)
        rc = run_ring(&do_malloc, &do_free, iterations);
    for (long i = 0; !ring && i < iterations; i++) {
        if (mixed)
            size = 8 + ((size_t)i & 31) * 8;
        unsigned char *p = do_malloc(size);
        if (p == NULL)
            return 1;
        p[0] = (unsigned char)i;
        do_free(p);
    }
    for (size_t s = 0; s < 32; s++)
        for (size_t k = 0; k < 4; k++)
            do_free(keep[s][k]);
    return rc;
}
