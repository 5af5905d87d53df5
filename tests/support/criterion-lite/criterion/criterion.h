/*
 * criterion-lite: the part of Criterion's API that rsbmalloc's Criterion
 * suites use (tests/unit, tests/integration), as one header with its own
 * runner, for builds where libcriterion-dev cannot be installed.
 *
 * Why: the arm64 cross build (scripts/test-arm64).  Debian 12's
 * libcriterion-dev:arm64 cannot be installed beside libcriterion-dev:amd64
 * (libnanomsg5, libnanomsg-dev and libhttp-parser-dev are not Multi-Arch:
 * same, so apt would remove the amd64 Criterion that the native suites
 * need).  meson -Dcriterion_lite=true puts this directory first on the
 * include path instead of linking Criterion; the test sources are unchanged.
 *
 * What it does, as Criterion does:
 *   - Test(suite, name, .signal = S, .timeout = T) { ... } registers a test;
 *     the options used here are .signal and .timeout (any other field is a
 *     compile error, so a test never silently loses an option);
 *   - every test runs in a child process of its own (fork: qemu-user cannot
 *     exec a foreign binary, and Criterion's re-exec needs that); the runner
 *     itself does not allocate before forking, so each test starts from the
 *     allocator state of program start;
 *   - a test passes when it returns (exit status 0), or, with .signal = S,
 *     when it dies of signal S; it fails on a failed cr_assert*, on another
 *     signal, on any other exit (also exit(0) before the test returned), or
 *     after .timeout seconds (times RSBT_TIMEOUT_SCALE, default 1);
 *   - --filter GLOB (on "suite/name"), --list, --verbose[=N], --jobs=N and
 *     -jN (tests always run one at a time here);
 *   - ends with "[====] Synthesis: Tested: N | Passing: N | Failing: N |
 *     Crashing: N" and exits 1 if any test failed.
 * Unknown options are an error (exit 2).
 */
#ifndef RSBT_CRITERION_LITE_H
#define RSBT_CRITERION_LITE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CRITERION_LITE 1

struct crl_options {
    int crl_unused; /* lets Test(s, n) with no option expand to valid C */
    int signal;
    double timeout;
};

struct crl_test {
    const char *suite, *name;
    void (*fn)(void);
    struct crl_options opt;
    struct crl_test *next;
};

/* One list per executable, whatever number of files include this header. */
extern struct crl_test *crl_head;
__attribute__((weak)) struct crl_test *crl_head;

static inline void crl_register(struct crl_test *t) {
    t->next = crl_head;
    crl_head = t;
}

#define Test(suite, name, ...)                                                                     \
    static void crl_fn_##suite##_##name(void);                                                     \
    static struct crl_test crl_t_##suite##_##name = {                                              \
        #suite, #name, crl_fn_##suite##_##name, {.crl_unused = 0, __VA_ARGS__}, NULL};             \
    __attribute__((constructor)) static void crl_reg_##suite##_##name(void) {                      \
        crl_register(&crl_t_##suite##_##name);                                                     \
    }                                                                                              \
    static void crl_fn_##suite##_##name(void)

/* The child's exit status for a failed assertion. */
#define CRL_ASSERT_FAILED 197

/* fmt starts with a space that is not printed: `" " __VA_ARGS__` turns a
 * missing message into " " (no zero-length format warning) and a message
 * into one literal; a message that is not a literal does not compile. */
static inline void __attribute__((format(printf, 4, 5), unused)) crl_fail(const char *expr, const char *file, int line,
                                                            const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   %s\n", file, line,
            msg[1] ? msg + 1 : expr);
    _exit(CRL_ASSERT_FAILED);
}

#define crl_check(ok, expr, ...)                                                                   \
    do {                                                                                           \
        if (!(ok)) crl_fail(expr, __FILE__, __LINE__, " " __VA_ARGS__);                            \
    } while (0)

#define cr_assert(c, ...) crl_check((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) crl_check(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) crl_check(0, "cr_assert_fail", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) crl_check((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) crl_check((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) crl_check((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) crl_check((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) crl_check((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) crl_check((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) crl_check((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) crl_check((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) crl_check(strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)

