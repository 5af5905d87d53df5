/*
 * malloc-large — large blocks (2..32 MiB) allocated, filled and freed in a
 * loop, a few live at a time.
 *
 * Mirrors the shape of mimalloc-bench's malloc-large row: blocks of
 * megabytes, every byte written (memset), freed soon after.  It measures how
 * an allocator obtains, reuses and returns big mappings: a fresh mapping
 * costs a page fault per page on the memset, a reused one does not, and one
 * kept mapped raises peak RSS.  Four blocks are live at a time; the oldest
 * is freed before each allocation.
 *
 *   rsbshape-malloc-large [-s SCALE] [--smoke]
 *
 * Self-check: every 64 KiB of a block and its last byte hold the fill byte
 * when the block is freed.
 */
#include "shape.h"

#define LIVE 4

struct big {
    unsigned char *p;
    size_t size;
    unsigned char fill;
};

static void check(const struct shape *sh, const struct big *b)
{
    for (size_t at = 0; at < b->size; at += 65536)
        if (b->p[at] != b->fill)
            shape_fail(sh, "block of %zu bytes: byte %zu changed", b->size, at);
    if (b->p[b->size - 1] != b->fill)
        shape_fail(sh, "block of %zu bytes: last byte changed", b->size);
}

int main(int argc, char **argv)
{
    struct shape sh;
    shape_init(&sh, "malloc-large", argc, argv, 1, "", NULL);
    long iters = shape_count(&sh, 300, 12);
    rng_t rng = rng_make(2);
    struct big live[LIVE] = {{0}};
    size_t bytes = 0;
    for (long i = 0; i < iters; i++) {
        struct big *b = &live[i % LIVE];
        if (b->p != NULL) {
            check(&sh, b);
            free(b->p);
        }
        b->size = rng_range(&rng, (size_t)2 << 20, (size_t)32 << 20);
        b->fill = (unsigned char)(i * 37 + 1);
        b->p = shape_malloc(&sh, b->size);
        memset(b->p, b->fill, b->size);
        bytes += b->size;
    }
    for (int k = 0; k < LIVE; k++) {
        if (live[k].p != NULL) {
            check(&sh, &live[k]);
            free(live[k].p);
        }
    }
    shape_ok(&sh, "blocks=%ld mib=%zu", iters, bytes >> 20);
    return 0;
}
