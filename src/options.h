/* Run-time options from the environment (RSBMALLOC_*), parsed without
 * allocating.  Documented in the README's configuration table. */
#ifndef RSB_OPTIONS_H
#define RSB_OPTIONS_H

#include "util.h"

typedef struct rsb_options {
    bool stats;             /* RSBMALLOC_STATS: report at exit */
    bool verbose;           /* RSBMALLOC_VERBOSE: options and warnings */
    bool junk;              /* RSBMALLOC_JUNK: fill new blocks 0xAB, freed 0xDF */
    bool background_purge;  /* RSBMALLOC_BACKGROUND_PURGE: a purge thread (src/purge.h) */
    uint32_t caches;        /* RSBMALLOC_CACHES: 0 = automatic */
    int32_t purge_delay_ms; /* RSBMALLOC_PURGE_DELAY_MS: -1 never */
    char stats_file[256];   /* RSBMALLOC_STATS_FILE: report there ("%p": the pid); implies stats */
    bool prof;              /* RSBMALLOC_PROF: heap profiling (src/prof.h) */
    bool prof_signal;       /* RSBMALLOC_PROF_SIGNAL: dump on SIGUSR2 */
    uint64_t prof_sample;   /* RSBMALLOC_PROF_SAMPLE: mean bytes between samples */
    char prof_prefix[256];  /* RSBMALLOC_PROF_PREFIX: dumps are <prefix>.<pid>.<seq>.heap */
} rsb_options;

extern rsb_options rsb_opt;

/* Parse the environment.  Returns false if libc has not set up environ yet
 * (the library constructor then tries again). */
bool rsb_options_load(void);
/* Parse one value (exposed for unit tests).  Return false if malformed. */
bool rsb_parse_bool(const char *s, bool *out);
bool rsb_parse_int(const char *s, long min, long max, long *out);

#endif
