/* Size classes: every size maps to the smallest class that fits, the waste
 * bounds hold, slabs are sized sensibly, and the reciprocal used to check
 * block boundaries is exact. */
#include <criterion/criterion.h>

#include "class/size_class.h"

Test(size_classes, table_is_sorted_and_aligned) {
    for (unsigned c = 0; c < RSB_NUM_CLASSES; c++) {
        cr_assert_eq(rsb_class_size[c] % RSB_ALIGN, 0, "class %u size %u", c, rsb_class_size[c]);
        if (c) cr_assert_gt(rsb_class_size[c], rsb_class_size[c - 1]);
    }
    cr_assert_eq(rsb_class_size[RSB_NUM_CLASSES - 1], RSB_SMALL_MAX);
}

Test(size_classes, every_size_maps_to_smallest_fitting_class) {
    for (size_t size = 0; size <= RSB_SMALL_MAX; size++) {
        unsigned c = rsb_size_class(size);
        cr_assert_lt(c, RSB_NUM_CLASSES, "size %zu", size);
        cr_assert_geq(rsb_class_size[c], size, "size %zu -> class %u", size, c);
        if (c) cr_assert_lt(rsb_class_size[c - 1], size ? size : 1, "size %zu not smallest", size);
    }
}

/* Where the classes are 16 bytes apart (up to 128 B, and up to 512 B in
 * octaves of 16 steps) the alignment sets the waste: less than 16 bytes.
 * Above 128 B, in an octave (s, 2s] of k classes the worst request (the
 * previous class + 1) wastes less than 1/(k+1) of its block: k is at least
 * 8 up to RSB_CLASS_FINE_MAX (1/9 = 11.1%) and RSB_CLASS_STEPS above (20%
 * with 4).  So above 64 B no block wastes 25% of itself. */
Test(size_classes, waste_is_bounded_per_class) {
    for (unsigned c = 1; c < RSB_NUM_CLASSES; c++) {
        size_t cs = rsb_class_size[c], prev = rsb_class_size[c - 1];
        size_t worst = cs - (prev + 1); /* bytes wasted by the smallest request of class c */
        if (cs <= 128) {
            cr_assert_eq(cs - prev, 16, "class %u (%zu B)", c, cs);
            continue;
        }
        size_t s = (size_t)1 << rsb_log2(cs - 1); /* cs in (s, 2s] */
        unsigned k = (unsigned)(s / (cs - prev));
        cr_assert_eq(s % (cs - prev), 0, "class %zu: its octave in equal steps", cs);
        cr_assert_geq(k, RSB_CLASS_STEPS, "class %zu", cs);
        cr_assert_leq(k, RSB_CLASS_MAX_STEPS, "class %zu", cs);
        if (RSB_CLASS_MAX_STEPS >= 8 && cs <= RSB_CLASS_FINE_MAX)
            cr_assert_geq(k, 8, "class %zu: 8 steps or more up to %d", cs, RSB_CLASS_FINE_MAX);
        cr_assert_lt(worst * (k + 1), cs, "class %zu wastes %zu B", cs, worst);
        cr_assert_lt(worst * 4, cs, "class %zu: 25%% or more", cs);
    }
    for (size_t size = 1; size <= RSB_SMALL_MAX; size++) {
        size_t cs = rsb_class_size[rsb_size_class(size)];
        cr_assert(cs - size < 16 || (cs - size) * 5 <= cs, "size %zu in class %zu", size, cs);
    }
}

/* The figures stated in scripts/gen_size_classes.py, over requests
 * 16 B .. RSB_SMALL_MAX weighted 1/size (log-uniform): the average waste
 * (class - size) / class at most 12.5%, with each slab's tail counted
 * (a block then occupies span / blocks bytes) too;
 * the worst case at most 25% above 64 B (below, 16-byte alignment alone
 * makes 17 B a 32-byte block). */
Test(size_classes, average_log_uniform_waste) {
    double weight = 0, waste = 0, waste_tail = 0, worst = 0;
    for (size_t size = 16; size <= RSB_SMALL_MAX; size++) {
        unsigned c = rsb_size_class(size);
        double cs = rsb_class_size[c], w = 1.0 / (double)size;
        double span = (double)((size_t)rsb_class_pages[c] << RSB_PAGE_SHIFT);
        double held = span / (double)rsb_class_blocks[c]; /* a block and its share of the tail */
        weight += w;
        waste += w * (cs - (double)size) / cs;
        waste_tail += w * (held - (double)size) / held;
        if (size > 64 && (cs - (double)size) / cs > worst) worst = (cs - (double)size) / cs;
    }
    cr_log_info("log-uniform waste %.2f%% (%.2f%% with slab tails), worst above 64 B %.2f%%",
                100 * waste / weight, 100 * waste_tail / weight, 100 * worst);
    cr_assert_leq(waste / weight, 0.125, "average waste %.4f", waste / weight);
    cr_assert_leq(waste_tail / weight, 0.125, "average waste with tails %.4f", waste_tail / weight);
    cr_assert_leq(worst, 0.25, "worst waste %.4f", worst);
}

Test(size_classes, slabs_hold_blocks_with_little_tail_waste) {
    for (unsigned c = 0; c < RSB_NUM_CLASSES; c++) {
        size_t span = (size_t)rsb_class_pages[c] << RSB_PAGE_SHIFT;
        size_t n = span / rsb_class_size[c];
        cr_assert_geq(n, 1);
        cr_assert_leq((span - n * rsb_class_size[c]) * 8, span, "class %u tail waste", c);
        cr_assert_leq(span, (size_t)1 << 20);
    }
}

Test(size_classes, reciprocal_division_is_exact) {
    for (unsigned c = 0; c < RSB_NUM_CLASSES; c++) {
        size_t d = rsb_class_size[c];
        size_t span = (size_t)rsb_class_pages[c] << RSB_PAGE_SHIFT;
        for (size_t k = 0; k * d < span; k++)
            for (int delta = -1; delta <= 1; delta++) {
                size_t off = k * d + (size_t)delta;
                if (k == 0 && delta < 0) continue;
                cr_assert_eq((off * rsb_class_magic[c]) >> 48, off / d, "class %u off %zu", c, off);
            }
    }
}

/* free's block-start test: exact for every offset of every slab. */
Test(size_classes, block_start_test_is_exact) {
    for (unsigned c = 0; c < RSB_NUM_CLASSES; c++) {
        size_t d = rsb_class_size[c];
        size_t span = (size_t)rsb_class_pages[c] << RSB_PAGE_SHIFT;
        for (size_t off = 0; off < span; off++)
            if (rsb_class_divides(c, off) != (off % d == 0))
                cr_assert_fail("class %u (%zu B) offset %zu", c, d, off);
    }
}
