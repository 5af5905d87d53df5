/*
 * The OS contract (os.h) with no OS, for librsbmalloc_heap.a: a heap lives
 * in a region its caller hands to rsb_heap_init (src/page/chunk_region.c
 * makes it the heap's only chunk), so there is nothing to map, purge or
 * remap, no clock, no other thread to yield to and no file descriptor.
 * Messages are kept in a static buffer (the stack may be small) that
 * rsb_os_abort hands to the panic hook before it traps.  The core's
 * memset/memcpy are here too, so the library references nothing.
 *
 * Compile with -fno-tree-loop-distribute-patterns: otherwise gcc turns the
 * loops below back into calls to memset/memcpy, which do not exist here.
 */
#include "os.h"

_Static_assert(RSB_FREESTANDING, "src/os/region.c is the no-OS layer (RSB_FREESTANDING=1)");

size_t rsb_os_page = RSB_PAGE_SIZE;

void *rsb_os_map(size_t size, size_t align, size_t offset_from_align) {
    (void)size, (void)align, (void)offset_from_align;
    return NULL;
}
void *rsb_os_map_block(size_t size, size_t align, size_t offset_from_align) {
    return rsb_os_map(size, align, offset_from_align);
}
void rsb_os_unmap(void *p, size_t size) { (void)p, (void)size; }
bool rsb_os_purge(void *p, size_t size) {
    (void)p, (void)size;
    return false;
}
bool rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    (void)p, (void)old_size, (void)new_size;
    return false;
}
bool rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr) {
    (void)p, (void)old_size, (void)new_size, (void)new_addr;
    return false;
}

void rsb_os_init(void) {}
unsigned rsb_os_ncpu(void) { return 1; }
uint64_t rsb_os_now_ms(void) { return 0; }
/* A heap is serialised by its own lock hook; the core's locks are no-ops
 * (spinlock.h), so nothing ever waits here. */
void rsb_os_yield(void) {}
void rsb_os_wait(uint32_t *word, uint32_t expected) { (void)word, (void)expected; }
void rsb_os_wake(uint32_t *word) { (void)word; }
const char *rsb_os_getenv(const char *name) {
    (void)name;
    return NULL;
}
bool rsb_os_thread_exit_init(void (*fn)(void *arg)) {
    (void)fn;
    return false;
}
bool rsb_os_on_thread_exit(void *arg) {
    (void)arg;
    return false;
}
bool rsb_os_thread_start(void (*fn)(void *arg), void *arg) {
    (void)fn, (void)arg;
    return false;
}
void rsb_os_thread_join(void) {}
void rsb_os_sleep_ms(uint32_t ms) { (void)ms; }
void rsb_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    (void)prepare, (void)parent, (void)child;
}

/* No entropy source: a sequence mixed through a finaliser.  The heap mixes
 * in its own address and size; the double-free marker only has to be
 * unlikely to appear in user data by accident. */
uint64_t rsb_os_random(void) {
    static uint64_t seq;
    uint64_t x = ++seq * 0x9e3779b97f4a7c15ull;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* --- messages and the panic hook ---------------------------------------------- */

static void (*panic_hook)(const char *msg);

void rsb_heap_set_panic_hook(void (*fn)(const char *msg));
void rsb_heap_set_panic_hook(void (*fn)(const char *msg)) { panic_hook = fn; }

static char panic_msg[256];
static size_t panic_len;

/* The last message written: one error message is formatted and written
 * just before rsb_os_abort (src/error.c), so each write starts afresh. */
void rsb_os_write_fd(int fd, const char *s, size_t n) {
    (void)fd;
    panic_len = 0;
    while (n && panic_len + 1 < sizeof panic_msg) {
        panic_msg[panic_len++] = *s++;
        n--;
    }
    if (panic_len && panic_msg[panic_len - 1] == '\n') panic_len--; /* the hook adds its own */
    panic_msg[panic_len] = 0;
}

int rsb_os_open_report(const char *path) {
    (void)path;
    return -1;
}
void rsb_os_close(int fd) { (void)fd; }
unsigned long rsb_os_pid(void) { return 0; }

void rsb_os_abort(void) {
    if (panic_hook) panic_hook(panic_msg);
    __builtin_trap();
}

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

/* No stacks, files or signals without an OS: heap profiling is hosted only. */
int rsb_os_backtrace(void **pcs, int max) { return (void)pcs, (void)max, 0; }
bool rsb_os_can_unwind(void) { return false; }
bool rsb_os_own_code(uintptr_t *lo, uintptr_t *hi) { return (void)lo, (void)hi, false; }
int rsb_os_open_read(const char *path) { return (void)path, -1; }
long rsb_os_read(int fd, void *buf, size_t n) { return (void)fd, (void)buf, (void)n, -1; }
bool rsb_os_on_sigusr2(void (*fn)(void)) { return (void)fn, false; }
