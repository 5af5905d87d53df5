/* The fake OS layer of the unit tests (fake_os.c): what it counted, and the
 * knobs a test turns. */
#ifndef RSB_FAKE_OS_H
#define RSB_FAKE_OS_H

#include <setjmp.h>

#include "os/os.h"

struct fake_os {
    /* knobs */
    unsigned fail_maps;     /* the next N map calls fail */
    bool fail_purges, fail_remaps;
    uintptr_t next_addr;    /* nonzero: place the next mappings here, upwards */
    uint64_t now_ms;        /* the clock */
    jmp_buf *on_abort;      /* longjmp here instead of aborting */
    /* counters */
    unsigned mmap_errors;   /* real mmap failures (an address the kernel would not give) */
    unsigned block_maps;    /* of the maps: for a block (charged) */
    unsigned maps, failed_maps, unmaps, purges, remaps, yields, aborts;
    size_t mapped_bytes;
    char message[512];      /* the last message written */
};
extern struct fake_os fake;

#endif
