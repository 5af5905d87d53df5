/*
 * A two-level segregated good-fit allocator over one contiguous pool: the
 * freestanding heap's allocator for every block that is not served by a
 * slab (src/heap.h), and the source of the slabs themselves.  The scheme is
 * the one of TLSF (Masmano, Ripoll, Crespo, Real, "TLSF: a new dynamic
 * memory allocator for real-time systems", ECRTS 2004): free blocks sit in
 * lists by size, a list per (first level = power of two, second level = one
 * of 32 equal steps inside it; 16 on 32-bit targets), two bitmaps say which
 * lists are non-empty,
 * and a request finds its list with one clz and a fitting non-empty list
 * with at most two ctz.  Written here from the paper's description; the
 * layout, the header check and the placement choices below are ours.
 *
 * Glossary (docs/design.md uses the same words):
 *   pool       the bytes this allocator manages: [base + 16, base + end + 8)
 *   block      a run of the pool: an 8-byte header, then the payload.  Every
 *              block size is a multiple of 16 and at least 32; payloads are
 *              16-byte aligned (headers sit at 8 mod 16).
 *   offset     a block's address minus base (uint32_t; 0 means "none", the
 *              first block is at 16).  The pool is below 4 GiB.
 *   list       the free blocks of one size range, doubly linked through
 *              their payloads; index = fl * 32 + sl (fit_index).
 *   tagged     a live block that is not a user block: the heap's slabs.
 *
 * Block layout (offsets inside the block):
 *   0  check  key ^ offset ^ word: a header written by this allocator, at
 *             this address, with this word; anything else (user data, a
 *             stale or overwritten header) fails the check.  A header that
 *             stops being one (merged into a neighbour) is turned into a
 *             "dead" header: check ^ RSB_FIT_DEAD.
 *   4  word   size in bytes | RSB_FIT_FREE | RSB_FIT_PREV_FREE | RSB_FIT_TAG
 *   8  next, prev (free blocks only): list links, offsets
 *  16  list (free blocks only): the index of the list the block is on
 *   size - 4  footer (free blocks only): the size, read by the block after
 *             this one when it merges backwards (its PREV_FREE bit is set)
 * The end of the pool holds a sentinel header (offset `end`, size 0, live),
 * so every block has a next header and the last block never merges past it.
 *
 * Invariants between operations (rsb_fit_check verifies every one):
 *   - blocks tile [16, end) exactly; every header's check is valid;
 *   - no two free blocks are adjacent (a free merges with both neighbours);
 *   - PREV_FREE is set in a header iff the block before it is free; the
 *     footer of every free block holds its size;
 *   - a free block is on the list fit_index(size), and only there, and
 *     its list field says which; list i
 *     is non-empty iff bit i % 32 of sl_map[i / 32] is set, and sl_map[fl]
 *     is non-zero iff bit fl of fl_map is set;
 *
 * Placement: a request of s bytes (block size) first looks at the head of
 * the list s itself falls in, and takes it if it is big enough (the lists
 * of sizes below 1 KiB hold one size each, so there it always is);
 * otherwise it takes the head of the first non-empty list above, whose
 * every block fits.  The found block is split at s (its front is handed
 * out); a remainder of 32 bytes or more stays free.  Lists are LIFO.
 *
 * Bounds: no operation loops over blocks or lists.  rsb_fit_alloc: one
 * clz, at most two ctz, one list removal, at most one insertion.
 * rsb_fit_alloc_aligned: the same twice (the second search asks for
 * size + align + 16), plus one insertion for the gap before the block.
 * rsb_fit_free: at most two removals (the neighbours it merges with) and
 * one insertion.  rsb_fit_resize: at most one removal and one insertion
 * (free of the tail, or growth into the next block).
 */
#ifndef RSB_FIT_H
#define RSB_FIT_H

#include "../util.h"

#define RSB_FIT_FREE 1u
#define RSB_FIT_PREV_FREE 2u
#define RSB_FIT_TAG 4u
#define RSB_FIT_FLAGS 15u
#define RSB_FIT_DEAD 0x5eadb10cu /* xor-ed into the check of a header that is no longer one */

#define RSB_FIT_HDR 8u      /* header bytes before each payload */
#define RSB_FIT_MIN 32u     /* smallest block: header, two links, footer */
/* Second-level lists per power of two: 32 (16 on 32-bit targets, whose
 * heaps are small and pay for every list head). */
