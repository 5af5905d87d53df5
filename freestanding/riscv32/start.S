/*
 * RISC-V (rv32imac) start-up for the heap's bare-metal images on QEMU's
 * "virt" machine (qemu-system-riscv32 -M virt -bios none -kernel IMAGE):
 * the image is loaded into RAM at 0x80000000 and entered at _start in
 * machine mode.  Sets the stack and global pointers, zeroes .bss (there is
 * no .data to copy: the image is loaded where it runs), installs the trap
 * vector and calls rv_main (riscv32/startup.c), which never returns.
 */
/* The CSR instructions are the Zicsr extension, which binutils 2.38 and
 * later no longer imply in rv32imac; the library itself uses none. */
    .option arch, +zicsr
    .section .text.start, "ax"
    .global _start
_start:
    csrw    mie, zero
    la      sp, __stack_top
.option push
.option norelax
    la      gp, __global_pointer$
.option pop
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  la      t0, rv_trap
    csrw    mtvec, t0
    call    rv_main
3:  wfi
    j       3b

/* Any trap (illegal instruction, misaligned or faulting access, ebreak from
 * __builtin_trap) is a test failure: report mcause and mepc. */
    .align  2
rv_trap:
    la      sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    call    rv_fault
4:  j       4b
