/*
 * bench/fragfloor.c — how low could RSS go after the fragmentation workload?
 *
 *   LD_PRELOAD=librsbmalloc.so rsbbench-fragfloor [PEAK_MIB [SETTLE_S]]
 *
 * Runs the shape of bench/memory.cc's fragmentation workload (live set of
 * log-uniform 16 B..4 KiB blocks with a 3% tail of 8..256 KiB, grown to
 * PEAK_MIB (default 128), then six rounds that free a random half and
 * reallocate a fifth of it a little larger) with the process's malloc, then
 * counts the pages that still hold at least one byte of a live block, at
 * 4 KiB and at 64 KiB granularity.  Without moving blocks, no allocator
 * could keep less resident than the 4 KiB figure with this placement; the
 * 64 KiB figure is the floor for an allocator that returns whole 64 KiB
 * pages only.  Prints them next to the RSS after the shrink and SETTLE_S
 * (default 1) seconds later.  Its own arrays are in anonymous mappings.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t rng_state = 2024;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t frag_size(double stretch)
{
    double lo = 4, hi = 12;
    if (rnd() % 100 < 3) {
        lo = 13;
        hi = 18;
    }
    double e = lo + (hi - lo) * (double)(rnd() % (1u << 20)) / (double)(1u << 20);
    size_t n = (size_t)(exp2(e) * stretch);
    return n < 16 ? 16 : n;
}

static double rss_mib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void *map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static int cmp(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
    return a < b ? -1 : a > b;
}

static size_t distinct(uintptr_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || v[i] != v[i - 1];
    return d;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(2);
    }
    memset(p, 1, n); /* all of it resident */
    return p;
}

int main(int argc, char **argv)
{
    size_t peak = (size_t)(argc > 1 ? atoi(argv[1]) : 128) << 20;
    unsigned settle = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    size_t cap = peak / 16 + 1024;
    void **p = map(cap * sizeof *p);
    size_t *n = map(cap * sizeof *n);
    double base = rss_mib();
    size_t count = 0, bytes = 0;
    while (bytes < peak && count < cap) {
        n[count] = frag_size(1.0);
        p[count] = xmalloc(n[count]);
        bytes += n[count++];
    }
    for (int round = 0; round < 6; round++) {
        size_t kept = 0, freed = 0;
        for (size_t i = 0; i < count; i++) {
            if (rnd() & 1) {
                free(p[i]);
                freed += n[i];
            } else {
                p[kept] = p[i];
                n[kept++] = n[i];
            }
        }
        count = kept;
        bytes -= freed;
        for (size_t refill = 0; refill < freed / 5 && count < cap;) {
            n[count] = frag_size(1.0 + 0.25 * (round + 1));
            p[count] = xmalloc(n[count]);
            bytes += n[count];
            refill += n[count++];
        }
    }
    double shrunk = rss_mib() - base;
    sleep(settle);
    free(malloc(100)); /* some allocator activity: lets a lazy purge run */
    double settled = rss_mib() - base;
    size_t np = 0;
    for (size_t i = 0; i < count; i++)
        np += (n[i] + 4095) / 4096 + 1;
    uintptr_t *pg4 = map(np * sizeof *pg4), *pg64 = map(np * sizeof *pg64);
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        for (uintptr_t a = (uintptr_t)p[i] & ~(uintptr_t)4095; a < (uintptr_t)p[i] + n[i]; a += 4096) {
            pg4[k] = a >> 12;
            pg64[k++] = a >> 16;
        }
    double d4 = (double)distinct(pg4, k) * 4096 / 1048576.0;
    double d64 = (double)distinct(pg64, k) * 65536 / 1048576.0;
    double live = (double)bytes / 1048576.0;
    printf("live %.1f MiB; RSS growth after the shrink %.1f MiB, %u s later %.1f MiB (%.2fx live); "
           "pages holding a live byte: 4 KiB pages %.1f MiB (%.2fx), 64 KiB pages %.1f MiB (%.2fx)\n",
           live, shrunk, settle, settled, settled / live, d4, d4 / live, d64, d64 / live);
    return 0;
}
