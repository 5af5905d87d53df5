/*
 * Telling memcheck about blocks (-Dvalgrind=true, RSB_VALGRIND): a handful
 * of macros around the entry points (src/entry.[ch]), empty in other builds.
 *
 *   rsb_track_on()        running under valgrind now (a client request)
 *   rsb_track_enter/leave around the allocator's own work: errors off (it
 *                         reads free blocks and its metadata), and the
 *                         thread cache stays off for good, so every block
 *                         passes through the tracked slow paths
 *   rsb_track_alloc(p, size, zeroed)  a new block of size bytes at p
 *   rsb_track_free(p, free_now)  the program freed p: memcheck hears of it
 *                         first (an invalid free is reported before
 *                         rsbmalloc aborts on it), then the block waits in a
 *                         quarantine before free_now really frees it
 *
 * Under valgrind realloc always moves, as valgrind's own realloc does, so a
 * stale pointer to the old block is caught.  Without valgrind running,
 * each macro costs a few instructions (a client request).
 */
#ifndef RSB_TRACK_H
#define RSB_TRACK_H

#include "util.h"

#if RSB_VALGRIND
#include <valgrind/memcheck.h>
#define rsb_track_on() (RUNNING_ON_VALGRIND != 0)
void rsb_track_enter(void);
#define rsb_track_leave() VALGRIND_ENABLE_ERROR_REPORTING
void *rsb_track_alloc(void *p, size_t size, int zeroed);
void rsb_track_free(void *p, void (*free_now)(void *));
#define rsb_track_quiet(stmt)             \
    do {                                  \
        VALGRIND_DISABLE_ERROR_REPORTING; \
        stmt;                             \
        VALGRIND_ENABLE_ERROR_REPORTING;  \
    } while (0)
#else
#define rsb_track_on() 0
#define rsb_track_enter() ((void)0)
#define rsb_track_leave() ((void)0)
#define rsb_track_alloc(p, size, zeroed) (p)
#define rsb_track_free(p, free_now) ((void)(p), (void)(free_now))
#define rsb_track_quiet(stmt) \
    do {                      \
        stmt;                 \
    } while (0)
#endif

#endif
