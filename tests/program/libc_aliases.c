/*
 * The glibc-internal names (__libc_malloc & co., __posix_memalign) and the
 * page-size functions, looked up dynamically: under LD_PRELOAD each must
 * resolve to librsbmalloc and behave (valloc/pvalloc on the runtime page
 * size, memalign alignment), and blocks must cross between the public and
 * the internal names (glibc frees with one what it got from the other).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progcheck.h"

static int failures;

static void bad(const char *fmt, const char *name)
{
    fprintf(stderr, "FAIL: ");
    fprintf(stderr, fmt, name);
    fprintf(stderr, "\n");
    failures++;
}

static void *sym(const char *name, int want_rsb)
{
    void *p = dlsym(RTLD_DEFAULT, name);
    if (!p) {
        bad("%s is not defined", name);
        return NULL;
    }
    Dl_info info;
    if (want_rsb && (!dladdr(p, &info) || !strstr(info.dli_fname, "rsbmalloc")))
        bad("%s does not resolve to librsbmalloc", name);
    return p;
}

int main(void)
{
    rsbt_expect_allocator();
    const char *e = getenv("RSBT_EXPECT");
    int rsb = e && !strcmp(e, "rsb");
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);

    void *(*l_malloc)(size_t) = (void *(*)(size_t))sym("__libc_malloc", rsb);
    void *(*l_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))sym("__libc_calloc", rsb);
    void *(*l_realloc)(void *, size_t) = (void *(*)(void *, size_t))sym("__libc_realloc", rsb);
    void (*l_free)(void *) = (void (*)(void *))sym("__libc_free", rsb);
    void *(*l_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))sym("__libc_memalign", rsb);
    void *(*l_valloc)(size_t) = (void *(*)(size_t))sym("__libc_valloc", rsb);
    void *(*l_pvalloc)(size_t) = (void *(*)(size_t))sym("__libc_pvalloc", rsb);
    int (*l_pm)(void **, size_t, size_t) = (int (*)(void **, size_t, size_t))sym(rsb ? "__posix_memalign" : "posix_memalign", rsb);
    void *(*p_valloc)(size_t) = (void *(*)(size_t))sym("valloc", rsb);
    void *(*p_pvalloc)(size_t) = (void *(*)(size_t))sym("pvalloc", rsb);
    void *(*p_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))sym("memalign", rsb);
    if (rsb)
        (void)sym("cfree", rsb);   /* glibc 2.36 keeps cfree as a compat symbol only */
    if (failures)
        return 1;

    /* mix the names: allocate with one, free with the other */
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)i * 97 + 1;
        char *a = l_malloc(n);
        char *b = malloc(n);
        if (!a || !b)
            return bad("%s failed", "__libc_malloc/malloc"), 1;
        memset(a, 1, n);
        memset(b, 2, n);
        a = l_realloc(a, n * 3);
        b = l_realloc(b, n + 5);
        if (!a || !b || a[n - 1] != 1 || b[n - 1] != 2)
            return bad("%s lost data", "__libc_realloc"), 1;
        free(a);
        l_free(b);
        char *c = l_calloc(n, 3);
        for (size_t k = 0; c && k < n * 3; k++)
            if (c[k])
                return bad("%s returned dirty memory", "__libc_calloc"), 1;
        free(c);
    }

    /* page-size functions on the runtime page size */
    static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 100000, 300000, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *v[4] = {l_valloc(sizes[i]), p_valloc(sizes[i]), l_pvalloc(sizes[i]), p_pvalloc(sizes[i])};
        for (int k = 0; k < 4; k++) {
            if (!v[k] || (uintptr_t)v[k] % ps)
                return bad("%s: result not aligned to the system page size", k % 2 ? "valloc/pvalloc" : "__libc_valloc/__libc_pvalloc"), 1;
            size_t need = k >= 2 ? (sizes[i] + ps - 1) / ps * ps : sizes[i];
            if (malloc_usable_size(v[k]) < need)
                return bad("%s: usable size below the (page-rounded) request", "valloc/pvalloc"), 1;
            memset(v[k], 3, need);
        }
        free(v[0]);
        l_free(v[1]);
        free(v[2]);
        l_free(v[3]);
    }
    void *z = l_pvalloc(0);
    if (!z || (uintptr_t)z % ps || (rsb && malloc_usable_size(z) < ps))
        return bad("%s(0) must return one page", "__libc_pvalloc"), 1;
    free(z);

    for (size_t al = 8; al <= (size_t)4 << 20; al <<= 1) {
        void *a = l_memalign(al, 1000), *b = p_memalign(al, 300000), *c = NULL;
        int r = l_pm(&c, al, 5000);
        if (!a || !b || r || !c || (uintptr_t)a % al || (uintptr_t)b % al || (uintptr_t)c % al)
            return bad("%s: misaligned or failed", "__libc_memalign/memalign/__posix_memalign"), 1;
        memset(a, 4, 1000);
        memset(b, 5, 300000);
        memset(c, 6, 5000);
        l_free(a);
        free(b);
        l_free(c);
    }
    void *c = (void *)1;
    if (l_pm(&c, 24, 100) != EINVAL || c != (void *)1)
        return bad("%s(align 24) must return EINVAL and leave *out alone", "__posix_memalign"), 1;

    printf("libc_aliases ok (page size %zu)\n", ps);
    return 0;
}
