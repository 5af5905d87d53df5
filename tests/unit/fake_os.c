/*
 * A fake OS layer: the whole contract of src/os/os.h, for unit tests of the
 * layers above it.  Memory is real (mmap), but every call is counted, any
 * mapping can be made to fail, mappings can be placed at chosen addresses,
 * the clock only moves when the test says so, and messages and aborts are
 * captured.  Linked instead of src/os/linux.c (tests/unit/meson.build).
 */
#define _GNU_SOURCE
#include "fake_os.h"

#include <sched.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t rsb_os_page = 4096;
struct fake_os fake;

static void *place(size_t size) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    void *hint = NULL;
    if (fake.next_addr) {
        hint = (void *)fake.next_addr;
        flags |= MAP_FIXED_NOREPLACE;
        fake.next_addr += size;
    }
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
        fake.mmap_errors++;
        return NULL;
    }
    return p;
}

void *rsb_os_map(size_t size, size_t align, size_t offset) {
    fake.maps++;
    if (fake.fail_maps) {
        fake.fail_maps--;
        fake.failed_maps++;
        return NULL;
    }
    /* Over-map and trim, as the real layer does. */
    char *raw = place(size + align);
    if (!raw) return NULL;
    uintptr_t start = (((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    if (start < (uintptr_t)raw) start += align;
    size_t head = start - (uintptr_t)raw, tail = align - head;
    if (head) munmap(raw, head);
    if (tail) munmap((char *)start + size, tail);
    fake.mapped_bytes += size;
    return (void *)start;
}

void *rsb_os_map_block(size_t size, size_t align, size_t offset) {
    fake.block_maps++;
    return rsb_os_map(size, align, offset);
}

void rsb_os_unmap(void *p, size_t size) {
    fake.unmaps++;
    fake.mapped_bytes -= size;
    munmap(p, size);
}

bool rsb_os_purge(void *p, size_t size) {
    fake.purges++;
    if (fake.fail_purges) return false;
    return madvise(p, size, MADV_DONTNEED) == 0;
}

bool rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    fake.remaps++;
    return !fake.fail_remaps && mremap(p, old_size, new_size, 0) != MAP_FAILED;
}

bool rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr) {
    fake.remaps++;
    return !fake.fail_remaps &&
           mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) != MAP_FAILED;
}

void rsb_os_init(void) {}
unsigned rsb_os_ncpu(void) { return 2; }
uint64_t rsb_os_random(void) { return 0x5eed5eed5eed5eedull; }
uint64_t rsb_os_now_ms(void) { return fake.now_ms; }
void rsb_os_yield(void) { fake.yields++; }
void rsb_os_wait(uint32_t *word, uint32_t expected) {
    (void)word, (void)expected;
    fake.yields++;
    sched_yield(); /* a spurious return: the lock retries */
}
void rsb_os_wake(uint32_t *word) { (void)word; }

void rsb_os_write_fd(int fd, const char *s, size_t n) {
    (void)fd;
    if (n > sizeof fake.message - 1) n = sizeof fake.message - 1;
    memcpy(fake.message, s, n);
    fake.message[n] = 0;
}

void rsb_os_abort(void) {
    fake.aborts++;
    if (fake.on_abort) longjmp(*fake.on_abort, 1);
    abort();
}

const char *rsb_os_getenv(const char *name) {
    (void)name;
    return NULL;
}
bool rsb_os_thread_exit_init(void (*fn)(void *)) {
    (void)fn;
    return false;
}
bool rsb_os_on_thread_exit(void *arg) {
    (void)arg;
    return false;
}
void rsb_os_atfork(void (*a)(void), void (*b)(void), void (*c)(void)) { (void)a, (void)b, (void)c; }
int rsb_os_open_report(const char *path) {
    (void)path;
    return -1;
}
void rsb_os_close(int fd) { (void)fd; }
unsigned long rsb_os_pid(void) { return 1; }
bool rsb_os_thread_start(void (*fn)(void *arg), void *arg) {
    (void)fn, (void)arg;
    return false;
}
void rsb_os_thread_join(void) {}
void rsb_os_sleep_ms(uint32_t ms) { fake.now_ms += ms; }
