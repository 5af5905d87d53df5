/* The Cortex-M3 test image: the heap workload (../workload.c) on all the
 * RAM the linker script leaves between .bss and the stack. */
#include <stddef.h>

#include "../workload.h"

#ifndef BM_ITERATIONS
#define BM_ITERATIONS 20000
#endif

extern unsigned char __heap_start[], __heap_end[];

int bm_main(void (*put)(const char *s));

int bm_main(void (*put)(const char *s)) {
    put("rsbmalloc heap, Cortex-M3 bare image (semihosting)\n");
    return bm_workload(__heap_start, (size_t)(__heap_end - __heap_start), BM_ITERATIONS, put) ? 1 : 0;
}