#ifndef RSB_FIT_SL_LOG2
#define RSB_FIT_SL_LOG2 (UINTPTR_MAX > 0xffffffffu ? 5u : 4u)
#endif
#define RSB_FIT_SL (1u << RSB_FIT_SL_LOG2)
/* Sizes below 2^RSB_FIT_LINEAR: one list per 16 bytes (first level 0). */
#define RSB_FIT_LINEAR (4u + RSB_FIT_SL_LOG2)
/* First levels: 0 for sizes below 512, then one per power of two up to 2^31. */
#define RSB_FIT_FL_MAX (32u - RSB_FIT_LINEAR + 1u)
#define RSB_FIT_MAX_POOL 0xfffff000u

typedef struct rsb_fit_block {
    uint32_t check;
    uint32_t word;
    uint32_t next, prev; /* free blocks only: list links */
    uint32_t list;       /* free blocks only: rsb_fit_index(size), the list it is on */
} rsb_fit_block;

typedef struct rsb_fit {
    char *base;          /* a block at offset o starts at base + o; its payload at base + o + 8 */
    uint32_t key;        /* per pool, mixed into every check */
    uint32_t end;        /* offset of the end sentinel */
    uint32_t fl_map;     /* bit fl: sl_map[fl] != 0 */
    uint32_t nfl;        /* first levels in use: fit_index(largest block) / 32 + 1 */
    uint32_t *sl_map;    /* [nfl + 1]: bit sl of sl_map[fl]: list fl * 32 + sl is non-empty */
    uint32_t *heads;     /* [nfl * 32]: the first block of each list, 0 if empty */
} rsb_fit;

/* Metadata bytes rsb_fit_init needs (sl_map and heads) for a pool of at
 * most pool_bytes; they are placed by the caller at `meta`. */
size_t rsb_fit_meta_size(size_t pool_bytes);
/* Make [first, first + bytes) a pool: one free block of bytes - 8 and the
 * 8-byte end sentinel (first = 8 mod 16, bytes = 8 mod 16, at least 40,
 * below RSB_FIT_MAX_POOL).
 * meta: rsb_fit_meta_size(bytes) bytes, 4-byte aligned.  Returns the usable
 * size of the one free block. */
size_t rsb_fit_init(rsb_fit *f, void *meta, char *first, size_t bytes, uint32_t key);
/* A payload of at least n bytes aligned to align (a power of two > 16).
 * NULL if no free block can hold it. */
void *rsb_fit_alloc_aligned(rsb_fit *f, size_t align, size_t n);
/* As rsb_fit_alloc, but the block is cut from the tail of the free block
 * found.  For the heap's slabs: they gather at the high end of free memory,
 * apart from the good-fit blocks that rsb_fit_alloc cuts from the low end. */
void *rsb_fit_alloc_tail(rsb_fit *f, size_t n);
/* Resize live block p in place to hold n bytes: shrink (the tail becomes
 * free, merged with the next block) or grow into a free next block.  False
 * (nothing changed) if it cannot grow there. */
bool rsb_fit_resize(rsb_fit *f, void *p, size_t n);
/* Usable size of the largest free block (walks the top non-empty list). */
size_t rsb_fit_largest(const rsb_fit *f);
/* Total size of the free blocks, headers included (walks every list). */
size_t rsb_fit_free_bytes(const rsb_fit *f);
/* Walk every block and list and check the invariants above (the panic hook
 * on failure); visit(ctx, payload, word) is called for every live block (if
 * not NULL).  Returns the number of live blocks. */
size_t rsb_fit_check(const rsb_fit *f, void (*visit)(void *ctx, char *payload, uint32_t word), void *ctx);

/* --- bit scans ------------------------------------------------------------- */

/* log2 of a nonzero word (the highest set bit), and the index of its lowest
 * set bit.  One instruction where the target has one; otherwise (rv32imac
 * has no Zbb) a de Bruijn multiply and a 32-byte table, because the
 * compiler's fallback is a libgcc call (__clzsi2) that this library must
 * not need.  Constant time either way. */
#if (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__ARM_FEATURE_CLZ) || \
     defined(__riscv_zbb)) && !defined(RSB_FIT_FORCE_SOFT_BITSCAN)
