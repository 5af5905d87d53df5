/*
 * bench/shim.c — see shim.h.
 *
 * Compiled with BENCH_HAVE_RSB=1 when rsbmalloc's prefixed library is linked
 * in; without it only the "system" allocator exists.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#if BENCH_HAVE_RSB
#include <rsbmalloc.h>
#endif

static bench_allocator current = BENCH_SYSTEM;

int bench_have_rsb(void)
{
    return BENCH_HAVE_RSB ? 1 : 0;
}

int bench_select(const char *name)
{
    if (strcmp(name, "system") == 0) {
        current = BENCH_SYSTEM;
        return 0;
    }
    if (strcmp(name, "rsb") == 0 && BENCH_HAVE_RSB) {
        current = BENCH_RSB;
        return 0;
    }
    return -1;
}

int bench_select_from_env(void)
{
    const char *v = getenv("BENCH_ALLOCATOR");
    if (v == NULL || *v == '\0')
        return 0;
    return bench_select(v);
}

bench_allocator bench_current(void)
{
    return current;
}

const char *bench_allocator_name(void)
{
    return current == BENCH_RSB ? "rsb" : "system";
}

const char *bench_malloc_provider(void)
{
    /* dlsym(RTLD_DEFAULT) resolves "malloc" the way the dynamic linker
     * binds it for everybody: the first definition in load order, so an
     * LD_PRELOADed allocator wins over libc. */
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
        return "(unknown)";
    if (info.dli_fname[0] == '\0')
        return "(main program)";
    return info.dli_fname;
}

void bench_oom(const char *what, size_t size)
{
    fprintf(stderr, "bench: out of memory (%s, %zu bytes, allocator %s)\n",
            what, size, bench_allocator_name());
    exit(2);
}

void *bench_alloc(size_t size)
{
#if BENCH_HAVE_RSB
    if (current == BENCH_RSB)
        return rsb_malloc(size);
#endif
    return malloc(size);
}

void bench_free(void *p, size_t size)
{
#if BENCH_HAVE_RSB
    if (current == BENCH_RSB) {
        rsb_free_sized(p, size);
        return;
    }
#endif
    (void)size;
    free(p);
}

void *bench_realloc(void *p, size_t old_size, size_t new_size)
{
    (void)old_size;
#if BENCH_HAVE_RSB
    if (current == BENCH_RSB)
        return rsb_realloc(p, new_size);
#endif
    return realloc(p, new_size);
}

void *bench_aligned(size_t align, size_t size)
{
#if BENCH_HAVE_RSB
    if (current == BENCH_RSB)
        return rsb_aligned_alloc(align, size);
#endif
    return aligned_alloc(align, size);
}

void bench_free_aligned(void *p, size_t align, size_t size)
{
#if BENCH_HAVE_RSB
    if (current == BENCH_RSB) {
        rsb_free_aligned_sized(p, align, size);
        return;
    }
#endif
    (void)align;
    (void)size;
    free(p);
}

/* Read one "Key:   123 kB" line of /proc/self/status without allocating
 * (a read() into a stack buffer): the allocator under test must not see
 * allocations of the measuring code. */
static size_t status_kib(const char *key)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t klen = strlen(key);
    for (char *line = buf; line != NULL && *line != '\0';) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtoull(line + klen + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return 0;
}

size_t bench_rss_now(void)
{
    return status_kib("VmRSS") * 1024;
}

size_t bench_rss_peak(void)
{
    size_t hwm = status_kib("VmHWM") * 1024;
    if (hwm != 0)
        return hwm;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        return (size_t)ru.ru_maxrss * 1024;
    return 0;
}

int bench_rss_reset_peak(void)
{
    int saved = errno;
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    int rc = -1;
    if (fd >= 0) {
        rc = write(fd, "5", 1) == 1 ? 0 : -1;
        close(fd);
    }
    errno = saved;
    return rc;
}
