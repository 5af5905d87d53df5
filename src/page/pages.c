/*
 * The page allocator: see pages.h for the state and its invariants, chunk.h
 * for spans.  Every function here runs with the page lock held.
 */
#include "pages.h"

#include "../os/os.h"

static inline uint32_t span_index(const rsb_chunk *c, const rsb_span *s) {
    return (uint32_t)(s - rsb_chunk_pages(c));
}

/* --- free-span buckets --------------------------------------------------- */

static unsigned bucket_of(uint32_t n) {
    if (n <= 32) return n - 1;
    unsigned lg = rsb_log2(n);
    return 32 + (lg - 5) * 4 + ((n >> (lg - 2)) & 3);
}

static uint32_t bucket_min(unsigned b) {
    if (b < 32) return b + 1;
    unsigned lg = 5 + (b - 32) / 4;
    return (uint32_t)(4 + (b - 32) % 4) << (lg - 2);
}

/* First bucket whose every span has at least n pages. */
static unsigned bucket_up(uint32_t n) {
    unsigned b = bucket_of(n);
    return bucket_min(b) == n ? b : b + 1;
}

static void bucket_insert(rsb_pages *pg, rsb_span *s) {
    unsigned b = bucket_of(s->npages);
    RSB_ASSERT(b < RSB_BUCKETS && s->kind == RSB_SPAN_FREE);
    rsb_span_list_push(&pg->buckets[b], s);
    pg->bucket_map[b >> 6] |= (uint64_t)1 << (b & 63);
}

static void bucket_remove(rsb_pages *pg, rsb_span *s) {
    unsigned b = bucket_of(s->npages);
    rsb_span_list_remove(&pg->buckets[b], s);
    if (!pg->buckets[b]) pg->bucket_map[b >> 6] &= ~((uint64_t)1 << (b & 63));
}

static int bucket_find(const rsb_pages *pg, unsigned from) {
    for (unsigned w = from >> 6; w < RSB_BUCKET_WORDS; w++) {
        uint64_t m = pg->bucket_map[w];
        if (w == from >> 6) m &= ~(uint64_t)0 << (from & 63);
        if (m) return (int)(w * 64 + rsb_ctz64(m));
    }
    return -1;
}

/* A bucket holding at least one span of n pages or more, or -1.  The bucket
 * n falls in holds spans from below n up: when no bucket above has one, its
 * first span may still fit. */
static int bucket_fit(const rsb_pages *pg, uint32_t n) {
    int b = bucket_find(pg, bucket_up(n));
    if (b < 0) {
        unsigned lo = bucket_of(n);
        if (pg->buckets[lo] && pg->buckets[lo]->npages >= n) b = (int)lo;
    }
    return b;
}

/* --- the dirty list (purge order) ---------------------------------------- */

static void dirty_append(rsb_pages *pg, rsb_span *s) {
    rsb_span_set_dnext(s, NULL);
    rsb_span_set_dprev(s, pg->dirty_tail);
    if (pg->dirty_tail)
        rsb_span_set_dnext(pg->dirty_tail, s);
    else
        pg->dirty_head = s;
    pg->dirty_tail = s;
    pg->dirty_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
}

static void dirty_remove(rsb_pages *pg, rsb_span *s) {
    rsb_span *p = rsb_span_dprev(s), *n = rsb_span_dnext(s);
    if (p)
        rsb_span_set_dnext(p, n);
    else
        pg->dirty_head = n;
    if (n)
        rsb_span_set_dprev(n, p);
    else
        pg->dirty_tail = p;
    RSB_ASSERT(pg->dirty_bytes >= ((size_t)s->npages << RSB_PAGE_SHIFT));
    pg->dirty_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
}

/* Replace s by r (its tail after a split) at the same place of the list. */
static void dirty_replace(rsb_pages *pg, rsb_span *s, rsb_span *r) {
    rsb_span *p = rsb_span_dprev(s), *n = rsb_span_dnext(s);
    rsb_span_set_dprev(r, p);
    rsb_span_set_dnext(r, n);
    if (p)
        rsb_span_set_dnext(p, r);
    else
        pg->dirty_head = r;
    if (n)
        rsb_span_set_dprev(n, r);
    else
        pg->dirty_tail = r;
    pg->dirty_bytes -= (size_t)(s->npages - r->npages) << RSB_PAGE_SHIFT;
}

/* --- spans --------------------------------------------------------------- */

