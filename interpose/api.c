/*
 * The interposition layer: the public rsb_* functions and, when compiled
 * with RSB_OVERRIDE (librsbmalloc), the libc names as ELF aliases of them, so
 * an exported malloc costs no extra call.  This layer does argument policy
 * and errno, nothing else; the allocator is in src/.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "init.h"
#include "magazine.h"
#include "options.h"
#include "rsbmalloc.h"
#include "stats.h"

#if RSB_VALGRIND
/* memcheck (-Dvalgrind=true).  The public functions of this file are
 * compiled as static rsb_vg_* functions; the rsb_* names (and so their libc
 * aliases) are the wrappers before the libc names below, which tell memcheck
 * about every block: MALLOCLIKE after an allocation, FREELIKE before a free
 * (so an invalid free is reported before rsbmalloc aborts on it).  The
 * allocator's own accesses to free blocks (free-list links, the double-free
 * marker) run with memcheck's error reporting off for the calling thread.
 * Under valgrind a thread's magazine stays off (its exit destructor would
 * walk free blocks outside any wrapper) and realloc always moves, as
 * valgrind's own realloc does, so a stale pointer to the old block is
 * caught.  Without valgrind every client request is a few instructions. */
#include <valgrind/memcheck.h>
#define rsb_malloc rsb_vg_malloc
#define rsb_free rsb_vg_free
#define rsb_calloc rsb_vg_calloc
#define rsb_realloc rsb_vg_realloc
#define rsb_posix_memalign rsb_vg_posix_memalign
#define rsb_aligned_alloc rsb_vg_aligned_alloc
#define rsb_memalign rsb_vg_memalign
#define rsb_valloc rsb_vg_valloc
#define rsb_pvalloc rsb_vg_pvalloc
#define rsb_malloc_trim rsb_vg_malloc_trim
#define rsb_stats rsb_vg_stats
#define rsb_stats_print rsb_vg_stats_print
#define rsb_malloc_usable_size rsb_vg_malloc_usable_size
static void *rsb_malloc(size_t size);
static void rsb_free(void *p);
static void *rsb_calloc(size_t n, size_t size);
static void *rsb_realloc(void *p, size_t size);
static int rsb_posix_memalign(void **out, size_t alignment, size_t size);
static void *rsb_aligned_alloc(size_t alignment, size_t size);
static void *rsb_memalign(size_t alignment, size_t size);
static void *rsb_valloc(size_t size);
static void *rsb_pvalloc(size_t size);
static int rsb_malloc_trim(size_t pad);
static void rsb_stats(rsb_stats_t *out);
static void rsb_stats_print(int fd);
static size_t rsb_malloc_usable_size(const void *p);
#endif

static inline void *nomem(void) {
    errno = ENOMEM;
    return NULL;
}

static inline void junk_new(void *p, size_t size) {
    if (unlikely(rsb_opt.junk) && p) memset(p, RSB_JUNK_ALLOC, size);
}

/* Everything but the fast path: initialisation, empty magazines, big
 * sizes, junk filling. */
static RSB_NOINLINE void *malloc_generic(size_t size) {
    rsb_arena *a = rsb_arena_get();
    void *p;
    if (size <= RSB_SMALL_MAX && likely(!rsb_opt.junk)) {
        unsigned cls = rsb_size_class(size);
        rsb_mag *m = rsb_mag_on;
        if (!m)
            p = rsb_mag_start(a, cls);
        else if (!(p = rsb_mag_pop(a, m, cls)))
            p = rsb_mag_refill(a, m, cls);
    } else
        p = rsb_core_malloc(a, size);
    if (unlikely(!p)) return nomem();
    junk_new(p, size);
    return p;
}

/* A checked block that does not go on this thread's magazine: another
 * cache's block (batched in the outbox), or the magazine is off (m NULL: not
 * set up, thread exiting, junk filling).  rsb_free_begin has written the
 * double-free marker: junk filling keeps it. */
static RSB_NOINLINE void free_not_mine(rsb_arena *a, rsb_mag *m, rsb_span *s, void **b) {
    if (m) {
        rsb_outbox_put(a, m, s->owner, b);
        return;
    }
    if (unlikely(rsb_opt.junk)) {
        void *mark = b[1];
        memset(b, RSB_JUNK_FREE, s->u.s.block);
        b[1] = mark;
    }
    rsb_free_to_cache(a, rsb_cache_of_thread(a), s, b);
}

/* The hot paths (budget: no lock, no atomic, no loop): malloc pops from the
 * thread's magazine; free checks the pointer and pushes it on the magazine
 * when the thread's cache owns the slab.  Everything else is out of line. */
