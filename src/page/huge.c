/* Huge blocks: see huge.h. */
#include "huge.h"

#include "../os/os.h"

static size_t huge_offset(size_t align) {
    if (align > RSB_CHUNK_SIZE) return RSB_CHUNK_SIZE;
    return align > 64 ? align : 64;
}

/* Bytes of mapping a block of size bytes at offset off needs (page
 * rounded); 0 if too large. */
static size_t huge_need(size_t off, size_t size) {
    if (size > (size_t)PTRDIFF_MAX - off - rsb_os_page - RSB_CHUNK_SIZE) return 0;
    return rsb_align_up(off + size, rsb_os_page);
}

size_t rsb_huge_in_use(const rsb_pages *pg) {
    size_t mapped = __atomic_load_n(&pg->huge_mapped, __ATOMIC_RELAXED);
    size_t spare = __atomic_load_n(&pg->spare_huge_bytes, __ATOMIC_RELAXED);
    return mapped > spare ? mapped - spare : 0;
}

static void huge_unmap(rsb_pages *pg, rsb_huge *h) {
    size_t map = h->map_size;
    rsb_registry_set((uintptr_t)h, 0);
    h->magic = 0;
    __atomic_fetch_sub(&pg->huge_mapped, map, __ATOMIC_RELAXED);
    rsb_os_unmap(h, map);
}

static void count_mapped(rsb_pages *pg, size_t old, size_t now) {
    if (now > old)
        __atomic_fetch_add(&pg->huge_mapped, now - old, __ATOMIC_RELAXED);
    else
        __atomic_fetch_sub(&pg->huge_mapped, old - now, __ATOMIC_RELAXED);
}

/* --- slack: the mapped pages past a live block's end ----------------------- */

/* h's slack [end, map_size) waits to be unmapped until the purge delay has
 * passed, so that a block that shrinks and grows again (a buffer that is
 * trimmed, then refilled) does so without system calls or page faults.
 * Page lock held.  With no room on the list, or no delay, it goes now. */
static void slack_trim(rsb_pages *pg, rsb_huge *h) {
    if (h->end < h->map_size) {
        rsb_os_unmap((char *)h + h->end, h->map_size - h->end);
        count_mapped(pg, h->map_size, h->end);
        h->map_size = h->end;
    }
}

static void slack_forget(rsb_pages *pg, rsb_huge *h) {
    if (!pg->nslack_huge) return;
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++)
        if (pg->slack_huge[i] == h) {
            pg->slack_huge[i] = NULL;
            pg->nslack_huge--;
        }
}

static void slack_keep(rsb_pages *pg, rsb_huge *h) {
    RSB_ASSERT(h->end <= h->map_size && h->kind == RSB_HDR_HUGE);
    slack_forget(pg, h);
    if (h->end == h->map_size) return;
    /* Large tails go at once: the delay is for reuse, not for hoarding. */
    if (pg->purge_delay_ms == 0 || h->map_size - h->end > RSB_SPARE_HUGE_MAX_BYTES) {
        slack_trim(pg, h);
        return;
    }
    unsigned slot = RSB_SPARE_HUGE;
    for (unsigned i = 0; i < RSB_SPARE_HUGE && slot == RSB_SPARE_HUGE; i++)
        if (!pg->slack_huge[i]) slot = i;
    if (slot == RSB_SPARE_HUGE) { /* full: the oldest goes now */
        slot = 0;
        for (unsigned i = 1; i < RSB_SPARE_HUGE; i++)
            if (pg->slack_huge[i]->freed_ms < pg->slack_huge[slot]->freed_ms) slot = i;
        slack_trim(pg, pg->slack_huge[slot]);
        pg->nslack_huge--;
    }
    h->freed_ms = (uint32_t)rsb_os_now_ms();
    pg->slack_huge[slot] = h;
    pg->nslack_huge++;
    rsb_pages_arm_purge(pg);
}

/* --- resizing a mapping -------------------------------------------------------- */

/* Make h's mapping exactly map bytes without copying: shrink by unmapping
 * the tail, grow in place, or move the pages to a new chunk-aligned
 * reservation with mremap.  h is not on any list.  Returns the header (moved
 * or not), or NULL with h intact. */
