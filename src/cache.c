/*
 * Shared caches: the slow paths of allocation and free, remote frees, batch
 * moves for thread caches, trim and the checks.  See cache.h for the
 * invariants and the lock rules; the hot paths are inline there.
 */
#include "cache.h"

static void scrub_tick(rsb_allocator *a, rsb_cache *c, rsb_span **release);

void rsb_caches_init(rsb_allocator *a, rsb_cache *caches, uint32_t n) {
    RSB_ASSERT(rsb_is_pow2(n) && n <= RSB_MAX_CACHES);
    for (uint32_t i = 0; i < n; i++) {
        caches[i].index = i;
        for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) caches[i].bins[k].cur = &rsb_empty_span;
    }
    a->caches = caches;
    a->ncaches = n;
}

/* --- bin lists --------------------------------------------------------------- */

static void partial_push(rsb_bin *bin, rsb_span *s) { rsb_span_list_push(&bin->partial, s); }
static void partial_remove(rsb_bin *bin, rsb_span *s) { rsb_span_list_remove(&bin->partial, s); }

/* The cursor leaves the bin (it is full, or it goes back to the pages). */
static void cur_leave(rsb_bin *bin) {
    if (bin->cur != &rsb_empty_span) bin->cur->flags &= (uint8_t)~RSB_SF_IN_BIN;
}

/* Slab n (off the lists, IN_BIN set) becomes the cursor; the old cursor
 * goes to the partial list if it still has something, else leaves. */
static void cur_replace(rsb_bin *bin, rsb_span *n) {
    rsb_span *old = bin->cur;
    if (old != &rsb_empty_span && !rsb_slab_exhausted(old))
        rsb_span_list_push(&bin->partial, old);
    else
        cur_leave(bin);
    bin->cur = n;
}

/* A slab just got a block back (pushed, used decremented).  Owner lock held.
 * A full slab returns to its bin; a slab other than the bin's cursor that
 * became empty leaves the bin, and true is returned: the caller gives it to
 * the page allocator after dropping the lock. */
static bool slab_settle(rsb_cache *c, rsb_span *s) {
    rsb_bin *bin = &c->bins[s->cls];
    if (!(s->flags & RSB_SF_IN_BIN)) { /* was full: make it available again */
        s->flags |= RSB_SF_IN_BIN;
        partial_push(bin, s);
    }
    if (s->u.s.used == 0 && bin->cur != s) {
        partial_remove(bin, s);
        s->flags &= (uint8_t)~RSB_SF_IN_BIN;
        return true;
    }
    return false;
}

/* Put block b back on slab s.  Owner lock held.  True: see slab_settle. */
static bool slab_put(rsb_allocator *a, rsb_cache *c, rsb_span *s, void **b) {
    rsb_slab_push(a->link_key, s, b);
    RSB_ASSERT(s->u.s.used > 0);
    s->u.s.used--;
    s->flags |= RSB_SF_RETURNED;
    if (likely((s->flags & RSB_SF_IN_BIN) && s->u.s.used != 0)) return false;
    return slab_settle(c, s);
}

/* Give a list of emptied slabs (linked by next) to the page allocator.  No
 * cache lock held. */
static void release_slabs(rsb_allocator *a, rsb_span *list) {
    if (!list) return;
    rsb_lock_acquire(&a->pages.lock);
    while (list) {
        rsb_span *next = rsb_span_next(list);
        RSB_ASSERT(list->kind == RSB_SPAN_SLAB && list->u.s.used == 0 && !(list->flags & RSB_SF_IN_BIN));
        rsb_pages_free(&a->pages, list);
        list = next;
    }
    rsb_lock_release(&a->pages.lock);
}

/* Move every block other threads freed to this cache back to its slab.
 * Owner lock held.  Slabs that became empty (other than cursors) are
 * returned, out of their bins, linked by next. */
