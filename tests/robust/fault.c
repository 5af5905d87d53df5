/*
 * Fault injection: the OS layer's Nth mapping request fails
 * (rsb_os_fail_after, built with RSB_FAULT_INJECTION=1), and N walks over a
 * workload.  Every run is a fresh child process (forked from the test, the
 * allocator just initialised), so a single-thread workload makes the same
 * requests in the same order and each N hits a different one.
 *
 * Checked for every N:
 *   - a call that returns NULL does so only when the injected failure hit
 *     during that call, with errno ENOMEM (rsb_posix_memalign: returns
 *     ENOMEM, errno and *out untouched);
 *   - a failed realloc leaves the old block intact: same contents, same
 *     usable size, still freeable;
 *   - afterwards the allocator keeps working: the rest of the workload, a
 *     second pass of it with no fault (must not fail at all), allocations
 *     from another thread, rsb_stats (takes every lock: a leaked lock hangs,
 *     and the child's alarm turns the hang into a failure), and after
 *     freeing everything and rsb_malloc_trim nothing is left in use (no
 *     half-built span or slab).
 *
 * The test executable is linked with --wrap for the three OS functions that
 * count as mapping requests (rsb_os_map, rsb_os_remap_inplace,
 * rsb_os_remap_to): the wrappers only count the requests, so the test knows
 * which request was the injected failure and in which call it happened.
 *
 * RSBT_FAULT_SELFTEST=1 inverts the errno expectation: the walk must then
 * fail (meson runs it with should_fail), which proves that injected failures
 * really surface and are checked.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "robust.h"
#include "rsbmalloc.h"

void rsb_os_fail_after(unsigned long n);

/* ---- observing the mapping requests -------------------------------------- */

void *__real_rsb_os_map(size_t size, size_t align, size_t offset);
void *__real_rsb_os_map_block(size_t size, size_t align, size_t offset);
void *__wrap_rsb_os_map_block(size_t size, size_t align, size_t offset);
bool __real_rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size);
bool __real_rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr);
void *__wrap_rsb_os_map(size_t size, size_t align, size_t offset);
bool __wrap_rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size);
bool __wrap_rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr);

static unsigned long requests;      /* mapping requests since start */
static unsigned long fail_at;       /* single thread: the request injected to fail */
static unsigned long fired;         /* ... and how often it was reached */
static unsigned long hook_broken;   /* the injected request did not fail */
static unsigned long map_failures;  /* rsb_os_map / rsb_os_remap_to failures */
/* Failures of rsb_os_map / rsb_os_remap_to in this thread.  Nothing else
 * makes them fail here (rsb_os_remap_inplace fails naturally whenever the
 * pages after a mapping are taken, so it is not counted); an allocation can
 * only return NULL after one of them failed in the same call. */
static __thread unsigned long fired_here;

static void observe(bool failed, bool counts) {
    unsigned long k = __atomic_add_fetch(&requests, 1, __ATOMIC_SEQ_CST);
    if (k == __atomic_load_n(&fail_at, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
        if (!failed) __atomic_add_fetch(&hook_broken, 1, __ATOMIC_SEQ_CST);
    }
    if (failed && counts) {
        fired_here++;
        __atomic_add_fetch(&map_failures, 1, __ATOMIC_SEQ_CST);
    }
}

void *__wrap_rsb_os_map(size_t size, size_t align, size_t offset) {
    void *p = __real_rsb_os_map(size, align, offset);
    observe(p == NULL, true);
    return p;
}
void *__wrap_rsb_os_map_block(size_t size, size_t align, size_t offset) {
    void *p = __real_rsb_os_map_block(size, align, offset);
    observe(p == NULL, true);
    return p;
}
bool __wrap_rsb_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    bool ok = __real_rsb_os_remap_inplace(p, old_size, new_size);
    observe(!ok, false);
    return ok;
}
bool __wrap_rsb_os_remap_to(void *p, size_t old_size, size_t new_size, void *new_addr) {
    bool ok = __real_rsb_os_remap_to(p, old_size, new_size, new_addr);
    observe(!ok, true);
    return ok;
}

/* Make request number (from now) n fail: the hook counts the same requests. */
static void arm(unsigned long n) {
    __atomic_store_n(&fail_at, __atomic_load_n(&requests, __ATOMIC_SEQ_CST) + n, __ATOMIC_SEQ_CST);
    rsb_os_fail_after(n);
}

/* ---- results shared between the child and the test ----------------------- */