RSB_INLINE unsigned rsb_fit_log2(uint32_t x) { return 31u - (unsigned)__builtin_clz(x); }
RSB_INLINE unsigned rsb_fit_ctz(uint32_t x) { return (unsigned)__builtin_ctz(x); }
#else
extern const uint8_t rsb_fit_debruijn_log2[32], rsb_fit_debruijn_ctz[32];
RSB_INLINE unsigned rsb_fit_log2(uint32_t x) {
    x |= x >> 1;
    x |= x >> 2;
    x |= x >> 4;
    x |= x >> 8;
    x |= x >> 16;
    return rsb_fit_debruijn_log2[(uint32_t)(x * 0x07c4acddu) >> 27];
}
RSB_INLINE unsigned rsb_fit_ctz(uint32_t x) {
    return rsb_fit_debruijn_ctz[(uint32_t)((x & (0u - x)) * 0x077cb531u) >> 27];
}
#define RSB_FIT_SOFT_BITSCAN 1
#endif

/* --- inline paths --------------------------------------------------------- */

RSB_INLINE rsb_fit_block *rsb_fit_at(const rsb_fit *f, uint32_t o) {
    return (rsb_fit_block *)(void *)(f->base + o);
}
RSB_INLINE uint32_t rsb_fit_off(const rsb_fit *f, const void *p) {
    return (uint32_t)((const char *)p - f->base);
}
RSB_INLINE uint32_t *rsb_fit_footer(const rsb_fit *f, uint32_t end_of_block) {
    return (uint32_t *)(void *)(f->base + end_of_block - 4);
}
RSB_INLINE uint32_t rsb_fit_check_of(const rsb_fit *f, uint32_t o, uint32_t word) { return f->key ^ o ^ word; }
RSB_INLINE void rsb_fit_set(const rsb_fit *f, rsb_fit_block *b, uint32_t o, uint32_t word) {
    b->word = word;
    b->check = rsb_fit_check_of(f, o, word);
}
/* Flip flag bits of a header, keeping its check valid. */
RSB_INLINE void rsb_fit_flip(rsb_fit_block *b, uint32_t bits) {
    b->word ^= bits;
    b->check ^= bits;
}

/* Block size for a payload of n bytes (n <= RSB_FIT_MAX_POOL). */
RSB_INLINE uint32_t rsb_fit_size_for(size_t n) {
    uint32_t s = (uint32_t)((n + RSB_FIT_HDR + 15) & ~(size_t)15);
    return s < RSB_FIT_MIN ? RSB_FIT_MIN : s;
}

/* List of a free block of s bytes: fl * SL + sl.  Sizes below
 * 2^(LINEAR + 1) have a list per 16 bytes (first levels 0 and 1 both step
 * by 16), so with l = log2(max(s, 2^LINEAR)) one formula covers every size:
 * (l - LINEAR) * SL + s / 2^(l - SL_LOG2). */
RSB_INLINE unsigned rsb_fit_index(uint32_t s) {
    if (s < 2u << RSB_FIT_LINEAR) return s >> 4; /* the common sizes: one shift */
    unsigned l = rsb_fit_log2(s | (1u << RSB_FIT_LINEAR));
    return ((l - RSB_FIT_LINEAR) << RSB_FIT_SL_LOG2) + (s >> (l - RSB_FIT_SL_LOG2));
}

/* The first non-empty list at or above i, or -1.  i / 32 <= nfl (sl_map has
 * a zero entry at nfl). */
RSB_INLINE int rsb_fit_find(const rsb_fit *f, unsigned i) {
    unsigned fl = i >> RSB_FIT_SL_LOG2;
    uint32_t m = f->sl_map[fl] & (~0u << (i & (RSB_FIT_SL - 1u)));
    if (!m) {
        uint32_t fm = fl + 1 < 32 ? f->fl_map & (~0u << (fl + 1)) : 0;
        if (!fm) return -1;
        fl = rsb_fit_ctz(fm);
        m = f->sl_map[fl];
    }
    return (int)((fl << RSB_FIT_SL_LOG2) | rsb_fit_ctz(m));
}

RSB_INLINE void rsb_fit_set_bit(rsb_fit *f, unsigned i) {
    f->sl_map[i >> RSB_FIT_SL_LOG2] |= 1u << (i & (RSB_FIT_SL - 1u));
    f->fl_map |= 1u << (i >> RSB_FIT_SL_LOG2);
}

RSB_INLINE void rsb_fit_clear_bit(rsb_fit *f, unsigned i) {
    unsigned fl = i >> RSB_FIT_SL_LOG2;
    if (!(f->sl_map[fl] &= ~(1u << (i & (RSB_FIT_SL - 1u))))) f->fl_map &= ~(1u << fl);
}