static rsb_span *drain_remote(rsb_allocator *a, rsb_cache *c) {
    void **b = __atomic_exchange_n((void ***)&c->remote, NULL, __ATOMIC_ACQUIRE);
    rsb_span *empty = NULL;
    while (b) {
        void **next = (void **)b[0];
        rsb_span *s = rsb_span_of(rsb_pages_chunk_of(&a->pages, b), b);
        RSB_ASSERT(s && s->kind == RSB_SPAN_SLAB && rsb_span_owner(s) == c->index);
        if (slab_put(a, c, s, b)) {
            rsb_span_set_next(s, empty);
            empty = s;
        }
        b = next;
    }
    return empty;
}

void rsb_remote_free_chain(rsb_allocator *a, uint32_t owner, void *head, void *tail) {
    rsb_cache *o = &a->caches[owner];
    void *top = __atomic_load_n(&o->remote, __ATOMIC_RELAXED);
    do {
        ((void **)tail)[0] = top;
    } while (!__atomic_compare_exchange_n(&o->remote, &top, head, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

void rsb_remote_free(rsb_allocator *a, rsb_span *s, void **b) { rsb_remote_free_chain(a, rsb_span_owner(s), b, b); }

void rsb_cache_free_locked(rsb_allocator *a, rsb_cache *c, rsb_span *s, void **b) {
    rsb_lock_acquire(&c->lock);
    rsb_span *release = NULL;
    if (slab_put(a, c, s, b)) {
        rsb_span_set_next(s, NULL);
        release = s;
    }
    scrub_tick(a, c, &release);
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    rsb_lock_release(&c->lock);
    release_slabs(a, release);
}

void rsb_cache_free_settle(rsb_allocator *a, rsb_cache *c, rsb_span *s) {
    rsb_span *release = NULL;
    if (slab_settle(c, s)) { /* the fast path pushed and counted */
        rsb_span_set_next(s, NULL);
        release = s;
    }
    scrub_tick(a, c, &release);
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    rsb_lock_release(&c->lock);
    release_slabs(a, release);
}

/* --- allocation slow path ------------------------------------------------------ */

static rsb_span *slab_new(rsb_allocator *a, rsb_cache *c, unsigned cls) {
    bool zero;
    rsb_lock_acquire(&a->pages.lock);
    rsb_span *s = rsb_pages_alloc(&a->pages, rsb_class_pages[cls], RSB_SPAN_SLAB, &zero);
    rsb_lock_release(&a->pages.lock);
    if (!s) return NULL;
    rsb_slab_init(s, cls, c->index);
    s->flags = RSB_SF_IN_BIN;
    return s;
}

/* Remote frees came home: of the slabs they emptied, one of class cls may
 * become the cursor if the cursor has nothing left; the rest go back. */
static rsb_span *adopt_emptied(rsb_bin *bin, unsigned cls, rsb_span *e) {
    rsb_span *release = NULL;
    while (e) {
        rsb_span *next = rsb_span_next(e);
        if (e->cls == cls && rsb_slab_exhausted(bin->cur)) {
            cur_leave(bin);
            e->flags |= RSB_SF_IN_BIN;
            bin->cur = e;
        } else {
            rsb_span_set_next(e, release);
            release = e;
        }
        e = next;
    }
    return release;
}

void *rsb_cache_alloc_slow(rsb_allocator *a, rsb_cache *c, unsigned cls) {
    rsb_bin *bin = &c->bins[cls];
    rsb_span *release = NULL;
    bool drained = false;
    rsb_span *s;
    for (;;) {
        s = bin->cur;
        if (rsb_slab_has_free(s)) break;
        if (rsb_slab_parked(s)) { /* blocks on pages given back come first */
            rsb_slab_unpark(a->link_key, s);
            continue;
        }
        if (s->u.s.bump < rsb_slab_capacity(s)) {
            rsb_slab_carve(a->link_key, s);
            break;
        }
        if (!drained && __atomic_load_n(&c->remote, __ATOMIC_RELAXED)) {
            drained = true;
            rsb_span *more = adopt_emptied(bin, cls, drain_remote(a, c));
            while (more) { /* join the list released below */
                rsb_span *next = rsb_span_next(more);
                rsb_span_set_next(more, release);
                release = more;
                more = next;
            }
            continue;
        }
        if (bin->partial) { /* cur is full: it leaves the bin */
            rsb_span *n = bin->partial;
            partial_remove(bin, n);
            cur_leave(bin);
            bin->cur = n;
            continue;
        }
        /* A new slab, taken without holding the cache lock. */
        rsb_lock_release(&c->lock);
        release_slabs(a, release);
        release = NULL;
        rsb_span *n = slab_new(a, c, cls);
        rsb_lock_acquire(&c->lock);
        if (!n) {
            rsb_lock_release(&c->lock);
            return NULL;
        }
        if (rsb_slab_exhausted(bin->cur)) {
            cur_leave(bin);
            bin->cur = n;
        } else { /* another thread refilled the bin meanwhile: n goes back */
            n->flags = 0;
            rsb_span_set_next(n, release);
            release = n;
        }
    }
    void **b = rsb_slab_pop(a->link_key, s);
    s->u.s.used++;
    c->nmalloc++;
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    rsb_lock_release(&c->lock);
    release_slabs(a, release);
    b[1] = NULL;
    return b;
}

/* --- batches for thread caches ----------------------------------------------------- */

void *rsb_cache_take_batch(rsb_allocator *a, rsb_cache *c, unsigned cls, unsigned n, unsigned *got) {
    rsb_lock_acquire(&c->lock);
    rsb_bin *bin = &c->bins[cls];
    if (bin->nxfer) { /* a whole batch a thread cache gave back */
        bin->xfer_idle = 0;
        unsigned i = --bin->nxfer;
        *got = bin->xn[i];
        void *list = bin->xfer[i];
        rsb_lock_release(&c->lock);
        return list;
    }
    rsb_span *s = bin->cur;
    void *list = NULL;
    unsigned k = 0;
    rsb_span *release = NULL;
    if (!rsb_slab_has_free(s) && __atomic_load_n(&c->remote, __ATOMIC_RELAXED)) {
        /* Blocks freed elsewhere come home before fresh memory is touched. */
        release = adopt_emptied(bin, cls, drain_remote(a, c));
        s = bin->cur;
        if (!rsb_slab_has_free(s) && bin->partial && rsb_slab_has_free(bin->partial)) {
            rsb_span *p = bin->partial;
            partial_remove(bin, p);
            cur_replace(bin, p);
            s = p;
        }
    }
    /* The cursor's whole free list, if it is no longer than the batch: its
     * links are batch links already, so it moves in O(1) (its length is
     * what the slab invariant leaves: carved minus used). */
    if (!rsb_slab_has_free(s) && rsb_slab_parked(s)) rsb_slab_unpark(a->link_key, s);
    uint32_t listed = (uint32_t)s->u.s.bump - s->u.s.used - rsb_slab_parked(s);
    if (rsb_slab_has_free(s) && listed <= n) {
        char *start = rsb_span_start(s);
        list = rsb_slab_head_in(s, start);
        rsb_slab_set_head_in(s, start, NULL);
        s->u.s.used = (rsb_nblk)(s->u.s.used + listed);
        k = listed;
    }
    while (k < n) {
        void **b = rsb_slab_pop(a->link_key, s);
        if (!b && rsb_slab_parked(s)) { /* parked blocks before never-used ones */
            rsb_slab_unpark(a->link_key, s);
            continue;
        }
        if (!b) { /* uncarved space: link the blocks straight into the batch */
            k += rsb_slab_carve_list(a->link_key, s, n - k, &list);
            break; /* the free list is empty and n is reached or the slab full */
        }
        s->u.s.used++;
        rsb_link_set(a->link_key, b, list);
        list = b;
        k++;
    }
    if (k == 0) { /* the bin needs its slow path: let it find one block */
        void **b = (void **)rsb_cache_alloc_slow(a, c, cls);
        release_slabs(a, release);
        if (!b) return NULL;
        rsb_link_set(a->link_key, b, NULL);
        *got = 1;
        return b;
    }
    c->nmalloc += k;
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    rsb_lock_release(&c->lock);
    release_slabs(a, release);
    *got = k;
    return list;
}

/* Blocks on their way to other caches' remote stacks, chained by owner:
 * direct-mapped slots, a collision sends the occupant (one CAS a chain). */
#define RSB_SORT_SLOTS 8
typedef struct rsb_chain {
    void *head, *tail;
    uint32_t owner1; /* 1 + owner index, 0 when empty */
} rsb_chain;

static void chain_send(rsb_allocator *a, rsb_chain *ch) {
    if (!ch->owner1) return;
    rsb_remote_free_chain(a, ch->owner1 - 1, ch->head, ch->tail);
    ch->owner1 = 0;
}

static void chain_add(rsb_allocator *a, rsb_chain *slots, uint32_t owner, void **b) {
    rsb_chain *ch = &slots[owner & (RSB_SORT_SLOTS - 1)];
    if (ch->owner1 != owner + 1) {
        chain_send(a, ch);
        ch->owner1 = owner + 1;
        ch->tail = b;
        ch->head = NULL;
    }
    b[0] = ch->head; /* remote stacks use plain links */
    ch->head = b;
}

/* Sort a list of blocks home (cache lock held): c's onto their slabs,
 * others into per-owner chains sent after the lock.  Emptied slabs are
 * added to *release. */
static void sort_home(rsb_allocator *a, rsb_cache *c, void *list, unsigned cls, rsb_chain *slots,
                      rsb_span **release) {
    for (void **b = (void **)list; b;) {
        void **next = (void **)rsb_batch_link_get(a, b, cls);
        rsb_span *s = rsb_span_guess(rsb_pages_chunk_of(&a->pages, b), b);
        RSB_ASSERT(s->kind == RSB_SPAN_SLAB && s->cls == cls);
        uint32_t owner = rsb_span_owner(s);
        if (owner != c->index) {
            chain_add(a, slots, owner, b);
        } else if (slab_put(a, c, s, b)) {
            rsb_span_set_next(s, *release);
            *release = s;
        }
        b = next;
    }
}

void rsb_cache_put_batch(rsb_allocator *a, rsb_cache *c, void *list, unsigned cls, unsigned n) {
    rsb_bin *bin = &c->bins[cls];
    rsb_lock_acquire(&c->lock);
    if (bin->nxfer < RSB_XFER && n > 0 && n <= 255) { /* kept whole for the next refill */
        bin->xfer[bin->nxfer] = list;
        bin->xn[bin->nxfer++] = (uint8_t)n;
        bin->xfer_idle = 0;
        RSB_EXPENSIVE(rsb_cache_check(a, c));
        rsb_lock_release(&c->lock);
        return;
    }
    rsb_span *release = NULL;
    rsb_chain slots[RSB_SORT_SLOTS];
    for (unsigned i = 0; i < RSB_SORT_SLOTS; i++) slots[i].owner1 = 0;
    sort_home(a, c, list, cls, slots, &release);
    scrub_tick(a, c, &release);
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    rsb_lock_release(&c->lock);
    for (unsigned i = 0; i < RSB_SORT_SLOTS; i++) chain_send(a, &slots[i]);
    release_slabs(a, release);
}

/* Every transfer slot of c sorted home (trim, stats): cache lock held. */
static void xfer_empty(rsb_allocator *a, rsb_cache *c, rsb_chain *slots, rsb_span **release) {
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        rsb_bin *bin = &c->bins[k];
        while (bin->nxfer) {
            bin->nxfer--;
            sort_home(a, c, bin->xfer[bin->nxfer], k, slots, release);
        }
    }
}

/* --- giving back the free pages inside slabs ------------------------------------------- */

/* One pass over c's slabs (lock held).  With `all` every slab is scrubbed;
 * otherwise only slabs that got blocks back two passes ago and none since
 * (RETURNED, then AGING): a slab still in use by a burst of frees and
 * allocations is left alone, as free spans wait for the purge delay.  The
 * cursors are left alone too unless `all`. */
static size_t scrub_pass(rsb_allocator *a, rsb_cache *c, bool all, rsb_span **release) {
    size_t given = 0;
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        rsb_bin *bin = &c->bins[k];
        rsb_span *cur = bin->cur;
        if (cur != &rsb_empty_span) {
            uint8_t f = cur->flags;
            if (all) {
                given += rsb_slab_scrub(a->link_key, cur);
            } else if (f & RSB_SF_RETURNED) {
                cur->flags = (uint8_t)((f & ~RSB_SF_RETURNED) | RSB_SF_AGING);
            } else if (!(f & RSB_SF_AGING)) {
                cur->flags = (uint8_t)(f | RSB_SF_AGING);
            } else if (cur->u.s.used == 0 && release) { /* empty and idle for a pass: back to the pages */
                cur_leave(bin);
                cur->flags &= (uint8_t)~RSB_SF_AGING;
                rsb_span_set_next(cur, *release);
                *release = cur;
                if (bin->partial) {
                    bin->cur = bin->partial;
                    partial_remove(bin, bin->cur);
                } else {
                    bin->cur = &rsb_empty_span;
                }
            } else { /* idle for a pass: its free OS pages go */
                cur->flags = (uint8_t)(f & ~RSB_SF_AGING);
                given += rsb_slab_scrub(a->link_key, cur);
            }
        }
        for (rsb_span *s = bin->partial; s; s = rsb_span_next(s)) {
            uint8_t f = s->flags;
            if (all) {
                s->flags = (uint8_t)(f & ~(RSB_SF_RETURNED | RSB_SF_AGING));
                given += rsb_slab_scrub(a->link_key, s);
            } else if (f & RSB_SF_RETURNED) {
                s->flags = (uint8_t)((f & ~RSB_SF_RETURNED) | RSB_SF_AGING);
            } else if (f & RSB_SF_AGING) {
                s->flags = (uint8_t)(f & ~RSB_SF_AGING);
                given += rsb_slab_scrub(a->link_key, s);
            }
        }
    }
    RSB_EXPENSIVE(rsb_cache_check(a, c));
    return given;
}

/* Transfer slots that nobody took or filled since the last tick are sorted
 * home (lock held; slabs that empty are added to *release).  Without this a
 * batch parked in a slot waits for a refill that, once a program shrinks,
 * never comes, and every block in it keeps its slab: the soak's 64-thread
 * server ended its shrink at 336 MiB RSS with slots that never aged, 225
 * before slots existed. */
static void xfer_age(rsb_allocator *a, rsb_cache *c, rsb_span **release) {
    rsb_chain slots[RSB_SORT_SLOTS];
    for (unsigned i = 0; i < RSB_SORT_SLOTS; i++) slots[i].owner1 = 0;
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        rsb_bin *bin = &c->bins[k];
        if (!bin->nxfer) continue;
        if (!bin->xfer_idle) { /* used since the last tick: one more interval */
            bin->xfer_idle = 1;
            continue;
        }
        while (bin->nxfer) {
            bin->nxfer--;
            sort_home(a, c, bin->xfer[bin->nxfer], k, slots, release);
        }
    }
    for (unsigned i = 0; i < RSB_SORT_SLOTS; i++) chain_send(a, &slots[i]); /* lock-free pushes */
}

