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

Test(size_classes, waste_is_bounded) {
    /* Above 128 B a block wastes less than 1/RSB_CLASS_STEPS of itself
     * (25% with 4 classes per doubling); below, less than 16 bytes. */
    for (size_t size = 1; size <= RSB_SMALL_MAX; size++) {
        size_t cs = rsb_class_size[rsb_size_class(size)];
        if (size <= 128)
            cr_assert_lt(cs - size, 16);
        else
            cr_assert_lt((cs - size) * RSB_CLASS_STEPS, cs, "size %zu in class %zu", size, cs);
    }
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
