/*
 * The OS contract: everything the core asks of its environment, and the
 * only functions of the core that talk to it.  Two implementations, each
 * complete:
 *
 *   src/os/linux.c   hosted Linux: mmap/munmap/madvise/mremap as raw system
 *                    calls, the vDSO clock, AT_RANDOM, write(2), abort(3),
 *                    pthread keys and pthread_atfork.
 *   src/os/region.c  no OS (librsbmalloc_heap.a): memory comes only from the
 *                    caller's region (rsb_os_map always fails), there is no
 *                    clock and no other thread; messages go to a static
 *                    buffer that rsb_os_abort hands to the panic hook.
 *
 * Rules for every function: addresses and sizes are multiples of the OS page
 * size unless stated otherwise; nothing allocates with malloc or takes an
 * allocator lock; errno is preserved.
 */
#ifndef RSB_OS_H
#define RSB_OS_H

#include "../util.h"

/* OS page size, read from the running system at init (4K, 16K, 64K...). */
extern size_t rsb_os_page;

/* --- memory ----------------------------------------------------------------- */

/* Map size bytes, read/write, zeroed, aligned to align (a power of two,
 * >= the OS page).  If offset_from_align is nonzero the returned address p
 * satisfies (p + offset_from_align) % align == 0 instead.  NULL on failure. */
void *rsb_os_map(size_t size, size_t align, size_t offset_from_align);
/* The same for the memory of one block (huge blocks): counted against the
 * system's commit limit, so that a size the system cannot back fails here
 * (ENOMEM for malloc) instead of killing the program on first touch.
 * rsb_os_map only reserves address space (chunks, metadata). */
void *rsb_os_map_block(size_t size, size_t align, size_t offset_from_align);
/* Unmap a range obtained from rsb_os_map (or part of one). */
void rsb_os_unmap(void *p, size_t size);
/* Tell the OS the contents are not needed: RSS drops now, reads give zero.
 * False if the memory was not given back (then it is unchanged). */
bool rsb_os_purge(void *p, size_t size);
/* Resize a mapping in place if possible (true) or move it to new_addr (an
 * address from rsb_os_map reserved for the purpose) without copying. */
bool rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size);
bool rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr);

/* --- process ------------------------------------------------------------------ */

/* Once at start-up, before any other call (page size, clock). */
void rsb_os_init(void);
unsigned rsb_os_ncpu(void);
uint64_t rsb_os_random(void);          /* per-process entropy */
uint64_t rsb_os_now_ms(void);          /* monotonic clock, coarse; 0 if none */
void rsb_os_yield(void);               /* let another thread run */
/* Sleep while *word == expected (returns at once otherwise, and may return
 * spuriously); wake one thread sleeping on word. */
void rsb_os_wait(uint32_t *word, uint32_t expected);
void rsb_os_wake(uint32_t *word);
/* Messages: write n bytes to fd (2 = errors); a region keeps them for the
 * panic hook. */
void rsb_os_write_fd(int fd, const char *s, size_t n);
void rsb_os_abort(void) __attribute__((noreturn));
/* A file for a report: created or truncated, write only; -1 if it cannot
 * be.  rsb_os_close when done. */
int rsb_os_open_report(const char *path);
void rsb_os_close(int fd);
unsigned long rsb_os_pid(void);
/* Environment lookup without allocating; NULL if unset or not yet known. */
const char *rsb_os_getenv(const char *name);

/* fn(arg) runs when a thread that called rsb_os_on_thread_exit(arg) exits.
 * rsb_os_thread_exit_init(fn) once at start-up; false if unavailable. */
bool rsb_os_thread_exit_init(void (*fn)(void *arg));
bool rsb_os_on_thread_exit(void *arg);
/* A thread of the library's own (the background purge): started running
 * fn(arg); false if it cannot be.  rsb_os_thread_join waits for it to end. */
bool rsb_os_thread_start(void (*fn)(void *arg), void *arg);
void rsb_os_thread_join(void);
void rsb_os_sleep_ms(uint32_t ms);
/* fork(): prepare runs in the parent before, parent/child after.  May
 * allocate: call only once the allocator is ready. */
void rsb_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* --- heap profiling (src/prof.c; hosted) ------------------------------------------ */

/* Return addresses of the calling thread's stack, innermost first, at most
 * max; 0 without an unwinder.  Never calls malloc: libunwind's
 * unw_backtrace (see linux.c). */
int rsb_os_backtrace(void **pcs, int max);
/* False when there is no unwinder: built without libunwind, or
 * librsbmalloc.a linked without it (src/os/unwind.c). */
bool rsb_os_can_unwind(void);
/* The address range of the shared object this code is in; false when it
 * is part of the main program (static link) or cannot be found. */
bool rsb_os_own_code(uintptr_t *lo, uintptr_t *hi);
/* A file to read (/proc/self/maps): -1 if it cannot be opened.  rsb_os_read
 * returns the bytes read, 0 at the end, -1 on error; rsb_os_close when done. */
int rsb_os_open_read(const char *path);
long rsb_os_read(int fd, void *buf, size_t n);
/* Run fn() when SIGUSR2 arrives (SA_RESTART); false if it cannot be set. */
bool rsb_os_on_sigusr2(void (*fn)(void));

/* An identifier of the calling thread that is cheap to read and unique
 * among live threads: the thread pointer (a register or one load). */
static inline uintptr_t rsb_os_thread_id(void) {
#if RSB_FREESTANDING
    return 0;
#elif defined(__x86_64__) || defined(__aarch64__)
    return (uintptr_t)__builtin_thread_pointer();
#else
    extern unsigned long pthread_self(void);
    return (uintptr_t)pthread_self();
#endif
}

#if RSB_FAULT_INJECTION
/* Test hook: the Nth mapping request from now fails (0 = off). */
void rsb_os_fail_after(unsigned long n);
#endif

#endif
