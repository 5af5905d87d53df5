// A C++ program that allocates the way real C++ does: std::map of
// std::string keys to vectors of strings, unordered_map rehashing, string
// growth into the mmap range, aligned operator new, and threads that build
// and destroy containers and hand nodes to each other.  Every result is
// checked against an independent computation; the checksum printed last is
// compared by diffrun.sh with a glibc run.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "progcheck.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        std::exit(1);
    }
}

struct Fnv {
    uint64_t h = 1469598103934665603ull;
    void add(const void *p, size_t n)
    {
        const unsigned char *c = static_cast<const unsigned char *>(p);
        for (size_t i = 0; i < n; i++)
            h = (h ^ c[i]) * 1099511628211ull;
    }
    void add(const std::string &s) { add(s.data(), s.size()), add("|", 1); }
    void add(uint64_t v) { add(&v, sizeof v); }
};

static std::string key(int i) { return "key-" + std::to_string(i); }

static std::vector<std::string> value(int i)
{
    std::vector<std::string> v;
    for (int j = 0; j < i % 8; j++)
        v.emplace_back(static_cast<size_t>(i % 50 + j + 1), static_cast<char>('a' + (i + j) % 26));
    return v;
}

int main()
{
    rsbt_expect_allocator();
    Fnv total;

    // 1. map<string, vector<string>> with 200,000 keys in a scrambled order
    const int N = 200000;
    std::map<std::string, std::vector<std::string>> m;
    for (int i = 0; i < N; i++) {
        int k = static_cast<int>((static_cast<int64_t>(i) * 7919) % N);   // a permutation
        m.emplace(key(k), value(k));
    }
    check(m.size() == static_cast<size_t>(N), "map size after inserts");
    for (int i = 0; i < N; i += 3)
        m.erase(key(i));
    check(m.size() == static_cast<size_t>(N - (N + 2) / 3), "map size after erase");
    // independent: the sorted vector of the surviving keys
    std::vector<std::string> keys;
    for (int i = 0; i < N; i++)
        if (i % 3)
            keys.push_back(key(i));
    std::sort(keys.begin(), keys.end());
    size_t idx = 0;
    uint64_t chars = 0, want_chars = 0;
    for (const auto &kv : m) {
        check(idx < keys.size() && kv.first == keys[idx], "map iteration order differs from sorted keys");
        int k = std::atoi(kv.first.c_str() + 4);
        check(kv.second == value(k), "map value content");
        for (const auto &s : kv.second)
            chars += s.size();
        total.add(kv.first);
        idx++;
    }
    for (int i = 0; i < N; i++)
        if (i % 3)
            for (int j = 0; j < i % 8; j++)
                want_chars += static_cast<uint64_t>(i % 50 + j + 1);
    check(chars == want_chars, "sum of value string lengths");
    total.add(chars);
    // reinsert and overwrite through operator[]
    for (int i = 0; i < N; i += 3)
        m[key(i)] = value(i + 1);
    check(m.size() == static_cast<size_t>(N), "map size after reinsert");
    m.clear();

    // 2. strings growing by appends into the mmap range, then shrinking
    std::string s;
    for (int i = 0; i < 3000000; i++)
        s.push_back(static_cast<char>('0' + i % 10));
    check(s.size() == 3000000 && s[2999999] == '9', "string growth");
    s.append(s);   // 6 MB
    check(s.size() == 6000000 && s.compare(3000000, 3000000, s, 0, 3000000) == 0, "string self-append");
    s.resize(1000);
    s.shrink_to_fit();
    check(s.size() == 1000 && s[999] == '9', "string shrink");
    total.add(s);

    // 3. unordered_map rehashing to 500,000 entries
    std::unordered_map<uint64_t, std::string> um;
    for (uint64_t i = 0; i < 500000; i++)
        um.emplace(i * 2654435761ull, std::to_string(i));
    check(um.size() == 500000, "unordered_map size");
    uint64_t sum = 0;
    for (const auto &kv : um)
        sum += static_cast<uint64_t>(std::stoull(kv.second));
    check(sum == 500000ull * 499999ull / 2, "unordered_map values sum");
    for (uint64_t i = 0; i < 500000; i += 2)
        um.erase(i * 2654435761ull);
    check(um.size() == 250000, "unordered_map erase");
    total.add(sum);
    um.clear();

    // 4. over-aligned operator new
    struct alignas(64) A64 { char c[100]; };
    struct alignas(4096) A4K { char c[5000]; };
    std::vector<std::unique_ptr<A64>> va;
    std::vector<std::unique_ptr<A4K>> vb;
    for (int i = 0; i < 2000; i++) {
        va.emplace_back(new A64);
        check(reinterpret_cast<uintptr_t>(va.back().get()) % 64 == 0, "alignas(64) new misaligned");
        va.back()->c[99] = static_cast<char>(i);
        if (i % 10 == 0) {
            vb.emplace_back(new A4K);
            check(reinterpret_cast<uintptr_t>(vb.back().get()) % 4096 == 0, "alignas(4096) new misaligned");
            vb.back()->c[4999] = 1;
        }
    }
    va.clear();
    vb.clear();

    // 5. threads: private maps, and string nodes handed to the next thread
    const int T = 6, PER = 40000;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::deque<std::unique_ptr<std::string>>> inbox(T);
    std::atomic<uint64_t> received_chars{0}, sent_chars{0};
    std::vector<uint64_t> thread_sum(T);
    std::atomic<int> finished{0};
    std::vector<std::thread> th;
    for (int t = 0; t < T; t++)
        th.emplace_back([&, t] {
            std::map<std::string, int> local;
            uint64_t acc = 0;
            for (int i = 0; i < PER; i++) {
                local[key(i * T + t)] = i;
                auto msg = std::make_unique<std::string>(static_cast<size_t>(1 + (i * 13 + t) % 700), 'x');
                sent_chars += msg->size();
                {
                    std::lock_guard<std::mutex> g(mu);
                    inbox[(t + 1) % T].push_back(std::move(msg));
                }
                if (i % 64 == 0) {
                    std::deque<std::unique_ptr<std::string>> got;
                    {
                        std::lock_guard<std::mutex> g(mu);
                        got.swap(inbox[t]);
                    }
                    for (auto &p : got)
                        received_chars += p->size();   // freed here, allocated by another thread
                }
            }
            for (const auto &kv : local)
                acc += static_cast<uint64_t>(kv.second);
            thread_sum[t] = acc;
            finished++;
            cv.notify_all();
        });
    for (auto &x : th)
        x.join();
    for (auto &q : inbox)
        for (auto &p : q)
            received_chars += p->size();
    inbox.clear();
    check(received_chars == sent_chars, "strings lost between threads");
    for (int t = 0; t < T; t++)
        check(thread_sum[t] == static_cast<uint64_t>(PER) * (PER - 1) / 2, "thread map sum");
    total.add(static_cast<uint64_t>(sent_chars));

    // 6. a set of 300,000 strings vs. sort + unique of the same data
    std::vector<std::string> words;
    std::set<std::string> set;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::string w = std::to_string(x % 100000);
        words.push_back(w);
        set.insert(w);
    }
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    check(words.size() == set.size() && std::equal(words.begin(), words.end(), set.begin()), "set vs sort+unique");
    for (const auto &w : words)
        total.add(w);

    std::printf("cxx_map ok checksum %016llx\n", static_cast<unsigned long long>(total.h));
    return 0;
}
