/*
 * embedded-longest: builds, one at a time, the states in which a single
 * rsb_heap_alloc / rsb_heap_free / rsb_heap_realloc takes its longest
 * paths, then performs that one operation inside a function named
 * lp_<case>.  Run under callgrind, the inclusive instruction count of each
 * lp_ function is the cost of that path:
 *
 *   valgrind --tool=callgrind --toggle-collect='lp_*' --callgrind-out-file=cg.out \
 *       build/freestanding/embedded-longest
 *   callgrind_annotate --inclusive=yes cg.out | grep lp_
 *
 * (bench/embedded/run.sh prints the table; the test embedded-longest-bound,
 * bench/embedded/check_bounds.sh, fails if a path costs more than the
 * bound stated in include/rsbmalloc_heap.h.)  Without valgrind the program
 * runs every case and checks that the state was the one intended: each
 * case says what it expects and fails loudly otherwise.  It looks inside the
 * heap through src/heap.h, so it is compiled with the library's layout
 * defines.
 *
 * The worst case of all is alloc_full_release_all_then_fit: a request of a
 * busy slab class on a full heap where every class keeps an empty slab: a
 * slab is tried (no free block holds one), the good fit is searched and
 * fails, every class hands its empty slab back (each merged with its
 * neighbours), and the good fit is searched again.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heap.h"

#define LEN ((size_t)4 << 20)
static unsigned char *mem;
static void *blocks[1 << 18];
static int failures;

#define LP(name) __attribute__((noinline)) static void *lp_##name

static void expect(int ok, const char *what) {
    if (!ok) {
        printf("  state not reached: %s\n", what);
        failures++;
    }
}

/* --- the operations ------------------------------------------------------------ */

LP(alloc_slab_pop)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(free_slab_push)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(alloc_fit_split_relist)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(free_fit_merge_both_relist)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(alloc_new_slab)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(alloc_aligned_second_search)(rsb_heap *h, size_t a, size_t n) { return rsb_heap_alloc_aligned(h, a, n); }
LP(free_last_block_release_slab_merge_both)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }
LP(alloc_full_release_all_then_fit)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(alloc_full_fails)(rsb_heap *h, size_t n) { return rsb_heap_alloc(h, n); }
LP(realloc_grow_in_place)(rsb_heap *h, void *p, size_t n) { return rsb_heap_realloc(h, p, n); }
LP(free_double_free_reported)(rsb_heap *h, void *p) { rsb_heap_free(h, p); return NULL; }

static void ignore(rsb_heap *h, rsb_heap_error e, const void *p, void *c) { (void)h, (void)e, (void)p, (void)c; }

static size_t largest(rsb_heap *h) { return rsb_fit_largest(&h->fit); }

/* As src/heap.c decides: the good fit holds enough live blocks of the size
 * a request of n bytes gets for its class to take a slab. */
static int busy(const rsb_heap *h, size_t n) {
    unsigned k = h->class_of[(rsb_fit_size_for(n) - 8 + 15) >> 4];
    return h->fit_live[k] >= h->bins[k <= RSB_HEAP_CLASSES ? k : RSB_HEAP_CLASSES].after;
}

/* Make class c busy (its `after` live good-fit blocks), then give it a slab
 * whose block is freed again: the class keeps it, empty, as its cur. */
static size_t empty_reserve(rsb_heap *h, unsigned c, size_t n) {
    size_t z = h->bins[c].size;
    while (h->bins[c].cur == &h->empty) blocks[n++] = rsb_heap_alloc(h, z);
    rsb_hslab *s = h->bins[c].cur;
    /* The block that took the slab is the last one allocated. */
    rsb_heap_free(h, blocks[--n]);
    expect(s->used == 0 && h->bins[c].cur == s, "a class keeps an empty slab");
    return n;
}

/* Fill the good fit, without a failure (a failure would hand the reserves
 * back): blocks as large as the largest free one, then smaller, down to
 * nothing. */
static size_t fill_fit(rsb_heap *h, size_t n) {
    for (size_t l; (l = largest(h)) >= 24;) blocks[n++] = rsb_heap_alloc(h, l > 300000 ? 300000 : l);
    return n;
}

