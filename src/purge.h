/*
 * The background purge (hosted, opt-in: RSBMALLOC_BACKGROUND_PURGE=1): a
 * thread of the library's own that, every RSB_BG_PERIOD_MS, does what
 * allocator activity otherwise triggers: remote frees go home, transfer
 * slots and idle empty cursors go back, slabs left alone since the last
 * pass give back their free OS pages, free spans older than the purge delay
 * and expired spares go to the OS.  So a program that frees memory and then
 * goes idle sees its RSS fall within a second, with no further allocator
 * call.  Started from the library constructor when asked (never otherwise),
 * not inherited by a fork's child (started again there on its first slow
 * path), stopped and joined at exit.
 */
#ifndef RSB_PURGE_H
#define RSB_PURGE_H

#include "allocator.h"

#define RSB_BG_PERIOD_MS 200

/* Start the thread if it is not running in this process (the caller checks
 * the option); cheap when it is (one load). */
void rsb_bg_ensure(rsb_allocator *a);
/* Stop it and wait for it (exit). */
void rsb_bg_stop(void);
/* In a fork's child: the thread did not come along. */
void rsb_bg_forget(void);
/* One pass, as the thread does it (tests). */
void rsb_bg_pass(rsb_allocator *a);

#endif
