// bench/main.cc — entry point of rsbbench, the allocator benchmark binary.
//
//   rsbbench [--allocator=rsb|system] [--smoke] [google benchmark flags...]
//
// --allocator  which allocator the workloads use (default: $BENCH_ALLOCATOR,
//              else "system"); see shim.h.  To measure jemalloc, mimalloc,
//              tcmalloc or librsbmalloc.so, run "system" under LD_PRELOAD.
// --smoke      run every workload once on tiny inputs (the test suite's mode;
//              seconds, and never judged on time).
//
// scripts/bench runs this binary once per workload family and allocator and
// reads its --benchmark_out JSON.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace rsbbench {

static Profile g_profile;
const Profile &profile() { return g_profile; }

std::string size_name(size_t n)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        return std::to_string(n >> 20) + "MiB";
    if (n >= 1024 && n % 1024 == 0)
        return std::to_string(n >> 10) + "KiB";
    return std::to_string(n) + "B";
}

ThreadTeam::ThreadTeam(int n)
{
    threads_.reserve((size_t)n);
    for (int i = 0; i < n; i++)
        threads_.emplace_back([this, i] { worker(i); });
}

ThreadTeam::~ThreadTeam()
{
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto &t : threads_)
        t.join();
}

void ThreadTeam::run(Fn fn, void *ctx)
{
    std::unique_lock<std::mutex> g(mu_);
    fn_ = fn;
    ctx_ = ctx;
    remaining_ = (int)threads_.size();
    generation_++;
    wake_.notify_all();
    done_.wait(g, [this] { return remaining_ == 0; });
}

void ThreadTeam::worker(int index)
{
    uint64_t seen = 0;
    for (;;) {
        Fn fn;
        void *ctx;
        {
            std::unique_lock<std::mutex> g(mu_);
            wake_.wait(g, [&] { return stop_ || generation_ != seen; });
            if (stop_)
                return;
            seen = generation_;
            fn = fn_;
            ctx = ctx_;
        }
        fn(ctx, index);
        std::lock_guard<std::mutex> g(mu_);
        if (--remaining_ == 0)
            done_.notify_one();
    }
}

} // namespace rsbbench

static void usage(const char *argv0)
{
    std::fprintf(stderr,
                 "usage: %s [--allocator=rsb|system] [--smoke] [benchmark flags]\n"
                 "  --allocator  rsb: rsbmalloc's rsb_* API (linked in)%s\n"
                 "               system: the process's malloc (glibc or LD_PRELOAD)\n"
                 "               default: $BENCH_ALLOCATOR, else system\n"
                 "  --smoke      every workload once on tiny inputs\n"
                 "  --benchmark_list_tests, --benchmark_filter=REGEX, ... as usual\n",
                 argv0, bench_have_rsb() ? "" : " [not in this build]");
}

int main(int argc, char **argv)
{
    if (bench_select_from_env() != 0) {
        std::fprintf(stderr, "rsbbench: invalid BENCH_ALLOCATOR=%s\n",
                     std::getenv("BENCH_ALLOCATOR"));
        return 2;
    }
    // Strip our own flags; pass the rest to Google Benchmark.
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (std::strncmp(a, "--allocator=", 12) == 0) {
            if (bench_select(a + 12) != 0) {
                std::fprintf(stderr, "rsbbench: unknown allocator '%s'\n", a + 12);
                usage(argv[0]);
                return 2;
            }
        } else if (std::strcmp(a, "--smoke") == 0) {
            rsbbench::g_profile.smoke = true;
        } else if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0) {
            usage(argv[0]);
            return 0;
        } else {
            argv[out++] = argv[i];
        }
    }
    argc = out;
    argv[argc] = nullptr;

    const char *preload = std::getenv("LD_PRELOAD");
    if (bench_current() == BENCH_RSB && preload != nullptr && *preload != '\0')
        std::fprintf(stderr, "rsbbench: note: --allocator=rsb measures the linked "
                             "rsb_* API; LD_PRELOAD=%s only serves the harness\n",
                     preload);

    benchmark::AddCustomContext("allocator", bench_allocator_name());
    benchmark::AddCustomContext("malloc_provider", bench_malloc_provider());
    benchmark::AddCustomContext("profile", rsbbench::profile().smoke ? "smoke" : "full");
    benchmark::AddCustomContext("peak_rss_source",
                                bench_rss_reset_peak() == 0
                                    ? "VmHWM reset per run (clear_refs)"
                                    : "VmHWM since process start");

    rsbbench::register_single_thread();
    rsbbench::register_multi_thread();
    rsbbench::register_memory();

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
