#!/usr/bin/env python3
"""Build a bare-metal test image of the heap from a native (hosted or
-Dfreestanding) build tree, with the target's cross compiler called
directly: a native meson build has no second compiler.  (A cross build,
meson --cross-file freestanding/arm-none-eabi.txt, builds the Cortex-M3
image with meson itself.)

Targets:
  cortex-m3  arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb; cortex-m3/startup.c
             (vector table, semihosting), cortex-m3/lm3s6965.ld
  riscv32    riscv64-unknown-elf-gcc -march=rv32imac -mabi=ilp32;
             riscv32/start.S + riscv32/startup.c (UART, test device),
             riscv32/virt.ld (QEMU virt)

Outputs: the ELF image (run it with run-qemu.sh) and the library built for
the target (librsbmalloc_heap.a, checked with nm).

usage: build_baremetal.py --target cortex-m3|riscv32 --cc GCC --ar AR
         --root SRCROOT --layout WINDOW_SHIFT SLAB_MAX --elf OUT.elf --lib OUT.a
         [--define NAME=VALUE]... [--program SRC.c]... [--ld SCRIPT.ld] [--ldflag FLAG]...
"""
import argparse
import os
import subprocess
import sys

TARGETS = {
    "cortex-m3": {
        "arch": ["-mcpu=cortex-m3", "-mthumb"],
        "startup": ["freestanding/cortex-m3/startup.c"],
        "ld": "freestanding/cortex-m3/lm3s6965.ld",
        "name": "Cortex-M3 (semihosting)",
    },
    "riscv32": {
        "arch": ["-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany"],
        "startup": ["freestanding/riscv32/start.S", "freestanding/riscv32/startup.c"],
        "ld": "freestanding/riscv32/virt.ld",
        "name": "RISC-V rv32imac (virt)",
    },
}

ap = argparse.ArgumentParser()
ap.add_argument("--target", choices=sorted(TARGETS), default="cortex-m3")
ap.add_argument("--cc", required=True)
ap.add_argument("--ar", required=True)
ap.add_argument("--root", required=True)
ap.add_argument("--layout", nargs=2, type=int, required=True, metavar=("WINDOW_SHIFT", "SLAB_MAX"))
ap.add_argument("--elf", required=True)
ap.add_argument("--lib", required=True)
ap.add_argument("--define", action="append", default=[])
ap.add_argument("--program", action="append", default=[],
                help="program sources (default: the test image, bm_main.c and workload.c)")
ap.add_argument("--ld", help="linker script (default: the target's)")
ap.add_argument("--ldflag", action="append", default=[], help="extra link flag (e.g. -Wl,--defsym=RAM_SIZE=4M)")
a = ap.parse_args()
t = TARGETS[a.target]

root = os.path.abspath(a.root)
work = os.path.abspath(a.elf) + ".d"
os.makedirs(work, exist_ok=True)


def run(cmd):
    r = subprocess.run(cmd)
    if r.returncode:
        sys.exit("build_baremetal.py: failed: " + " ".join(cmd))


window_shift, slab_max = a.layout
common = t["arch"] + ["-std=c17", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
                      "-ffreestanding", "-nostdlib", "-fno-tree-loop-distribute-patterns",
                      "-fno-stack-protector", "-ffunction-sections", "-fdata-sections",
                      "-I" + os.path.join(root, "include"), "-I" + os.path.join(root, "src")]
lib_flags = common + ["-DRSB_FREESTANDING=1", "-DRSB_HEAP_WINDOW_SHIFT=%d" % window_shift,
                      "-DRSB_HEAP_SLAB_MAX=%d" % slab_max,
                      "-fvisibility=hidden", "-fno-strict-aliasing",
                      "-Wmissing-prototypes", "-Wshadow", "-Wno-unused-function"]

objs = []
with open(os.path.join(root, "freestanding/heap-sources.txt")) as f:
    sources = [line.strip() for line in f if line.strip()]
for src in sources:
    obj = os.path.join(work, os.path.basename(src)[:-2] + ".o")
    run([a.cc] + lib_flags + ["-c", os.path.join(root, src), "-o", obj])
    objs.append(obj)
if os.path.exists(a.lib):
    os.remove(a.lib)
run([a.ar, "rcs", a.lib] + objs)

prog = [os.path.join(root, s) for s in t["startup"]] + (
    [os.path.abspath(p) for p in a.program] if a.program else
    [os.path.join(root, "freestanding/bm_main.c"), os.path.join(root, "freestanding/workload.c")])
ld = os.path.abspath(a.ld) if a.ld else os.path.join(root, t["ld"])
defs = ["-D" + d for d in a.define] + ['-DBM_TARGET="%s"' % t["name"]]
run([a.cc] + common + defs + prog + [a.lib, "-lgcc", "-T", ld, "-Wl,--gc-sections"] + a.ldflag + ["-o", a.elf])
