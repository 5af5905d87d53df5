/*
 * embedded-longest: builds, one at a time, the states in which a single
 * rsb_heap_alloc / rsb_heap_free takes its longest path, then performs that
 * one operation inside a function named lp_<case>.  Run under callgrind, the
 * inclusive instruction count of each lp_ function is the cost of that path:
 *
 *   valgrind --tool=callgrind --toggle-collect='lp_*' --callgrind-out-file=cg.out \
 *       build/freestanding/embedded-longest
 *   callgrind_annotate --inclusive=yes cg.out | grep lp_
 *
 * (bench/embedded/run.sh does this and prints the table.)  Without valgrind
 * the program just runs every case and checks that the state was the one
 * intended.  It looks inside the heap through the core's headers, so it is
 * compiled with the library's own flags.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rsbmalloc_heap.h"
#include "cache.h"

/* The start of struct rsb_heap (src/heap.c): its allocator and its cache. */
struct heap_view {
    rsb_allocator alloc;
    rsb_cache cache;
};
#define VIEW(h) ((struct heap_view *)(void *)(h))

#define LEN ((size_t)1 << 20)
static unsigned char *mem;
static void *blocks[1 << 17];
static int failures;

#define LP(name) __attribute__((noinline)) static void *lp_##name

static void expect(int ok, const char *what) {
    if (!ok) {
        printf("  state not reached: %s\n", what);
        failures++;
    }
}

static size_t free_pages(rsb_heap *h) {
    size_t n = 0;
    rsb_pages *pg = &VIEW(h)->alloc.pages;
    for (unsigned b = 0; b < RSB_BUCKETS; b++)
        for (rsb_span *s = pg->buckets[b]; s; s = rsb_span_next(s)) n += s->npages;
    return n;
}

static int bin_exhausted(rsb_heap *h, unsigned cls) {
    const rsb_bin *bin = &VIEW(h)->cache.bins[cls];
    return rsb_slab_exhausted(bin->cur) && !bin->partial;
}

/* --- the operations ------------------------------------------------------------ */

LP(alloc_pop)(rsb_heap *h) { return rsb_heap_alloc(h, 16); }
LP(free_push)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(alloc_new_slab_carve)(rsb_heap *h) { return rsb_heap_alloc(h, 16); }
LP(alloc_new_slab_most_pages)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(alloc_full_release_all_then_carve)(rsb_heap *h) { return rsb_heap_alloc(h, 16); }
LP(alloc_full_fallback_largest_class)(rsb_heap *h) { return rsb_heap_alloc(h, 16); }
LP(alloc_full_fails)(rsb_heap *h) { return rsb_heap_alloc(h, 16); }
LP(alloc_page_run)(rsb_heap *h) { return rsb_heap_alloc(h, 100000); }
LP(alloc_aligned_above_page)(rsb_heap *h) { return rsb_heap_alloc_aligned(h, 16 * RSB_PAGE_SIZE, 20000); }
LP(free_last_block_release_slab_merge_both)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(free_page_run_merge_both)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(free_double_free_reported)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }

static void ignore(rsb_heap *h, rsb_heap_error e, const void *p, void *c) { (void)h, (void)e, (void)p, (void)c; }

/* The class with the most pages per slab. */
static unsigned biggest_slab_class(void) {
    unsigned best = 0;
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++)
        if (rsb_class_pages[k] >= rsb_class_pages[best]) best = k;
    return best;
}

/* Fill with 16-byte blocks until class 0 is used up and no page is free,
 * without ever failing (a failure would hand back the empty slabs). */
static size_t fill_class0_exactly(rsb_heap *h, size_t n) {
    while (!(bin_exhausted(h, 0) && free_pages(h) == 0)) blocks[n++] = rsb_heap_alloc(h, 16);
    return n;
}

