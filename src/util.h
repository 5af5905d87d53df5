/* Small helpers shared by every layer: branch hints, alignment, bit ops,
 * and the memset/memcpy the core uses (the freestanding build brings its
 * own, in src/os/region.c). */
#ifndef RSB_UTIL_H
#define RSB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define RSB_INLINE static inline __attribute__((always_inline))
#define RSB_NOINLINE __attribute__((noinline))
#define RSB_COLD __attribute__((cold, noinline))
#define RSB_CACHELINE 64

static inline size_t rsb_align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
static inline bool rsb_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
static inline unsigned rsb_log2(size_t x) { return (unsigned)(63 - __builtin_clzll((unsigned long long)x)); }
static inline size_t rsb_next_pow2(size_t x) { return x <= 1 ? 1 : (size_t)1 << (rsb_log2(x - 1) + 1); }
/* Trailing zeros of a nonzero 64-bit word; on 32-bit targets without the
 * libgcc helper (__ctzdi2), which the freestanding library cannot use. */
static inline unsigned rsb_ctz64(uint64_t x) {
#if UINTPTR_MAX > 0xffffffffu
    return (unsigned)__builtin_ctzll(x);
#else
    uint32_t lo = (uint32_t)x;
    return lo ? (unsigned)__builtin_ctz(lo) : 32u + (unsigned)__builtin_ctz((uint32_t)(x >> 32));
#endif
}

#if RSB_FREESTANDING
void rsb_memset(void *d, int c, size_t n);
void rsb_memcpy(void *d, const void *s, size_t n);
#else
#include <string.h>
#define rsb_memset memset
#define rsb_memcpy memcpy
#endif

#include "debug.h"

#endif
