// bench/multi_thread.cc — workloads with real threads: scaling from 1 to 64
// threads, producer/consumer, a larson-style server with remote frees, and
// thread churn.
//
// Every workload uses its own threads (a ThreadTeam, or pthread_create for
// churn) rather than Google Benchmark's ->Threads(): the timed region is the
// wall-clock time of the whole team's batch, start to last finisher, so
// oversubscription (64 threads on 2 cores) and lock convoys show up as they
// would in a program.  All times are real time.
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace rsbbench {
namespace {

// ---- scaling: independent threads, each with a private live window -------

struct ScalingCtx {
    size_t ops_per_thread;
};

void scaling_worker(void *c, int index)
{
    auto *ctx = static_cast<ScalingCtx *>(c);
    constexpr uint32_t kSlots = 256;
    void *slot[kSlots] = {};
    size_t size[kSlots] = {};
    Rng rng((uint64_t)index + 1);
    for (size_t i = 0; i < ctx->ops_per_thread; i++) {
        uint32_t j = rng.below(kSlots);
        if (slot[j] != nullptr)
            bench_free(slot[j], size[j]);
        size[j] = typical_size(rng);
        slot[j] = xalloc(size[j]);
        touch(slot[j], size[j]);
    }
    for (uint32_t j = 0; j < kSlots; j++)
        if (slot[j] != nullptr)
            bench_free(slot[j], size[j]);
}

// A fixed total amount of work split over T threads (strong scaling): each
// thread replaces random blocks in its own window of 256.  On 2 cores the
// ideal is T=1 -> T=2 halves the time and it stays flat after that.
void scaling(benchmark::State &state, int threads, size_t total_ops)
{
    RssProbe rss;
    ThreadTeam team(threads);
    ScalingCtx ctx{total_ops / (size_t)threads};
    for (auto _ : state)
        team.run(scaling_worker, &ctx);
    state.SetItemsProcessed(state.iterations() * (int64_t)(ctx.ops_per_thread * threads));
    rss.report(state);
}

// ---- producer/consumer: every free is a remote free ----------------------

struct alignas(64) Ring {
    static constexpr size_t kCap = 512;
    alignas(64) std::atomic<size_t> head{0}; // advanced by the consumer
    alignas(64) std::atomic<size_t> tail{0}; // advanced by the producer
    alignas(64) void *slot[kCap];
};

struct ProdConsCtx {
    std::vector<Ring> rings; // one per producer/consumer pair
    size_t per_pair;
    explicit ProdConsCtx(size_t pairs) : rings(pairs) {}
};

void prodcons_worker(void *c, int index)
{
    auto *ctx = static_cast<ProdConsCtx *>(c);
    Ring &r = ctx->rings[(size_t)index / 2];
    if (index % 2 == 0) { // producer
        Rng rng((uint64_t)index + 7);
        size_t t = r.tail.load(std::memory_order_relaxed);
        for (size_t i = 0; i < ctx->per_pair; i++, t++) {
            void *p = alloc_tagged(typical_size(rng));
            unsigned spins = 0;
            while (t - r.head.load(std::memory_order_acquire) == Ring::kCap)
                backoff(spins);
            r.slot[t % Ring::kCap] = p;
            r.tail.store(t + 1, std::memory_order_release);
        }
    } else { // consumer
        size_t h = r.head.load(std::memory_order_relaxed);
        for (size_t i = 0; i < ctx->per_pair; i++, h++) {
            unsigned spins = 0;
            while (r.tail.load(std::memory_order_acquire) == h)
                backoff(spins);
            void *p = r.slot[h % Ring::kCap];
            r.head.store(h + 1, std::memory_order_release);
            free_tagged(p);
        }
    }
}

// P producers each stream blocks through a 512-slot ring to their own
// consumer, which frees them: every free is of memory another thread
// allocated.  P=1 fits the 2 cores; P=4 (8 threads) oversubscribes them.
void prodcons(benchmark::State &state, int pairs, size_t total)
{
    RssProbe rss;
    ProdConsCtx ctx((size_t)pairs);
    ctx.per_pair = total / (size_t)pairs;
    ThreadTeam team(2 * pairs);
    for (auto _ : state)
        team.run(prodcons_worker, &ctx);
    state.SetItemsProcessed(state.iterations() * (int64_t)(ctx.per_pair * pairs));
    rss.report(state);
}

// ---- larson-style server ------------------------------------------------

struct LarsonCtx {
    std::vector<std::atomic<void *>> slots;
    size_t regions = 1;
    uint64_t round = 0;
    std::atomic<uint64_t> frees{0}, remote_frees{0};
    explicit LarsonCtx(size_t n) : slots(n) {}
};

// Larson blocks carry {size, allocating thread} in their first 16 bytes.
struct LarsonHeader {
    size_t size;
    size_t owner;
};

void *larson_alloc(Rng &rng, size_t owner)
{
    LarsonHeader h{typical_size(rng), owner};
    void *p = xalloc(h.size);
    std::memcpy(p, &h, sizeof h);
    static_cast<unsigned char *>(p)[h.size - 1] = 1;
    return p;
}

void larson_worker(void *c, int index)
{
    auto *ctx = static_cast<LarsonCtx *>(c);
    Rng rng(ctx->round * 7919 + (uint64_t)index + 1);
    const size_t regions = ctx->regions;
    const size_t len = ctx->slots.size() / regions; // a power of two
    uint64_t frees = 0, remote = 0;
    for (size_t k = 0; k < regions; k++) {
        // Sweep region (index + k): every slot once, in a random order
        // (odd stride modulo a power of two is a permutation).
        std::atomic<void *> *region = &ctx->slots[((size_t)index + k) % regions * len];
        size_t at = rng.below((uint32_t)len), stride = rng.below((uint32_t)len) | 1;
        for (size_t i = 0; i < len; i++, at = (at + stride) & (len - 1)) {
            void *p = larson_alloc(rng, (size_t)index);
            void *old = region[at].exchange(p, std::memory_order_acq_rel);
            if (old != nullptr) {
                LarsonHeader h;
                std::memcpy(&h, old, sizeof h);
                remote += h.owner != (size_t)index;
                frees++;
                bench_free(old, h.size);
            }
        }
    }
    ctx->frees.fetch_add(frees, std::memory_order_relaxed);
    ctx->remote_frees.fetch_add(remote, std::memory_order_relaxed);
}

// A server's worker pool: T threads share one array of blocks split into T
// regions.  In each iteration every thread sweeps every region once, starting
// at its own, replacing each block (random size) and freeing the old one, so
// the block it frees was almost always allocated by another thread (the
// counter remote_frac reports the share).  Stresses remote frees and
// cross-thread reuse, as in Larson & Krishnan's server benchmark.
void larson(benchmark::State &state, int threads, size_t slots)
{
    RssProbe rss;
    LarsonCtx ctx(slots);
    ctx.regions = (size_t)threads;
    Rng seed(99);
    for (auto &s : ctx.slots) // pre-filled by the main thread, untimed
        s.store(larson_alloc(seed, ~size_t(0)), std::memory_order_relaxed);
    ThreadTeam team(threads);
    for (auto _ : state) {
        ctx.round++;
        team.run(larson_worker, &ctx);
    }
    for (auto &s : ctx.slots) {
        void *p = s.load(std::memory_order_relaxed);
        LarsonHeader h;
        std::memcpy(&h, p, sizeof h);
        bench_free(p, h.size);
    }
    state.SetItemsProcessed(state.iterations() * (int64_t)(slots * (size_t)threads));
    uint64_t frees = ctx.frees.load();
    state.counters["remote_frac"] =
        frees ? (double)ctx.remote_frees.load() / (double)frees : 0.0;
    rss.report(state);
}

// ---- thread churn ---------------------------------------------------------

struct ChurnThread {
    static constexpr int kObjects = 64;
    void *keep[kObjects / 2];
    size_t keep_size[kObjects / 2];
    uint64_t seed;
};

void *churn_main(void *arg)
{
    auto *t = static_cast<ChurnThread *>(arg);
    Rng rng(t->seed);
    void *p[ChurnThread::kObjects];
    size_t n[ChurnThread::kObjects];
    for (int i = 0; i < ChurnThread::kObjects; i++) {
        n[i] = typical_size(rng);
        p[i] = xalloc(n[i]);
        touch(p[i], n[i]);
    }
    for (int i = 0; i < ChurnThread::kObjects; i += 2) { // free half here...
        bench_free(p[i], n[i]);
        t->keep[i / 2] = p[i + 1]; // ...and leave half to the main thread
        t->keep_size[i / 2] = n[i + 1];
    }
    return nullptr;
}

// Each iteration starts T short-lived threads at once; each allocates 64
// blocks, frees half, hands the other half to the main thread and exits.
// Measures per-thread set-up and tear-down of the allocator (thread caches
// created, flushed, orphaned) plus frees of a dead thread's memory.
void churn(benchmark::State &state, int threads)
{
    RssProbe rss;
    std::vector<ChurnThread> t((size_t)threads);
    std::vector<pthread_t> tid((size_t)threads);
    uint64_t round = 0;
    for (auto _ : state) {
        for (int i = 0; i < threads; i++) {
            t[(size_t)i].seed = ++round;
            if (pthread_create(&tid[(size_t)i], nullptr, churn_main, &t[(size_t)i]) != 0) {
                state.SkipWithError("pthread_create failed");
                return;
            }
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[(size_t)i], nullptr);
            for (int k = 0; k < ChurnThread::kObjects / 2; k++)
                bench_free(t[(size_t)i].keep[k], t[(size_t)i].keep_size[k]);
        }
    }
    state.SetItemsProcessed(state.iterations() * threads);
    rss.report(state);
}

benchmark::internal::Benchmark *finish(benchmark::internal::Benchmark *b)
{
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
    if (profile().smoke)
        b->Iterations(2);
    return b;
}

} // namespace

void register_multi_thread()
{
    const bool smoke = profile().smoke;
    const size_t scaling_ops = smoke ? 4096 : size_t(1) << 19;
    for (int t : {1, 2, 4, 8, 64})
        finish(benchmark::RegisterBenchmark(("threads/" + std::to_string(t)).c_str(), scaling,
                                            t, scaling_ops));

    const size_t pc_total = smoke ? 4096 : size_t(1) << 17;
    for (int p : {1, 4})
        finish(benchmark::RegisterBenchmark(
            ("prodcons/" + std::to_string(p) + "x" + std::to_string(p)).c_str(), prodcons, p,
            pc_total));

    const size_t larson_slots = smoke ? 256 : 4096; // a power of two
    for (int t : {4, 8})
        finish(benchmark::RegisterBenchmark(("larson/" + std::to_string(t)).c_str(), larson, t,
                                            larson_slots));

    finish(benchmark::RegisterBenchmark("churn/4", churn, 4));
}

} // namespace rsbbench
