/*
 * RISC-V (rv32imac) machine-mode runtime for the heap's bare-metal images on
 * QEMU's virt machine, with no libc: output on the first NS16550A UART
 * (0x10000000), the exit status through the SiFive test device (0x100000:
 * 0x5555 ends QEMU with status 0, (code << 16) | 0x3333 with status code).
 * start.S sets up the stack and .bss, then calls rv_main.
 *
 * Run: qemu-system-riscv32 -M virt -bios none -nographic -kernel prog.elf
 */
#include <stddef.h>
#include <stdint.h>

#include "rsbmalloc_heap.h"

#define UART0 ((volatile uint8_t *)0x10000000u)
#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define TEST_DEVICE ((volatile uint32_t *)0x100000u)

int bm_main(void (*put)(const char *s));
void rv_main(void) __attribute__((noreturn));
void rv_fault(uint32_t mcause, uint32_t mepc) __attribute__((noreturn));

static void putc_(char c) {
    while (!(UART0[UART_LSR] & UART_LSR_THRE)) {
    }
    UART0[UART_THR] = (uint8_t)c;
}

static void put(const char *s) {
    for (; *s; s++) {
        if (*s == '\n') putc_('\r');
        putc_(*s);
    }
}

static __attribute__((noreturn)) void rv_exit(int status) {
    for (;;) *TEST_DEVICE = status ? ((uint32_t)status << 16) | 0x3333u : 0x5555u;
}

static void put_hex(uint32_t v) {
    char b[11] = "0x";
    for (int i = 0; i < 8; i++) b[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    b[10] = 0;
    put(b);
}

void rv_fault(uint32_t mcause, uint32_t mepc) {
    put("FAIL: trap, mcause ");
    put_hex(mcause);
    put(", mepc ");
    put_hex(mepc);
    put("\n");
    rv_exit(1);
}

static void on_panic(const char *msg) {
    put(msg);
    put("\n");
    rv_exit(1);
}

void rv_main(void) {
    rsb_heap_set_panic_hook(on_panic);
    rv_exit(bm_main(put));
}
