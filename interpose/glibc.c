/*
 * glibc's malloc extras, filled from rsbmalloc's statistics (librsbmalloc
 * only, RSB_OVERRIDE): a program or a static link that references one of
 * them must find it here, or libc.a's malloc.o would be pulled in beside
 * ours ("defined twice").  malloc_trim is an alias in malloc.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "entry.h"
#include "error.h"
#include "rsbmalloc.h"

#if RSB_OVERRIDE
#define EXPORT __attribute__((visibility("default")))

EXPORT struct mallinfo2 mallinfo2(void) {
    rsb_stats_t st;
    rsb_stats(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    /* As glibc: blocks with their own mapping are hblks/hblkhd, not part
     * of uordblks. */
    size_t huge = rsb_huge_in_use(&rsb_global.pages);
    if (huge > st.in_use) huge = st.in_use;
    mi.arena = st.mapped;
    mi.hblks = st.huge_count;
    mi.hblkhd = huge;
    mi.uordblks = st.in_use - huge;
    mi.fordblks = st.mapped > st.in_use ? st.mapped - st.in_use : 0;
    mi.fsmblks = st.free_dirty;
    mi.keepcost = st.free_dirty;
    return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = clamp_int(m2.arena);
    mi.hblks = clamp_int(m2.hblks);
    mi.hblkhd = clamp_int(m2.hblkhd);
    mi.uordblks = clamp_int(m2.uordblks);
    mi.fordblks = clamp_int(m2.fordblks);
    mi.fsmblks = clamp_int(m2.fsmblks);
    mi.keepcost = clamp_int(m2.keepcost);
    return mi;
}

/* Accepted and ignored: rsbmalloc has no glibc arenas or thresholds. */
EXPORT int mallopt(int param, int value) {
    (void)param;
    (void)value;
    return 1;
}

EXPORT void malloc_stats(void) { rsb_stats_print(2); }

/* Called by user code with no allocator lock held; writing to a FILE may
 * allocate its buffer, which is then an ordinary malloc call. */
EXPORT int malloc_info(int options, FILE *fp) {
    if (options != 0 || !fp) {
        errno = EINVAL;
        return -1;
    }
    rsb_stats_t st;
    rsb_stats(&st);
    rsb_buf b = {.len = 0};
    rsb_buf_str(&b, "<malloc version=\"rsbmalloc-1\">\n<total type=\"mapped\" size=\"");
    rsb_buf_dec(&b, st.mapped);
    rsb_buf_str(&b, "\"/>\n<total type=\"in_use\" size=\"");
    rsb_buf_dec(&b, st.in_use);
    rsb_buf_str(&b, "\"/>\n<total type=\"free_dirty\" size=\"");
    rsb_buf_dec(&b, st.free_dirty);
    rsb_buf_str(&b, "\"/>\n<total type=\"huge\" count=\"");
    rsb_buf_dec(&b, st.huge_count);
    rsb_buf_str(&b, "\"/>\n</malloc>\n");
    return fwrite(b.data, 1, b.len, fp) == b.len ? 0 : -1;
}
#endif