static rsb_huge *resize(rsb_pages *pg, rsb_huge *h, size_t map) {
    size_t old = h->map_size;
    if (map < old) {
        rsb_os_unmap((char *)h + map, old - map);
    } else if (map > old && !rsb_os_remap_inplace(h, old, map)) {
        if (h->offset == RSB_CHUNK_SIZE) return NULL; /* alignment above a chunk: the caller copies */
        /* The target is only address space: mremap moves h's pages, with
         * their accounting, over it. */
        rsb_huge *n = rsb_os_map(map, RSB_CHUNK_SIZE, 0);
        if (!n) return NULL;
        /* Register the new address before moving, and forget h's entry while
         * h is still mapped: once mremap has moved the pages, another thread
         * may map a chunk at h and set its entry. */
        if (!rsb_registry_set((uintptr_t)n, RSB_HDR_HUGE)) {
            rsb_os_unmap(n, map);
            return NULL;
        }
        rsb_registry_set((uintptr_t)h, 0);
        if (!rsb_os_remap_to(h, old, map, n)) {
            rsb_registry_set((uintptr_t)h, RSB_HDR_HUGE);
            rsb_registry_set((uintptr_t)n, 0);
            rsb_os_unmap(n, map);
            return NULL;
        }
        h = n;
    }
    h->map_size = map;
    count_mapped(pg, old, map);
    return h;
}

/* --- spares ---------------------------------------------------------------------- */

/* The spare that serves a request of `need` bytes at offset off best: the
 * smallest big enough (its extra pages become slack), else the largest
 * smaller one (grown by remapping: its resident pages are kept).  Its block
 * address must be aligned as asked (offsets coincide for every alignment
 * from a chunk up, and those cannot be grown).  Taken off the list. */
static rsb_huge *spare_take(rsb_pages *pg, size_t off, size_t align, size_t need) {
    rsb_huge *fit = NULL, *grow = NULL;
    unsigned fi = 0, gi = 0;
    rsb_lock_acquire(&pg->lock);
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++) {
        rsb_huge *h = pg->spare_huge[i];
        if (!h || h->offset != off || (((uintptr_t)h + off) & (align - 1)) != 0) continue;
        if (h->map_size >= need) {
            if (!fit || h->map_size < fit->map_size) fit = h, fi = i;
        } else if (off < RSB_CHUNK_SIZE && (!grow || h->map_size > grow->map_size)) {
            grow = h, gi = i;
        }
    }
    rsb_huge *h = fit ? fit : grow;
    if (h) {
        pg->spare_huge[fit ? fi : gi] = NULL;
        pg->spare_huge_bytes -= h->map_size;
        h->kind = RSB_HDR_HUGE;
    }
    rsb_lock_release(&pg->lock);
    return h;
}

void *rsb_huge_alloc(rsb_pages *pg, size_t size, size_t align, bool *zero) {
    size_t off = huge_offset(align);
    size_t need = huge_need(off, size);
    if (!need) return NULL;
    rsb_huge *h = spare_take(pg, off, align ? align : 1, need);
    if (h) {
        __atomic_fetch_add(&pg->huge_count, 1, __ATOMIC_RELAXED);
        *zero = false;
        if (h->map_size < need) {
            rsb_huge *g = resize(pg, h, need);
            if (!g) { /* cannot grow it: back to the OS, and map afresh */
                __atomic_fetch_sub(&pg->huge_count, 1, __ATOMIC_RELAXED);
                huge_unmap(pg, h);
                goto fresh;
            }
            h = g;
        }
        h->end = need;
        if (h->map_size > need) {
            rsb_lock_acquire(&pg->lock);
            slack_keep(pg, h);
            rsb_lock_release(&pg->lock);
        }
        return rsb_huge_block(h);
    }
fresh:
    h = align > RSB_CHUNK_SIZE ? rsb_os_map_block(need, align, RSB_CHUNK_SIZE)
                               : rsb_os_map_block(need, RSB_CHUNK_SIZE, 0);
    if (!h) return NULL;
    if (!rsb_registry_set((uintptr_t)h, RSB_HDR_HUGE)) {
        rsb_os_unmap(h, need);
        return NULL;
    }
    h->magic = RSB_CHUNK_MAGIC;
    h->kind = RSB_HDR_HUGE;
    h->map_size = need;
    h->end = need;
    h->offset = off;
    __atomic_fetch_add(&pg->huge_mapped, need, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pg->huge_count, 1, __ATOMIC_RELAXED);
    *zero = true;
    return rsb_huge_block(h);
}

