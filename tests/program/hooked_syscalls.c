/* Runs under LD_PRELOAD with hooklib (see there) and the allocator, in
 * either order: allocates across every size range (slabs, page runs, huge
 * blocks, so the allocator maps memory and reads its clock), calls the
 * hooked functions itself, and checks that the hooks really ran. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void *work(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = {0};
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) % 64;
        size_t n = (seed >> 16) % 8 == 0 ? ((size_t)1 << (seed % 23)) + 1 : 1 + seed % 2000;
        free(keep[k]);
        keep[k] = malloc(n);
        if (!keep[k]) return "malloc failed";
        memset(keep[k], k, n < 4096 ? n : 4096);
        if (i % 1000 == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
        }
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return NULL;
}

int main(void) {
    unsigned long *calls = (unsigned long *)dlsym(RTLD_DEFAULT, "rsbt_hook_calls");
    if (!calls) {
        fprintf(stderr, "hooklib is not preloaded\n");
        return 1;
    }
    void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 1;
    munmap(m, 1 << 20);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
    const char *err = work((void *)(uintptr_t)7);
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r) err = r;
    }
    if (err) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (*calls < 2) {
        fprintf(stderr, "the hooks ran %lu times\n", *calls);
        return 1;
    }
    printf("ok: hooks ran %lu times\n", *calls);
    return 0;
}
