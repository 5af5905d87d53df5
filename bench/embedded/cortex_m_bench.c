/*
 * Utilisation at exhaustion on a 32-bit target: a Cortex-M3 image for QEMU's
 * mps2-an385 board (4 MiB of RAM), or a RISC-V rv32imac image for QEMU's
 * virt machine, built by freestanding/build_baremetal.py with the target's
 * start-up code and run by bench/embedded/run.sh:
 *
 *   qemu-system-arm -M mps2-an385 -nographic -semihosting -kernel bench.elf
 *   qemu-system-riscv32 -M virt -bios none -nographic -kernel bench.elf
 *
 * For heaps of 16 KiB, 64 KiB, 256 KiB and 1 MiB: fixed sizes 16, 64, 256,
 * 4096 B, random 1..4096 B and random 1..256 B (mean over 20 seeds),
 * allocated until the first failure; bytes handed out / region size, for
 * the rsbmalloc heap and the first-fit baseline.  QEMU does not model
 * cycles, so there is no timing here.
 */
#include <stddef.h>
#include <stdint.h>

#include "firstfit.h"

#ifndef BM_TARGET
#define BM_TARGET "32-bit target"
#endif
#include "rsbmalloc_heap.h"

/* firstfit's realloc copies with memcpy; no libc here. */
void *memcpy(void *d, const void *s, size_t n);
void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}

static unsigned char region[1u << 20] __attribute__((aligned(4096)));
static void (*put)(const char *s);

static void put_uint(uint32_t v) {
    char b[12], o[12];
    int n = 0, k = 0;
    do {
        b[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) o[k++] = b[--n];
    o[k] = 0;
    put(o);
}

/* Percent with two decimals from basis points. */
static void put_bp(uint32_t bp) {
    put_uint(bp / 100);
    put(".");
    put_uint(bp % 100 / 10);
    put_uint(bp % 10);
    put("%");
}

static uint32_t rng;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

typedef struct {
    const char *name;
    void *(*init)(void *m, size_t n);
    void *(*alloc)(void *h, size_t n);
} alloc_t;

static void *rsb_init_(void *m, size_t n) { return rsb_heap_init(m, n); }
static void *rsb_alloc_(void *h, size_t n) { return rsb_heap_alloc(h, n); }
static void *ff_init_(void *m, size_t n) { return ff_init(m, n); }
static void *ff_alloc_(void *h, size_t n) { return ff_alloc(h, n); }

/* Basis points of the region handed out before the first failure. */
static uint32_t fill(const alloc_t *A, size_t len, uint32_t lo, uint32_t hi) {
    void *h = A->init(region, len);
    if (!h) return 0;
    uint32_t bytes = 0;
    for (;;) {
        uint32_t n = lo == hi ? lo : lo + rnd() % (hi - lo + 1);
        if (!A->alloc(h, n)) break;
        bytes += n;
    }
    return (uint32_t)((uint64_t)bytes * 10000u / len);
}

static uint32_t fill_random(const alloc_t *A, size_t len, uint32_t hi) {
    uint32_t sum = 0;
    for (uint32_t s = 1; s <= 20; s++) {
        rng = 2463534242u * s;
        sum += fill(A, len, 1, hi);
    }
    return sum / 20;
}

int bm_main(void (*put_fn)(const char *s));

int bm_main(void (*put_fn)(const char *s)) {
    put = put_fn;
    static const alloc_t allocs[] = {{"rsbmalloc heap", rsb_init_, rsb_alloc_},
                                     {"first-fit list", ff_init_, ff_alloc_}};
    static const uint32_t heaps[] = {16u << 10, 64u << 10, 256u << 10, 1u << 20};
    static const uint32_t fixed[] = {16, 64, 256, 4096};
    rsb_heap_stats_t st;
    rsb_heap_stats(rsb_heap_init(region, sizeof region), &st);
    put(BM_TARGET ", utilisation at the first failure, % of the region\n");
    put("heap: slab window ");
    put_uint(st.window);
    put(" B, ");
    put_uint(st.classes);
    put(" slab classes up to ");
    put_uint((uint32_t)st.small_max);
    put(" B\n");
    put("| heap | allocator | 16 B | 64 B | 256 B | 4096 B | random 1..4096 B | random 1..256 B |\n");
    put("|---|---|---|---|---|---|---|---|\n");
    for (unsigned i = 0; i < 4; i++)
        for (unsigned a = 0; a < 2; a++) {
            put("| ");
            put_uint(heaps[i] >> 10);
            put(" KiB | ");
            put(allocs[a].name);
            for (unsigned k = 0; k < 4; k++) {
                put(" | ");
                put_bp(fill(&allocs[a], heaps[i], fixed[k], fixed[k]));
            }
            put(" | ");
            put_bp(fill_random(&allocs[a], heaps[i], 4096));
            put(" | ");
            put_bp(fill_random(&allocs[a], heaps[i], 256));
            put(" |\n");
        }
    return 0;
}
