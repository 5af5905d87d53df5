/*
 * Checks in three tiers (RSB_DEBUG, src/config.h):
 *
 *   always       the contract's checks (invalid and double free): plain code
 *                that reports through rsb_fatal_pointer (src/error.h).
 *   RSB_ASSERT   RSB_DEBUG >= 1: a statement about one state change, next to
 *                the change ("this span was a slab", "used never underflows").
 *   RSB_EXPENSIVE RSB_DEBUG >= 2: a whole-structure walk after an operation
 *                (rsb_pages_check, rsb_cache_check, rsb_tc_check).
 *
 * A failed check prints "rsbmalloc: internal check failed: ..." with the
 * file and line, without allocating, and aborts.
 */
#ifndef RSB_DEBUG_H
#define RSB_DEBUG_H

void rsb_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn, cold));

#if RSB_DEBUG >= 1
#define RSB_ASSERT(c) ((c) ? (void)0 : rsb_assert_fail(#c, __FILE__, __LINE__))
#else
#define RSB_ASSERT(c) ((void)0)
#endif

#if RSB_DEBUG >= 2
#define RSB_EXPENSIVE(stmt) \
    do {                    \
        stmt;               \
    } while (0)
#else
#define RSB_EXPENSIVE(stmt) ((void)0)
#endif

/* A structure check that failed: always on (the check functions are called
 * by tests and RSB_EXPENSIVE), reports like RSB_ASSERT. */
#define RSB_CHECK(c, what) ((c) ? (void)0 : rsb_assert_fail(what, __FILE__, __LINE__))

#endif
