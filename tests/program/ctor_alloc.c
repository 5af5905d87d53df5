/*
 * Allocation before main: a library constructor (ctorlib.c) and this
 * program's own early constructor allocate; main checks every block is
 * intact, owned by rsbmalloc (RSBT_EXPECT=rsb) and freeable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progcheck.h"

extern char *rsbt_ctorlib_str;
extern void *rsbt_ctorlib_blocks[8];

static char *early_str;
static void *early_blocks[6];
static void *early_aligned;
static char *early_env;

__attribute__((constructor(101))) static void early(void)
{
    early_str = strdup("allocated in constructor(101)");
    static const size_t sz[6] = {0, 24, 4000, 300000, 1 << 20, 5 << 20};
    for (int i = 0; i < 6; i++) {
        early_blocks[i] = malloc(sz[i]);
        if (early_blocks[i])
            memset(early_blocks[i], 0x70 + i, sz[i]);
    }
    if (posix_memalign(&early_aligned, 4096, 10000))
        early_aligned = NULL;
    /* libc calls that allocate internally */
    char *e = getenv("HOME");
    early_env = e ? strdup(e) : strdup("");
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[64];
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
}

static void check_fill(const void *p, size_t n, int v, const char *what)
{
    const unsigned char *c = p;
    if (!p) {
        fprintf(stderr, "FAIL: %s is NULL\n", what);
        exit(1);
    }
    for (size_t i = 0; i < n; i += 1 + i / 64)
        if (c[i] != (unsigned char)v) {
            fprintf(stderr, "FAIL: %s corrupted at %zu\n", what, i);
            exit(1);
        }
}

int main(void)
{
    rsbt_expect_allocator();
    const char *expect = getenv("RSBT_EXPECT");
    size_t (*rsb_usable)(const void *) = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "rsb_malloc_usable_size");

    if (!rsbt_ctorlib_str || strcmp(rsbt_ctorlib_str, "allocated in a library constructor"))
        rsbt_prog_fail("library constructor string");
    if (!early_str || strcmp(early_str, "allocated in constructor(101)"))
        rsbt_prog_fail("early constructor string");
    for (int i = 0; i < 8; i++)
        check_fill(rsbt_ctorlib_blocks[i], (size_t)1 << (4 + 3 * i), i + 1, "library constructor block");
    static const size_t sz[6] = {0, 24, 4000, 300000, 1 << 20, 5 << 20};
    for (int i = 0; i < 6; i++)
        check_fill(early_blocks[i], sz[i], 0x70 + i, "early block");
    if (!early_aligned || (uintptr_t)early_aligned % 4096)
        rsbt_prog_fail("early posix_memalign");

    if (expect && !strcmp(expect, "rsb")) {
        /* these blocks must be rsbmalloc's: its usable size knows them */
        if (!rsb_usable)
            rsbt_prog_fail("rsb_malloc_usable_size not found");
        if (rsb_usable(rsbt_ctorlib_str) < strlen(rsbt_ctorlib_str) + 1 || rsb_usable(early_str) < 30 ||
            rsb_usable(early_blocks[5]) < sz[5] || rsb_usable(rsbt_ctorlib_blocks[7]) < ((size_t)1 << 25))
            rsbt_prog_fail("a block allocated before main is not known to rsbmalloc");
    }
    /* free everything (an allocator mix-up aborts here) */
    free(rsbt_ctorlib_str);
    free(early_str);
    free(early_env);
    free(early_aligned);
    for (int i = 0; i < 8; i++)
        free(rsbt_ctorlib_blocks[i]);
    for (int i = 0; i < 6; i++)
        free(early_blocks[i]);
    printf("ctor_alloc ok\n");
    return 0;
}
