// bench/memory.cc — workloads about memory rather than speed: the footprint
// of a million small live objects, and a fragmentation run whose live set
// shrinks (does the allocator give memory back to the OS?).
//
// The harness keeps its own bookkeeping in anonymous mmap memory, not in the
// allocator under test, so the RSS counters measure the allocator's blocks
// and metadata plus a fixed process baseline.
#include <sys/mman.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>

#include "common.h"

namespace rsbbench {
namespace {

// A fixed-capacity array in its own mapping, outside every allocator.
template <typename T> class MapArray {
  public:
    explicit MapArray(size_t cap) : cap_(cap)
    {
        void *p = mmap(nullptr, cap * sizeof(T), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            bench_oom("mmap (harness)", cap * sizeof(T));
        data_ = static_cast<T *>(p);
    }
    ~MapArray() { munmap(data_, cap_ * sizeof(T)); }
    MapArray(const MapArray &) = delete;
    MapArray &operator=(const MapArray &) = delete;
    T &operator[](size_t i) { return data_[i]; }
    size_t capacity() const { return cap_; }
    // Fault every page in now, so later RSS readings do not grow with it.
    void prefault() { std::memset(static_cast<void *>(data_), 0, cap_ * sizeof(T)); }

  private:
    T *data_;
    size_t cap_;
};

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- a million live 16-byte objects -----------------------------------

// Allocates n 16-byte blocks and keeps them all live, then frees them.  Time
// is the whole round trip; "bytes_per_object" is the RSS growth while they
// are live divided by n (16 is the floor; headers, size-class rounding and
// metadata add to it).
void live16(benchmark::State &state, size_t n)
{
    RssProbe rss;
    MapArray<void *> ptrs(n);
    ptrs.prefault();
    // RSS before the first allocation; later calibration runs of the same
    // process reuse memory the allocator kept, which does not change the
    // figure for the blocks while live.
    static size_t base = 0;
    if (base == 0)
        base = bench_rss_now();
    size_t live_rss = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < n; i++) {
            ptrs[i] = xalloc(16);
            static_cast<unsigned char *>(ptrs[i])[0] = (unsigned char)i;
        }
        state.PauseTiming();
        live_rss = bench_rss_now();
        state.ResumeTiming();
        for (size_t i = 0; i < n; i++)
            bench_free(ptrs[i], 16);
    }
    state.SetItemsProcessed(state.iterations() * (int64_t)n);
    state.counters["bytes_per_object"] =
        live_rss > base ? (double)(live_rss - base) / (double)n : 0.0;
    rss.report(state);
}

// ---- fragmentation ---------------------------------------------------------

struct Block {
    void *p;
    size_t n;
};

// Log-uniform 16 B .. 4 KiB with a 3% tail of 8..256 KiB blocks, scaled by
// `stretch` so that every shrink round asks for sizes the freed holes do not
// quite fit.
size_t frag_size(Rng &r, double stretch)
{
    double lo = 4.0, hi = 12.0; // log2 bounds
    if (r.below(100) < 3) {
        lo = 13.0;
        hi = 18.0;
    }
    double e = lo + (hi - lo) * (double)r.below(1u << 20) / (double)(1u << 20);
    double n = std::exp2(e) * stretch;
    return (size_t)n < 16 ? 16 : (size_t)n;
}

// Grows a live set of mixed sizes to peak_live bytes (every byte written, so
// live bytes are resident bytes), then shrinks it in six
// rounds: each frees a random half of the live blocks and allocates new
// blocks worth a fifth of what was freed, slightly larger than before.  The
// live set ends near 5% of its peak, scattered over the pages the peak used.
// Counters: peak_rss; rss_shrunk just after the last round; rss_shrunk_1s
// one second later (time for decay-based purging; not timed); live_peak and
// live_end, the bytes the program holds; rss_base before the run.
void fragmentation(benchmark::State &state, size_t peak_live, double settle_s)
{
    RssProbe rss;
    // Worst case every block is 16 bytes.
    MapArray<Block> live(peak_live / 16 + 1024);
    size_t rss_base = 0, rss_shrunk = 0, rss_settled = 0, live_end = 0;
    for (auto _ : state) {
        bench_rss_reset_peak();
        rss_base = bench_rss_now();
        Rng rng(2024);
        auto t0 = std::chrono::steady_clock::now();
        size_t count = 0, bytes = 0;
        while (bytes < peak_live && count < live.capacity()) {
            size_t n = frag_size(rng, 1.0);
            void *p = xalloc(n);
            std::memset(p, (int)(count & 0xff), n); // all of it resident
            live[count++] = Block{p, n};
            bytes += n;
        }
        for (int round = 0; round < 6; round++) {
            size_t kept = 0, freed = 0;
            for (size_t i = 0; i < count; i++) {
                if (rng.below(2)) {
                    bench_free(live[i].p, live[i].n);
                    freed += live[i].n;
                } else {
                    live[kept++] = live[i];
                }
            }
            count = kept;
            bytes -= freed;
            double stretch = 1.0 + 0.25 * (round + 1);
            for (size_t refill = 0; refill < freed / 5 && count < live.capacity();) {
                size_t n = frag_size(rng, stretch);
                void *p = xalloc(n);
                std::memset(p, (int)(count & 0xff), n);
                live[count++] = Block{p, n};
                bytes += n;
                refill += n;
            }
        }
        state.SetIterationTime(seconds_since(t0));
        live_end = bytes;
        rss_shrunk = bench_rss_now();
        std::this_thread::sleep_for(std::chrono::duration<double>(settle_s));
        rss_settled = bench_rss_now();
        rss.report(state); // peak before the clean-up below
        for (size_t i = 0; i < count; i++)
            bench_free(live[i].p, live[i].n);
    }
    state.counters["rss_base"] = bytes_counter((double)rss_base);
    state.counters["rss_shrunk"] = bytes_counter((double)rss_shrunk);
    state.counters["rss_shrunk_1s"] = bytes_counter((double)rss_settled);
    state.counters["live_peak"] = bytes_counter((double)peak_live);
    state.counters["live_end"] = bytes_counter((double)live_end);
}

} // namespace

void register_memory()
{
    const bool smoke = profile().smoke;
    const size_t n16 = smoke ? 10000 : 1000000;
    auto *b = benchmark::RegisterBenchmark(smoke ? "live16/10k" : "live16/1M", live16, n16)
                  ->Unit(benchmark::kMillisecond);
    if (smoke)
        b->Iterations(1);

    const size_t peak = smoke ? size_t(1) << 20 : size_t(128) << 20;
    benchmark::RegisterBenchmark(("fragmentation/" + size_name(peak)).c_str(), fragmentation,
                                 peak, smoke ? 0.01 : 1.0)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
}

} // namespace rsbbench