/* Put free block o of s bytes at the head of its list. */
RSB_INLINE void rsb_fit_insert(rsb_fit *f, uint32_t o, uint32_t s) {
    char *base = f->base;
    unsigned i = rsb_fit_index(s);
    rsb_fit_block *b = (rsb_fit_block *)(void *)(base + o);
    uint32_t h = f->heads[i];
    b->prev = 0;
    b->next = h;
    b->list = i;
    if (h)
        ((rsb_fit_block *)(void *)(base + h))->prev = o;
    else
        rsb_fit_set_bit(f, i);
    f->heads[i] = o;
}

/* Take free block o off its list (s: its size, for symmetry with insert). */
RSB_INLINE void rsb_fit_unlink(rsb_fit *f, uint32_t o, uint32_t s) {
    (void)s;
    char *base = f->base;
    rsb_fit_block *b = (rsb_fit_block *)(void *)(base + o);
    uint32_t n = b->next, p = b->prev;
    if (p)
        ((rsb_fit_block *)(void *)(base + p))->next = n;
    else {
        unsigned i = b->list;
        f->heads[i] = n;
        if (!n) rsb_fit_clear_bit(f, i);
    }
    if (n) ((rsb_fit_block *)(void *)(base + n))->prev = p;
}

/* Make the unlinked free block [o, o + have) live with s bytes (s <= have),
 * returning the rest (if 32 bytes or more) to the lists.  prev_free: the
 * PREV_FREE bit of the new header.  The block is carved from the front
 * (rsb_fit_alloc carves from the tail instead; see there). */
RSB_INLINE void *rsb_fit_carve(rsb_fit *f, uint32_t o, uint32_t have, uint32_t s, uint32_t prev_free) {
    uint32_t rest = have - s;
    if (rest >= RSB_FIT_MIN) {
        uint32_t r = o + s;
        rsb_fit_set(f, rsb_fit_at(f, r), r, rest | RSB_FIT_FREE);
        *rsb_fit_footer(f, r + rest) = rest;
        rsb_fit_insert(f, r, rest);
    } else {
        s = have;
        rsb_fit_flip(rsb_fit_at(f, o + have), RSB_FIT_PREV_FREE);
    }
    rsb_fit_set(f, rsb_fit_at(f, o), o, s | prev_free);
    return f->base + o + RSB_FIT_HDR;
}

/* Free block o (on a list) becomes a free block of t bytes at the same
 * place (bigger when it absorbed a neighbour, smaller when its tail was
 * taken): it changes lists only if its size crosses a list boundary. */
RSB_INLINE void rsb_fit_resize_free(rsb_fit *f, uint32_t o, uint32_t s, uint32_t t) {
    char *base = f->base;
    rsb_fit_block *b = (rsb_fit_block *)(void *)(base + o);
    if (b->list != rsb_fit_index(t)) {
        rsb_fit_unlink(f, o, s);
        rsb_fit_insert(f, o, t);
    }
    b->word = t | RSB_FIT_FREE;
    b->check = f->key ^ o ^ (t | RSB_FIT_FREE);
    *(uint32_t *)(void *)(base + o + t - 4) = t;
}

/* A payload of at least n bytes (16-byte aligned), or NULL.  n must not
 * exceed RSB_FIT_MAX_POOL (callers compare with the pool's size first).
 *
 * The block is cut from the front of the free block found, so that the
 * newest block can grow in place (realloc); the rest keeps the free
 * block's place on its list (the list node moves up by s bytes) unless its
 * size crosses a list boundary, so most allocations do not change a
 * list's bitmap bit. */