/* Called on the slow paths with c's lock held: once per purge delay (the
 * clock is read once per 64 calls), a scrub pass and the transfer slots'
 * ageing.  Slabs that empty are added to *release, for the caller to give
 * back once it has dropped the lock. */
static void scrub_tick(rsb_allocator *a, rsb_cache *c, rsb_span **release) {
    if ((++c->ticks & 63) != 0) return;
    int32_t delay = a->pages.purge_delay_ms;
    if (delay < 0) return;
    uint32_t now = (uint32_t)rsb_os_now_ms();
    if (now - c->scrub_ms < (uint32_t)delay) return;
    c->scrub_ms = now;
    xfer_age(a, c, release);
    scrub_pass(a, c, false, NULL);
}

size_t rsb_caches_scrub(rsb_allocator *a, bool all) {
    size_t given = 0;
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        rsb_span *release = NULL;
        rsb_lock_acquire(&c->lock);
        given += scrub_pass(a, c, all, &release);
        c->scrub_ms = (uint32_t)rsb_os_now_ms();
        rsb_lock_release(&c->lock);
        release_slabs(a, release);
    }
    return given;
}

/* --- whole-cache operations --------------------------------------------------------- */

void rsb_caches_drain_all(rsb_allocator *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        if (!__atomic_load_n(&c->remote, __ATOMIC_RELAXED)) continue;
        rsb_lock_acquire(&c->lock);
        rsb_span *e = drain_remote(a, c);
        RSB_EXPENSIVE(rsb_cache_check(a, c));
        rsb_lock_release(&c->lock);
        release_slabs(a, e);
    }
}

