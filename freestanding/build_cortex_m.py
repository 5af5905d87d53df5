#!/usr/bin/env python3
"""Build the Cortex-M3 test image from a native (hosted or -Dfreestanding)
build tree, with arm-none-eabi-gcc called directly: a native meson build has
no second compiler.  (A cross build, meson --cross-file
freestanding/arm-none-eabi.txt, builds the same image with meson itself.)

Outputs: the ELF image (semihosting, run it with run-qemu.sh) and the
library built for the target (librsbmalloc_heap.a, checked with nm).

usage: build_cortex_m.py --cc GCC --ar AR --python PY --root SRCROOT
         --layout PAGE_SHIFT SMALL_MAX_SHIFT STEPS SLAB_PAGES
         --elf OUT.elf --lib OUT.a [--cpu cortex-m3] [--define NAME=VALUE]...
         [--program SRC.c]... [--ld SCRIPT.ld] [--min-class N]
"""
import argparse
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--cc", required=True)
ap.add_argument("--ar", required=True)
ap.add_argument("--python", default=sys.executable)
ap.add_argument("--root", required=True)
ap.add_argument("--layout", nargs=4, type=int, required=True)
ap.add_argument("--elf", required=True)
ap.add_argument("--lib", required=True)
ap.add_argument("--cpu", default="cortex-m3")
ap.add_argument("--min-class", type=int, default=16)
ap.add_argument("--define", action="append", default=[])
ap.add_argument("--program", action="append", default=[],
                help="program sources (default: the test image, cortex-m3/main.c and workload.c)")
ap.add_argument("--ld", help="linker script (default: cortex-m3/lm3s6965.ld)")
a = ap.parse_args()

root = os.path.abspath(a.root)
work = os.path.abspath(a.elf) + ".d"
os.makedirs(work, exist_ok=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, **kw)
    if r.returncode:
        sys.exit("build_cortex_m.py: failed: " + " ".join(cmd))
    return r


page_shift, small_max_shift, steps, slab_pages = a.layout
with open(os.path.join(work, "size_classes.h"), "w") as f:
    run([a.python, os.path.join(root, "scripts/gen_size_classes.py"), "--min-class=%d" % a.min_class,
         str(page_shift), str(small_max_shift), str(steps), str(slab_pages)], stdout=f)

arch = ["-mcpu=" + a.cpu, "-mthumb"]
common = arch + ["-std=c17", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
                 "-ffreestanding", "-nostdlib", "-fno-tree-loop-distribute-patterns",
                 "-fno-stack-protector", "-ffunction-sections", "-fdata-sections",
                 "-I" + work, "-I" + os.path.join(root, "include"), "-I" + os.path.join(root, "src")]
lib_flags = common + ["-DRSB_FREESTANDING=1", "-DRSB_PAGE_SHIFT=%d" % page_shift,
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

prog = [os.path.join(root, "freestanding/cortex-m3/startup.c")] + (
    [os.path.abspath(p) for p in a.program] if a.program else
    [os.path.join(root, "freestanding/cortex-m3/main.c"), os.path.join(root, "freestanding/workload.c")])
ld = os.path.abspath(a.ld) if a.ld else os.path.join(root, "freestanding/cortex-m3/lm3s6965.ld")
defs = ["-D" + d for d in a.define]
run([a.cc] + common + defs + prog + [a.lib, "-lgcc",
     "-T", ld,
     "-Wl,--gc-sections", "-o", a.elf])
