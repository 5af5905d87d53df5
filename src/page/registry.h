/*
 * The chunk registry (hosted): one byte per chunk-aligned address saying
 * what we mapped there (RSB_HDR_PAGES, RSB_HDR_HUGE, 0 for nothing), so that
 * free recognises a foreign pointer without touching memory we do not own,
 * and tells a page chunk from a huge block with one compare.
 *
 * It covers addresses below 2^RSB_ADDR_BITS: the user address space of
 * x86-64 with 4-level paging (2^47) and of arm64 with 48-bit VA (2^48).
 * Kernels with a larger address space (x86-64 5-level paging, arm64 52-bit
 * VA) hand out addresses above these only to mmap calls that ask for them
 * with a hint, which we never do; a mapping the registry cannot cover is
 * refused (rsb_registry_set returns false and the caller unmaps it), never
 * written out of bounds.
 *
 * The table is in .bss: 32 MiB of address space on x86-64 (64 MiB on arm64),
 * of which only the OS pages covering our chunks are ever touched (one
 * 4 KiB page per 16 GiB of addresses).  A lookup is a shift, a compare and
 * a byte load, with no pointer to load and no "initialised?" test.
 */
#ifndef RSB_REGISTRY_H
#define RSB_REGISTRY_H

#include "../util.h"


#ifndef RSB_ADDR_BITS /* a test build may set a smaller one (tests/unit/fake_os.c) */
#if defined(__x86_64__)
#define RSB_ADDR_BITS 47
#else
#define RSB_ADDR_BITS 48
#endif
#endif
#define RSB_REGISTRY_ENTRIES ((uintptr_t)1 << (RSB_ADDR_BITS - RSB_CHUNK_SHIFT))

extern uint8_t rsb_registry[RSB_REGISTRY_ENTRIES];

/* What is registered at chunk-aligned address base (0: nothing). */
RSB_INLINE unsigned rsb_registry_get(uintptr_t base) {
    uintptr_t i = base >> RSB_CHUNK_SHIFT;
    if (unlikely(i >= RSB_REGISTRY_ENTRIES)) return 0;
    return __atomic_load_n(&rsb_registry[i], __ATOMIC_RELAXED);
}

/* Register (what != 0) or forget (what == 0) chunk-aligned address base.
 * False, with nothing changed, if base is beyond the table. */
bool rsb_registry_set(uintptr_t base, unsigned what);

#endif
