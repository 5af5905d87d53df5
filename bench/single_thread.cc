// bench/single_thread.cc — single-thread workloads: malloc+free pairs by size,
// batches freed in FIFO/LIFO/random order, realloc growth and shrink, and
// aligned allocation.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace rsbbench {
namespace {

// One malloc+free pair per iteration, same size every time: the allocator's
// fast path for that size (thread cache hit, no contention).  A few other
// blocks of the size stay live meanwhile, as in a real program; otherwise
// allocators that release a page when its last block is freed (mimalloc
// retires it) would run their slow path on every iteration.
void pair(benchmark::State &state, size_t n)
{
    RssProbe rss;
    constexpr int kLive = 4;
    void *live[kLive];
    for (auto &p : live)
        p = xalloc(n);
    for (auto _ : state) {
        void *p = xalloc(n);
        touch(p, n);
        bench_free(p, n);
    }
    for (auto &p : live)
        bench_free(p, n);
    state.SetItemsProcessed(state.iterations());
    rss.report(state);
}

enum class Order { fifo, lifo, random };

// N allocations of typical sizes, then N frees in the given order.  FIFO is a
// queue, LIFO a stack, random the worst case for free-list locality.
void batch(benchmark::State &state, Order order, size_t n)
{
    RssProbe rss;
    Rng rng(42 + n);
    std::vector<size_t> sizes(n);
    std::vector<void *> ptrs(n);
    std::vector<uint32_t> free_order(n);
    for (size_t i = 0; i < n; i++) {
        sizes[i] = typical_size(rng);
        switch (order) {
        case Order::fifo: free_order[i] = (uint32_t)i; break;
        case Order::lifo: free_order[i] = (uint32_t)(n - 1 - i); break;
        case Order::random: free_order[i] = (uint32_t)i; break;
        }
    }
    if (order == Order::random)
        for (size_t i = n - 1; i > 0; i--) // Fisher-Yates
            std::swap(free_order[i], free_order[rng.below((uint32_t)(i + 1))]);

    for (auto _ : state) {
        for (size_t i = 0; i < n; i++) {
            ptrs[i] = xalloc(sizes[i]);
            touch(ptrs[i], sizes[i]);
        }
        for (size_t k = 0; k < n; k++) {
            uint32_t i = free_order[k];
            bench_free(ptrs[i], sizes[i]);
        }
    }
    state.SetItemsProcessed(state.iterations() * (int64_t)n);
    rss.report(state);
}

void *xrealloc(void *p, size_t old_size, size_t new_size)
{
    void *q = bench_realloc(p, old_size, new_size);
    if (q == nullptr)
        bench_oom("realloc", new_size);
    return q;
}

// A vector that doubles from 1 byte to max, writing every new byte as a
// push_back loop would.  Rewards allocators that grow large blocks in place
// (mremap) instead of copying.
void realloc_grow(benchmark::State &state, size_t max)
{
    RssProbe rss;
    for (auto _ : state) {
        size_t cur = 1;
        auto *p = static_cast<unsigned char *>(xalloc(1));
        p[0] = 1;
        while (cur < max) {
            size_t next = cur * 2;
            p = static_cast<unsigned char *>(xrealloc(p, cur, next));
            std::memset(p + cur, (int)(cur & 0xff), next - cur);
            cur = next;
        }
        benchmark::DoNotOptimize(p);
        bench_free(p, cur);
    }
    state.SetBytesProcessed(state.iterations() * (int64_t)max);
    rss.report(state);
}

// A max-byte buffer (filled, untimed) halved by realloc down to one byte.
// Allocators that shrink in place just trim; others copy.
void realloc_shrink(benchmark::State &state, size_t max)
{
    RssProbe rss;
    for (auto _ : state) {
        state.PauseTiming();
        auto *p = static_cast<unsigned char *>(xalloc(max));
        std::memset(p, 7, max);
        state.ResumeTiming();
        size_t cur = max;
        while (cur > 1) {
            size_t next = cur / 2;
            p = static_cast<unsigned char *>(xrealloc(p, cur, next));
            p[next - 1] ^= 1;
            cur = next;
        }
        benchmark::DoNotOptimize(p);
        bench_free(p, cur);
    }
    rss.report(state);
}

// Four string builders appended to in turn, 24 bytes at a time, up to max
// bytes each: thousands of small reallocs whose blocks are not at the top of
// the heap, as in a program assembling several buffers at once.
void realloc_append(benchmark::State &state, size_t max)
{
    RssProbe rss;
    constexpr int kStrings = 4;
    constexpr size_t kStep = 24;
    for (auto _ : state) {
        unsigned char *s[kStrings] = {};
        size_t len = 0;
        while (len < max) {
            for (int k = 0; k < kStrings; k++) {
                s[k] = static_cast<unsigned char *>(
                    len == 0 ? xalloc(kStep) : xrealloc(s[k], len, len + kStep));
                std::memset(s[k] + len, 'a' + k, kStep);
            }
            len += kStep;
        }
        for (int k = 0; k < kStrings; k++)
            bench_free(s[k], len);
    }
    state.SetItemsProcessed(state.iterations() * kStrings * (int64_t)(max / kStep));
    rss.report(state);
}

// 64 aligned blocks, then all freed: aligned_alloc's cost and whether the
// alignment wastes memory.
void aligned(benchmark::State &state, size_t align, size_t size)
{
    RssProbe rss;
    constexpr int kBlocks = 64;
    void *ptrs[kBlocks];
    for (auto _ : state) {
        for (int i = 0; i < kBlocks; i++) {
            ptrs[i] = bench_aligned(align, size);
            if (ptrs[i] == nullptr)
                bench_oom("aligned_alloc", size);
            touch(ptrs[i], size);
        }
        for (int i = 0; i < kBlocks; i++)
            bench_free_aligned(ptrs[i], align, size);
    }
    state.SetItemsProcessed(state.iterations() * kBlocks);
    rss.report(state);
}

benchmark::internal::Benchmark *finish(benchmark::internal::Benchmark *b)
{
    if (profile().smoke)
        b->Iterations(2);
    return b;
}

} // namespace