RSB_INLINE void *rsb_fit_alloc(rsb_fit *f, size_t n) {
    char *base = f->base;
    uint32_t *heads = f->heads;
    uint32_t s = rsb_fit_size_for(n);
    unsigned i = rsb_fit_index(s);
    uint32_t o = heads[i];
    if (!o || ((rsb_fit_block *)(void *)(base + o))->word < s) { /* word = size | FREE: < s iff the size is */
        int j = rsb_fit_find(f, i + 1);
        if (unlikely(j < 0)) return NULL;
        i = (unsigned)j;
        o = heads[i];
    }
    rsb_fit_block *b = (rsb_fit_block *)(void *)(base + o);
    uint32_t have = b->word & ~RSB_FIT_FLAGS, rest = have - s, nx = b->next;
    uint32_t key = f->key;
    if (rest >= RSB_FIT_MIN) {
        uint32_t r = o + s;
        rsb_fit_block *rb = (rsb_fit_block *)(void *)(base + r);
        rb->word = rest | RSB_FIT_FREE;
        rb->check = key ^ r ^ (rest | RSB_FIT_FREE);
        *(uint32_t *)(void *)(base + o + have - 4) = rest;
        unsigned k = rsb_fit_index(rest);
        if (k == i) { /* the rest takes o's place at the head of list i */
            rb->next = nx;
            rb->prev = 0;
            rb->list = i;
            heads[i] = r;
            if (nx) ((rsb_fit_block *)(void *)(base + nx))->prev = r;
        } else {
            heads[i] = nx;
            if (nx)
                ((rsb_fit_block *)(void *)(base + nx))->prev = 0;
            else
                rsb_fit_clear_bit(f, i);
            rsb_fit_insert(f, r, rest);
        }
    } else { /* the whole block: off its list (it is the head) */
        heads[i] = nx;
        if (nx)
            ((rsb_fit_block *)(void *)(base + nx))->prev = 0;
        else
            rsb_fit_clear_bit(f, i);
        s = have;
        rsb_fit_block *after = (rsb_fit_block *)(void *)(base + o + have);
        after->word ^= RSB_FIT_PREV_FREE; /* its neighbour before is live now */
        after->check ^= RSB_FIT_PREV_FREE;
    }
    b->word = s;
    b->check = key ^ o ^ s;
    return base + o + RSB_FIT_HDR;
}

/* Free block o of s bytes takes the place of free block old (the one it
 * absorbed, right after it) on old's list, when both sizes share a list. */
RSB_INLINE void rsb_fit_replace(rsb_fit *f, uint32_t old, uint32_t o, uint32_t s_old, uint32_t s) {
    char *base = f->base;
    rsb_fit_block *ob = (rsb_fit_block *)(void *)(base + old), *b = (rsb_fit_block *)(void *)(base + o);
    unsigned i = ob->list;
    if (i != rsb_fit_index(s)) {
        rsb_fit_unlink(f, old, s_old);
        rsb_fit_insert(f, o, s);
        return;
    }
    uint32_t n = ob->next, p = ob->prev;
    b->next = n;
    b->prev = p;
    b->list = i;
    if (p)
        ((rsb_fit_block *)(void *)(base + p))->next = o;
    else
        f->heads[i] = o;
    if (n) ((rsb_fit_block *)(void *)(base + n))->prev = o;
}

/* Give back live block o (its header already validated): merged with the
 * free blocks on either side.  A merge into the block before keeps that
 * block's place on its list, a merge with the block after takes that
 * block's place, unless the size moves to another list. */
RSB_INLINE void rsb_fit_release(rsb_fit *f, uint32_t o) {
    char *base = f->base;
    uint32_t key = f->key;
    rsb_fit_block *b = (rsb_fit_block *)(void *)(base + o);
    uint32_t word = b->word, s = word & ~RSB_FIT_FLAGS;
    uint32_t nx = o + s;
    rsb_fit_block *nb = (rsb_fit_block *)(void *)(base + nx);
    uint32_t nw = nb->word;
    if (word & RSB_FIT_PREV_FREE) {
        uint32_t ps = *(uint32_t *)(void *)(base + o - 4), po = o - ps;
        b->check ^= RSB_FIT_DEAD;
        if (nw & RSB_FIT_FREE) {
            uint32_t ns = nw & ~RSB_FIT_FLAGS;
            rsb_fit_unlink(f, nx, ns);
            nb->check ^= RSB_FIT_DEAD;
            s += ns;
        } else {
            nb->word = nw ^ RSB_FIT_PREV_FREE;
            nb->check ^= RSB_FIT_PREV_FREE;
        }
        rsb_fit_resize_free(f, po, ps, ps + s);
        return;
    }
    if (nw & RSB_FIT_FREE) {
        uint32_t ns = nw & ~RSB_FIT_FLAGS;
        nb->check ^= RSB_FIT_DEAD;
        rsb_fit_replace(f, nx, o, ns, s + ns);
        s += ns;
    } else {
        nb->word = nw ^ RSB_FIT_PREV_FREE;
        nb->check ^= RSB_FIT_PREV_FREE;
        rsb_fit_insert(f, o, s);
    }
    b->word = s | RSB_FIT_FREE;
    b->check = key ^ o ^ (s | RSB_FIT_FREE);
    *(uint32_t *)(void *)(base + o + s - 4) = s;
}

#endif
