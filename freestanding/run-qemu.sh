#!/usr/bin/env bash
# usage: run-qemu.sh QEMU ELF [MACHINE]
# Runs a bare-metal test image under QEMU; its exit status is the image's
# (0: all checks passed).  Exit 77 (skipped) if QEMU or the image is missing
# (the cross compiler is not installed).
#   qemu-system-arm      Cortex-M images, output and exit by semihosting
#                        (MACHINE default lm3s6965evb)
#   qemu-system-riscv32  RISC-V images on the virt machine, no firmware:
#                        output on the UART, exit through the test device
qemu="$1"
elf="$2"
if [ -z "$qemu" ] || ! command -v "$qemu" >/dev/null 2>&1; then
    echo "${qemu:-qemu} not found: skipped"
    exit 77
fi
if [ ! -f "$elf" ]; then
    echo "$elf not built (cross compiler missing?): skipped"
    exit 77
fi
case "$(basename "$qemu")" in
qemu-system-riscv32*)
    exec timeout 120 "$qemu" -M "${3:-virt}" -bios none -nographic -monitor none -no-reboot \
        -kernel "$elf" ;;
*)
    exec timeout 120 "$qemu" -M "${3:-lm3s6965evb}" -nographic -monitor none -serial none -semihosting \
        -no-reboot -kernel "$elf" ;;
esac
