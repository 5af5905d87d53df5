/* Statistics: see stats.h. */
#include "stats.h"

#include "page/huge.h"

void rsb_stats_collect(rsb_allocator *a, rsb_stats_t *out, rsb_class_stats *per_class) {
    rsb_stats_t st = {0};
    if (per_class)
        for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) per_class[k] = (rsb_class_stats){0};
    rsb_pages *pg = &a->pages;
    rsb_lock_all(a);
    for (rsb_chunk *c = pg->chunks; c; c = c->next) {
        const rsb_span *pages = rsb_chunk_pages(c);
        for (uint32_t i = c->first_page; i < c->npages;) {
            const rsb_span *s = &pages[i];
            if (s->kind == RSB_SPAN_SLAB) {
                st.small_in_use += (size_t)s->u.s.used * rsb_slab_block(s);
                if (per_class) {
                    per_class[s->cls].slabs++;
                    per_class[s->cls].used += s->u.s.used;
                    per_class[s->cls].capacity += rsb_slab_capacity(s);
                }
            }
            i += s->npages ? s->npages : 1;
        }
    }
    st.mapped = pg->mapped + __atomic_load_n(&pg->huge_mapped, __ATOMIC_RELAXED);
    st.free_dirty = pg->dirty_bytes + pg->spare_run_bytes; /* spare page runs are kept whole */
    st.large_in_use = pg->run_bytes + rsb_huge_in_use(pg);
    st.huge_count = __atomic_load_n(&pg->huge_count, __ATOMIC_RELAXED);
    st.purges = pg->purges;
    st.lock_contended = pg->lock.contended;
    for (uint32_t i = 0; i < a->ncaches; i++) st.lock_contended += a->caches[i].lock.contended;
    rsb_unlock_all(a);
    st.in_use = st.small_in_use + st.large_in_use;
    /* Resident estimate: live blocks plus free pages not yet purged. */
    st.resident_est = st.in_use + st.free_dirty;
    st.caches = a->ncaches;
    st.classes = RSB_NUM_CLASSES;
    *out = st;
}

static void line_kv(rsb_buf *b, const char *k, uint64_t v, const char *unit) {
    rsb_buf_str(b, "  ");
    rsb_buf_str(b, k);
    rsb_buf_dec_w(b, v, 14);
    rsb_buf_str(b, unit);
    rsb_buf_str(b, "\n");
}

void rsb_stats_report(rsb_allocator *a, int fd) {
    rsb_stats_t st;
    rsb_class_stats pc[RSB_NUM_CLASSES];
    rsb_stats_collect(a, &st, pc);
    rsb_buf b = {.len = 0};
    rsb_buf_str(&b, "rsbmalloc statistics\n");
    line_kv(&b, "mapped         ", st.mapped, " B");
    line_kv(&b, "in use         ", st.in_use, " B");
    line_kv(&b, "  small        ", st.small_in_use, " B");
    line_kv(&b, "  large+huge   ", st.large_in_use, " B");
    line_kv(&b, "free, dirty    ", st.free_dirty, " B (not yet returned to the OS)");
    line_kv(&b, "huge blocks    ", st.huge_count, "");
    line_kv(&b, "purges         ", st.purges, "");
    line_kv(&b, "lock waits     ", st.lock_contended, "");
    line_kv(&b, "caches         ", st.caches, "");
    rsb_buf_flush(&b, fd);
    rsb_buf_str(&b, "  class      size   slabs      blocks used   capacity  use%\n");
    rsb_buf_flush(&b, fd);
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        if (!pc[k].slabs) continue;
        rsb_buf_str(&b, "  ");
        rsb_buf_dec_w(&b, k, 5);
        rsb_buf_dec_w(&b, rsb_class_size[k], 10);
        rsb_buf_dec_w(&b, pc[k].slabs, 8);
        rsb_buf_dec_w(&b, pc[k].used, 17);
        rsb_buf_dec_w(&b, pc[k].capacity, 11);
        rsb_buf_dec_w(&b, pc[k].capacity ? pc[k].used * 100 / pc[k].capacity : 0, 6);
        rsb_buf_str(&b, "\n");
        rsb_buf_flush(&b, fd);
    }
    rsb_buf_str(&b, "  cache  lock waits\n");
    for (uint32_t i = 0; i < a->ncaches; i++) {
        if (b.len > sizeof b.data - 40) rsb_buf_flush(&b, fd);
        rsb_buf_str(&b, "  ");
        rsb_buf_dec_w(&b, i, 5);
        rsb_buf_dec_w(&b, a->caches[i].lock.contended, 12);
        rsb_buf_str(&b, "\n");
    }
    rsb_buf_flush(&b, fd);
}