RSB_API void *rsb_malloc(size_t size) {
    rsb_mag *m = rsb_mag_on;
    if (likely(size <= RSB_CLASS_LUT_MAX && m != NULL)) {
        void *p = rsb_mag_pop(&rsb_global, m, rsb_class_lut[(size + 15) >> 4]);
        if (likely(p != NULL)) return p;
    }
    return malloc_generic(size);
}

RSB_API void rsb_free(void *p) {
    rsb_arena *a = &rsb_global;
    rsb_span *s = rsb_free_begin(a, p); /* checks p; NULL: slow path done */
    if (unlikely(s == NULL)) return;
    rsb_mag *m = rsb_mag_on;
    if (unlikely(m == NULL || s->owner + 1u != m->cache1)) {
        free_not_mine(a, m, s, (void **)p);
        return;
    }
    unsigned cls = s->cls;
    rsb_mag_link_set(a, (void **)p, m->head[cls]);
    m->head[cls] = p;
    if (unlikely(--m->room[cls] < 0)) rsb_mag_flush(a, m, cls);
}

RSB_API void *rsb_calloc(size_t n, size_t size) {
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total))) return nomem();
    rsb_mag *m = rsb_mag_on;
    if (likely(total <= RSB_CLASS_LUT_MAX)) {
        void *p = m ? rsb_mag_pop(&rsb_global, m, rsb_class_lut[(total + 15) >> 4]) : NULL;
        if (!p) p = malloc_generic(total);
        if (likely(p != NULL)) memset(p, 0, total);
        return p;
    }
    void *p = rsb_core_calloc(rsb_arena_get(), total);
    return likely(p != NULL) ? p : nomem();
}

RSB_API void *rsb_realloc(void *p, size_t size) {
    if (!p) return rsb_malloc(size);
    if (size == 0) { /* glibc semantics: free and return NULL */
        rsb_free(p);
        return NULL;
    }
    void *q = rsb_core_realloc(rsb_arena_get(), p, size);
    return likely(q != NULL) ? q : nomem();
}

static void *aligned(size_t align, size_t size) {
    void *p = rsb_core_memalign(rsb_arena_get(), align, size);
    if (unlikely(!p)) return nomem();
    junk_new(p, size);
    return p;
}

RSB_API int rsb_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!rsb_is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    int saved = errno;
    void *p = aligned(alignment, size);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

