#!/usr/bin/env python3
"""Build the heap's Criterion tests (tests/heap/heap.c) as a 32-bit x86
program, with `gcc -m32`, so that every word-size
assumption of the heap is tested on a 32-bit target too.  Debian needs
libc6-dev-i386 and lib32gcc-12-dev (not gcc-multilib: it conflicts with the
cross compilers, gcc-aarch64-linux-gnu among them).

Debian 12's libcriterion-dev:i386 cannot be installed beside the amd64 one
(some of its dependencies are not Multi-Arch: same), so the test uses the
one-header runner in tests/support/criterion-lite (the same sources, the
same assertions, each test in a child process).

The library is compiled from freestanding/heap-sources.txt with the
freestanding flags and the 32-bit layout, exactly as for the bare-metal
targets; the test program is a normal hosted 32-bit Linux program.

usage: build_m32.py --cc GCC --root SRCROOT --layout WINDOW_SHIFT SLAB_MAX --out PROGRAM
"""
import argparse
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--cc", required=True)
ap.add_argument("--root", required=True)
ap.add_argument("--layout", nargs=2, type=int, required=True, metavar=("WINDOW_SHIFT", "SLAB_MAX"))
ap.add_argument("--out", required=True)
a = ap.parse_args()

root = os.path.abspath(a.root)
work = os.path.abspath(a.out) + ".d"
os.makedirs(work, exist_ok=True)


def run(cmd):
    if subprocess.run(cmd).returncode:
        sys.exit("build_m32.py: failed: " + " ".join(cmd))


# Without gcc-multilib there is no /usr/include/asm for -m32: the amd64
# kernel headers serve both (they test __i386__ themselves), which is all
# that package's symlink does.  Made here, in the build tree, when needed.
sysinc = []
probe = subprocess.run([a.cc, "-m32", "-E", "-x", "c", "-"], input=b"#include <asm/errno.h>\n",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if probe.returncode:
    arch = subprocess.run([a.cc, "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    asm = os.path.join("/usr/include", arch or "x86_64-linux-gnu", "asm")
    link = os.path.join(work, "include", "asm")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(asm, link)
    sysinc = ["-idirafter", os.path.join(work, "include")]

inc = ["-I" + os.path.join(root, "include"), "-I" + os.path.join(root, "src")]
common = ["-m32", "-std=c17", "-O2", "-g", "-Wall", "-Wextra", "-Werror"]
lib_flags = common + inc + [
    "-ffreestanding", "-nostdlib", "-fno-tree-loop-distribute-patterns", "-fno-stack-protector",
    "-DRSB_FREESTANDING=1", "-DRSB_HEAP_WINDOW_SHIFT=%d" % a.layout[0], "-DRSB_HEAP_SLAB_MAX=%d" % a.layout[1],
    "-fvisibility=hidden", "-fno-strict-aliasing", "-Wmissing-prototypes", "-Wshadow", "-Wno-unused-function"]
objs = []
with open(os.path.join(root, "freestanding/heap-sources.txt")) as f:
    for src in (line.strip() for line in f):
        if not src:
            continue
        obj = os.path.join(work, os.path.basename(src)[:-2] + ".o")
        run([a.cc] + lib_flags + ["-c", os.path.join(root, src), "-o", obj])
        objs.append(obj)
run([a.cc] + common + sysinc + ["-fno-builtin", "-I" + os.path.join(root, "tests/support/criterion-lite"),
                       "-I" + os.path.join(root, "include"),
                       os.path.join(root, "tests/heap/heap.c")] + objs + ["-pthread", "-o", a.out])
