#!/usr/bin/env bash
# usage: run-qemu.sh QEMU ELF [MACHINE]
# Runs a Cortex-M image under qemu-system-arm with semihosting; its exit
# status is the image's (0: all checks passed).  Exit 77 (skipped) if QEMU
# or the image is missing (arm-none-eabi-gcc not installed).
qemu="$1"
elf="$2"
machine="${3:-lm3s6965evb}"
if [ -z "$qemu" ] || ! command -v "$qemu" >/dev/null 2>&1; then
    echo "qemu-system-arm not found: skipped"
    exit 77
fi
if [ ! -f "$elf" ]; then
    echo "$elf not built (arm-none-eabi-gcc missing?): skipped"
    exit 77
fi
exec timeout 120 "$qemu" -M "$machine" -nographic -monitor none -serial none -semihosting \
    -no-reboot -kernel "$elf"