void rsb_caches_flush_xfer(rsb_allocator *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        rsb_span *release = NULL;
        rsb_chain slots[RSB_SORT_SLOTS];
        for (unsigned j = 0; j < RSB_SORT_SLOTS; j++) slots[j].owner1 = 0;
        rsb_lock_acquire(&c->lock);
        xfer_empty(a, c, slots, &release);
        rsb_lock_release(&c->lock);
        for (unsigned j = 0; j < RSB_SORT_SLOTS; j++) chain_send(a, &slots[j]);
        release_slabs(a, release);
    }
}

void rsb_caches_release_empty(rsb_allocator *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        rsb_span *release = NULL;
        rsb_lock_acquire(&c->lock);
        for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
            rsb_bin *bin = &c->bins[k];
            /* Only a cursor may be empty (the bin invariant); a loop all the
             * same, so that nothing empty is ever left mapped by a trim. */
            while (bin->cur != &rsb_empty_span && bin->cur->u.s.used == 0) {
                rsb_span *s = bin->cur;
                cur_leave(bin);
                rsb_span_set_next(s, release);
                release = s;
                if (bin->partial) {
                    bin->cur = bin->partial;
                    partial_remove(bin, bin->cur);
                } else {
                    bin->cur = &rsb_empty_span;
                }
            }
        }
        RSB_EXPENSIVE(rsb_cache_check(a, c));
        rsb_lock_release(&c->lock);
        release_slabs(a, release);
    }
}

