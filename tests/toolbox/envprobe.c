/* Helper for env.sh: runs under LD_PRELOAD=librsbmalloc.so and reports what
 * an option changed.
 *   envprobe junk    new blocks read 0xAB, freed blocks 0xDF past the list words
 *   envprobe purge   prints RSS (KiB) after freeing 64 MiB of page runs, then
 *                    again after 300 ms and one more allocation */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