/* Make pages[idx .. idx+n) a span head with boundary tags. */
static rsb_span *span_make(rsb_chunk *c, uint32_t idx, uint32_t n, uint8_t kind, uint8_t flags) {
    rsb_span *pages = rsb_chunk_pages(c);
    rsb_span *s = &pages[idx];
    RSB_ASSERT(n > 0 && idx >= c->first_page && idx + n <= c->npages);
    s->kind = kind;
    s->flags = flags;
    s->head = (rsb_pgidx)idx;
    s->npages = (rsb_pgidx)n;
    rsb_span_set_start(s, rsb_chunk_base(c) + ((size_t)idx << RSB_PAGE_SHIFT));
    pages[idx + n - 1].head = (rsb_pgidx)idx;
    return s;
}

/* Take n pages from the front of free span s (out of its bucket already);
 * the rest stays free at the same place of the dirty list. */
static void free_span_cut(rsb_pages *pg, rsb_chunk *c, rsb_span *s, uint32_t n) {
    uint32_t idx = span_index(c, s);
    bool dirty = s->flags & RSB_SF_DIRTY;
    if (s->npages > n) {
        rsb_span *r = span_make(c, idx + n, s->npages - n, RSB_SPAN_FREE, s->flags);
        rsb_span_set_freed_ms(r, rsb_span_freed_ms(s));
        if (dirty) dirty_replace(pg, s, r);
        bucket_insert(pg, r);
    } else if (dirty) {
        dirty_remove(pg, s);
    }
}

void rsb_chunk_add(rsb_pages *pg, rsb_chunk *c, char *base, uint32_t npages, uint32_t first) {
    c->magic = RSB_CHUNK_MAGIC;
    c->kind = RSB_HDR_PAGES;
    c->npages = npages;
    c->first_page = first;
    c->used_pages = 0;
    c->base = base;
    rsb_span *pages = rsb_chunk_pages(c);
    for (uint32_t i = 0; i < first; i++) {
        pages[i].kind = RSB_SPAN_DEAD;
        pages[i].head = (rsb_pgidx)i;
    }
    c->prev = NULL;
    c->next = pg->chunks;
    if (c->next) c->next->prev = c;
    pg->chunks = c;
    pg->nchunks++;
    bucket_insert(pg, span_make(c, first, npages - first, RSB_SPAN_FREE, 0));
}

/* --- purging ---------------------------------------------------------------- */

/* Dirty pages kept for reuse are bounded: beyond max(32 MiB, 1/4 of what is
 * mapped) the oldest go back to the OS at once, whatever the delay, so a
 * program that frees most of its peak and then goes quiet (no allocator
 * activity to trigger the delayed purge) does not keep it all resident. */
#define RSB_DIRTY_FLOOR ((size_t)32 << 20)

/* Give a dirty free span's pages back to the OS (it stays free, now clean). */
static bool purge_span(rsb_pages *pg, rsb_span *s) {
    dirty_remove(pg, s);
    s->flags &= (uint8_t)~RSB_SF_DIRTY;
    if (rsb_os_page > RSB_PAGE_SIZE ||
        !rsb_os_purge(rsb_span_start(s), (size_t)s->npages << RSB_PAGE_SHIFT)) {
        s->flags |= RSB_SF_STALE; /* off the list, but its bytes are not zero */
        return false;
    }
    pg->purges++;
    return true;
}

static void purge_over_cap(rsb_pages *pg) {
    size_t cap = pg->mapped / 4 > RSB_DIRTY_FLOOR ? pg->mapped / 4 : RSB_DIRTY_FLOOR;
    if (pg->purge_delay_ms < 0 || pg->dirty_bytes <= cap) return;
    while (pg->dirty_head && pg->dirty_bytes > cap / 2) purge_span(pg, pg->dirty_head);
}

static bool pending(const rsb_pages *pg) {
    return pg->dirty_head || pg->spare_huge_bytes || pg->nspare_runs || pg->nslack_huge;
}

/* Start the purge clock if it is not running: memory is waiting. */
void rsb_pages_arm_purge(rsb_pages *pg) {
    if (pg->purge_delay_ms >= 0 && pg->next_purge_ms == UINT64_MAX)
        pg->next_purge_ms = rsb_os_now_ms() + (uint64_t)pg->purge_delay_ms;
}

void rsb_pages_maybe_purge(rsb_pages *pg) {
    if (pg->purge_delay_ms >= 0 && pending(pg) && rsb_os_now_ms() >= pg->next_purge_ms)
        rsb_pages_purge(pg, false);
}

/* --- allocation -------------------------------------------------------------- */

