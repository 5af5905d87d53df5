#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_api (tests/fuzz/corpus/seed-*).

Each seed is a short program in the fuzzer's input encoding (see step() in
fuzz_api.c) that reaches one area: every size range, every aligned
allocator, realloc across classes, remote frees, absurd requests.  The
fuzzer mutates from there.  Run again after changing the encoding:
    python3 tests/fuzz/make_seeds.py
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

KiB, MiB = 1 << 10, 1 << 20


def size(kind, v):
    sel = {"tiny": 0, "small": 4, "medium": 9, "huge": 12, "edge": 14}[kind]
    return bytes([sel]) + struct.pack("<I", v & 0xFFFFFFFF)


def malloc(kind, v): return bytes([0]) + size(kind, v)
def calloc(kind, v, n): return bytes([2]) + size(kind, v) + bytes([n])
def realloc(kind, v, slot): return bytes([3]) + size(kind, v) + bytes([slot])
def free(slot): return bytes([4, slot])
def aligned(align_lg, kind, v, how): return bytes([6, align_lg]) + size(kind, v) + bytes([how])
def remote_free(slot): return bytes([7, slot])
def worker_malloc(kind, v): return bytes([8]) + size(kind, v)
def worker_realloc(kind, v, slot): return bytes([9]) + size(kind, v) + bytes([slot])
def use_usable(slot): return bytes([10, slot])
def absurd(v, how, extra=b""): return bytes([11]) + struct.pack("<I", v) + bytes([how]) + extra
def reallocarray(kind, v, n, slot): return bytes([12]) + size(kind, v) + bytes([n, slot])
def burst(base, mult, n): return bytes([13, base, mult, n])
def realloc0(slot): return bytes([14, slot])
def trim(): return bytes([15, 0])


def seeds():
    rnd = random.Random(7)
    yield "tiny", b"".join(malloc("tiny", i) for i in range(0, 65, 4)) + b"".join(free(0) for _ in range(8))
    yield "small", b"".join(malloc("small", rnd.getrandbits(32)) for _ in range(24)) + b"".join(
        free(rnd.randrange(256)) for _ in range(12))
    yield "medium", b"".join(malloc("medium", rnd.getrandbits(32)) for _ in range(8)) + free(3) + free(1)
    yield "huge", b"".join(malloc("huge", rnd.getrandbits(32)) for _ in range(4)) + free(0) + malloc("huge", 5)
    yield "edges", b"".join(malloc("edge", i | (j << 8)) for i in range(15) for j in range(3))
    yield "calloc", b"".join(calloc(k, rnd.getrandbits(32), n)
                             for k in ("tiny", "small", "medium", "huge") for n in (1, 3))
    yield "realloc-up", malloc("tiny", 10) + realloc("small", 300, 0) + realloc("small", 200000, 0) + \
        realloc("medium", 500000, 0) + realloc("huge", 1000000, 0) + realloc("huge", 7000000, 0)
    yield "realloc-down", malloc("huge", 6000000) + realloc("medium", 100000, 0) + \
        realloc("small", 70000, 0) + realloc("tiny", 3, 0)
    yield "memalign", b"".join(aligned(lg, k, rnd.getrandbits(32), 0)
                               for lg in range(0, 22, 3) for k in ("tiny", "small", "medium"))
    yield "posix-memalign", b"".join(aligned(lg, "small", rnd.getrandbits(32), 1) for lg in range(22))
    yield "aligned-alloc", b"".join(aligned(lg, "huge", rnd.getrandbits(32), 2) for lg in (9, 13, 17, 19, 21))
    yield "valloc-pvalloc", b"".join(aligned(0, k, rnd.getrandbits(32), how)
                                     for k in ("tiny", "small", "medium") for how in (3, 4))
    yield "remote", b"".join(malloc("small", rnd.getrandbits(32)) for _ in range(16)) + \
        b"".join(remote_free(i) for i in range(8)) + b"".join(malloc("small", 77) for _ in range(8))
    yield "worker", b"".join(worker_malloc(k, rnd.getrandbits(32)) for k in ("tiny", "small", "medium", "huge")) + \
        free(0) + free(1) + worker_realloc("medium", 12345, 0) + remote_free(0)
    yield "usable", malloc("small", 1000) + malloc("tiny", 3) + use_usable(0) + use_usable(1) + \
        realloc("small", 5000, 0)
    yield "absurd", malloc("small", 100) + b"".join(absurd(rnd.getrandbits(32), how, bytes([5, 0]))
                                                    for how in range(7))
    yield "reallocarray", malloc("small", 100) + reallocarray("medium", 900000, 3, 0) + \
        reallocarray("small", 9, 2, 0)
    yield "burst", burst(40, 0, 11) + burst(200, 3, 9) + b"".join(free(i * 3) for i in range(10))
    yield "realloc0", malloc("small", 100) + malloc("medium", 5) + realloc0(0) + realloc0(0)
    yield "trim", b"".join(malloc("medium", i) for i in range(6)) + free(0) + free(0) + trim() + malloc("medium", 99)
    ops = []
    for _ in range(300):
        ops.append(bytes([rnd.randrange(16)]) + bytes(rnd.getrandbits(8) for _ in range(8)))
    yield "mixed", b"".join(ops)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