RSB_API void *rsb_aligned_alloc(size_t alignment, size_t size) {
    if (!rsb_is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

RSB_API void *rsb_memalign(size_t alignment, size_t size) {
    /* glibc: a non-power-of-two alignment is rounded up. */
    if (alignment > (SIZE_MAX >> 1) + 1) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(rsb_next_pow2(alignment), size);
}

RSB_API void *rsb_valloc(size_t size) {
    rsb_arena_get();
    return aligned(rsb_os_page, size);
}

RSB_API void *rsb_pvalloc(size_t size) {
    rsb_arena_get();
    size_t page = rsb_os_page;
    if (size > SIZE_MAX - page) return nomem();
    size = size ? rsb_align_up(size, page) : page;
    return aligned(page, size);
}

RSB_API size_t rsb_malloc_usable_size(const void *p) {
    if (!p) return 0;
    return rsb_core_usable_size(rsb_arena_get(), p);
}

RSB_API int rsb_malloc_trim(size_t pad) {
    (void)pad;
    rsb_arena *a = rsb_arena_get();
    rsb_mag_drain(a, rsb_mag_on, false);
    return rsb_core_trim(a) ? 1 : 0;
}

/* The caller's magazine goes back first, so its own frees show; blocks in
 * other threads' magazines still count as in use. */
RSB_API void rsb_stats(rsb_stats_t *out) {
    rsb_arena *a = rsb_arena_get();
    rsb_mag_drain(a, rsb_mag_on, false);
    rsb_stats_collect(a, out, NULL);
}

RSB_API void rsb_stats_print(int fd) {
    rsb_arena *a = rsb_arena_get();
    rsb_mag_drain(a, rsb_mag_on, false);
    rsb_stats_report(a, fd);
}

#if RSB_VALGRIND
#undef rsb_malloc
#undef rsb_free
#undef rsb_calloc
#undef rsb_realloc
#undef rsb_posix_memalign
#undef rsb_aligned_alloc
#undef rsb_memalign
#undef rsb_valloc
#undef rsb_pvalloc
#undef rsb_malloc_trim
#undef rsb_stats
#undef rsb_stats_print
#undef rsb_malloc_usable_size

/* Entering the allocator: magazines off under valgrind, errors off. */
RSB_INLINE void vg_enter(void) {
    if (RUNNING_ON_VALGRIND && rsb_mag_state == RSB_MAG_NEW) rsb_mag_state = RSB_MAG_DEAD;
    VALGRIND_DISABLE_ERROR_REPORTING;
}
#define vg_leave() VALGRIND_ENABLE_ERROR_REPORTING

/* A new block of `size` bytes at p.  The slack up to the usable size and
 * the chunk's metadata page (its span descriptors point at blocks: they
 * would make leaked blocks look reachable) become inaccessible to the
 * program; the allocator reads them with errors off. */
RSB_INLINE void *vg_block(void *p, size_t size, int zeroed) {
    if (!p) return p;
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
    if (RUNNING_ON_VALGRIND) {
        VALGRIND_DISABLE_ERROR_REPORTING;
        size_t usable = rsb_malloc_usable_size(p);
        if (usable > size) VALGRIND_MAKE_MEM_NOACCESS((char *)p + size, usable - size);
        rsb_chunk *c = (rsb_chunk *)rsb_header_of(&rsb_global, p);
        if (c && c->kind == RSB_CHUNK_PAGES_KIND) VALGRIND_MAKE_MEM_NOACCESS(c, RSB_PAGE_SIZE);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    return p;
}

RSB_API void *rsb_malloc(size_t size) {
    vg_enter();
    void *p = rsb_vg_malloc(size);
    vg_leave();
    return vg_block(p, size, 0);
}

/* Quarantine: under valgrind a freed block is given back to the allocator
 * only after VG_QUARANTINE later frees or VG_QUARANTINE_BYTES of later
 * freed memory, as valgrind's own allocator delays reuse (--freelist-vol):
 * a use after free of a block not yet reused is reported, and memcheck's
 * "block was freed at" names the right free. */
#define VG_QUARANTINE 4096
#define VG_QUARANTINE_BYTES ((size_t)64 << 20)
static struct {
    rsb_lock lock;
    unsigned head, count;
    size_t bytes;
    void *p[VG_QUARANTINE];
    size_t size[VG_QUARANTINE];
} vg_q;

RSB_API void rsb_free(void *p) {
    if (!p) return;
    VALGRIND_FREELIKE_BLOCK(p, 0);
    vg_enter();
    if (RUNNING_ON_VALGRIND) {
        void *out[8];
        unsigned nout = 0;
        size_t size = rsb_malloc_usable_size(p);
        rsb_lock_acquire(&vg_q.lock);
        while (vg_q.count && nout < 8 &&
               (vg_q.count == VG_QUARANTINE || vg_q.bytes + size > VG_QUARANTINE_BYTES)) {
            unsigned oldest = (vg_q.head + VG_QUARANTINE - vg_q.count) % VG_QUARANTINE;
            out[nout++] = vg_q.p[oldest];
            vg_q.bytes -= vg_q.size[oldest];
            vg_q.count--;
        }
        if (vg_q.count < VG_QUARANTINE) {
            vg_q.p[vg_q.head] = p;
            vg_q.size[vg_q.head] = size;
            vg_q.head = (vg_q.head + 1) % VG_QUARANTINE;
            vg_q.count++;
            vg_q.bytes += size;
            p = NULL;
        }
        rsb_lock_release(&vg_q.lock);
        for (unsigned i = 0; i < nout; i++) rsb_vg_free(out[i]);
    }
    if (p) rsb_vg_free(p);
    vg_leave();
}

RSB_API void *rsb_calloc(size_t n, size_t size) {
    vg_enter();
    void *p = rsb_vg_calloc(n, size);
    vg_leave();
    return vg_block(p, n * size, 1);
}

RSB_API void *rsb_realloc(void *p, size_t size) {
    if (!RUNNING_ON_VALGRIND) return rsb_vg_realloc(p, size);
    if (!p) return rsb_malloc(size);
    if (size == 0) {
        rsb_free(p);
        return NULL;
    }
    size_t old = rsb_malloc_usable_size(p); /* aborts on a foreign pointer */
    void *q = rsb_malloc(size);
    if (!q) return NULL; /* errno is ENOMEM, p intact */
    VALGRIND_DISABLE_ERROR_REPORTING; /* the slack past p's requested size */
    memcpy(q, p, old < size ? old : size);
    VALGRIND_ENABLE_ERROR_REPORTING;
    rsb_free(p);
    return q;
}

RSB_API int rsb_posix_memalign(void **out, size_t alignment, size_t size) {
    vg_enter();
    int e = rsb_vg_posix_memalign(out, alignment, size);
    vg_leave();
    if (e == 0) vg_block(*out, size, 0);
    return e;
}

RSB_API void *rsb_aligned_alloc(size_t alignment, size_t size) {
    vg_enter();
    void *p = rsb_vg_aligned_alloc(alignment, size);
    vg_leave();
    return vg_block(p, size, 0);
}

RSB_API void *rsb_memalign(size_t alignment, size_t size) {
    vg_enter();
    void *p = rsb_vg_memalign(alignment, size);
    vg_leave();
    return vg_block(p, size, 0);
}

RSB_API void *rsb_valloc(size_t size) {
    vg_enter();
    void *p = rsb_vg_valloc(size);
    vg_leave();
    return vg_block(p, size, 0);
}

RSB_API void *rsb_pvalloc(size_t size) {
    vg_enter();
    void *p = rsb_vg_pvalloc(size);
    vg_leave();
    return vg_block(p, p ? (size ? rsb_align_up(size, rsb_os_page) : rsb_os_page) : 0, 0);
}

RSB_API size_t rsb_malloc_usable_size(const void *p) {
    VALGRIND_DISABLE_ERROR_REPORTING; /* reads the chunk's metadata */
    size_t n = rsb_vg_malloc_usable_size(p);
    VALGRIND_ENABLE_ERROR_REPORTING;
    return n;
}

RSB_API int rsb_malloc_trim(size_t pad) {
    vg_enter();
    int r = rsb_vg_malloc_trim(pad);
    vg_leave();
    return r;
}

RSB_API void rsb_stats(rsb_stats_t *out) {
    vg_enter();
    rsb_vg_stats(out);
    vg_leave();
}

RSB_API void rsb_stats_print(int fd) {
    vg_enter();
    rsb_vg_stats_print(fd);
    vg_leave();
}
#endif

/* Built on the public realloc and free (valgrind-wrapped in that build). */
RSB_API void *rsb_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total))) return nomem();
    return rsb_realloc(p, total);
}

