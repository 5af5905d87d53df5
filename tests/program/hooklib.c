/* A preloaded library that replaces clock_gettime and mmap with versions
 * that allocate (as libfaketime and some tracers do) before doing the real
 * system call.  The allocator must neither hang nor crash under it: its own
 * start-up and its arena lock must not go through these symbols. */
#undef _FILE_OFFSET_BITS /* define mmap and mmap64 both, each under its own name */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

unsigned long rsbt_hook_calls;

static void allocate_something(void) {
    char *volatile p = malloc(64 + rsbt_hook_calls % 200);
    if (p) memset(p, 1, 64);
    free(p);
    __atomic_fetch_add(&rsbt_hook_calls, 1, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    allocate_something();
    return (int)syscall(SYS_clock_gettime, id, ts);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    allocate_something();
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}