void register_single_thread()
{
    const bool smoke = profile().smoke;
    for (size_t n = 8; n <= 64 * 1024; n *= 2)
        finish(benchmark::RegisterBenchmark(("pair/" + size_name(n)).c_str(), pair, n));
    finish(benchmark::RegisterBenchmark("pair/1MiB", pair, size_t(1) << 20));

    const std::pair<const char *, Order> orders[] = {
        {"fifo", Order::fifo}, {"lifo", Order::lifo}, {"random", Order::random}};
    for (size_t n : {size_t(100), size_t(10000)})
        for (auto &o : orders)
            finish(benchmark::RegisterBenchmark(
                ("batch/" + std::string(o.first) + "/" + std::to_string(n)).c_str(), batch,
                o.second, n));

    const size_t big = smoke ? size_t(1) << 20 : size_t(64) << 20;
    finish(benchmark::RegisterBenchmark(("realloc/grow-" + size_name(big)).c_str(),
                                        realloc_grow, big)
               ->Unit(benchmark::kMillisecond));
    finish(benchmark::RegisterBenchmark(("realloc/shrink-" + size_name(big)).c_str(),
                                        realloc_shrink, big)
               ->Unit(benchmark::kMicrosecond));
    finish(benchmark::RegisterBenchmark("realloc/append-64KiB", realloc_append,
                                        size_t(64) << 10)
               ->Unit(benchmark::kMicrosecond));

    finish(benchmark::RegisterBenchmark("aligned/64B", aligned, size_t(64), size_t(64)));
    finish(benchmark::RegisterBenchmark("aligned/4KiB", aligned, size_t(4096), size_t(4096)));
}

} // namespace rsbbench