rsb_span *rsb_pages_alloc(rsb_pages *pg, uint32_t n, uint8_t kind, bool *zero) {
    int b = bucket_fit(pg, n);
    if (b < 0) {
        if (!rsb_chunk_new(pg)) return NULL;
        b = bucket_fit(pg, n);
        if (b < 0) return NULL; /* more pages than a chunk holds */
    }
    rsb_span *s = pg->buckets[b];
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = span_index(c, s);
    RSB_ASSERT(s->kind == RSB_SPAN_FREE && s->npages >= n);
    bucket_remove(pg, s);
    bool dirty = s->flags & (RSB_SF_DIRTY | RSB_SF_STALE);
    free_span_cut(pg, c, s, n);
    s = span_make(c, idx, n, kind, 0);
    if (kind == RSB_SPAN_SLAB)
        for (uint32_t i = 1; i < n; i++) rsb_span_mark_page(s, i);
    else
        pg->run_bytes += (size_t)n << RSB_PAGE_SHIFT;
    c->used_pages += n;
    *zero = !dirty;
    rsb_pages_maybe_purge(pg);
    RSB_EXPENSIVE(rsb_pages_check(pg));
    return s;
}

bool rsb_pages_grow(rsb_pages *pg, rsb_span *s, uint32_t n) {
    RSB_ASSERT(s->kind == RSB_SPAN_RUN && n > s->npages);
    rsb_chunk *c = rsb_chunk_of_span(s);
    rsb_span *pages = rsb_chunk_pages(c);
    uint32_t idx = s->head, r = idx + s->npages, extra = n - s->npages;
    if (r >= c->npages) return false;
    rsb_span *rs = &pages[r];
    if (rs->head != r || rs->kind != RSB_SPAN_FREE || rs->npages < extra) return false;
    bucket_remove(pg, rs);
    free_span_cut(pg, c, rs, extra);
    rs->kind = RSB_SPAN_DEAD;
    s->npages = (rsb_pgidx)n;
    pages[idx + n - 1].head = (rsb_pgidx)idx;
    c->used_pages += extra;
    pg->run_bytes += (size_t)extra << RSB_PAGE_SHIFT;
    RSB_EXPENSIVE(rsb_pages_check(pg));
    return true;
}

rsb_span *rsb_pages_split(rsb_pages *pg, rsb_span *s, uint32_t k) {
    (void)pg;
    RSB_ASSERT(s->kind == RSB_SPAN_RUN && k > 0 && k < s->npages);
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = span_index(c, s);
    rsb_span *t = span_make(c, idx + k, s->npages - k, RSB_SPAN_RUN, 0);
    s->npages = (rsb_pgidx)k;
    rsb_chunk_pages(c)[idx + k - 1].head = (rsb_pgidx)idx;
    return t;
}

void rsb_pages_free(rsb_pages *pg, rsb_span *s) {
    rsb_chunk *c = rsb_chunk_of_span(s);
    rsb_span *pages = rsb_chunk_pages(c);
    uint32_t idx = span_index(c, s);
    uint32_t n = s->npages;
    RSB_ASSERT(s->kind == RSB_SPAN_SLAB || s->kind == RSB_SPAN_RUN);
    RSB_ASSERT(c->used_pages >= n);
    c->used_pages -= n;
    if (s->kind == RSB_SPAN_RUN) pg->run_bytes -= (size_t)n << RSB_PAGE_SHIFT;
    else
        for (uint32_t i = 1; i < n; i++) s[i].kind = RSB_SPAN_DEAD; /* no page outside a slab says SLAB */
    /* Merge with the span on the left: its last page names its head. */
    if (idx > c->first_page) {
        uint32_t lh = pages[idx - 1].head;
        rsb_span *l = &pages[lh];
        if (lh < idx && l->head == lh && l->kind == RSB_SPAN_FREE && lh + l->npages == idx) {
            bucket_remove(pg, l);
            if (l->flags & RSB_SF_DIRTY) dirty_remove(pg, l);
            s->kind = RSB_SPAN_DEAD;
            n += l->npages;
            idx = lh;
        }
    }
    /* Merge with the span on the right. */
    uint32_t r = idx + n;
    if (r < c->npages) {
        rsb_span *rs = &pages[r];
        if (rs->head == r && rs->kind == RSB_SPAN_FREE) {
            bucket_remove(pg, rs);
            if (rs->flags & RSB_SF_DIRTY) dirty_remove(pg, rs);
            rs->kind = RSB_SPAN_DEAD;
            n += rs->npages;
        }
    }
    s = span_make(c, idx, n, RSB_SPAN_FREE, RSB_SF_DIRTY);
    rsb_span_set_freed_ms(s, (uint32_t)rsb_os_now_ms());
    bucket_insert(pg, s);
    dirty_append(pg, s);
    rsb_pages_arm_purge(pg);
    rsb_pages_maybe_purge(pg);
    purge_over_cap(pg);
    RSB_EXPENSIVE(rsb_pages_check(pg));
}

