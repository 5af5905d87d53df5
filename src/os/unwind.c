/*
 * The unwinder for heap profiling (built with RSB_PROF, i.e. when meson finds
 * libunwind; see rsb_os_backtrace in linux.c for why libunwind).  A file of
 * its own so that linux.c refers to it weakly: librsbmalloc.so contains it
 * and so needs libunwind, while librsbmalloc.a links statically without
 * -lunwind as before; a static program that wants heap profiles pulls it in
 * with -Wl,-u,rsb_os_unwind -lunwind -llzma.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

int rsb_os_unwind(void **pcs, int max);
int rsb_os_unwind(void **pcs, int max) { return unw_backtrace(pcs, max); }