typedef struct shared {
    unsigned long fired, surfaced, absorbed, requests, ops;
    char msg[512];
} shared_t;

static shared_t *sh;
static int expect_errno = ENOMEM;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->msg, sizeof sh->msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fault: %s\n", sh->msg);
    _exit(3);
}

static void setup(void);

/* Run fn(arg) in a child with a timeout; returns true if it exited 0. */
static bool run_child(void (*fn)(void *), void *arg, unsigned timeout_s) {
    setup();
    memset(sh, 0, sizeof *sh);
    pid_t pid = fork();
    RH_CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        alarm(timeout_s);
        fn(arg);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM && !sh->msg[0])
        snprintf(sh->msg, sizeof sh->msg, "timed out after %u s (leaked lock? deadlock?)", timeout_s);
    else if (WIFSIGNALED(st) && !sh->msg[0])
        snprintf(sh->msg, sizeof sh->msg, "killed by signal %d", WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && !sh->msg[0])
        snprintf(sh->msg, sizeof sh->msg, "exit status %d", WEXITSTATUS(st));
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void setup(void) {
    if (sh) return;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    RH_CHECK(sh != MAP_FAILED, "mmap failed");
    const char *s = getenv("RSBT_FAULT_SELFTEST");
    if (s && *s == '1') expect_errno = EINVAL;
}

/* ---- the workload --------------------------------------------------------- */

#define MAXLIVE 48
#define LIVE_CAP (24 * RB_MiB)

typedef struct blk {
    unsigned char *p;
    size_t size, usable, align;
    unsigned fill;
} blk;

typedef struct work {
    blk live[MAXLIVE];
    unsigned n;
    size_t bytes;
    unsigned next_fill;
    bool no_fault; /* a pass in which nothing may fail */
    unsigned long ops, surfaced, absorbed;
} work;

static void check_block(const blk *b, const char *when) {
    size_t bad = rb_check_sparse(b->p, b->fill, b->size);
    if (bad != (size_t)-1)
        die("%s: block %p (size %zu) corrupted at offset %zu", when, (void *)b->p, b->size, bad);
    size_t u = rsb_malloc_usable_size(b->p);
    if (u != b->usable) die("%s: usable size of %p changed from %zu to %zu", when, (void *)b->p, b->usable, u);
}

/* fill: the pattern to use, or -1 for a new one. */
static void add_block(work *w, void *p, size_t size, size_t align, bool zeroed, const char *what, int fill) {
    if ((uintptr_t)p % (align < 16 ? 16 : align))
        die("%s(%zu) align %zu returned misaligned %p", what, size, align, p);
    size_t u = rsb_malloc_usable_size(p);
    if (u < size) die("%s(%zu): usable size %zu too small", what, size, u);
    if (zeroed && !rb_is_zero_sparse(p, size)) die("%s(%zu) returned non-zero memory", what, size);
    blk *b = &w->live[w->n++];
    b->p = p;
    b->size = size;
    b->usable = u;
    b->align = align;
    b->fill = fill >= 0 ? (unsigned)fill : w->next_fill++;
    w->bytes += size;
    rb_fill_sparse(p, b->fill, size);
}

static void drop_block(work *w, unsigned i) {
    w->bytes -= w->live[i].size;
    w->live[i] = w->live[--w->n];
}

/* One call returned NULL (or posix_memalign an error): legal only if the
 * injected failure hit during the call, with the right error. */
static void on_failure(work *w, unsigned long fired_before, int err, const char *what, size_t size) {
    if (w->no_fault) die("%s(%zu) failed (errno %d) in a pass without faults", what, size, err);
    if (fired_here == fired_before)
        die("%s(%zu) failed (errno %d) without an injected failure", what, size, err);
    if (err != expect_errno) die("%s(%zu) failed with errno %d, expected %d", what, size, err, expect_errno);
    w->surfaced++;
}

static size_t pick_size(rb_rng *r) {
    unsigned k = (unsigned)rb_below(r, 100);
    if (k < 12) return (size_t)rb_below(r, 65);                      /* tiny, incl. 0 */
    if (k < 50) return rb_log_uniform(r, 65, RB_SMALL_MAX);          /* small */
    if (k < 82) return RB_SMALL_MAX + 1 + rb_below(r, RB_MEDIUM_MAX - RB_SMALL_MAX); /* medium */
    return RB_MEDIUM_MAX + 1 + rb_below(r, 4 * RB_MiB);              /* huge */
}