RSB_API void rsb_free_sized(void *p, size_t size) {
    (void)size;
    rsb_free(p);
}

RSB_API void rsb_free_aligned_sized(void *p, size_t alignment, size_t size) {
    (void)alignment;
    (void)size;
    rsb_free(p);
}

#if RSB_OVERRIDE
/* ---- libc names ----------------------------------------------------------- */
#define ALIAS(target) __attribute__((alias(#target), visibility("default"), used))
#define MALLOC_ALIAS(target) __attribute__((malloc, alias(#target), visibility("default"), used))

void *malloc(size_t) ALIAS(rsb_malloc);
void free(void *) ALIAS(rsb_free);
void *calloc(size_t, size_t) ALIAS(rsb_calloc);
void *realloc(void *, size_t) ALIAS(rsb_realloc);
void *reallocarray(void *, size_t, size_t) ALIAS(rsb_reallocarray);
int posix_memalign(void **, size_t, size_t) ALIAS(rsb_posix_memalign);
void *aligned_alloc(size_t, size_t) ALIAS(rsb_aligned_alloc);
void *memalign(size_t, size_t) ALIAS(rsb_memalign);
void *valloc(size_t) ALIAS(rsb_valloc);
void *pvalloc(size_t) ALIAS(rsb_pvalloc);
void cfree(void *) ALIAS(rsb_free);
size_t malloc_usable_size(void *) ALIAS(rsb_malloc_usable_size);
void free_sized(void *, size_t) ALIAS(rsb_free_sized);
void free_aligned_sized(void *, size_t, size_t) ALIAS(rsb_free_aligned_sized);
int malloc_trim(size_t) ALIAS(rsb_malloc_trim);

/* glibc-internal names: glibc routes some of its own allocations through
 * these, and a static link must not pull in libc's malloc.o. */
void *__libc_malloc(size_t) MALLOC_ALIAS(rsb_malloc);
void *__libc_calloc(size_t, size_t) MALLOC_ALIAS(rsb_calloc);
void *__libc_realloc(void *, size_t) ALIAS(rsb_realloc);
void __libc_free(void *) ALIAS(rsb_free);
void *__libc_memalign(size_t, size_t) MALLOC_ALIAS(rsb_memalign);
void *__libc_valloc(size_t) MALLOC_ALIAS(rsb_valloc);
void *__libc_pvalloc(size_t) MALLOC_ALIAS(rsb_pvalloc);
int __posix_memalign(void **, size_t, size_t) ALIAS(rsb_posix_memalign);

#define EXPORT __attribute__((visibility("default")))

EXPORT struct mallinfo2 mallinfo2(void) {
    rsb_stats_t st;
    rsb_stats(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    /* As glibc: blocks with their own mapping are hblks/hblkhd, not part
     * of uordblks. */
    size_t huge = rsb_huge_in_use(&rsb_global);
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