/* --- spare page runs --------------------------------------------------------------- */

/* Take spare i out of the list and make its span live (RUN, in use). */
static rsb_span *spare_run_take(rsb_pages *pg, uint32_t i) {
    rsb_span *s = pg->spare_runs[i];
    for (uint32_t j = i + 1; j < pg->nspare_runs; j++) pg->spare_runs[j - 1] = pg->spare_runs[j];
    pg->nspare_runs--;
    RSB_ASSERT(s->kind == RSB_SPAN_RUN && (s->flags & RSB_SF_SPARE));
    s->flags &= (uint8_t)~RSB_SF_SPARE;
    pg->spare_run_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
    pg->run_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
    return s;
}

rsb_span *rsb_run_alloc(rsb_pages *pg, uint32_t n, bool *zero) {
    for (uint32_t i = pg->nspare_runs; i-- > 0;)
        if (pg->spare_runs[i]->npages == n) {
            *zero = false;
            return spare_run_take(pg, i);
        }
    return rsb_pages_alloc(pg, n, RSB_SPAN_RUN, zero);
}

bool rsb_run_free(rsb_pages *pg, rsb_span *s) {
    RSB_ASSERT(s->kind == RSB_SPAN_RUN);
    if (s->flags & RSB_SF_SPARE) return false;
    if (pg->purge_delay_ms == 0) { /* nothing to keep */
        rsb_pages_free(pg, s);
        return true;
    }
    if (pg->nspare_runs == RSB_SPARE_RUNS) rsb_pages_free(pg, spare_run_take(pg, 0));
    s->flags |= RSB_SF_SPARE;
    pg->spare_runs[pg->nspare_runs++] = s;
    pg->spare_run_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
    pg->run_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
    /* The purge clock must run while spares hold memory; the clock is read
     * once per 64 puts, not on each. */
    if (pg->next_purge_ms == UINT64_MAX)
        rsb_pages_arm_purge(pg);
    else if ((++pg->spare_run_puts & 63) == 0)
        rsb_pages_maybe_purge(pg);
    return true;
}

/* --- purge ---------------------------------------------------------------------- */

bool rsb_pages_purge(rsb_pages *pg, bool all) {
    bool released = false;
    /* Spare runs first, so that they can merge and be purged below. */
    while (pg->nspare_runs) rsb_pages_free(pg, spare_run_take(pg, pg->nspare_runs - 1));
    pg->spare_run_puts = 0;
    uint32_t now = (uint32_t)rsb_os_now_ms();
    rsb_span *s;
    while ((s = pg->dirty_head) != NULL) {
        if (!all && (pg->purge_delay_ms < 0 || now - rsb_span_freed_ms(s) < (uint32_t)pg->purge_delay_ms)) break;
        rsb_chunk *c = rsb_chunk_of_span(s);
        if (s->npages == c->npages - c->first_page && pg->nchunks > 1) { /* a whole chunk */
            dirty_remove(pg, s);
            bucket_remove(pg, s);
            rsb_chunk_release(pg, c);
            pg->purges++;
            released = true;
            continue;
        }
        released |= purge_span(pg, s);
    }
    if (pg->expire_huge) released |= pg->expire_huge(pg, all, now);
    pg->next_purge_ms = UINT64_MAX;
    if (pending(pg)) rsb_pages_arm_purge(pg);
    RSB_EXPENSIVE(rsb_pages_check(pg));
    return released;
}

void rsb_pages_init(rsb_pages *pg, int32_t purge_delay_ms) {
    pg->purge_delay_ms = purge_delay_ms;
    pg->next_purge_ms = UINT64_MAX;
}

/* --- self-check ------------------------------------------------------------------ */