int main(void) {
    mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rsb_heap *h;
    void *p, *q, *r;

    /* Fast paths. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 16);
    rsb_heap_free(h, rsb_heap_alloc(h, 16));
    expect(lp_alloc_pop(h) != NULL, "pop");
    lp_free_push(h, p);

    /* A fresh heap: the first 16-byte block takes a slab and carves it. */
    h = rsb_heap_init(mem, LEN);
    expect(lp_alloc_new_slab_carve(h) != NULL, "new slab");

    /* The class whose slab has the most pages, on a fresh heap. */
    h = rsb_heap_init(mem, LEN);
    unsigned big = biggest_slab_class();
    expect(lp_alloc_new_slab_most_pages(h, rsb_class_size[big]) != NULL, "biggest slab");

    /* Full heap, every other class holding an empty slab in reserve, class 0
     * used up: the request hands every empty slab back (each merged with its
     * neighbours), then takes a new slab and carves it. */
    h = rsb_heap_init(mem, LEN);
    size_t n = 0;
    while ((p = rsb_heap_alloc(h, 16)) != NULL) blocks[n++] = p;
    /* Free whole slabs of 16-byte blocks (every other one, so that the
     * released slabs are not all adjacent) until each class can get one. */
    size_t need = 0;
    for (unsigned k = 1; k < RSB_NUM_CLASSES; k++) need += rsb_class_pages[k];
    size_t per_slab = ((size_t)rsb_class_pages[0] << RSB_PAGE_SHIFT) / 16;
    for (size_t s = 0; free_pages(h) < 2 * need && (2 * s + 1) * per_slab <= n; s++)
        for (size_t i = 2 * s * per_slab; i < (2 * s + 1) * per_slab; i++) {
            rsb_heap_free(h, blocks[i]);
            blocks[i] = NULL;
        }
    void *one[RSB_NUM_CLASSES];
    for (unsigned k = 1; k < RSB_NUM_CLASSES; k++) one[k] = rsb_heap_alloc(h, rsb_class_size[k]);
    for (unsigned k = 1; k < RSB_NUM_CLASSES; k++) rsb_heap_free(h, one[k]);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (blocks[i]) blocks[m++] = blocks[i];
    n = fill_class0_exactly(h, m);
    unsigned empties = 0;
    for (unsigned k = 1; k < RSB_NUM_CLASSES; k++) empties += VIEW(h)->cache.bins[k].cur->u.s.used == 0;
    expect(empties == RSB_NUM_CLASSES - 1, "every other class keeps an empty slab");
    expect(lp_alloc_full_release_all_then_carve(h) != NULL, "release all then carve");

    /* Full heap; class 0 used up; the only free block is in the largest
     * class: every class is looked at. */
    h = rsb_heap_init(mem, LEN);
    n = 0;
    blocks[n++] = rsb_heap_alloc(h, RSB_SMALL_MAX); /* a slab of the largest class */
    n = fill_class0_exactly(h, n);
    expect(!bin_exhausted(h, RSB_NUM_CLASSES - 1), "largest class has a block");
    expect(lp_alloc_full_fallback_largest_class(h) != NULL, "fallback");

    /* Full heap, nothing anywhere: the failure path. */
    h = rsb_heap_init(mem, LEN);
    n = 0;
    while ((p = rsb_heap_alloc(h, 16)) != NULL) n++;
    expect(lp_alloc_full_fails(h) == NULL, "fails");

    /* Page runs. */
    h = rsb_heap_init(mem, LEN);
    expect(lp_alloc_page_run(h) != NULL, "page run");
    expect(lp_alloc_aligned_above_page(h) != NULL, "aligned above a page");

    /* The last block of a slab that is not its class's current one, with
     * free pages on both sides: the slab goes back and merges twice. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, RSB_SMALL_MAX + 1);          /* page run on the left */
    size_t per = ((size_t)rsb_class_pages[0] << RSB_PAGE_SHIFT) / 16;
    for (size_t i = 0; i < per; i++) blocks[i] = rsb_heap_alloc(h, 16); /* slab S, full */
    q = rsb_heap_alloc(h, RSB_SMALL_MAX + 1);          /* page run on the right */
    r = rsb_heap_alloc(h, 16);                         /* a new current slab for class 0 */
    rsb_heap_free(h, p);
    rsb_heap_free(h, q);
    for (size_t i = 1; i < per; i++) rsb_heap_free(h, blocks[i]);
    lp_free_last_block_release_slab_merge_both(h, blocks[0]);
    expect(free_pages(h) > 0 && r != NULL, "slab released");

    /* A page run between two free page runs. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 50000);
    q = rsb_heap_alloc(h, 50000);
    r = rsb_heap_alloc(h, 50000);
    rsb_heap_alloc(h, 50000);
    rsb_heap_free(h, p);
    rsb_heap_free(h, r);
    lp_free_page_run_merge_both(h, q);

    /* A double free, reported to a hook that returns. */
    h = rsb_heap_init(mem, LEN);
    rsb_heap_set_error_hook(h, ignore, NULL);
    p = rsb_heap_alloc(h, 16);
    rsb_heap_free(h, p);
    lp_free_double_free_reported(h, p);

    printf("embedded-longest: %s (page %zu B, %u classes, largest slab %u pages, class %u)\n",
           failures ? "FAILED" : "all states reached", (size_t)RSB_PAGE_SIZE, RSB_NUM_CLASSES,
           rsb_class_pages[big], rsb_class_size[big]);
    return failures != 0;
}
