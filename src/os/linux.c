/*
 * The OS contract (os.h) on Linux: the only file of the hosted core that
 * makes system calls or uses pthreads.  Every function preserves errno, so
 * free() never changes errno even when it purges or unmaps.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <linux/futex.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

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

/* System calls go straight to the kernel, not through libc's wrappers: a
 * preloaded library may replace mmap or clock_gettime (libfaketime, tracers)
 * and allocate inside its replacement, which would re-enter the allocator
 * during its own initialisation or under its arena lock.  Sanitizer builds
 * keep libc's wrappers, which the sanitizers intercept to track mappings. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSB_LIBC_SYSCALLS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define RSB_LIBC_SYSCALLS 1
#endif
#endif
#ifndef RSB_LIBC_SYSCALLS
#define RSB_LIBC_SYSCALLS 0
#endif

#if RSB_LIBC_SYSCALLS
#define sys_mmap mmap
#define sys_munmap munmap
#define sys_madvise madvise
#define sys_mremap mremap
#else
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
static int sys_munmap(void *addr, size_t len) { return (int)syscall(SYS_munmap, addr, len); }
static int sys_madvise(void *addr, size_t len, int advice) {
    return (int)syscall(SYS_madvise, addr, len, advice);
}
static void *sys_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr) {
    return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}
#endif

/* MAP_NORESERVE: address space only (the kernel's heuristic overcommit
 * then never refuses); without it the mapping is charged and may be
 * refused, which is what a user block needs. */
static void *raw_map(size_t size, int extra) {
    void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void *map_aligned(size_t size, size_t align, size_t offset, int extra);

void *rsb_os_map(size_t size, size_t align, size_t offset) { return map_aligned(size, align, offset, MAP_NORESERVE); }
void *rsb_os_map_block(size_t size, size_t align, size_t offset) { return map_aligned(size, align, offset, 0); }

static void *map_aligned(size_t size, size_t align, size_t offset, int extra) {
    int saved = errno;
    void *res = NULL;
    if (injected_failure()) goto out;
    if (align <= rsb_os_page && offset == 0) {
        res = raw_map(size, extra);
        goto out;
    }
    /* Over-map by align, then trim the head and the tail.  Try the exact size
     * first: the kernel often hands out an address that already fits. */
    void *p = raw_map(size, extra);
    if (p && (((uintptr_t)p + offset) & (align - 1)) == 0) {
        res = p;
        goto out;
    }
    if (p) sys_munmap(p, size);
    if (size > SIZE_MAX - align) goto out;
    char *raw = raw_map(size + align, extra);
    if (!raw) goto out;
    uintptr_t start = (((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    if (start < (uintptr_t)raw) start += align;
    size_t head = start - (uintptr_t)raw;
    size_t tail = align - head;
    if (head) sys_munmap(raw, head);
    if (tail) sys_munmap((char *)start + size, tail);
    res = (void *)start;
out:
    errno = saved;
    return res;
}

void rsb_os_unmap(void *p, size_t size) {
    int saved = errno;
    sys_munmap(p, size);
    errno = saved;
}

bool rsb_os_purge(void *p, size_t size) {
    int saved = errno;
    bool ok = sys_madvise(p, size, MADV_DONTNEED) == 0;
    errno = saved;
    return ok;
}

bool rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    int saved = errno;
    bool ok = !injected_failure() && sys_mremap(p, old_size, new_size, 0, NULL) != MAP_FAILED;
    errno = saved;
    return ok;
}

bool rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr) {
    int saved = errno;
    bool ok = !injected_failure() &&
              sys_mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) != MAP_FAILED;
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

/* The clock: the kernel's vDSO function, found through the auxiliary vector
 * (not libc's clock_gettime, for the reason above), or the system call. */
typedef int (*vdso_clock_fn)(clockid_t, struct timespec *);
static vdso_clock_fn vdso_clock; /* set once by rsb_os_init */

#if __SIZEOF_POINTER__ == 8
typedef Elf64_Ehdr elf_ehdr;
typedef Elf64_Phdr elf_phdr;
typedef Elf64_Dyn elf_dyn;
typedef Elf64_Sym elf_sym;
#else
typedef Elf32_Ehdr elf_ehdr;
typedef Elf32_Phdr elf_phdr;
typedef Elf32_Dyn elf_dyn;
typedef Elf32_Sym elf_sym;
#endif

/* Address of the function `name` in the vDSO image the kernel mapped at
 * AT_SYSINFO_EHDR (NULL if there is none, e.g. under valgrind).  Symbols
 * are counted with DT_HASH, which the kernel always links in. */
static void *vdso_lookup(const char *name) {
    const elf_ehdr *eh = (const elf_ehdr *)getauxval(AT_SYSINFO_EHDR);
    if (!eh || __builtin_memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return NULL;
    const elf_phdr *ph = (const elf_phdr *)((const char *)eh + eh->e_phoff);
    uintptr_t bias = 0;
    const elf_dyn *dyn = NULL;
    bool loaded = false;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !loaded) {
            bias = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
            loaded = true;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const elf_dyn *)((const char *)eh + ph[i].p_offset);
        }
    }
    if (!loaded || !dyn) return NULL;
    const elf_sym *sym = NULL;
    const char *str = NULL;
    const uint32_t *hash = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB) sym = (const elf_sym *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_STRTAB) str = (const char *)(bias + dyn->d_un.d_ptr);
        if (dyn->d_tag == DT_HASH) hash = (const uint32_t *)(bias + dyn->d_un.d_ptr);
    }
    if (!sym || !str || !hash) return NULL;
    for (uint32_t i = 0; i < hash[1]; i++) { /* hash[1]: number of symbols */
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC || sym[i].st_shndx == SHN_UNDEF) continue;
        if (strcmp(str + sym[i].st_name, name) == 0) return (void *)(bias + sym[i].st_value);
    }
    return NULL;
}