static size_t pick_align(rb_rng *r) {
    static const size_t al[] = {32, 64, 4096, 65536, 256 * 1024, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20};
    return al[rb_below(r, sizeof al / sizeof al[0])];
}

static void step(work *w, rb_rng *r) {
    unsigned k = (unsigned)rb_below(r, 100);
    unsigned long before = fired_here;
    w->ops++;
    if (w->n > 0 && (k < 30 || w->n == MAXLIVE || w->bytes > LIVE_CAP)) { /* free */
        unsigned i = (unsigned)rb_below(r, w->n);
        blk *b = &w->live[i];
        size_t bad = rb_check_sparse(b->p, b->fill, b->size);
        if (bad != (size_t)-1) die("before free: block %p size %zu corrupted at %zu", (void *)b->p, b->size, bad);
        int e = errno = 12345;
        rsb_free(b->p);
        if (errno != e) die("free changed errno");
        drop_block(w, i);
        return;
    }
    if (w->n > 0 && k < 50) { /* realloc across classes */
        unsigned i = (unsigned)rb_below(r, w->n);
        blk *b = &w->live[i];
        size_t ns = pick_size(r);
        if (ns == 0) ns = 1;
        void *q = rsb_realloc(b->p, ns);
        if (!q) {
            on_failure(w, before, errno, "realloc", ns);
            check_block(b, "after a failed realloc");
            return;
        }
        if (fired_here != before) w->absorbed++;
        size_t keep = b->size < ns ? b->size : ns;
        size_t bad = rb_check_sparse_n(q, b->fill, b->size, keep);
        if (bad != (size_t)-1) die("realloc %zu -> %zu lost contents at %zu", b->size, ns, bad);
        unsigned fill = b->fill;
        drop_block(w, i);
        add_block(w, q, ns, 16, false, "realloc", (int)fill);
        return;
    }
    size_t size = pick_size(r);
    void *p;
    const char *what;
    size_t align = 16;
    bool zeroed = false;
    int err;
    switch (k % 6) {
    case 0:
        what = "calloc";
        p = rsb_calloc(1 + (size & 7), size / (1 + (size & 7)) + 1);
        size = (1 + (size & 7)) * (size / (1 + (size & 7)) + 1);
        zeroed = true;
        err = errno;
        break;
    case 1:
        what = "memalign";
        align = pick_align(r);
        p = rsb_memalign(align, size);
        err = errno;
        break;
    case 2: {
        what = "posix_memalign";
        align = pick_align(r);
        void *out = (void *)0x1234;
        errno = 4321;
        err = rsb_posix_memalign(&out, align, size);
        if (errno != 4321) die("posix_memalign changed errno");
        p = err ? NULL : out;
        if (err && out != (void *)0x1234) die("posix_memalign wrote *out on failure");
        break;
    }
    case 3:
        what = "aligned_alloc";
        align = pick_align(r);
        p = rsb_aligned_alloc(align, size);
        err = errno;
        break;
    default:
        what = "malloc";
        p = rsb_malloc(size);
        err = errno;
        break;
    }
    if (!p) {
        on_failure(w, before, err, what, size);
        return;
    }
    if (fired_here != before) w->absorbed++;
    add_block(w, p, size, align, zeroed, what, -1);
}

static void check_all(work *w, const char *when) {
    for (unsigned i = 0; i < w->n; i++) check_block(&w->live[i], when);
}

static void free_all(work *w) {
    for (unsigned i = 0; i < w->n; i++) {
        size_t bad = rb_check_sparse(w->live[i].p, w->live[i].fill, w->live[i].size);
        if (bad != (size_t)-1) die("at the end: block of %zu corrupted at %zu", w->live[i].size, bad);
        rsb_free(w->live[i].p);
    }
    w->n = 0;
    w->bytes = 0;
}

static void *other_thread(void *arg) {
    (void)arg;
    for (size_t s = 1; s <= 8 * RB_MiB; s = s * 3 / 2 + 1) {
        unsigned char *p = rsb_malloc(s);
        if (!p) die("another thread: malloc(%zu) failed after the fault", s);
        rb_fill_sparse(p, 7, s);
        if (rb_check_sparse(p, 7, s) != (size_t)-1) die("another thread: block corrupted");
        rsb_free(p);
    }
    return NULL;
}

