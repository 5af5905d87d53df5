/*
 * The self-checking heap workload run by the bare-metal programs (x86-64
 * with its own _start, Cortex-M3 under QEMU).  No libc: output goes through
 * the put callback, one NUL-terminated string at a time.
 */
#ifndef RSB_BM_WORKLOAD_H
#define RSB_BM_WORKLOAD_H

#include <stddef.h>

/* Runs every check on heaps carved from [mem, mem + len); iterations is the
 * length of the random alloc/free/realloc phase.  Returns the number of
 * failed checks (0: all passed). */
int bm_workload(void *mem, size_t len, unsigned iterations, void (*put)(const char *s));

#endif