static void clock_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    vdso_clock = (vdso_clock_fn)vdso_lookup("__vdso_clock_gettime");
#elif defined(__aarch64__) || defined(__riscv)
    vdso_clock = (vdso_clock_fn)vdso_lookup("__kernel_clock_gettime");
#elif defined(__arm__)
    vdso_clock = (vdso_clock_fn)vdso_lookup("__vdso_clock_gettime");
#endif
}

static void clock_now(clockid_t id, struct timespec *ts) {
    if (vdso_clock && vdso_clock(id, ts) == 0) return;
    if (syscall(SYS_clock_gettime, id, ts) != 0) ts->tv_sec = ts->tv_nsec = 0;
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
    clock_now(CLOCK_MONOTONIC, &ts);
    r ^= (uint64_t)ts.tv_nsec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&r;
    r ^= r >> 31;
    return r | 1;
}

uint64_t rsb_os_now_ms(void) {
    struct timespec ts;
    int saved = errno;
    clock_now(CLOCK_MONOTONIC_COARSE, &ts);
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rsb_os_yield(void) { sched_yield(); }

/* Private futexes: the words are in this process's memory. */
void rsb_os_wait(uint32_t *word, uint32_t expected) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    errno = saved;
}

void rsb_os_wake(uint32_t *word) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

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

int rsb_os_open_report(const char *path) {
    int saved = errno;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    errno = saved;
    return fd;
}

void rsb_os_close(int fd) {
    int saved = errno;
    syscall(SYS_close, fd);
    errno = saved;
}

unsigned long rsb_os_pid(void) { return (unsigned long)syscall(SYS_getpid); }

extern char **environ;

/* environ directly: getenv is fine too, but this runs before libc may be
 * ready, and must never allocate. */
const char *rsb_os_getenv(const char *name) {
    char **env = environ;
    if (!env) return NULL;
    for (; *env; env++) {
        const char *s = *env, *n = name;
        while (*n && *s == *n) s++, n++;
        if (!*n && *s == '=') return s + 1;
    }
    return NULL;
}

/* Thread exit through a pthread key destructor: glibc's pthread_key_create
 * takes a slot in a static table and does not allocate. */
