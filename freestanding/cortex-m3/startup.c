/*
 * Cortex-M3 start-up for the heap's bare-metal images: vector table, reset
 * handler (copy .data, zero .bss, call bm_main), fault handler, and ARM
 * semihosting for output (SYS_WRITE0) and the exit status (SYS_EXIT).  No
 * libc.  The heap region is [__heap_start, __heap_end) from the linker
 * script: the RAM that .bss and the stack leave.
 *
 * Run: qemu-system-arm -M lm3s6965evb -nographic -semihosting -kernel prog.elf
 */
#include <stddef.h>
#include <stdint.h>

#include "rsbmalloc_heap.h"

/* The program: runs with .data and .bss ready, returns its exit status. */
int bm_main(void (*put)(const char *s));

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

/* ARM semihosting: operation in r0, argument in r1, BKPT 0xAB (Thumb). */
static uintptr_t semihost(uintptr_t op, const void *arg) {
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_Stopped_ApplicationExit 0x20026u
#define ADP_Stopped_RunTimeErrorUnknown 0x20023u

static void put(const char *s) { semihost(SYS_WRITE0, s); }

/* QEMU's exit status is 0 for ApplicationExit, 1 for any other reason. */
static __attribute__((noreturn)) void bm_exit(int status) {
    for (;;)
        semihost(SYS_EXIT, (const void *)(uintptr_t)(status ? ADP_Stopped_RunTimeErrorUnknown
                                                            : ADP_Stopped_ApplicationExit));
}

static void on_panic(const char *msg) {
    put(msg);
    put("\n");
    bm_exit(1);
}

void reset_handler(void);
void fault_handler(void);

void fault_handler(void) {
    put("FAIL: processor fault (HardFault)\n");
    bm_exit(1);
}

void reset_handler(void) {
    for (uint32_t *d = __data_start, *s = __data_load; d < __data_end;) *d++ = *s++;
    for (uint32_t *d = __bss_start; d < __bss_end;) *d++ = 0;
    rsb_heap_set_panic_hook(on_panic);
    bm_exit(bm_main(put));
}

/* Initial stack pointer, reset, then NMI .. SysTick: every fault is a
 * test failure. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, 0, 0, 0, 0,
    fault_handler, fault_handler, 0, fault_handler, fault_handler,
};
