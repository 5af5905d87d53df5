/* Heap profiling: see prof.h. */
#include "prof.h"

#include "entry.h"
#include "error.h"
#include "options.h"
#include "os/os.h"
#include "spinlock.h"

bool rsb_prof_active;
uint16_t rsb_prof_filter[1 << RSB_PROF_FILTER_BITS];
__thread rsb_prof_tls rsb_prof_t __attribute__((tls_model("initial-exec")));

#if RSB_PROF

#define PROF_DEPTH 64                   /* frames kept per stack */
#define REC_CAP ((size_t)1 << 17)       /* live sampled blocks (3 MiB of table) */
#define STACK_CAP ((size_t)1 << 14)     /* distinct stacks (9 MiB, touched as used) */
#define STACK_SLOTS (2 * STACK_CAP)     /* the stacks' hash index */

typedef struct prof_rec {
    uintptr_t addr; /* 0: empty slot */
    uint64_t size;  /* bytes requested */
    uint32_t stack; /* index into stacks */
} prof_rec;

typedef struct prof_stack {
    uint64_t hash;
    uint32_t depth;
    double alloc_n, alloc_b; /* estimated allocations since start-up */
    double live_n, live_b;   /* scratch of a dump */
    void *pcs[PROF_DEPTH];   /* return addresses, innermost first */
} prof_stack;

static struct {
    rsb_lock lock;
    double rate;            /* R: mean bytes between samples */
    prof_rec *recs;         /* REC_CAP */
    size_t nrecs;
    prof_stack *stacks;     /* STACK_CAP */
    uint32_t *stack_index;  /* STACK_SLOTS: 1 + stack, 0 empty */
    uint32_t nstacks;
    uint64_t dropped;       /* samples lost to full tables */
    uintptr_t own_lo, own_hi; /* our own code, whose frames a stack leaves out */
    uint32_t seq;           /* dumps written */
    uint32_t pending;       /* SIGUSR2 arrived while the lock was held */
} prof = {.lock = RSB_LOCK_INIT};

/* --- numbers without libm ----------------------------------------------------- */

static const double LN2 = 0.69314718055994530942;

/* e^x for x <= 0 (0 below -700): x = k ln2 + r, 0 <= r < ln2, Taylor series
 * for e^r (16 terms: error below 1e-16), times 2^k. */
static double exp_neg(double x) {
    if (x < -700) return 0;
    int k = 0;
    while (x < -LN2 * 16) x += LN2 * 16, k += 16;
    while (x < 0) x += LN2, k++;
    double term = 1, sum = 1;
    for (int i = 1; i < 17; i++) {
        term *= x / i;
        sum += term;
    }
    while (k >= 16) sum /= 65536.0, k -= 16;
    while (k-- > 0) sum /= 2;
    return sum;
}

/* ln x for 0 < x <= 1: x = m 2^e with m in [sqrt(1/2), sqrt(2)), then
 * ln m = 2 atanh((m-1)/(m+1)) by its series (|s| < 0.172: 10 terms). */
static double log_unit(double x) {
    uint64_t bits;
    __builtin_memcpy(&bits, &x, 8);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
    double m;
    __builtin_memcpy(&m, &bits, 8);
    if (m > 1.41421356237309504880) m /= 2, e++;
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int i = 1; i < 22; i += 2) {
        sum += term / i;
        term *= s2;
    }
    return 2 * sum + e * LN2;
}

/* The unbiased weight of a sampled block of size bytes: 1 / P(sampled). */
static double weight(uint64_t size) {
    double p = 1 - exp_neg(-(double)size / prof.rate);
    return p > 0 ? 1 / p : 1;
}

