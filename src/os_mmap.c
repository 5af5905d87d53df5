/*
 * Hosted OS layer (Linux): the only file of the core that makes system calls
 * for memory.  See os.h for the contract.  Every function preserves errno, so
 * free() never changes errno even when it purges or unmaps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>

#include "os.h"

size_t rsb_os_page = 4096;

#if RSB_FAULT_INJECTION
static unsigned long fail_countdown;
void rsb_os_fail_after(unsigned long n) { __atomic_store_n(&fail_countdown, n, __ATOMIC_SEQ_CST); }
static bool injected_failure(void) {
    unsigned long n = __atomic_load_n(&fail_countdown, __ATOMIC_SEQ_CST);
    while (n != 0) {
        if (__atomic_compare_exchange_n(&fail_countdown, &n, n - 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return n == 1;
    }
    return false;
}
#else
static inline bool injected_failure(void) { return false; }
#endif

static void *raw_map(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *rsb_os_map(size_t size, size_t align, size_t offset) {
    int saved = errno;
    void *res = NULL;
    if (injected_failure()) goto out;
    if (align <= rsb_os_page && offset == 0) {
        res = raw_map(size);
        goto out;
    }
    /* Over-map by align, then trim the head and the tail.  Try the exact size
     * first: the kernel often hands out an address that already fits. */
    void *p = raw_map(size);
    if (p && (((uintptr_t)p + offset) & (align - 1)) == 0) {
        res = p;
        goto out;
    }
    if (p) munmap(p, size);
    if (size > SIZE_MAX - align) goto out;
    char *raw = raw_map(size + align);
    if (!raw) goto out;
    uintptr_t start = (((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    if (start < (uintptr_t)raw) start += align;
    size_t head = start - (uintptr_t)raw;
    size_t tail = align - head;
    if (head) munmap(raw, head);
    if (tail) munmap((char *)start + size, tail);
    res = (void *)start;
out:
    errno = saved;
    return res;
}

void rsb_os_unmap(void *p, size_t size) {
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

bool rsb_os_purge(void *p, size_t size) {
    int saved = errno;
    bool ok = madvise(p, size, MADV_DONTNEED) == 0;
    errno = saved;
    return ok;
}

bool rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    int saved = errno;
    bool ok = !injected_failure() && mremap(p, old_size, new_size, 0) != MAP_FAILED;
    errno = saved;
    return ok;
}

bool rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr) {
    int saved = errno;
    bool ok = !injected_failure() &&
              mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) != MAP_FAILED;
    errno = saved;
    return ok;
}

unsigned rsb_os_ncpu(void) {
    /* The raw syscall: glibc's helpers may allocate. */
    unsigned long mask[16];
    long n = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    unsigned count = 0;
    for (long i = 0; i < n / (long)sizeof(unsigned long); i++)
        count += (unsigned)__builtin_popcountl(mask[i]);
    return count ? count : 1;
}

uint64_t rsb_os_random(void) {
    /* AT_RANDOM: 16 bytes the kernel put on the initial stack; available
     * before libc is initialised and never blocks. */
    uint64_t r = 0x9e3779b97f4a7c15ull;
    const unsigned char *at = (const unsigned char *)getauxval(AT_RANDOM);
    if (at) {
        uint64_t a, b;
        __builtin_memcpy(&a, at, 8);
        __builtin_memcpy(&b, at + 8, 8);
        r ^= a ^ (b << 1);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r ^= (uint64_t)ts.tv_nsec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&r;
    r ^= r >> 31;
    return r | 1;
}

uint64_t rsb_os_now_ms(void) {
    struct timespec ts;
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rsb_os_yield(void) { sched_yield(); }

void rsb_os_write_fd(int fd, const char *s, size_t n) {
    int saved = errno;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            break;
        }
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

void rsb_os_abort(void) { abort(); }

size_t rsb_os_page_size_from_system(void);
size_t rsb_os_page_size_from_system(void) {
    unsigned long p = getauxval(AT_PAGESZ);
    if (!p) p = (unsigned long)sysconf(_SC_PAGESIZE);
    return p ? (size_t)p : 4096;
}