static pthread_key_t exit_key;
static bool exit_key_ok;

bool rsb_os_thread_exit_init(void (*fn)(void *arg)) {
    exit_key_ok = pthread_key_create(&exit_key, fn) == 0;
    return exit_key_ok;
}

bool rsb_os_on_thread_exit(void *arg) { return exit_key_ok && pthread_setspecific(exit_key, arg) == 0; }

static pthread_t own_thread;
static void (*own_fn)(void *);
static void *own_arg;

static void *own_main(void *unused) {
    (void)unused;
    own_fn(own_arg);
    return NULL;
}

bool rsb_os_thread_start(void (*fn)(void *arg), void *arg) {
    own_fn = fn;
    own_arg = arg;
    return pthread_create(&own_thread, NULL, own_main, NULL) == 0;
}

void rsb_os_thread_join(void) { pthread_join(own_thread, NULL); }

void rsb_os_sleep_ms(uint32_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    int saved = errno;
    syscall(SYS_nanosleep, &ts, NULL);
    errno = saved;
}

void rsb_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    pthread_atfork(prepare, parent, child);
}

void rsb_os_init(void) {
    unsigned long p = getauxval(AT_PAGESZ);
    if (!p) p = (unsigned long)sysconf(_SC_PAGESIZE);
    rsb_os_page = p ? (size_t)p : 4096;
    clock_init();
}

/* --- heap profiling -------------------------------------------------------------- */

/* The unwinder.  glibc's backtrace() is out: on its first call it dlopens
 * libgcc_s, which calls malloc (and takes the loader lock), from inside
 * malloc.  libunwind's unw_backtrace (what gperftools and jemalloc use)
 * walks the stack from the DWARF call-frame information with its own
 * caches in memory it maps itself, never calling malloc; the profiler still
 * marks the thread as "in the profiler" around it (src/prof.c), so that a
 * nested allocation, should an unusual path allocate, is served unsampled,
 * and warms it up once at start-up. */
int rsb_os_unwind(void **pcs, int max) __attribute__((weak)); /* unwind.c */

int rsb_os_backtrace(void **pcs, int max) {
    if (!rsb_os_unwind) return 0;
    int saved = errno;
    int n = rsb_os_unwind(pcs, max);
    errno = saved;
    return n < 0 ? 0 : n;
}

bool rsb_os_can_unwind(void) { return rsb_os_unwind != NULL; }

struct own_code {
    uintptr_t at, lo, hi;
    bool found, main_program;
};

static int own_code_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct own_code *o = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (o->at < lo || o->at >= hi) return 0;
    o->found = true;
    o->main_program = info->dlpi_name == NULL || info->dlpi_name[0] == 0;
    o->lo = lo;
    o->hi = hi;
    return 1;
}

/* dl_iterate_phdr does not allocate (it takes the loader lock, which is
 * recursive, so this works even from inside the loader). */
bool rsb_os_own_code(uintptr_t *lo, uintptr_t *hi) {
    int saved = errno;
    struct own_code o = {.at = (uintptr_t)(void *)&rsb_os_own_code};
    dl_iterate_phdr(own_code_cb, &o);
    errno = saved;
    if (!o.found || o.main_program) return false;
    *lo = o.lo;
    *hi = o.hi;
    return true;
}

int rsb_os_open_read(const char *path) {
    int saved = errno;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    errno = saved;
    return fd;
}

long rsb_os_read(int fd, void *buf, size_t n) {
    int saved = errno;
    long r;
    do r = syscall(SYS_read, fd, buf, n);
    while (r < 0 && errno == EINTR);
    errno = saved;
    return r;
}

static void (*signal_fn)(void);
static void signal_trampoline(int sig) {
    (void)sig;
    int saved = errno;
    signal_fn();
    errno = saved;
}

bool rsb_os_on_sigusr2(void (*fn)(void)) {
    signal_fn = fn;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = signal_trampoline;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGUSR2, &sa, NULL) == 0;
}
