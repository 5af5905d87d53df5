/*
 * The freestanding OS layer: what the core asks of its environment (os.h),
 * for a heap that lives in a caller-supplied region.  There is no OS: the
 * memory is the region (rsb_heap_init hands it to the page allocator), no
 * page is ever returned, there is no clock, no other thread to yield to, no
 * file descriptor.  Fatal errors go to the panic hook and then trap.  The
 * core's memset/memcpy are here too, so the library references nothing.
 *
 * Compile with -fno-tree-loop-distribute-patterns: otherwise gcc turns the
 * loops below back into calls to memset/memcpy, which do not exist here.
 */
#include "error.h"
#include "os.h"

#if !RSB_FREESTANDING
#error "os_region.c is the freestanding OS layer (RSB_FREESTANDING=1)"
#endif

size_t rsb_os_page = RSB_PAGE_SIZE;

bool rsb_os_purge(void *p, size_t size) {
    (void)p, (void)size;
    return false;
}

uint64_t rsb_os_now_ms(void) { return 0; }

/* A heap is serialised by its own lock hook; the core's locks are no-ops
 * (spinlock.h), so nothing ever waits here. */
void rsb_os_yield(void) {}

/* --- memset / memcpy --------------------------------------------------------- */

/* Blocks are 16-byte aligned and most copies are whole blocks: copy words
 * when both ends allow it, bytes otherwise. */
void rsb_memset(void *d, int c, size_t n) {
    unsigned char *p = (unsigned char *)d;
#if defined(__x86_64__)
    __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
#else
    uintptr_t w = (unsigned char)c;
    w |= w << 8;
    w |= w << 16;
#if UINTPTR_MAX > 0xffffffffu
    w |= w << 32;
#endif
    while (n && ((uintptr_t)p & (sizeof w - 1))) {
        *p++ = (unsigned char)c;
        n--;
    }
    for (; n >= sizeof w; n -= sizeof w, p += sizeof w) *(uintptr_t *)(void *)p = w;
    while (n--) *p++ = (unsigned char)c;
#endif
}

void rsb_memcpy(void *d, const void *s, size_t n) {
    unsigned char *dp = (unsigned char *)d;
    const unsigned char *sp = (const unsigned char *)s;
#if defined(__x86_64__)
    __asm__ volatile("rep movsb" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
#else
    if ((((uintptr_t)dp | (uintptr_t)sp) & (sizeof(uintptr_t) - 1)) == 0) {
        for (; n >= 4 * sizeof(uintptr_t); n -= 4 * sizeof(uintptr_t)) {
            const uintptr_t *ws = (const uintptr_t *)(const void *)sp;
            uintptr_t *wd = (uintptr_t *)(void *)dp;
            uintptr_t a = ws[0], b = ws[1], c = ws[2], e = ws[3];
            wd[0] = a, wd[1] = b, wd[2] = c, wd[3] = e;
            dp += 4 * sizeof(uintptr_t);
            sp += 4 * sizeof(uintptr_t);
        }
        for (; n >= sizeof(uintptr_t); n -= sizeof(uintptr_t)) {
            *(uintptr_t *)(void *)dp = *(const uintptr_t *)(const void *)sp;
            dp += sizeof(uintptr_t);
            sp += sizeof(uintptr_t);
        }
    }
    while (n--) *dp++ = *sp++;
#endif
}

/* --- fatal errors ------------------------------------------------------------ */

static void (*panic_hook)(const char *msg);

void rsb_heap_set_panic_hook(void (*fn)(const char *msg));
void rsb_heap_set_panic_hook(void (*fn)(const char *msg)) { panic_hook = fn; }

/* The message is built in a static buffer: the stack may be small, and a
 * panic does not return. */
static char panic_msg[160];
static size_t panic_len;

static void msg_str(const char *s) {
    while (*s && panic_len + 1 < sizeof panic_msg) panic_msg[panic_len++] = *s++;
    panic_msg[panic_len] = 0;
}

static void msg_hex(uintptr_t v) {
    char tmp[2 * sizeof v + 1];
    unsigned n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    msg_str("0x");
    while (n && panic_len + 1 < sizeof panic_msg) panic_msg[panic_len++] = tmp[--n];
    panic_msg[panic_len] = 0;
}

static void msg_dec(unsigned v) {
    char tmp[12];
    unsigned n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && panic_len + 1 < sizeof panic_msg) panic_msg[panic_len++] = tmp[--n];
    panic_msg[panic_len] = 0;
}

static __attribute__((noreturn)) void panic_now(void) {
    if (panic_hook) panic_hook(panic_msg);
    __builtin_trap();
}

void rsb_fatal_pointer(const char *what, const void *p) {
    panic_len = 0;
    msg_str("rsbmalloc heap: ");
    msg_str(what);
    msg_str(" (pointer ");
    msg_hex((uintptr_t)p);
    msg_str(")");
    panic_now();
}

void rsb_fatal(const char *what) {
    panic_len = 0;
    msg_str("rsbmalloc heap: ");
    msg_str(what);
    panic_now();
}

void rsb_assert_fail(const char *what, const char *file, int line) {
    panic_len = 0;
    msg_str("rsbmalloc heap: internal check failed: ");
    msg_str(what);
    msg_str(" at ");
    msg_str(file);
    msg_str(":");
    msg_dec((unsigned)line);
    panic_now();
}