void rsb_pages_check(const rsb_pages *pg) {
    size_t dirty = 0;
    const rsb_span *prev = NULL;
    for (const rsb_span *s = pg->dirty_head; s; prev = s, s = rsb_span_dnext(s)) {
        RSB_CHECK(s->kind == RSB_SPAN_FREE && (s->flags & RSB_SF_DIRTY), "dirty list holds a non-dirty span");
        RSB_CHECK(rsb_span_dprev(s) == prev, "dirty list back link");
        dirty += (size_t)s->npages << RSB_PAGE_SHIFT;
    }
    RSB_CHECK(pg->dirty_tail == prev, "dirty list tail");
    RSB_CHECK(dirty == pg->dirty_bytes, "dirty_bytes mismatch");
    for (unsigned b = 0; b < RSB_BUCKETS; b++) {
        bool bit = (pg->bucket_map[b >> 6] >> (b & 63)) & 1;
        RSB_CHECK(bit == (pg->buckets[b] != NULL), "bucket map bit");
        for (const rsb_span *s = pg->buckets[b]; s; s = rsb_span_next(s))
            RSB_CHECK(s->kind == RSB_SPAN_FREE && bucket_of(s->npages) == b, "span in the wrong bucket");
    }
    size_t spare = 0;
    for (uint32_t i = 0; i < pg->nspare_runs; i++) {
        const rsb_span *s = pg->spare_runs[i];
        RSB_CHECK(s->kind == RSB_SPAN_RUN && (s->flags & RSB_SF_SPARE), "spare run not a spare");
        spare += (size_t)s->npages << RSB_PAGE_SHIFT;
    }
    RSB_CHECK(spare == pg->spare_run_bytes, "spare_run_bytes mismatch");
    size_t runs = 0;
    uint32_t nchunks = 0;
    for (const rsb_chunk *c = pg->chunks; c; c = c->next) {
        const rsb_span *pages = rsb_chunk_pages(c);
        uint32_t i = c->first_page, used = 0;
        bool prev_free = false;
        nchunks++;
        RSB_CHECK(c->magic == RSB_CHUNK_MAGIC && c->kind == RSB_HDR_PAGES, "chunk header");
        for (uint32_t k = 0; k < c->first_page; k++) RSB_CHECK(pages[k].kind == RSB_SPAN_DEAD, "metadata page in a span");
        while (i < c->npages) {
            const rsb_span *s = &pages[i];
            RSB_CHECK(s->head == i && s->npages != 0 && i + s->npages <= c->npages, "span chain broken");
            RSB_CHECK(pages[i + s->npages - 1].head == i, "span tail tag wrong");
            RSB_CHECK(rsb_span_start(s) == rsb_chunk_base(c) + ((size_t)i << RSB_PAGE_SHIFT), "span start");
            if (s->kind == RSB_SPAN_FREE) {
                RSB_CHECK(!prev_free, "two adjacent free spans");
                const rsb_span *x = pg->buckets[bucket_of(s->npages)];
                while (x && x != s) x = rsb_span_next(x);
                RSB_CHECK(x != NULL, "free span not in its bucket");
                if (s->flags & RSB_SF_DIRTY) {
                    const rsb_span *d = pg->dirty_head;
                    while (d && d != s) d = rsb_span_dnext(d);
                    RSB_CHECK(d != NULL, "dirty span not on the dirty list");
                }
                prev_free = true;
            } else {
                RSB_CHECK(s->kind == RSB_SPAN_SLAB || s->kind == RSB_SPAN_RUN, "dead span in chain");
                used += s->npages;
                prev_free = false;
                if (s->kind == RSB_SPAN_SLAB)
                    for (uint32_t j = 0; j < s->npages; j++) {
                        const rsb_span *d = &pages[i + j];
                        RSB_CHECK(d->head == i, "slab page head wrong");
                        RSB_CHECK(j == 0 ||
                                      (d->kind == RSB_SPAN_SLAB && d->cls == s->cls &&
                                       rsb_span_owner(d) == rsb_span_owner(s) &&
                                       rsb_span_start(d) == rsb_span_start(s)),
                                  "slab page replica wrong");
                    }
                else if (!(s->flags & RSB_SF_SPARE))
                    runs += (size_t)s->npages << RSB_PAGE_SHIFT;

            }
            if (s->kind != RSB_SPAN_SLAB)
                for (uint32_t j = 1; j < s->npages; j++)
                    RSB_CHECK(pages[i + j].kind != RSB_SPAN_SLAB, "a page outside a slab says SLAB");
            i += s->npages;
        }
        RSB_CHECK(used == c->used_pages, "used_pages mismatch");
    }
    RSB_CHECK(nchunks == pg->nchunks, "chunk count");
    RSB_CHECK(runs == pg->run_bytes, "run_bytes mismatch");
}
