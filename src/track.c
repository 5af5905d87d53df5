/*
 * memcheck support (built only with -Dvalgrind=true): see track.h.
 */
#include "track.h"

#include "init.h"
#include "thread_cache.h"

void rsb_track_enter(void) {
    if (RUNNING_ON_VALGRIND && rsb_tc_state == RSB_TC_NEW) rsb_tc_state = RSB_TC_DEAD;
    VALGRIND_DISABLE_ERROR_REPORTING;
}

/* The slack up to the usable size and the chunk's metadata page (its span
 * descriptors point at blocks: they would make leaked blocks look reachable)
 * become inaccessible to the program; the allocator reads them with errors
 * off. */
void *rsb_track_alloc(void *p, size_t size, int zeroed) {
    if (!p) return p;
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
    if (RUNNING_ON_VALGRIND) {
        VALGRIND_DISABLE_ERROR_REPORTING;
        size_t usable = rsb_core_usable_size(&rsb_global, p);
        if (usable > size) VALGRIND_MAKE_MEM_NOACCESS((char *)p + size, usable - size);
        rsb_chunk *c = rsb_pages_chunk_of(&rsb_global.pages, p);
        if (c) VALGRIND_MAKE_MEM_NOACCESS(c, RSB_PAGE_SIZE);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    return p;
}

/* Quarantine: a freed block is given back to the allocator only after
 * QUARANTINE later frees or QUARANTINE_BYTES of later freed memory, as
 * valgrind's own allocator delays reuse (--freelist-vol): a use after free of
 * a block not yet reused is reported, and memcheck's "block was freed at"
 * names the right free. */
#define QUARANTINE 4096
#define QUARANTINE_BYTES ((size_t)64 << 20)
static struct {
    rsb_lock lock;
    unsigned head, count;
    size_t bytes;
    void *p[QUARANTINE];
    size_t size[QUARANTINE];
} q;

void rsb_track_free(void *p, void (*free_now)(void *)) {
    if (!p) return;
    VALGRIND_FREELIKE_BLOCK(p, 0);
    rsb_track_enter();
    void *out[8];
    unsigned nout = 0;
    size_t size = rsb_core_usable_size(rsb_global_get(), p); /* aborts on a bad pointer */
    rsb_lock_acquire(&q.lock);
    while (q.count && nout < 8 && (q.count == QUARANTINE || q.bytes + size > QUARANTINE_BYTES)) {
        unsigned oldest = (q.head + QUARANTINE - q.count) % QUARANTINE;
        out[nout++] = q.p[oldest];
        q.bytes -= q.size[oldest];
        q.count--;
    }
    if (q.count < QUARANTINE) {
        q.p[q.head] = p;
        q.size[q.head] = size;
        q.head = (q.head + 1) % QUARANTINE;
        q.count++;
        q.bytes += size;
        p = NULL;
    }
    rsb_lock_release(&q.lock);
    for (unsigned i = 0; i < nout; i++) free_now(out[i]);
    if (p) free_now(p);
    rsb_track_leave();
}