static uint64_t next_random(rsb_prof_tls *t) {
    uint64_t x = t->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Bytes until the next sample: exponential with mean R. */
static int64_t draw(rsb_prof_tls *t) {
    double u = (double)((next_random(t) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double d = -log_unit(u) * prof.rate;
    return d >= 4e18 ? (int64_t)4e18 : (int64_t)d;
}

/* --- tables (prof.lock held) ------------------------------------------------------ */

static size_t rec_home(uintptr_t addr) {
    uint64_t h = (uint64_t)addr * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 40) & (REC_CAP - 1);
}

static uint64_t stack_hash(void *const *pcs, int n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)(uintptr_t)pcs[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* The index of this stack, added if new; UINT32_MAX if the table is full. */
static uint32_t stack_find(void *const *pcs, int n) {
    uint64_t h = stack_hash(pcs, n);
    for (size_t i = (size_t)h & (STACK_SLOTS - 1);; i = (i + 1) & (STACK_SLOTS - 1)) {
        uint32_t s = prof.stack_index[i];
        if (s == 0) {
            if (prof.nstacks >= STACK_CAP) return UINT32_MAX;
            uint32_t id = prof.nstacks++;
            prof_stack *st = &prof.stacks[id];
            st->hash = h;
            st->depth = (uint32_t)n;
            for (int k = 0; k < n; k++) st->pcs[k] = pcs[k];
            prof.stack_index[i] = id + 1;
            return id;
        }
        const prof_stack *st = &prof.stacks[s - 1];
        if (st->hash != h || st->depth != (uint32_t)n) continue;
        int k = 0;
        while (k < n && st->pcs[k] == pcs[k]) k++;
        if (k == n) return s - 1;
    }
}

static void rec_insert(uintptr_t addr, uint64_t size, uint32_t stack) {
    uint16_t *f = &rsb_prof_filter[rsb_prof_filter_slot((void *)addr)];
    if (prof.nrecs >= REC_CAP / 4 * 3 || *f == UINT16_MAX) {
        prof.dropped++;
        return;
    }
    size_t h = rec_home(addr), i = h;
    while (prof.recs[i].addr != 0) {
        if (prof.recs[i].addr == addr) { /* cannot happen: freed blocks are forgotten */
            prof.recs[i].size = size;
            prof.recs[i].stack = stack;
            return;
        }
        i = (i + 1) & (REC_CAP - 1);
    }
    prof.recs[i] = (prof_rec){.addr = addr, .size = size, .stack = stack};
    prof.nrecs++;
    __atomic_store_n(f, (uint16_t)(*f + 1), __ATOMIC_RELAXED);
}

/* Remove the record of addr, if any: linear probing's backward shift moves
 * each later record of the cluster that may live in the hole into it. */
static void rec_remove(uintptr_t addr) {
    size_t h = rec_home(addr), i = h;
    while (prof.recs[i].addr != addr) {
        if (prof.recs[i].addr == 0) return;
        i = (i + 1) & (REC_CAP - 1);
    }
    uint16_t *f = &rsb_prof_filter[rsb_prof_filter_slot((void *)addr)];
    __atomic_store_n(f, (uint16_t)(*f - 1), __ATOMIC_RELAXED);
    prof.nrecs--;
    for (size_t j = i;;) {
        j = (j + 1) & (REC_CAP - 1);
        if (prof.recs[j].addr == 0) break;
        size_t k = rec_home(prof.recs[j].addr);
        /* the record at j stays if its home k lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        prof.recs[i] = prof.recs[j];
        i = j;
    }
    prof.recs[i].addr = 0;
}

/* --- dump --------------------------------------------------------------------------- */

/* A tiny formatter onto a file descriptor (no stdio, no malloc). */
typedef struct out {
    int fd;
    bool failed;
    size_t len;
    char data[8192];
} out;

static out out_buf; /* prof.lock held */

static void out_flush(out *o) {
    if (o->len) rsb_os_write_fd(o->fd, o->data, o->len);
    o->len = 0;
}

static void out_mem(out *o, const char *s, size_t n) {
    while (n) {
        if (o->len == sizeof o->data) out_flush(o);
        size_t k = sizeof o->data - o->len;
        if (k > n) k = n;
        rsb_memcpy(o->data + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void out_str(out *o, const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    out_mem(o, s, n);
}

static void out_dec(out *o, uint64_t v) {
    char tmp[24];
    unsigned n = 0;
    do tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    out_mem(o, tmp + sizeof tmp - n, n);
}

static void out_hex(out *o, uintptr_t v) {
    char tmp[2 + 2 * sizeof v];
    unsigned n = 0;
    do tmp[sizeof tmp - ++n] = "0123456789abcdef"[v & 15];
    while ((v >>= 4) != 0);
    tmp[sizeof tmp - ++n] = 'x';
    tmp[sizeof tmp - ++n] = '0';
    out_mem(o, tmp + sizeof tmp - n, n);
}

static uint64_t round_u(double x) { return x <= 0 ? 0 : (uint64_t)(x + 0.5); }

/* The frame pprof should name for stack position k: the allocation site is
 * the first, a return address like the others, but pprof subtracts 1 only
 * from the others (to land inside the call instruction), so do it here. */
static uintptr_t frame_pc(const prof_stack *st, uint32_t k) {
    uintptr_t pc = (uintptr_t)st->pcs[k];
    return k == 0 && pc ? pc - 1 : pc;
}

static void write_heap(out *o, double tn, double tb, double an, double ab) {
    out_str(o, "heap profile: ");
    out_dec(o, round_u(tn));
    out_str(o, ": ");
    out_dec(o, round_u(tb));
    out_str(o, " [");
    out_dec(o, round_u(an));
    out_str(o, ": ");
    out_dec(o, round_u(ab));
    out_str(o, "] @ heapprofile\n");
    for (uint32_t s = 0; s < prof.nstacks; s++) {
        const prof_stack *st = &prof.stacks[s];
        if (round_u(st->live_n) == 0 && round_u(st->alloc_n) == 0) continue;
        out_dec(o, round_u(st->live_n));
        out_str(o, ": ");
        out_dec(o, round_u(st->live_b));
        out_str(o, " [");
        out_dec(o, round_u(st->alloc_n));
        out_str(o, ": ");
        out_dec(o, round_u(st->alloc_b));
        out_str(o, "] @");
        for (uint32_t k = 0; k < st->depth; k++) {
            out_str(o, " ");
            out_hex(o, frame_pc(st, k));
        }
        out_str(o, "\n");
    }
    out_str(o, "\nMAPPED_LIBRARIES:\n");
    int fd = rsb_os_open_read("/proc/self/maps");
    if (fd >= 0) {
        out_flush(o);
        long n;
        while ((n = rsb_os_read(fd, o->data, sizeof o->data)) > 0) {
            o->len = (size_t)n;
            out_flush(o);
        }
        rsb_os_close(fd);
    }
    out_flush(o);
}

/* "outermost;...;allocation site bytes": what flamegraph.pl and speedscope read. */
static void write_collapsed(out *o) {
    for (uint32_t s = 0; s < prof.nstacks; s++) {
        const prof_stack *st = &prof.stacks[s];
        if (round_u(st->live_b) == 0 || st->depth == 0) continue;
        for (uint32_t k = st->depth; k-- > 0;) {
            out_hex(o, frame_pc(st, k));
            out_str(o, k ? ";" : " ");
        }
        out_dec(o, round_u(st->live_b));
        out_str(o, "\n");
    }
    out_flush(o);
}

static void warn(const char *what, const char *path) {
    rsb_buf b = {.len = 0};
    rsb_buf_str(&b, "rsbmalloc: warning: heap profile: ");
    rsb_buf_str(&b, what);
    rsb_buf_str(&b, path);
    rsb_buf_str(&b, "\n");
    rsb_buf_flush(&b, 2);
}

static bool write_file(const char *path, bool heap, double tn, double tb, double an, double ab) {
    out *o = &out_buf;
    o->fd = rsb_os_open_report(path);
    if (o->fd < 0) {
        warn("cannot write ", path);
        return false;
    }
    o->len = 0;
    if (heap) write_heap(o, tn, tb, an, ab);
    else write_collapsed(o);
    rsb_os_close(o->fd);
    return true;
}

/* prof.lock held. */
static int dump_locked(const char *path) {
    char heap[sizeof rsb_opt.prof_prefix + 48], coll[sizeof heap + 16];
    size_t n = 0;
    if (path) {
        while (path[n] && n + 1 < sizeof heap) heap[n] = path[n], n++;
        heap[n] = 0;
        if (path[n]) {
            warn("path too long: ", path);
            return -1;
        }
    } else {
        rsb_buf b = {.len = 0};
        rsb_buf_str(&b, rsb_opt.prof_prefix);
        rsb_buf_str(&b, ".");
        rsb_buf_dec(&b, rsb_os_pid());
        rsb_buf_str(&b, ".");
        rsb_buf_dec(&b, prof.seq++);
        rsb_buf_str(&b, ".heap");
        for (n = 0; n < b.len && n + 1 < sizeof heap; n++) heap[n] = b.data[n];
        heap[n] = 0;
    }
    size_t m = n;
    if (m >= 5 && __builtin_memcmp(heap + m - 5, ".heap", 5) == 0) m -= 5;
    rsb_memcpy(coll, heap, m);
    rsb_memcpy(coll + m, ".collapsed", 11);

    double tn = 0, tb = 0, an = 0, ab = 0;
    for (uint32_t s = 0; s < prof.nstacks; s++) {
        prof.stacks[s].live_n = prof.stacks[s].live_b = 0;
        an += prof.stacks[s].alloc_n;
        ab += prof.stacks[s].alloc_b;
    }
    for (size_t i = 0; i < REC_CAP; i++) {
        const prof_rec *r = &prof.recs[i];
        if (!r->addr) continue;
        double w = weight(r->size);
        prof_stack *st = &prof.stacks[r->stack];
        st->live_n += w;
        st->live_b += w * (double)r->size;
        tn += w;
        tb += w * (double)r->size;
    }
    if (prof.dropped) {
        rsb_buf b = {.len = 0};
        rsb_buf_str(&b, "rsbmalloc: warning: heap profile: ");
        rsb_buf_dec(&b, prof.dropped);
        rsb_buf_str(&b, " samples dropped (tables full)\n");
        rsb_buf_flush(&b, 2);
    }
    bool ok = write_file(heap, true, tn, tb, an, ab);
    ok = write_file(coll, false, 0, 0, 0, 0) && ok;
    return ok ? 0 : -1;
}

/* A dump asked for by SIGUSR2 while the lock was held: by whoever releases it. */
static void prof_release(void) {
    rsb_lock_release(&prof.lock);
    if (unlikely(__atomic_load_n(&prof.pending, __ATOMIC_RELAXED)) && rsb_lock_try(&prof.lock)) {
        if (__atomic_exchange_n(&prof.pending, 0, __ATOMIC_RELAXED)) dump_locked(NULL);
        rsb_lock_release(&prof.lock);
    }
}

/* --- sampling ----------------------------------------------------------------------- */

/* The stack of the allocation, without the allocator's own frames. */
static int capture(void **pcs) {
    void *raw[PROF_DEPTH + 8];
    int n = rsb_os_backtrace(raw, PROF_DEPTH + 8), k = 0;
    while (k < n && (uintptr_t)raw[k] >= prof.own_lo && (uintptr_t)raw[k] < prof.own_hi) k++;
    int m = 0;
    while (k < n && m < PROF_DEPTH) pcs[m++] = raw[k++];
    return m;
}

bool rsb_prof_decide(size_t size) {
    rsb_prof_tls *t = &rsb_prof_t;
    if (t->busy) { /* an allocation of the profiler's own */
        t->left += (int64_t)size;
        return false;
    }
    if (t->rng == 0) { /* the thread's first: start its countdown */
        t->rng = (rsb_os_random() ^ (uint64_t)rsb_os_thread_id() * 0x9e3779b97f4a7c15ull) | 1;
        t->left = draw(t) - (int64_t)size;
        if (t->left >= 0) return false;
    }
    t->left = draw(t);
    return true;
}

void rsb_prof_record(void *p, size_t size) {
    rsb_prof_tls *t = &rsb_prof_t;
    t->busy = 1;
    void *pcs[PROF_DEPTH];
    int n = capture(pcs);
    double w = weight(size);
    rsb_lock_acquire(&prof.lock);
    uint32_t s = stack_find(pcs, n);
    if (s == UINT32_MAX) {
        prof.dropped++;
    } else {
        prof.stacks[s].alloc_n += w;
        prof.stacks[s].alloc_b += w * (double)size;
        rec_insert((uintptr_t)p, size, s);
    }
    prof_release();
    t->busy = 0;
}

void rsb_prof_forget(void *p) {
    rsb_lock_acquire(&prof.lock);
    rec_remove((uintptr_t)p);
    prof_release();
}

/* --- control -------------------------------------------------------------------------- */

static void on_signal(void) {
    if (rsb_lock_try(&prof.lock)) {
        dump_locked(NULL);
        rsb_lock_release(&prof.lock);
    } else {
        __atomic_store_n(&prof.pending, 1, __ATOMIC_RELAXED);
    }
}

static void *map_table(size_t bytes) { return rsb_os_map(rsb_align_up(bytes, rsb_os_page), rsb_os_page, 0); }

void rsb_prof_start(void) {
    if (!rsb_opt.prof || rsb_prof_active) return;
    if (!rsb_os_can_unwind()) {
        static const char msg[] = "rsbmalloc: warning: RSBMALLOC_PROF: no unwinder linked (librsbmalloc.a: link "
                                  "with -Wl,-u,rsb_os_unwind -lunwind -llzma); profiling is off\n";
        rsb_os_write_fd(2, msg, sizeof msg - 1);
        return;
    }
    prof.rate = (double)rsb_opt.prof_sample;
    prof.recs = map_table(REC_CAP * sizeof(prof_rec));
    prof.stacks = map_table(STACK_CAP * sizeof(prof_stack));
    prof.stack_index = map_table(STACK_SLOTS * sizeof(uint32_t));
    if (!prof.recs || !prof.stacks || !prof.stack_index) {
        warn("cannot map its tables; profiling is off", "");
        return;
    }
    if (!rsb_os_own_code(&prof.own_lo, &prof.own_hi)) prof.own_lo = prof.own_hi = 0;
    /* The unwinder's first call sets up its caches: here, not inside a
     * program's malloc. */
    rsb_prof_t.busy = 1;
    void *pcs[PROF_DEPTH];
    capture(pcs);
    rsb_prof_t.busy = 0;
    if (rsb_opt.prof_signal && !rsb_os_on_sigusr2(on_signal))
        warn("cannot handle SIGUSR2", "");
    __atomic_store_n(&rsb_prof_active, true, __ATOMIC_RELEASE);
    rsb_gate_slow(); /* from now on every malloc comes through entry.c */
}

void rsb_prof_exit(void) {
    if (!rsb_prof_active) return;
    rsb_prof_t.busy = 1;
    rsb_lock_acquire(&prof.lock);
    dump_locked(NULL);
    rsb_lock_release(&prof.lock);
    rsb_prof_t.busy = 0;
}

int rsb_prof_dump_now(const char *path) {
    if (!rsb_prof_active) return -1;
    rsb_prof_t.busy = 1;
    rsb_lock_acquire(&prof.lock);
    int r = dump_locked(path);
    prof_release();
    rsb_prof_t.busy = 0;
    return r;
}

void rsb_prof_lock(void) {
    if (rsb_prof_active) rsb_lock_acquire(&prof.lock);
}
void rsb_prof_unlock(void) {
    if (rsb_prof_active) rsb_lock_release(&prof.lock);
}
void rsb_prof_reset(void) {
    if (rsb_prof_active) rsb_lock_reset(&prof.lock);
}

#else /* built without libunwind */

bool rsb_prof_decide(size_t size) { return (void)size, false; }
void rsb_prof_record(void *p, size_t size) { (void)p, (void)size; }
void rsb_prof_forget(void *p) { (void)p; }

void rsb_prof_start(void) {
    static const char msg[] =
        "rsbmalloc: warning: RSBMALLOC_PROF: heap profiling is not built in (no libunwind at build time); ignored\n";
    if (rsb_opt.prof) rsb_os_write_fd(2, msg, sizeof msg - 1);
}
void rsb_prof_exit(void) {}
int rsb_prof_dump_now(const char *path) { return (void)path, -1; }
void rsb_prof_lock(void) {}
void rsb_prof_unlock(void) {}
void rsb_prof_reset(void) {}

#endif
