/* Statistics: the snapshot counts exactly what a private allocator holds
 * (small, page runs, huge; per class), and the report is one readable
 * table written to a file descriptor without allocating. */
#include <unistd.h>

#include "stats.h"
#include "unit.h"

Test(stats, snapshot_counts_what_is_held) {
    rsb_allocator *a = unit_allocator(2, -1);
    rsb_stats_t st;
    static rsb_class_stats pc[RSB_NUM_CLASSES];
    rsb_stats_collect(a, &st, pc);
    cr_assert_eq(st.in_use, 0);
    enum { N = 100 };
    void *small[N];
    size_t small_bytes = 0;
    for (int i = 0; i < N; i++) {
        size_t size = 1 + (size_t)i * 37;
        small[i] = rsb_core_malloc(a, size);
        small_bytes += rsb_class_size[rsb_size_class(size)];
    }
    void *run = rsb_core_malloc(a, 300 * 1024);  /* 5 pages of 64 KiB */
    void *huge = rsb_core_malloc(a, 5u << 20);
    rsb_stats_collect(a, &st, pc);
    cr_assert_eq(st.small_in_use, small_bytes);
    cr_assert_eq(st.large_in_use, ((size_t)5 << RSB_PAGE_SHIFT) + rsb_huge_in_use(&a->pages));
    cr_assert_geq(rsb_huge_in_use(&a->pages), 5u << 20);
    cr_assert_eq(st.huge_count, 1);
    cr_assert_eq(st.in_use, st.small_in_use + st.large_in_use);
    cr_assert_geq(st.mapped, st.in_use);
    uint64_t used = 0;
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        used += pc[k].used;
        cr_assert_leq(pc[k].used, pc[k].capacity);
        cr_assert_eq(pc[k].slabs, unit_slabs(&a->pages, k));
    }
    cr_assert_eq(used, N);
    for (int i = 0; i < N; i++) rsb_core_free(a, small[i]);
    rsb_core_free(a, run);
    rsb_core_free(a, huge);
    rsb_stats_collect(a, &st, NULL);
    cr_assert_eq(st.in_use, 0);
    cr_assert_eq(st.huge_count, 0);
    cr_assert_gt(st.free_dirty, 0, "freed pages wait for the purge delay (never, here)");
    rsb_core_trim(a);
    rsb_stats_collect(a, &st, NULL);
    cr_assert_eq(st.free_dirty, 0);
}

Test(stats, report_is_a_table_on_the_descriptor) {
    rsb_allocator *a = unit_allocator(2, -1);
    void *p = rsb_core_malloc(a, 24);
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    rsb_stats_report(a, fd[1]);
    close(fd[1]);
    static char out[1 << 16];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    close(fd[0]);
    out[n] = 0;
    cr_assert_not_null(strstr(out, "rsbmalloc statistics"), "%s", out);
    cr_assert_not_null(strstr(out, "in use"));
    cr_assert_not_null(strstr(out, "    32 "), "the 32-byte class row is missing:\n%s", out);
    cr_assert_not_null(strstr(out, "cache  lock waits"));
    rsb_core_free(a, p);
}
