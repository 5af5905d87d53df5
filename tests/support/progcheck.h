/*
 * progcheck.h — for the program tests (C and C++): which allocator runs.
 *
 * RSBT_EXPECT=rsb    librsbmalloc must be loaded and own the malloc symbol
 * RSBT_EXPECT=glibc  it must not be loaded (reference run)
 * unset              no check
 */
#ifndef RSBT_PROGCHECK_H
#define RSBT_PROGCHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void rsbt_prog_fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    fflush(stderr);
    exit(1);
}

static inline void rsbt_expect_allocator(void)
{
    const char *e = getenv("RSBT_EXPECT");
    if (!e)
        return;
    void *rsb = dlsym(RTLD_DEFAULT, "rsb_malloc");
    if (!strcmp(e, "glibc")) {
        if (rsb)
            rsbt_prog_fail("RSBT_EXPECT=glibc but rsbmalloc is loaded");
        return;
    }
    if (!rsb)
        rsbt_prog_fail("RSBT_EXPECT=rsb but rsb_malloc is not resolvable: librsbmalloc is not loaded");
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info im, ir;
    if (!m || !dladdr(m, &im) || !dladdr(rsb, &ir) || strcmp(im.dli_fname, ir.dli_fname))
        rsbt_prog_fail("malloc does not come from the same object as rsb_malloc");
}

#endif
