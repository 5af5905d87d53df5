/* Huge blocks: see huge.h. */
#include "huge.h"

#include "../os/os.h"

static size_t huge_offset(size_t align) {
    if (align > RSB_CHUNK_SIZE) return RSB_CHUNK_SIZE;
    return align > 64 ? align : 64;
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

/* A spare with the same block offset, a block address aligned as asked
 * (offsets coincide for every alignment from a chunk up), and a size
 * between the need and twice the need (reuse never more than doubles the
 * footprint). */
static rsb_huge *spare_take(rsb_pages *pg, size_t off, size_t align, size_t map) {
    rsb_huge *best = NULL;
    unsigned bi = 0;
    rsb_lock_acquire(&pg->lock);
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++) {
        rsb_huge *h = pg->spare_huge[i];
        if (h && h->offset == off && (((uintptr_t)h + off) & (align - 1)) == 0 && h->map_size >= map &&
            h->map_size / 2 <= map && (!best || h->map_size < best->map_size))
            best = h, bi = i;
    }
    if (best) {
        pg->spare_huge[bi] = NULL;
        pg->spare_huge_bytes -= best->map_size;
    }
    rsb_lock_release(&pg->lock);
    return best;
}

void *rsb_huge_alloc(rsb_pages *pg, size_t size, size_t align, bool *zero) {
    size_t off = huge_offset(align);
    if (size > (size_t)PTRDIFF_MAX - off - rsb_os_page - RSB_CHUNK_SIZE) return NULL;
    size_t map = rsb_align_up(off + size, rsb_os_page);
    rsb_huge *h = spare_take(pg, off, align ? align : 1, map);
    if (h) {
        h->kind = RSB_HDR_HUGE;
        __atomic_fetch_add(&pg->huge_count, 1, __ATOMIC_RELAXED);
        *zero = false;
        return rsb_huge_block(h);
    }
    h = align > RSB_CHUNK_SIZE ? rsb_os_map(map, align, RSB_CHUNK_SIZE) : rsb_os_map(map, RSB_CHUNK_SIZE, 0);
    if (!h) return NULL;
    if (!rsb_registry_set((uintptr_t)h, RSB_HDR_HUGE)) {
        rsb_os_unmap(h, map);
        return NULL;
    }
    h->magic = RSB_CHUNK_MAGIC;
    h->kind = RSB_HDR_HUGE;
    h->map_size = map;
    h->offset = off;
    __atomic_fetch_add(&pg->huge_mapped, map, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pg->huge_count, 1, __ATOMIC_RELAXED);
    *zero = true;
    return rsb_huge_block(h);
}

void rsb_huge_free(rsb_pages *pg, rsb_huge *h) {
    RSB_ASSERT(h->kind == RSB_HDR_HUGE);
    __atomic_fetch_sub(&pg->huge_count, 1, __ATOMIC_RELAXED);
    if (pg->purge_delay_ms == 0 || h->map_size > RSB_SPARE_HUGE_MAX_BYTES / 4) {
        huge_unmap(pg, h);
        return;
    }
    rsb_lock_acquire(&pg->lock);
    unsigned slot = 0;
    for (unsigned i = 0; i < RSB_SPARE_HUGE; i++) { /* an empty slot, else the oldest */
        if (!pg->spare_huge[i]) {
            slot = i;
            break;
        }
        if (pg->spare_huge[i]->freed_ms < pg->spare_huge[slot]->freed_ms) slot = i;
    }
    rsb_huge *evict = pg->spare_huge[slot];
    if (evict) pg->spare_huge_bytes -= evict->map_size;
    h->kind = RSB_HDR_HUGE_SPARE;
    h->freed_ms = (uint32_t)rsb_os_now_ms();
    pg->spare_huge[slot] = h;
    pg->spare_huge_bytes += h->map_size;
    rsb_pages_arm_purge(pg);
    rsb_pages_maybe_purge(pg);
    /* Never keep more than the byte cap: evict the oldest beyond it. */
    rsb_huge *over = NULL;
    if (pg->spare_huge_bytes > RSB_SPARE_HUGE_MAX_BYTES) {
        unsigned oi = 0;
        for (unsigned i = 0; i < RSB_SPARE_HUGE; i++)
            if (pg->spare_huge[i] && pg->spare_huge[i] != h && (!over || pg->spare_huge[i]->freed_ms < over->freed_ms))
                over = pg->spare_huge[i], oi = i;
        if (over) {
            pg->spare_huge[oi] = NULL;
            pg->spare_huge_bytes -= over->map_size;
        }
    }
    rsb_lock_release(&pg->lock);
    if (over) huge_unmap(pg, over);
    if (evict) huge_unmap(pg, evict);
}

/* The purge hook: unmap spares freed at least the purge delay ago (all if
 * `all`).  Page lock held. */
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
    }
    pg->purges += n;
    return n != 0;
}

void rsb_huge_init(rsb_pages *pg) { pg->expire_huge = expire; }

void *rsb_huge_realloc(rsb_pages *pg, rsb_huge *h, size_t size) {
    size_t off = h->offset, old = h->map_size;
    if (size > (size_t)PTRDIFF_MAX - off - rsb_os_page) return NULL;
    size_t map = rsb_align_up(off + size, rsb_os_page);
    if (map == old) return rsb_huge_block(h);
    if (map < old) {
        rsb_os_unmap((char *)h + map, old - map);
    } else if (!rsb_os_remap_inplace(h, old, map)) {
        if (off == RSB_CHUNK_SIZE) return NULL; /* alignment above a chunk: the caller copies */
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
    if (map > old)
        __atomic_fetch_add(&pg->huge_mapped, map - old, __ATOMIC_RELAXED);
    else
        __atomic_fetch_sub(&pg->huge_mapped, old - map, __ATOMIC_RELAXED);
    return rsb_huge_block(h);
}