static inline void __attribute__((format(printf, 2, 3), unused)) crl_log(const char *tag, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[%s] ", tag);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define cr_log_info(...) crl_log("----", __VA_ARGS__)
#define cr_log_warn(...) crl_log("WARN", __VA_ARGS__)
#define cr_log_error(...) crl_log("ERR ", __VA_ARGS__)

static inline double crl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs one test in a child; 0 passed, 1 failed, 2 crashed or timed out. */
static int crl_run(const struct crl_test *t, double scale, int verbose) {
    int fd[2];
    if (pipe(fd) != 0) {
        fprintf(stderr, "[FAIL] %s::%s: pipe: %s\n", t->suite, t->name, strerror(errno));
        return 1;
    }
    if (verbose) fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
    double t0 = crl_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "[FAIL] %s::%s: fork: %s\n", t->suite, t->name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        close(fd[0]);
        t->fn();
        /* Returned: tell the runner, then exit as Criterion's worker does. */
        if (write(fd[1], "R", 1) != 1) _exit(198);
        fflush(stdout);
        exit(0);
    }
    close(fd[1]);
    double limit = t->opt.timeout > 0 ? t->opt.timeout * scale : 0;
    int st = 0;
    bool timed_out = false;
    for (;;) {
        pid_t r = waitpid(pid, &st, limit > 0 ? WNOHANG : 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "[FAIL] %s::%s: waitpid: %s\n", t->suite, t->name, strerror(errno));
            close(fd[0]);
            return 1;
        }
        if (r == 0 && crl_now() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            timed_out = true;
            break;
        }
        if (r == 0) nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    char c = 0;
    bool returned = read(fd[0], &c, 1) == 1 && c == 'R';
    close(fd[0]);
    double dt = crl_now() - t0;
    const char *why = NULL;
    char buf[96];
    int res = 0;
    if (timed_out) {
        snprintf(buf, sizeof buf, "timed out after %.1f s", limit);
        why = buf, res = 2;
    } else if (t->opt.signal) {
        if (!WIFSIGNALED(st) || WTERMSIG(st) != t->opt.signal) {
            if (WIFSIGNALED(st))
                snprintf(buf, sizeof buf, "expected signal %d, got signal %d", t->opt.signal, WTERMSIG(st));
            else
                snprintf(buf, sizeof buf, "expected signal %d, exited with status %d", t->opt.signal,
                         WEXITSTATUS(st));
            why = buf, res = 1;
        }
    } else if (WIFSIGNALED(st)) {
        snprintf(buf, sizeof buf, "CRASH: signal %d", WTERMSIG(st));
        why = buf, res = 2;
    } else if (WEXITSTATUS(st) == CRL_ASSERT_FAILED) {
        why = "assertion failed", res = 1;
    } else if (WEXITSTATUS(st) != 0 || !returned) {
        snprintf(buf, sizeof buf, "exited with status %d before the test returned", WEXITSTATUS(st));
        why = buf, res = 1;
    }
    if (why)
        fprintf(stderr, "[FAIL] %s::%s: %s (%.2fs)\n", t->suite, t->name, why, dt);
    else if (verbose)
        fprintf(stderr, "[PASS] %s::%s: (%.2fs)\n", t->suite, t->name, dt);
    return res;
}

static inline int crl_before(const struct crl_test *a, const struct crl_test *b) {
    int c = strcmp(a->suite, b->suite);
    return c < 0 || (c == 0 && strcmp(a->name, b->name) < 0);
}

__attribute__((weak)) int main(int argc, char **argv) {
    const char *filter = NULL;
    int verbose = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--filter=", 9)) {
            filter = a + 9;
        } else if (!strcmp(a, "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else if (!strcmp(a, "--verbose") || !strncmp(a, "--verbose=", 10)) {
            verbose = 1;
        } else if (!strcmp(a, "--list")) {
            list = 1;
        } else if (!strncmp(a, "--jobs=", 7) || (!strncmp(a, "-j", 2) && a[2])) {
            /* one test at a time, always */
        } else {
            fprintf(stderr, "criterion-lite: unknown option %s (supported: --filter GLOB, --list, "
                            "--verbose, --jobs=N)\n", a);
            return 2;
        }
    }
    double scale = 1;
    const char *s = getenv("RSBT_TIMEOUT_SCALE");
    if (s && atof(s) > 0) scale = atof(s);

    /* Sort by suite, then name, as Criterion reports (insertion sort on the
     * list: no allocation in the runner). */
    struct crl_test *sorted = NULL;
    while (crl_head) {
        struct crl_test *t = crl_head, **pp = &sorted;
        crl_head = t->next;
        while (*pp && crl_before(*pp, t)) pp = &(*pp)->next;
        t->next = *pp;
        *pp = t;
    }
    unsigned tested = 0, passing = 0, failing = 0, crashing = 0;
    for (struct crl_test *t = sorted; t; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (filter && fnmatch(filter, full, 0) != 0) continue;
        if (list) {
            fprintf(stderr, "%s::%s\n", t->suite, t->name);
            continue;
        }
        tested++;
        int r = crl_run(t, scale, verbose);
        if (r == 0) passing++;
        else failing++;
        if (r == 2) crashing++;
    }
    if (list) return 0;
    fprintf(stderr, "[====] Synthesis: Tested: %u | Passing: %u | Failing: %u | Crashing: %u \n", tested,
            passing, failing, crashing);
    return failing ? 1 : 0;
}

#endif
