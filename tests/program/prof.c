/*
 * prof MODE [ARGS]: a program for the heap-profiling tests (prof.sh), run
 * with librsbmalloc.so preloaded.  The allocation sites are functions of
 * their own (noinline) so that google-pprof names them.
 *
 *   sites PATH      site_a keeps 40 MiB live in 4 KiB blocks, site_b 10 MiB
 *                   in 100 KiB blocks, site_churn allocates 200 MiB in 64 KiB
 *                   and 256 B blocks and frees them all (some through
 *                   realloc); dumps to PATH with rsb_prof_dump, then exits
 *                   with the blocks still live (the exit dump).
 *   signal PREFIX   raises SIGUSR2 and checks that PREFIX.<pid>.0.heap exists.
 *   off PATH        rsb_prof_dump(PATH) must fail (profiling is off).
 *   threads PATH    4 threads allocate and free each other's blocks (remote
 *                   frees) while the main thread dumps to PATH.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void *volatile sink;

/* The program is not linked with rsbmalloc: the API comes with the preload. */
static int prof_dump(const char *path) {
    int (*fn)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "rsb_prof_dump");
    if (!fn) {
        fprintf(stderr, "rsb_prof_dump not found: is librsbmalloc.so preloaded?\n");
        exit(1);
    }
    return fn(path);
}

__attribute__((noinline, noclone)) void *site_a(size_t n) {
    void *p = malloc(n);
    memset(p, 1, 64);
    return p;
}

__attribute__((noinline, noclone)) void *site_b(size_t n) {
    void *p = malloc(n);
    memset(p, 2, 64);
    return p;
}

__attribute__((noinline, noclone)) void site_churn(void) {
    for (int i = 0; i < 3200; i++) { /* 200 MiB of 64 KiB blocks, each freed */
        char *p = malloc(64 << 10);
        p[0] = 1;
        sink = p;
        free(p);
    }
    for (int i = 0; i < 40000; i++) { /* small ones, some moved by realloc */
        char *p = malloc(256);
        p[0] = 1;
        if (i % 4 == 0) p = realloc(p, 4000);
        sink = p;
        free(p);
    }
}

static int sites(const char *path) {
    enum { NA = 10240, NB = 102 }; /* 40 MiB of 4 KiB, 10 MiB (102 x 100 KiB) */
    static void *a[NA], *b[NB];
    for (int i = 0; i < NA; i++) {
        a[i] = site_a(4096);
        if (i % 1000 == 0) site_churn();
    }
    for (int i = 0; i < NB; i++) b[i] = site_b(100 << 10);
    site_churn();
    if (prof_dump(path) != 0) {
        fprintf(stderr, "rsb_prof_dump(%s) failed\n", path);
        return 1;
    }
    sink = a;
    sink = b;
    printf("sites: dumped to %s\n", path);
    return 0; /* a and b stay live for the exit dump */
}

static int on_signal(const char *prefix) {
    void *keep = site_a(4096);
    sink = keep;
    raise(SIGUSR2);
    char path[4096];
    snprintf(path, sizeof path, "%s.%ld.0.heap", prefix, (long)getpid());
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "SIGUSR2 wrote no %s\n", path);
        return 1;
    }
    printf("signal: %s written\n", path);
    return 0;
}

static int off(const char *path) {
    void *p = site_a(1 << 20);
    sink = p;
    free(p);
    if (prof_dump(path) != -1) {
        fprintf(stderr, "rsb_prof_dump worked with profiling off\n");
        return 1;
    }
    printf("off: no dump\n");
    return 0;
}

/* --- threads ---------------------------------------------------------------- */

enum { NT = 4, SLOTS = 4096, ROUNDS = 300000 };
static void *_Atomic slots[NT][SLOTS]; /* thread t frees what t-1 left there */

static void *worker(void *arg) {
    int t = (int)(long)arg, from = (t + NT - 1) % NT;
    unsigned x = 12345u + (unsigned)t;
    for (int i = 0; i < ROUNDS; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 8) % 3 == 0 ? 16 + (x >> 12) % 2048 : 16 + (x >> 12) % 200000;
        void *p = (x >> 20) % 7 == 0 ? calloc(1, n) : malloc(n);
        ((char *)p)[0] = 1;
        if ((x >> 16) % 5 == 0) p = realloc(p, n / 2 + 1);
        free(__atomic_exchange_n(&slots[t][x % SLOTS], p, __ATOMIC_ACQ_REL));
        free(__atomic_exchange_n(&slots[from][(x >> 4) % SLOTS], NULL, __ATOMIC_ACQ_REL)); /* remote */
    }
    return NULL;
}

static int threads(const char *path) {
    pthread_t th[NT];
    for (long t = 0; t < NT; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)t) != 0) return 1;
    for (int i = 0; i < 20; i++) {
        if (prof_dump(path) != 0) {
            fprintf(stderr, "rsb_prof_dump(%s) failed\n", path);
            return 1;
        }
        usleep(20000);
    }
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < SLOTS; i++) free(slots[t][i]);
    if (prof_dump(path) != 0) return 1;
    printf("threads: done\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: prof sites|signal|off|threads PATH\n");
        return 2;
    }
    if (strcmp(argv[1], "sites") == 0) return sites(argv[2]);
    if (strcmp(argv[1], "signal") == 0) return on_signal(argv[2]);
    if (strcmp(argv[1], "off") == 0) return off(argv[2]);
    if (strcmp(argv[1], "threads") == 0) return threads(argv[2]);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
