/* Helpers shared by the multi-thread tests (stress.c, rss.c): the first
 * failure seen by any thread is recorded for the main thread to report, a
 * size scale from RSBT_STRESS_SCALE, and a cheap per-thread RNG. */
#ifndef RSBTEST_MT_H
#define RSBTEST_MT_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int g_failed;
static char g_msg[1024];

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    if (atomic_exchange(&g_failed, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
}

static double scale(void)
{
    const char *s = getenv("RSBT_STRESS_SCALE");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

/* xorshift64* */
static inline uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

#endif