/* After the fault: everything must still work, and nothing leaked. */
static void recovery(work *w, uint64_t seed, unsigned nops, size_t in_use0) {
    check_all(w, "after the workload");
    free_all(w);
    w->no_fault = true;
    rb_rng r;
    rb_seed(&r, seed);
    for (unsigned i = 0; i < nops; i++) step(w, &r);
    check_all(w, "after the second pass");
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, NULL) != 0) die("pthread_create");
    pthread_join(t, NULL);
    rsb_stats_t st;
    rsb_stats(&st); /* takes every lock */
    free_all(w);
    rsb_malloc_trim(0);
    rsb_stats(&st);
    if (st.in_use > in_use0)
        die("after freeing everything and trim: %zu bytes still in use (was %zu at the start)", st.in_use, in_use0);
}

typedef struct walk_arg {
    unsigned long n;
    uint64_t seed;
    unsigned nops;
} walk_arg;

static void walk_child(void *va) {
    walk_arg *a = va;
    static work w;
    rsb_stats_t st;
    rsb_stats(&st);
    size_t in_use0 = st.in_use;
    unsigned long r0 = requests;
    rb_rng r;
    rb_seed(&r, a->seed);
    if (a->n) arm(a->n);
    for (unsigned i = 0; i < a->nops; i++) {
        step(&w, &r);
        if ((i & 15) == 0) check_all(&w, "during the workload");
    }
    rsb_os_fail_after(0); /* a fault not reached stays armed: disarm it */
    __atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST);
    sh->requests = requests - r0;
    sh->fired = fired;
    sh->surfaced = w.surfaced;
    sh->absorbed = w.absorbed;
    sh->ops = w.ops;
    if (hook_broken) die("the injected request did not fail");
    recovery(&w, a->seed ^ 0x5555, a->nops, in_use0);
}

static unsigned scale_ops(unsigned n) {
    const char *s = getenv("RSBT_FAULT_OPS");
    if (s && atoi(s) > 0) return (unsigned)atoi(s);
    return n;
}

/* Walk N = 1, 2, ... until a run makes fewer than N requests. */
static void walk(uint64_t seed, unsigned nops) {
    walk_arg a = {0, seed, nops};
    RH_CHECK(run_child(walk_child, &a, 120), "run without faults: %s", sh->msg);
    unsigned long total = sh->requests;
    RH_CHECK(total >= 8, "the workload makes only %lu mapping requests", total);
    unsigned long faults = 0, surfaced = 0, absorbed = 0, runs = 0;
    for (unsigned long n = 1; n <= total + 1 && n < 5000; n++) {
        a.n = n;
        bool ok = run_child(walk_child, &a, 60);
        RH_CHECK(ok, "seed %llu, request %lu of %lu failing: %s", (unsigned long long)seed, n, total, sh->msg);
        runs++;
        faults += sh->fired;
        surfaced += sh->surfaced;
        absorbed += sh->absorbed;
        if (sh->requests > total) total = sh->requests;
    }
    fprintf(stderr,
            "fault-walk seed %llu: %lu runs, %lu mapping requests, %lu faults injected, "
            "%lu surfaced as ENOMEM, %lu absorbed (call succeeded anyway)\n",
            (unsigned long long)seed, runs, total, faults, surfaced, absorbed);
    RH_CHECK(faults >= total / 2, "only %lu faults injected for %lu requests", faults, total);
    RH_CHECK(surfaced > faults / 4, "only %lu of %lu faults surfaced as ENOMEM", surfaced, faults);
}

RH_TEST(fault, walk_seed_1) { walk(1, scale_ops(160)); }
RH_TEST(fault, walk_seed_2) { walk(2, scale_ops(160)); }

/* ---- targeted cases: one call, its first mapping request fails ----------- */

typedef struct one_arg {
    int kind;
} one_arg;

enum {
    K_MALLOC_SMALL, K_MALLOC_MEDIUM, K_MALLOC_HUGE, K_CALLOC_SMALL, K_CALLOC_MEDIUM, K_CALLOC_HUGE,
    K_MEMALIGN_64K, K_MEMALIGN_1M, K_MEMALIGN_8M, K_POSIX_MEMALIGN_4M, K_ALIGNED_ALLOC_2M,
    K_VALLOC, K_PVALLOC, K_REALLOC_SMALL_TO_HUGE, K_REALLOC_MEDIUM_TO_HUGE,
    K_REALLOC_ALIGNED_HUGE, K_REALLOC_SMALL_TO_MEDIUM, K_COUNT
};
static const char *kind_name[K_COUNT] = {
    "malloc small", "malloc medium", "malloc huge", "calloc small", "calloc medium", "calloc huge",
    "memalign 64K", "memalign 1M", "memalign 8M", "posix_memalign 4M", "aligned_alloc 2M",
    "valloc", "pvalloc", "realloc small->huge", "realloc medium->huge",
    "realloc huge (align 8M) grow", "realloc small->medium (chunk full)",
};