int main(void) {
    mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rsb_heap *h;
    void *p, *q, *r;
    size_t n;

    /* Common paths: a slab of 64-byte blocks with a free block. */
    h = rsb_heap_init(mem, LEN);
    for (n = 0; n < 40; n++) blocks[n] = rsb_heap_alloc(h, 64);
    expect(h->bins[h->class_of[4]].cur != &h->empty, "64-byte class has a slab");
    rsb_heap_free(h, blocks[--n]);
    expect(lp_alloc_slab_pop(h, 64) != NULL, "slab pop");
    /* blocks[n - 1] is a slab block (the first ones were good-fit blocks). */
    expect(h->map[((uintptr_t)blocks[n - 1] - (uintptr_t)h->wbase) >> h->wshift].first |
               h->map[((uintptr_t)blocks[n - 1] - (uintptr_t)h->wbase) >> h->wshift].cover,
           "a slab block");
    lp_free_slab_push(h, blocks[n - 1]);

    /* A good-fit allocation that misses its own list, finds a block two
     * first levels up and leaves a rest that moves to another list. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 9000);
    q = rsb_heap_alloc(h, 3000);
    rsb_heap_free(h, p); /* a free block of ~9 KiB, before q */
    expect(lp_alloc_fit_split_relist(h, 2000) != NULL, "good-fit split");

    /* A good-fit block between two free ones: both merged, the result on
     * another list than either. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 3000);
    q = rsb_heap_alloc(h, 5000);
    r = rsb_heap_alloc(h, 7000);
    rsb_heap_alloc(h, 100);
    rsb_heap_free(h, p);
    rsb_heap_free(h, r);
    lp_free_fit_merge_both_relist(h, q);
    expect(largest(h) >= 15000, "merged both ways");

    /* A new slab: the class is busy, it has none. */
    h = rsb_heap_init(mem, LEN);
    for (n = 0; !busy(h, 1000); n++) blocks[n] = rsb_heap_alloc(h, 1000);
    rsb_heap_alloc(h, 5000);
    expect(h->slabs == 0 && lp_alloc_new_slab(h, 1000) != NULL && h->slabs == 1, "a new slab");

    /* An aligned request whose first candidate is not aligned and too small
     * for the gap: the second search, a gap and a rest. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 3000);
    q = rsb_heap_alloc(h, 2000);
    rsb_heap_free(h, p);
    expect(lp_alloc_aligned_second_search(h, 1024, 2900) != NULL, "aligned, second search");

    /* The last block of a slab that is not its class's cur, with free
     * good-fit blocks on both sides: the slab goes back and merges twice.
     * The heap is filled with 12000-byte blocks but for 200 KB at the top;
     * the slab is cut from the tail of a hole left by one of them (the best
     * fit), the block after the hole is freed too, and a second slab (the
     * cur) comes from the free block at the top. */
    h = rsb_heap_init(mem, LEN);
    {
        unsigned c = h->class_of[4];
        rsb_hbin *bin = &h->bins[c];
        for (n = 0; !busy(h, 64); n++) blocks[n] = rsb_heap_alloc(h, 64);
        size_t f0 = n;
        /* (A slab is not taken when less than 8 slabs' worth is free.) */
        while (largest(h) >= 12000 + 200000) blocks[n++] = rsb_heap_alloc(h, 12000);
        size_t j = f0 + (n - f0) / 2;
        rsb_heap_free(h, blocks[j]); /* the hole */
        rsb_hslab *s1 = NULL;
        void *in_s1[256];
        size_t k = 0;
        in_s1[k++] = rsb_heap_alloc(h, 64);
        s1 = bin->cur;
        while (s1->free || s1->left) in_s1[k++] = rsb_heap_alloc(h, 64);
        void *x = rsb_heap_alloc(h, 64); /* a second slab, from the top */
        rsb_hslab *s2 = bin->cur;
        rsb_heap_free(h, blocks[j + 1]); /* the block after the first slab */
        for (size_t i = 1; i < k; i++) rsb_heap_free(h, in_s1[i]);
        rsb_fit_block *b = (rsb_fit_block *)(void *)((char *)s1 - 8);
        rsb_fit_block *after = (rsb_fit_block *)(void *)((char *)b + (b->word & ~RSB_FIT_FLAGS));
        expect(x != NULL && s2 != s1 && s1->used == 1 && (s1->limit & RSB_HEAP_IN_BIN) && bin->cur == s2,
               "one block left in a slab on the partial list");
        expect((b->word & RSB_FIT_PREV_FREE) && (after->word & RSB_FIT_FREE), "free blocks on both sides");
        lp_free_last_block_release_slab_merge_both(h, in_s1[0]);
        expect(h->slabs == 1, "the slab went back");
    }

    /* The longest allocation: full heap, every class keeping an empty slab,
     * a busy class whose cur is full. */
    h = rsb_heap_init(mem, LEN);
    n = 0;
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES; c++) n = empty_reserve(h, c, n);
    unsigned busy = h->class_of[(1000 + 15) / 16];
    {
        rsb_hslab *s = h->bins[busy].cur;
        while (s->free || s->left) blocks[n++] = rsb_heap_alloc(h, 1000); /* its cur is full */
    }
    n = fill_fit(h, n);
    unsigned empties = 0;
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES; c++) empties += h->bins[c].cur != &h->empty && h->bins[c].cur->used == 0;
    expect(empties == RSB_HEAP_CLASSES - 1 && largest(h) < 1000, "full heap, 23 empty reserves");
    expect(lp_alloc_full_release_all_then_fit(h, 1000) != NULL, "released all then allocated");
    expect(h->slabs == 1, "every empty slab went back");

    /* Full heap, nothing to hand back: the failing path. */
    h = rsb_heap_init(mem, LEN);
    n = fill_fit(h, 0);
    expect(lp_alloc_full_fails(h, 5000) == NULL, "fails");

    /* realloc into the free block after. */
    h = rsb_heap_init(mem, LEN);
    p = rsb_heap_alloc(h, 5000);
    expect(lp_realloc_grow_in_place(h, p, 9000) == p, "grown in place");

    /* A double free, reported to a hook that returns. */
    h = rsb_heap_init(mem, LEN);
    rsb_heap_set_error_hook(h, ignore, NULL);
    p = rsb_heap_alloc(h, 5000);
    rsb_heap_alloc(h, 100);
    rsb_heap_free(h, p);
    lp_free_double_free_reported(h, p);

    rsb_heap_check(h);
    printf("embedded-longest: %s (window %zu B, %u slab classes up to %u B)\n",
           failures ? "FAILED" : "all states reached", (size_t)1 << h->wshift, RSB_HEAP_CLASSES,
           RSB_HEAP_SLAB_MAX);
    return failures != 0;
}
