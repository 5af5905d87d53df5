// bench/common.h — helpers shared by the workloads: random numbers, object
// sizes, a persistent thread team, and the peak-RSS probe every workload
// reports next to its time.
#ifndef RSB_BENCH_COMMON_H
#define RSB_BENCH_COMMON_H

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "shim.h"

namespace rsbbench {

// Workload scale.  The smoke profile (meson test) runs every workload once on
// tiny inputs; the full profile is what scripts/bench measures.
struct Profile {
    bool smoke = false;
};
const Profile &profile();

// xorshift64*: deterministic, cheap, no allocation.  Every workload seeds
// its own generator so all allocators see the same sequence of requests.
class Rng {
  public:
    explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
    uint64_t next()
    {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return s_ * 0x2545F4914F6CDD1Dull;
    }
    // Uniform in [0, n).
    uint32_t below(uint32_t n) { return (uint32_t)(((next() >> 32) * n) >> 32); }

  private:
    uint64_t s_;
};

// Object sizes of a typical C/C++ program: mostly small, a tail of medium
// blocks.  70% 16..128 B, 25% 129..1024 B, 5% 1..8 KiB.
inline size_t typical_size(Rng &r)
{
    uint32_t c = r.below(100);
    if (c < 70)
        return 16 + r.below(113);
    if (c < 95)
        return 129 + r.below(896);
    return 1025 + r.below(7168);
}

// Touch a fresh block the way a program would: write its first and last
// byte (a header and a terminator), so an allocator that hands out
// untouched pages pays for the page fault here, as it would in real use.
inline void touch(void *p, size_t n)
{
    auto *c = static_cast<unsigned char *>(p);
    c[0] = (unsigned char)n;
    c[n - 1] = (unsigned char)(n >> 8);
}

// Allocate or exit: a NULL from the allocator under test ends the run.
inline void *xalloc(size_t n)
{
    void *p = bench_alloc(n);
    if (p == nullptr)
        bench_oom("malloc", n);
    return p;
}

// Blocks that travel between threads carry their size in their first word,
// so whoever frees them can use sized deallocation.
inline void *alloc_tagged(size_t n)
{
    void *p = xalloc(n);
    std::memcpy(p, &n, sizeof n);
    static_cast<unsigned char *>(p)[n - 1] = 1;
    return p;
}
inline void free_tagged(void *p)
{
    size_t n;
    std::memcpy(&n, p, sizeof n);
    bench_free(p, n);
}

// Yield-friendly spin for the hand-off loops: a few pauses, then give the
// core away.  On 2 cores with more threads than cores, a pure spin would
// measure the scheduler, not the allocator.
inline void backoff(unsigned &spins)
{
    if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        std::this_thread::yield();
    }
}

// A team of real threads created once per benchmark run and reused for every
// iteration: run() wakes all of them, each calls fn(ctx, index), and run()
// returns when the last one is done.  Thread creation is therefore outside
// the timed region except in the churn workload, which times it on purpose.
class ThreadTeam {
  public:
    using Fn = void (*)(void *ctx, int index);
    explicit ThreadTeam(int n);
    ~ThreadTeam();
    ThreadTeam(const ThreadTeam &) = delete;
    ThreadTeam &operator=(const ThreadTeam &) = delete;
    void run(Fn fn, void *ctx);
    int size() const { return (int)threads_.size(); }

  private:
    void worker(int index);
    std::mutex mu_;
    std::condition_variable wake_, done_;
    uint64_t generation_ = 0;
    int remaining_ = 0;
    bool stop_ = false;
    Fn fn_ = nullptr;
    void *ctx_ = nullptr;
    std::vector<std::thread> threads_;
};

// Peak RSS of one benchmark run.  Construct at the start of the benchmark
// function (restarts the kernel's high-water mark), call report() at the end:
// sets the counter "peak_rss" in bytes.
class RssProbe {
  public:
    RssProbe() { bench_rss_reset_peak(); }
    void report(benchmark::State &state) const
    {
        state.counters["peak_rss"] = benchmark::Counter(
            (double)bench_rss_peak(), benchmark::Counter::kDefaults,
            benchmark::Counter::kIs1024);
    }
};

inline benchmark::Counter bytes_counter(double v)
{
    return benchmark::Counter(v, benchmark::Counter::kDefaults,
                              benchmark::Counter::kIs1024);
}

// Human-readable byte size for benchmark names: 16B, 4KiB, 1MiB.
std::string size_name(size_t n);

void register_single_thread();
void register_multi_thread();
void register_memory();

} // namespace rsbbench

#endif
