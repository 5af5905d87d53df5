/*
 * harness.h — a minimal test runner for the robustness tests.
 *
 * Not Criterion: Criterion cannot start under ThreadSanitizer (its
 * inheritable arena fails to map: Snaipe/Criterion#274), and these tests
 * must run in the TSan build.  Tests run one after the other in the process
 * (they fork their own children where they need isolation).
 *
 *   RH_TEST(suite, name) { ... RH_CHECK(cond, "fmt", ...); ... }
 *   int main(int argc, char **argv) { return rh_main(argc, argv); }
 *
 * Options: --filter GLOB (suite/name, fnmatch), --list; anything else
 * starting with "--" is ignored.  Ends with "N passed, N failed".
 */
#ifndef RSB_ROBUST_HARNESS_H
#define RSB_ROBUST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rh_test {
    const char *name;
    void (*fn)(void);
} rh_test;

#define RH_MAX_TESTS 64
static rh_test rh_tests[RH_MAX_TESTS];
static unsigned rh_ntests;
static jmp_buf rh_jmp;
static const char *rh_current;

static inline void rh_register(const char *name, void (*fn)(void)) {
    if (rh_ntests < RH_MAX_TESTS) rh_tests[rh_ntests++] = (rh_test){name, fn};
}

#define RH_TEST(suite, name)                                                                       \
    static void rh_fn_##suite##_##name(void);                                                      \
    __attribute__((constructor)) static void rh_reg_##suite##_##name(void) {                       \
        rh_register(#suite "/" #name, rh_fn_##suite##_##name);                                     \
    }                                                                                              \
    static void rh_fn_##suite##_##name(void)

static void __attribute__((noreturn, format(printf, 3, 4))) rh_fail(const char *file, int line, const char *fmt,
                                                                   ...) {
    va_list ap;
    fprintf(stderr, "[FAIL] %s: %s:%d: ", rh_current, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    longjmp(rh_jmp, 1);
}

#define RH_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) rh_fail(__FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)

static inline double rh_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* setjmp in a function of its own: no local of the caller can be clobbered. */
static __attribute__((noinline)) int rh_run_one(void (*fn)(void)) {
    if (setjmp(rh_jmp) != 0) return 0;
    fn();
    return 1;
}

static inline int rh_main(int argc, char **argv) {
    const char *filter = "*";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strncmp(argv[i], "--filter=", 9) == 0) {
            filter = argv[i] + 9;
        } else if (strcmp(argv[i], "--list") == 0) {
            for (unsigned t = 0; t < rh_ntests; t++) printf("%s\n", rh_tests[t].name);
            return 0;
        }
    }
    unsigned passed = 0, failed = 0;
    for (unsigned t = 0; t < rh_ntests; t++) {
        if (fnmatch(filter, rh_tests[t].name, 0) != 0) continue;
        rh_current = rh_tests[t].name;
        fprintf(stderr, "[RUN ] %s\n", rh_current);
        double t0 = rh_now();
        if (rh_run_one(rh_tests[t].fn)) {
            fprintf(stderr, "[PASS] %s (%.2f s)\n", rh_current, rh_now() - t0);
            passed++;
        } else {
            failed++;
        }
    }
    if (passed + failed == 0) {
        fprintf(stderr, "no test matches %s\n", filter);
        return 1;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