void rsb_lock_all(rsb_allocator *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) rsb_lock_acquire(&a->caches[i].lock);
    rsb_lock_acquire(&a->pages.lock);
}

void rsb_unlock_all(rsb_allocator *a) {
    rsb_lock_release(&a->pages.lock);
    for (uint32_t i = a->ncaches; i-- > 0;) rsb_lock_release(&a->caches[i].lock);
}

void rsb_cache_check(rsb_allocator *a, rsb_cache *c) {
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        rsb_bin *bin = &c->bins[k];
        RSB_CHECK(bin->cur != NULL, "bin cursor is NULL");
        RSB_CHECK(bin->nxfer <= RSB_XFER, "transfer slot count");
        for (uint32_t x = 0; x < bin->nxfer; x++) {
            unsigned n = 0;
            for (void **b = (void **)bin->xfer[x]; b; b = (void **)rsb_batch_link_get(a, b, k)) {
                rsb_span *s = rsb_span_of(rsb_pages_chunk_of(&a->pages, b), b);
                RSB_CHECK(s && s->kind == RSB_SPAN_SLAB && s->cls == k, "a transfer slot holds a foreign block");
                RSB_CHECK(++n <= bin->xn[x], "a transfer chain is longer than its count");
            }
            RSB_CHECK(n == bin->xn[x] && n > 0, "a transfer chain is shorter than its count");
        }
        const rsb_span *prev = NULL;
        for (rsb_span *s = bin->cur == &rsb_empty_span ? bin->partial : bin->cur; s;
             s = s == bin->cur ? bin->partial : rsb_span_next(s)) {
            RSB_CHECK(s->kind == RSB_SPAN_SLAB && s->cls == k && rsb_span_owner(s) == c->index &&
                          (s->flags & RSB_SF_IN_BIN),
                      "slab in the wrong bin");
            rsb_slab_check(a->link_key, s);
            if (s != bin->cur) {
                RSB_CHECK(rsb_span_prev(s) == prev, "partial list back link");
                RSB_CHECK(s->u.s.used != 0, "an empty slab on a partial list");
                RSB_CHECK(!rsb_slab_exhausted(s), "a full slab on a partial list");
                prev = s;
            }
        }
    }
}
