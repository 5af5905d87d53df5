/*
 * RSBMALLOC_* options.  The environment is read straight from `environ`:
 * getenv is fine too, but nothing here may allocate, and a malformed value
 * must cost a one-line warning, never a crash.
 */
#include "options.h"

#include "error.h"
#include "os/os.h"

extern char **environ;

rsb_options rsb_opt = {
    .stats = false,
    .verbose = false,
    .junk = false,
    .caches = 0,
    .purge_delay_ms = RSB_DEFAULT_PURGE_DELAY_MS,
    .prof_sample = (uint64_t)512 << 10,
    .prof_prefix = "rsbmalloc",
};

/* A path option of 1..255 bytes into dst; false (dst unchanged) if not. */
static bool copy_path(char *dst, size_t cap, const char *v) {
    size_t n = 0;
    while (v[n] && n + 1 < cap) n++;
    if (v[n] || n == 0) return false;
    for (size_t i = 0; i <= n; i++) dst[i] = v[i];
    return true;
}

static bool prefix_eq(const char *s, const char *name, const char **value) {
    while (*name && *s == *name) s++, name++;
    if (*name || *s != '=') return false;
    *value = s + 1;
    return true;
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static bool word_eq(const char *s, const char *w) {
    while (*s && *w && lower(*s) == *w) s++, w++;
    return *s == 0 && *w == 0;
}

bool rsb_parse_bool(const char *s, bool *out) {
    static const char *yes[] = {"1", "yes", "true", "on"};
    static const char *no[] = {"0", "no", "false", "off"};
    for (unsigned i = 0; i < 4; i++) {
        if (word_eq(s, yes[i])) return *out = true, true;
        if (word_eq(s, no[i])) return *out = false, true;
    }
    return false;
}

bool rsb_parse_int(const char *s, long min, long max, long *out) {
    bool neg = false;
    long v = 0;
    if (*s == '-') neg = true, s++;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (v > (max > -min ? max : -min) / 10 + 1) return false;
        v = v * 10 + (*s - '0');
    }
    if (neg) v = -v;
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

static void warn(const char *entry, const char *why) {
    rsb_buf b = {.len = 0};
    rsb_buf_str(&b, "rsbmalloc: warning: ");
    rsb_buf_str(&b, entry);
    rsb_buf_str(&b, ": ");
    rsb_buf_str(&b, why);
    rsb_buf_str(&b, "\n");
    rsb_buf_flush(&b, 2);
}

/* A boolean setting: 0/1, yes/no, true/false, on/off; default 0. */
static void set_bool(const char *e, const char *v, bool *out) {
    bool bv;
    if (rsb_parse_bool(v, &bv)) *out = bv;
    else warn(e, "expected 0/1, yes/no, true/false or on/off; using the default (0)");
}

bool rsb_options_load(void) {
    char **env = environ;
    if (!env) return false;
    for (; *env; env++) {
        const char *e = *env, *v;
        const char *p = "RSBMALLOC_";
        const char *q = e;
        while (*p && *q == *p) p++, q++;
        if (*p) continue;
        long lv;
        if (prefix_eq(e, "RSBMALLOC_STATS", &v) || prefix_eq(e, "RSBMALLOC_SHOW_STATS", &v)) {
            set_bool(e, v, &rsb_opt.stats);
        } else if (prefix_eq(e, "RSBMALLOC_STATS_FILE", &v)) {
            if (copy_path(rsb_opt.stats_file, sizeof rsb_opt.stats_file, v)) rsb_opt.stats = true;
            else warn(e, "expected a path of 1 to 255 bytes; ignored");
        } else if (prefix_eq(e, "RSBMALLOC_PROF", &v)) {
            set_bool(e, v, &rsb_opt.prof);
        } else if (prefix_eq(e, "RSBMALLOC_PROF_SIGNAL", &v)) {
            set_bool(e, v, &rsb_opt.prof_signal);
        } else if (prefix_eq(e, "RSBMALLOC_PROF_SAMPLE", &v)) {
            if (rsb_parse_int(v, 1, (long)1 << 40, &lv)) rsb_opt.prof_sample = (uint64_t)lv;
            else warn(e, "expected bytes from 1 to 2^40; using the default (524288)");
        } else if (prefix_eq(e, "RSBMALLOC_PROF_PREFIX", &v)) {
            if (!copy_path(rsb_opt.prof_prefix, sizeof rsb_opt.prof_prefix - 32, v))
                warn(e, "expected a path prefix of 1 to 223 bytes; using the default (rsbmalloc)");
        } else if (prefix_eq(e, "RSBMALLOC_VERBOSE", &v)) {
            set_bool(e, v, &rsb_opt.verbose);
        } else if (prefix_eq(e, "RSBMALLOC_BACKGROUND_PURGE", &v)) {
            set_bool(e, v, &rsb_opt.background_purge);
        } else if (prefix_eq(e, "RSBMALLOC_JUNK", &v)) {
            set_bool(e, v, &rsb_opt.junk);
        } else if (prefix_eq(e, "RSBMALLOC_CACHES", &v)) {
            if (rsb_parse_int(v, 1, RSB_MAX_CACHES, &lv)) rsb_opt.caches = (uint32_t)lv;
            else warn(e, "expected a number of caches from 1 to 256; using the default");
        } else if (prefix_eq(e, "RSBMALLOC_PURGE_DELAY_MS", &v)) {
            if (rsb_parse_int(v, -1, 3600000, &lv)) rsb_opt.purge_delay_ms = (int32_t)lv;
            else warn(e, "expected milliseconds from 0 to 3600000, or -1 for never; using the default (100)");
        } else {
            warn(e, "unknown rsbmalloc option, ignored");
        }
    }
    return true;
}