static void *call_kind(int k, void *old, int *err) {
    void *p = NULL;
    errno = 0;
    switch (k) {
    case K_MALLOC_SMALL: p = rsb_malloc(100); break;
    case K_MALLOC_MEDIUM: p = rsb_malloc(RB_MiB); break;
    case K_MALLOC_HUGE: p = rsb_malloc(9 * RB_MiB); break;
    case K_CALLOC_SMALL: p = rsb_calloc(10, 1000); break;
    case K_CALLOC_MEDIUM: p = rsb_calloc(3, 500 * RB_KiB); break;
    case K_CALLOC_HUGE: p = rsb_calloc(3, 3 * RB_MiB); break;
    case K_MEMALIGN_64K: p = rsb_memalign(65536, 5000); break;
    case K_MEMALIGN_1M: p = rsb_memalign(RB_MiB, 5000); break;
    case K_MEMALIGN_8M: p = rsb_memalign(8 * RB_MiB, 5000); break;
    case K_POSIX_MEMALIGN_4M: {
        void *out = (void *)0x1234;
        errno = 777;
        int e = rsb_posix_memalign(&out, 4 * RB_MiB, 3 * RB_MiB);
        if (errno != 777) die("posix_memalign changed errno");
        if (e) {
            if (out != (void *)0x1234) die("posix_memalign wrote *out on failure");
            *err = e;
            return NULL;
        }
        p = out;
        break;
    }
    case K_ALIGNED_ALLOC_2M: p = rsb_aligned_alloc(2 * RB_MiB, 100); break;
    case K_VALLOC: p = rsb_valloc(70000); break;
    case K_PVALLOC: p = rsb_pvalloc(3 * RB_MiB); break;
    case K_REALLOC_SMALL_TO_HUGE:
    case K_REALLOC_MEDIUM_TO_HUGE: p = rsb_realloc(old, 12 * RB_MiB); break;
    case K_REALLOC_ALIGNED_HUGE: p = rsb_realloc(old, 30 * RB_MiB); break;
    case K_REALLOC_SMALL_TO_MEDIUM: p = rsb_realloc(old, 600 * RB_KiB); break;
    }
    *err = errno;
    return p;
}

static void one_child(void *va) {
    one_arg *a = va;
    int k = a->kind;
    unsigned char *old = NULL;
    size_t old_size = 0;
    void *filler[128];
    unsigned nfill = 0;
    if (k == K_REALLOC_SMALL_TO_HUGE || k == K_REALLOC_SMALL_TO_MEDIUM) old_size = 3000;
    if (k == K_REALLOC_MEDIUM_TO_HUGE) old_size = 700 * RB_KiB;
    if (k == K_REALLOC_ALIGNED_HUGE) {
        old = rsb_memalign(8 * RB_MiB, 5 * RB_MiB);
        old_size = 5 * RB_MiB;
    } else if (old_size) {
        old = rsb_malloc(old_size);
    }
    if (old_size) {
        if (!old) die("setup allocation failed");
        rb_fill_sparse(old, 99, old_size);
    }
    if (k == K_REALLOC_SMALL_TO_MEDIUM) {
        /* Leave no free run of 10 pages: 576 KiB blocks (9 of the default
         * 64 KiB pages) until one needs a new chunk (then no other chunk has
         * 9 free pages in a row), and 6 more fill that chunk's 63 pages. */
        rsb_stats_t st;
        rsb_stats(&st);
        size_t mapped = st.mapped;
        unsigned since = 0;
        bool grew = false;
        while (!grew || since < 6) {
            if (nfill == 128) die("could not fill the chunks");
            filler[nfill++] = rsb_malloc(576 * RB_KiB);
            rsb_stats(&st);
            if (st.mapped != mapped) grew = true, since = 0, mapped = st.mapped;
            else since++;
        }
    }
    size_t old_usable = old ? rsb_malloc_usable_size(old) : 0;
    unsigned long f0 = fired;
    arm(1);
    int err = 0;
    void *p = call_kind(k, old, &err);
    if (fired == f0) die("%s: made no mapping request", kind_name[k]);
    sh->fired = 1;
    if (p && k == K_REALLOC_ALIGNED_HUGE) {
        /* mremap in place failed: the block is copied to a new mapping. */
        size_t bad = rb_check_sparse(p, 99, old_size);
        if (bad != (size_t)-1) die("%s: contents lost at %zu", kind_name[k], bad);
        sh->absorbed = 1;
        old = p;
        old_usable = rsb_malloc_usable_size(old);
    } else if (p) {
        die("%s: succeeded although its mapping request failed", kind_name[k]);
    } else if (err != expect_errno) {
        die("%s: failed with error %d, expected %d", kind_name[k], err, expect_errno);
    } else {
        sh->surfaced = 1;
    }
    if (old) {
        size_t bad = rb_check_sparse(old, 99, old_size);
        if (bad != (size_t)-1) die("%s: old block corrupted at %zu after the failure", kind_name[k], bad);
        if (rsb_malloc_usable_size(old) != old_usable) die("%s: old block's usable size changed", kind_name[k]);
    }
    /* The same call again, with no fault: must work. */
    p = call_kind(k, old, &err);
    if (!p) die("%s: fails again after the fault (error %d)", kind_name[k], err);
    if (old) {
        size_t bad = rb_check_sparse(p, 99, old_size);
        if (bad != (size_t)-1) die("%s: the retried realloc lost contents at %zu", kind_name[k], bad);
    }
    size_t n = rsb_malloc_usable_size(p);
    rb_fill_sparse(p, 0x5a, n);
    rsb_free(p);
    for (unsigned i = 0; i < nfill; i++) rsb_free(filler[i]);
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, NULL) != 0) die("pthread_create");
    pthread_join(t, NULL);
    rsb_malloc_trim(0);
    rsb_stats_t st;
    rsb_stats(&st);
    if (st.in_use != 0) die("%s: %zu bytes in use after freeing everything", kind_name[k], st.in_use);
}

