/* Helper for env.sh: runs under LD_PRELOAD=librsbmalloc.so and reports what
 * an option changed.
 *   envprobe junk    new blocks read 0xAB, freed blocks 0xDF past the list words
 *   envprobe purge   prints RSS (KiB) after freeing 64 MiB of page runs, then
 *                    again after 300 ms and one more allocation
 *   envprobe idle    fills 64 MiB with small blocks and 32 MiB of page runs,
 *                    frees the runs and 15 of every 16 small blocks (in runs
 *                    of 512: sparse slabs, most OS pages without a live
 *                    block), then sleeps 1.2 s with no allocator call; prints
 *                    RSS (KiB) full / after the frees / after the sleep */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

/* RSS without stdio: fopen would allocate, and "idle" must not. */
static long rss_raw(void) {
    char buf[4096];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    return sp ? atol(sp + 1) * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "junk")) {
        unsigned char *p = malloc(64);
        for (int i = 0; i < 64; i++)
            if (p[i] != 0xAB) return printf("new byte %d is %#x\n", i, p[i]), 1;
        free(p);
        /* Use after free on purpose: the allocator owns the first 16 bytes. */
        for (int i = 16; i < 64; i++)
            if (((volatile unsigned char *)p)[i] != 0xDF) return printf("freed byte %d is %#x\n", i, p[i]), 1;
        /* A page run (512 KiB) and a 16 KiB block (per-thread cache). */
        size_t sizes[] = {512 << 10, 16 << 10};
        for (int k = 0; k < 2; k++) {
            unsigned char *q = malloc(sizes[k]);
            for (size_t i = 0; i < sizes[k]; i += 4093)
                if (q[i] != 0xAB) return printf("new byte %zu of %zu is %#x\n", i, sizes[k], q[i]), 1;
            free(q);
            for (size_t i = 16; i < sizes[k]; i += 4093)
                if (((volatile unsigned char *)q)[i] != 0xDF)
                    return printf("freed byte %zu of %zu is %#x\n", i, sizes[k], q[i]), 1;
        }
        puts("junk ok");
        return 0;
    }
    if (!strcmp(argv[1], "idle")) {
        enum { SMALL = 64 << 20, RUNS = 64 };
        size_t n = SMALL / 112;
        char **small = malloc(n * sizeof *small);
        static char *runs[RUNS];
        for (size_t i = 0; i < n; i++) {
            small[i] = malloc(i & 1 ? 48 : 160);
            memset(small[i], 1, i & 1 ? 48 : 160);
        }
        for (int i = 0; i < RUNS; i++) {
            runs[i] = malloc(512 << 10);
            memset(runs[i], 1, 512 << 10);
        }
        long full = rss_raw();
        for (int i = 0; i < RUNS; i++) free(runs[i]);
        for (size_t i = 0; i < n; i++) /* one run of 512 in 16 stays: most OS pages hold no live block */
            if ((i / 512) % 16) free(small[i]);
        long freed = rss_raw();
        usleep(1200 * 1000); /* no allocator call from here on */
        long idle = rss_raw();
        printf("full %ld freed %ld idle %ld\n", full, freed, idle);
        return 0;
    }
    if (!strcmp(argv[1], "purge")) {
        enum { N = 128 };
        char *keep = malloc(300 << 10);
        static char *blocks[N];
        for (int i = 0; i < N; i++) {
            blocks[i] = malloc(512 << 10);
            memset(blocks[i], 1, 512 << 10);
        }
        long full = rss_kib();
        for (int i = 0; i < N; i++) free(blocks[i]);
        long freed = rss_kib();
        usleep(300 * 1000);
        free(malloc(400 << 10)); /* page-allocator activity triggers the delayed purge */
        long later = rss_kib();
        printf("full %ld freed %ld later %ld\n", full, freed, later);
        free(keep);
        return 0;
    }
    return 2;
}
