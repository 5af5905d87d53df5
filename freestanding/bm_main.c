/* The bare-metal test images' program (Cortex-M3, RISC-V): the heap
 * workload (workload.c) on all the RAM the linker script leaves between
 * .bss and the stack.  The start-up code of each target (cortex-m3/,
 * riscv32/) calls bm_main with its output function. */
#include <stddef.h>

#include "workload.h"

#ifndef BM_ITERATIONS
#define BM_ITERATIONS 20000
#endif
#ifndef BM_TARGET
#define BM_TARGET "bare-metal"
#endif

extern unsigned char __heap_start[], __heap_end[];

int bm_main(void (*put)(const char *s));

int bm_main(void (*put)(const char *s)) {
    put("rsbmalloc heap, " BM_TARGET " image\n");
    return bm_workload(__heap_start, (size_t)(__heap_end - __heap_start), BM_ITERATIONS, put) ? 1 : 0;
}