RH_TEST(fault, each_call_fails_cleanly) {
    unsigned failed = 0, surfaced = 0, absorbed = 0;
    for (int k = 0; k < K_COUNT; k++) {
        one_arg a = {k};
        if (!run_child(one_child, &a, 30)) {
            fprintf(stderr, "[ERR ] %s: %s\n", kind_name[k], sh->msg);
            failed++;
        }
        surfaced += (unsigned)sh->surfaced;
        absorbed += (unsigned)sh->absorbed;
    }
    fprintf(stderr,
            "fault-targeted: %d calls, each with its first mapping request failing: %u surfaced as ENOMEM, "
            "%u absorbed, %u test failures\n",
            K_COUNT, surfaced, absorbed, failed);
    RH_CHECK(failed == 0, "%u of %d targeted cases failed", failed, K_COUNT);
}

/* ---- threads: faults while four threads allocate -------------------------- */

#define NT 4
static volatile int stop_threads;
static unsigned long thread_surfaced;

static void *mt_worker(void *arg) {
    rb_rng r;
    rb_seed(&r, (uint64_t)(uintptr_t)arg);
    work *w = calloc(1, sizeof *w);
    while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED)) {
        step(w, &r);
        if ((w->ops & 31) == 0) check_all(w, "thread");
    }
    check_all(w, "thread end");
    free_all(w);
    __atomic_add_fetch(&thread_surfaced, w->surfaced, __ATOMIC_RELAXED);
    free(w);
    return NULL;
}

static void mt_child(void *va) {
    (void)va;
    pthread_t t[NT];
    for (uintptr_t i = 0; i < NT; i++)
        if (pthread_create(&t[i], NULL, mt_worker, (void *)(i + 11))) die("pthread_create");
    rb_rng r;
    rb_seed(&r, 77);
    struct timespec ts = {0, 2 * 1000 * 1000};
    for (int i = 0; i < 400; i++) {
        arm(1 + rb_below(&r, 6));
        nanosleep(&ts, NULL);
    }
    rsb_os_fail_after(0);
    __atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    sh->fired = map_failures;
    sh->surfaced = thread_surfaced;
    rsb_stats_t st;
    rsb_stats(&st);
    rsb_malloc_trim(0);
}

RH_TEST(fault, threads) {
    bool ok = run_child(mt_child, NULL, 120);
    RH_CHECK(ok, "%s", sh->msg);
    fprintf(stderr, "fault-threads: %lu faults injected, %lu surfaced as ENOMEM in %d threads\n", sh->fired,
            sh->surfaced, NT);
    RH_CHECK(sh->fired >= 3, "only %lu faults injected", sh->fired);
}

int main(int argc, char **argv) { return rh_main(argc, argv); }
