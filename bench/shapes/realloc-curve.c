/*
 * realloc-curve — one buffer grown by realloc in x1.5 steps from 1 B to
 * 4 MiB and shrunk back the same way, over and over.
 *
 * The growth curve of a string builder or a vector that is filled and then
 * trimmed.  On its way the buffer crosses every size regime of an
 * allocator: rsbmalloc's slab classes (<= 256 KiB), its page runs
 * (256 KiB .. 2 MiB) and blocks with a mapping of their own (> 2 MiB); glibc's
 * heap and its mmap threshold; and back down again.  It measures whether
 * realloc grows and shrinks in place (or by mremap) or copies.
 *
 *   rsbshape-realloc-curve [-m plain|interleaved] [-s SCALE] [--smoke]
 *     plain        nothing else is allocated
 *     interleaved  an unrelated small block (16..4096 B) is allocated between
 *                  any two steps and kept until the curve ends, so the buffer
 *                  is never simply the last block of the heap
 *
 * Every step writes the bytes it adds (memset), as the program that grows a
 * buffer would.  Self-check: bytes at 4 KiB intervals and at the ends of
 * the buffer must hold the values written at the step that added them, on
 * the way up and on the way down; the unrelated blocks keep their stamps.
 */
#include "shape.h"

#define TOP ((size_t)4 << 20)
#define MAXSTEPS 64

static struct shape sh;
static size_t sizes[MAXSTEPS];
static int nsizes;

/* The byte written at offset x: the step that added x (the first size
 * above x), mixed with the curve number. */
static unsigned char expect(size_t x, long curve)
{
    int lo = 0, hi = nsizes - 1;
    while (lo < hi) { /* first step whose size is > x */
        int mid = (lo + hi) / 2;
        if (sizes[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (unsigned char)(lo * 7 + curve * 13 + 1);
}

static void verify(const unsigned char *p, size_t n, long curve)
{
    for (size_t x = 0; x < n; x += 4096)
        if (p[x] != expect(x, curve))
            shape_fail(&sh, "curve %ld, %zu bytes: byte %zu changed", curve, n, x);
    if (p[n - 1] != expect(n - 1, curve))
        shape_fail(&sh, "curve %ld, %zu bytes: the last byte changed", curve, n);
}

int main(int argc, char **argv)
{
    shape_init(&sh, "realloc-curve", argc, argv, 1, "plain",
               "  -m plain|interleaved   an unrelated allocation between steps or not");
    int interleaved = strcmp(sh.mode, "interleaved") == 0;
    if (!interleaved && strcmp(sh.mode, "plain") != 0)
        shape_usage(&sh, "  -m plain|interleaved");
    for (size_t n = 1; n < TOP; n = n * 3 / 2 + (n < 2)) /* 1, 2, 3, 4, 6, 9, ... */
        sizes[nsizes++] = n;
    sizes[nsizes++] = TOP;
    long curves = shape_count(&sh, 300, 4);
    rng_t rng = rng_make(5);
    void *side[2 * MAXSTEPS];
    size_t side_size[2 * MAXSTEPS];
    long copies = 0;
    for (long c = 0; c < curves; c++) {
        int nside = 0;
        unsigned char *p = NULL;
        size_t have = 0;
        for (int i = 0; i < nsizes; i++) { /* up */
            unsigned char *q = realloc(p, sizes[i]);
            if (q == NULL)
                shape_fail(&sh, "realloc to %zu failed", sizes[i]);
            copies += p != NULL && q != p;
            p = q;
            memset(p + have, expect(have, c), sizes[i] - have);
            have = sizes[i];
            verify(p, have, c);
            if (interleaved) {
                side_size[nside] = rng_range(&rng, 16, 4096);
                side[nside] = shape_malloc(&sh, side_size[nside]);
                shape_stamp(side[nside], side_size[nside], (uint64_t)nside);
                nside++;
            }
        }
        for (int i = nsizes - 2; i >= 0; i--) { /* and down */
            unsigned char *q = realloc(p, sizes[i]);
            if (q == NULL)
                shape_fail(&sh, "realloc to %zu failed", sizes[i]);
            copies += q != p;
            p = q;
            have = sizes[i];
            verify(p, have, c);
            if (interleaved) {
                side_size[nside] = rng_range(&rng, 16, 4096);
                side[nside] = shape_malloc(&sh, side_size[nside]);
                shape_stamp(side[nside], side_size[nside], (uint64_t)nside);
                nside++;
            }
        }
        free(p);
        for (int k = 0; k < nside; k++) {
            if (!shape_stamp_ok(side[k], side_size[k], (uint64_t)k))
                shape_fail(&sh, "unrelated block %d corrupted", k);
            free(side[k]);
        }
    }
    shape_ok(&sh, "curves=%ld steps=%d moved=%ld", curves, 2 * nsizes - 1, copies);
    return 0;
}