void rsb_huge_free(rsb_pages *pg, rsb_huge *h) {
    RSB_ASSERT(h->kind == RSB_HDR_HUGE);
    __atomic_fetch_sub(&pg->huge_count, 1, __ATOMIC_RELAXED);
    rsb_lock_acquire(&pg->lock);
    slack_forget(pg, h);
    h->end = h->map_size; /* a spare is the whole mapping */
    if (pg->purge_delay_ms == 0 || h->map_size > RSB_SPARE_HUGE_MAX_ONE) {
        rsb_lock_release(&pg->lock);
        huge_unmap(pg, h);
        return;
    }
    unsigned slot = 0;
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++) { /* an empty slot, else the oldest */
        if (!pg->spare_huge[i]) {
            slot = i;
            break;
        }
        if (pg->spare_huge[i]->freed_ms < pg->spare_huge[slot]->freed_ms) slot = i;
    }
    rsb_huge *evict[RSB_SPARE_HUGE];
    unsigned nevict = 0;
    if (pg->spare_huge[slot]) {
        evict[nevict++] = pg->spare_huge[slot];
        pg->spare_huge_bytes -= pg->spare_huge[slot]->map_size;
    }
    h->kind = RSB_HDR_HUGE_SPARE;
    h->freed_ms = (uint32_t)rsb_os_now_ms();
    pg->spare_huge[slot] = h;
    pg->spare_huge_bytes += h->map_size;
    /* Never keep more than the byte cap: the oldest others go beyond it. */
    while (pg->spare_huge_bytes > RSB_SPARE_HUGE_MAX_BYTES) {
        unsigned oi = RSB_SPARE_HUGE;
        for (unsigned i = 0; i < RSB_SPARE_HUGE; i++)
            if (pg->spare_huge[i] && pg->spare_huge[i] != h &&
                (oi == RSB_SPARE_HUGE || pg->spare_huge[i]->freed_ms < pg->spare_huge[oi]->freed_ms))
                oi = i;
        if (oi == RSB_SPARE_HUGE) break;
        evict[nevict++] = pg->spare_huge[oi];
        pg->spare_huge_bytes -= pg->spare_huge[oi]->map_size;
        pg->spare_huge[oi] = NULL;
    }
    rsb_pages_arm_purge(pg);
    rsb_pages_maybe_purge(pg);
    rsb_lock_release(&pg->lock);
    for (unsigned i = 0; i < nevict; i++) huge_unmap(pg, evict[i]);
}

/* The purge hook: unmap spares and slack older than the purge delay (all
 * if `all`).  Page lock held. */
static bool expire(rsb_pages *pg, bool all, uint32_t now) {
    unsigned n = 0;
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++) {
        rsb_huge *h = pg->spare_huge[i];
        if (h && (all || (pg->purge_delay_ms >= 0 && now - h->freed_ms >= (uint32_t)pg->purge_delay_ms))) {
            pg->spare_huge[i] = NULL;
            pg->spare_huge_bytes -= h->map_size;
            huge_unmap(pg, h);
            n++;
        }
        h = pg->slack_huge[i];
        if (h && (all || (pg->purge_delay_ms >= 0 && now - h->freed_ms >= (uint32_t)pg->purge_delay_ms))) {
            pg->slack_huge[i] = NULL;
            pg->nslack_huge--;
            slack_trim(pg, h);
            n++;
        }
    }
    pg->purges += n;
    return n != 0;
}

void rsb_huge_init(rsb_pages *pg) { pg->expire_huge = expire; }

void *rsb_huge_realloc(rsb_pages *pg, rsb_huge *h, size_t size) {
    size_t need = huge_need(h->offset, size);
    if (!need) return NULL;
    rsb_lock_acquire(&pg->lock);
    if (need <= h->map_size) { /* within the mapping: no system call now */
        h->end = need;
        slack_keep(pg, h);
        rsb_lock_release(&pg->lock);
        return rsb_huge_block(h);
    }
    slack_forget(pg, h);
    rsb_lock_release(&pg->lock);
    rsb_huge *n = resize(pg, h, need);
    if (!n) return NULL;
    n->end = need;
    return rsb_huge_block(n);
}
