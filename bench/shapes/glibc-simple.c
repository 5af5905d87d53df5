/*
 * glibc-simple — one thread, blocks of one size allocated in a batch and
 * freed in the same order, for several sizes and batch lengths.
 *
 * Mirrors the shape of glibc's benchtests/bench-malloc-simple.c (the
 * glibc-simple row of mimalloc-bench): for each size (16, 64, 256 and
 * 1024 B here) and each batch length (25, 100, 400 and 1600 here), allocate
 * the batch, then free it front to back, over and over: 600,000 malloc+free
 * pairs for each of the 16 combinations.  Single-threaded fast paths
 * (glibc's tcache, the allocators' thread caches) decide most of it; the
 * batches of more than 128 KiB also show glibc trimming the top of its heap
 * after every batch and faulting the pages in again.
 *
 *   rsbshape-glibc-simple [-s SCALE] [--smoke]
 *
 * Self-check: every block is stamped when allocated and checked before it
 * is freed.
 */
#include "shape.h"

static const size_t sizes[] = {16, 64, 256, 1024};
static const int counts[] = {25, 100, 400, 1600};

int main(int argc, char **argv)
{
    struct shape sh;
    shape_init(&sh, "glibc-simple", argc, argv, 1, "", NULL);
    /* Each (size, count) pair gets the same number of malloc+free pairs. */
    long pairs = shape_count(&sh, 600000, 5000);
    void **p = shape_meta(&sh, sizeof *p * 1600);
    long total = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            int n = counts[c];
            long rounds = pairs / n;
            for (long r = 0; r < rounds; r++) {
                for (int i = 0; i < n; i++) {
                    p[i] = shape_malloc(&sh, sizes[s]);
                    shape_stamp(p[i], sizes[s], (uint64_t)r << 16 | (uint64_t)i);
                }
                for (int i = 0; i < n; i++) {
                    if (!shape_stamp_ok(p[i], sizes[s], (uint64_t)r << 16 | (uint64_t)i))
                        shape_fail(&sh, "size %zu batch %d block %d corrupted", sizes[s], n, i);
                    free(p[i]);
                }
            }
            total += rounds * n;
        }
    }
    shape_meta_free(p, sizeof *p * 1600);
    shape_ok(&sh, "pairs=%ld", total);
    return 0;
}
