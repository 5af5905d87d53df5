/*
 * x86-64 Linux, no libc: the process starts at _start (below), runs the
 * heap workload on a static buffer in .bss, writes with the raw write
 * system call and leaves with the raw exit system call.  Built with
 * -ffreestanding -nostdlib -static.
 */
#include <stddef.h>

#include "../workload.h"

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    call bm_main\n"
        "    mov %eax, %edi\n"
        "    mov $60, %eax\n" /* SYS_exit */
        "    syscall\n"
        "    hlt\n");

int bm_main(void);

static long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void put(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    sys3(1 /* SYS_write */, 1, (long)s, (long)n);
}

/* 4 MiB in .bss: the heap's region. */
static unsigned char heap_region[4u << 20] __attribute__((aligned(4096)));

int bm_main(void) {
    put("rsbmalloc heap, x86-64 bare program (_start, no libc)\n");
    return bm_workload(heap_region, sizeof heap_region, 200000, put) ? 1 : 0;
}
