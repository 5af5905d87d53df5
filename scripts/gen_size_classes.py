#!/usr/bin/env python3
"""Generate src/size_classes.h: the one table every size class comes from.

Classes (invariants; tests/unit/size_classes.c checks each on the table):
  - 16, 32, ..., 128 in steps of 16 (the minimum alignment, RSB_ALIGN);
  - above 128, each doubling (s, 2s] is cut into k equal steps of s/k, k
    as large as a slab still holds many blocks of the octave's largest
    class 2s (so that more classes do not mostly leave more part-used
    slabs behind) and the step stays a multiple of 16:
      k = 16 when a one-page slab holds at least 32 blocks of 2s and s/16 >= 16
             (with 64 KiB pages: 256 B .. 2 KiB, steps of 16..64 B);
      k = 8  when it holds at least 8 (128..256 B, 2 KiB .. 8 KiB);
      k = STEPS (4) above (8 KiB .. 256 KiB);
    --fine=F caps k at F (F = STEPS: STEPS classes in every octave, the
    table before mixed steps);
  - so a block wastes less than 1/(k+1) of itself: 1/17 = 5.9% from 256 B
    to 2 KiB, 1/9 = 11.1% up to 8 KiB, 1/5 = 20% above, and less than 16
    bytes up to 128 (17 B -> 32 B is the worst case, 47%: alignment);
  - the last class is 2**SMALL_MAX_SHIFT (RSB_SMALL_MAX).
Over a log-uniform mix of requests 16 B .. 256 KiB the waste (class - size)
/ class averages 7.8% (9.0% counting each slab's tail; 10.0% with 4
steps everywhere); the worst case above 64 B is 20%.  The unit test
computes both and holds them to 12.5% and 25%.

For each class the slab (span) size in pages is the smallest page count
whose tail waste is at most 1/16 of the span and that holds at least 8
blocks (or 4 blocks when it is that large), with at most MAX_PAGES pages.

Lookup (size_class.h): sizes up to RSB_CLASS_LUT_MAX (1 KiB) through a byte
table indexed by (size + 15) >> 4; above, per octave lg (size in
(2^lg, 2^(lg+1)]) class = base[lg] + ((size - 1) >> shift[lg]), where
shift = lg - log2(k) and base = the octave's first class - k.

usage: gen_size_classes.py [--min-class=N] [--fine=F] PAGE_SHIFT SMALL_MAX_SHIFT STEPS MAX_PAGES [CHUNK_SHIFT] > size_classes.h
(with CHUNK_SHIFT, a slab takes at most a quarter of a chunk)
"""
import sys

# --min-class=N (a multiple of 16, at most 128): the smallest class; smaller
# sizes use it.
min_class = 16
fine = 16
argv = []
for a in sys.argv[1:]:
    if a.startswith("--min-class="):
        min_class = int(a.split("=", 1)[1])
    elif a.startswith("--fine="):
        fine = int(a.split("=", 1)[1])
    else:
        argv.append(a)
assert min_class % 16 == 0 and 16 <= min_class <= 128, "min class: a multiple of 16, at most 128"
page_shift, small_max_shift, steps, max_pages = (int(a) for a in argv[0:4])
if len(argv) > 4:
    max_pages = max(1, min(max_pages, (1 << (int(argv[4]) - page_shift)) // 4))
page = 1 << page_shift
small_max = 1 << small_max_shift
assert steps & (steps - 1) == 0 and steps <= 8, "class_steps must be a power of two <= 8"
fine = max(fine, steps)
assert fine & (fine - 1) == 0 and fine <= 16, "fine steps must be a power of two <= 16"
assert max_pages << page_shift <= 1 << 20, "slabs are at most 1 MiB (reciprocal division)"
# (k, blocks): k classes in an octave whose largest class a one-page slab
# holds at least `blocks` times; the first that applies wins.
FINE_RULES = ((16, 32), (8, 8))

def octave_steps(s):
    for k, blocks in FINE_RULES:
        if k <= fine and 2 * s * blocks <= page and s // k >= 16:
            return max(k, steps)
    return steps

sizes = list(range(min_class, min(128, small_max) + 1, 16))
linear_classes = len(sizes)  # classes of at most 128 bytes
octaves = []  # (lg, first class, steps) for each octave (2^lg, 2^(lg+1)] above 128
s = 128
while s < small_max:
    k = octave_steps(s)
    octaves.append((s.bit_length() - 1, len(sizes), k))
    for i in range(1, k + 1):
        sizes.append(s + i * (s // k))
    s *= 2
sizes = [x for x in sizes if x <= small_max]
# The largest class of an octave with more than STEPS classes.
fine_max = max([128] + [2 << lg for lg, _, k in octaves if k > steps])
max_steps = max([steps] + [k for _, _, k in octaves])

def slab_pages(size):
    best = None
    for n in range(1, max_pages + 1):
        span = n * page
        if span < size:
            continue
        objs = span // size
        waste = span - objs * size
        if best is None or waste * best[0] < best[1] * n:  # lower waste ratio
            best = (n, waste)
        if waste * 16 <= span and (objs >= 8 or span >= 4 * size or n == max_pages):
            return n
    return best[0] if best else max_pages

pages = [slab_pages(x) for x in sizes]
for x, n in zip(sizes, pages):
    assert n * page >= x, (x, n)

# Direct lookup for sizes <= 1024 (or small_max): index (size + 15) >> 4.
lut_max = min(1024, small_max)
lut_shift = lut_max.bit_length() - 1
lut = []
for i in range((lut_max >> 4) + 1):
    want = max(16, i << 4)
    lut.append(next(c for c, x in enumerate(sizes) if x >= want))

# Octave tables for sizes above lut_max, indexed by lg - lut_shift.
oct_base, oct_shift = [], []
for lg, first, k in octaves:
    if lg < lut_shift:
        continue
    oct_base.append(first - k)
    oct_shift.append(lg - (k.bit_length() - 1))
    assert oct_base[-1] >= 0
# The formula is the smallest class that fits, for every size above lut_max.
for size in range(lut_max + 1, small_max + 1):
    lg = (size - 1).bit_length() - 1
    c = oct_base[lg - lut_shift] + ((size - 1) >> oct_shift[lg - lut_shift])
    assert sizes[c] >= size and (c == 0 or sizes[c - 1] < size), size

out = []
w = out.append
w("/* Generated by scripts/gen_size_classes.py %s; do not edit. */" % " ".join(sys.argv[1:]))
w("#ifndef RSB_SIZE_CLASSES_H")
w("#define RSB_SIZE_CLASSES_H")
w("#define RSB_GEN_PAGE_SHIFT %d" % page_shift)
w("#define RSB_NUM_CLASSES %d" % len(sizes))
w("#define RSB_SMALL_MAX %d" % sizes[-1])
w("#define RSB_CLASS_STEPS %d /* classes per doubling above RSB_CLASS_FINE_MAX */" % steps)
w("#define RSB_CLASS_MAX_STEPS %d /* the most classes in one doubling */" % max_steps)
w("#define RSB_CLASS_FINE_MAX %d /* above 128, octaves up to here have more than RSB_CLASS_STEPS classes */" % fine_max)
w("#define RSB_LINEAR_CLASSES %d /* classes of 128 bytes or less, 16 apart */" % linear_classes)
w("#define RSB_CLASS_LUT_MAX %d" % lut_max)
w("#define RSB_CLASS_LUT_SHIFT %d /* log2(RSB_CLASS_LUT_MAX) */" % lut_shift)
w("#define RSB_LUT_CLASSES %d /* classes reachable through the table */" % (lut[-1] + 1))
w("#define RSB_TC_CLASSES RSB_NUM_CLASSES /* every small class has a thread-cache list */")
w("#define RSB_MAX_SLAB_PAGES %d" % max(pages))
w("/* class -> block size in bytes */")
w("static const uint32_t rsb_class_size[RSB_NUM_CLASSES] = {")
for i in range(0, len(sizes), 8):
    w("    " + ", ".join("%d" % x for x in sizes[i:i + 8]) + ",")
w("};")
w("/* class -> pages per slab */")
w("static const uint16_t rsb_class_pages[RSB_NUM_CLASSES] = {")
for i in range(0, len(pages), 16):
    w("    " + ", ".join("%d" % x for x in pages[i:i + 16]) + ",")
w("};")
w("/* class -> blocks per slab */")
w("static const uint32_t rsb_class_blocks[RSB_NUM_CLASSES] = {")
blocks = [(n << page_shift) // x for x, n in zip(sizes, pages)]
for i in range(0, len(blocks), 16):
    w("    " + ", ".join("%d" % x for x in blocks[i:i + 16]) + ",")
w("};")
w("/* class -> ceil(2^48 / size): (offset * magic) >> 48 == offset / size for")
w(" * every offset inside a slab (offsets < 2^20), so block boundaries are")
w(" * checked without a division. */")
w("static const uint64_t rsb_class_magic[RSB_NUM_CLASSES] = {")
mag = [((1 << 48) + x - 1) // x for x in sizes]
for i in range(0, len(mag), 4):
    w("    " + ", ".join("0x%xull" % x for x in mag[i:i + 4]) + ",")
w("};")
w("/* (size + 15) >> 4 -> class, for size <= RSB_CLASS_LUT_MAX */")
w("static const uint8_t rsb_class_lut[%d] = {" % len(lut))
for i in range(0, len(lut), 16):
    w("    " + ", ".join("%d" % x for x in lut[i:i + 16]) + ",")
w("};")
w("/* Above RSB_CLASS_LUT_MAX, for size in (2^lg, 2^(lg+1)] and")
w(" * o = lg - RSB_CLASS_LUT_SHIFT: class = rsb_class_oct_base[o] +")
w(" * ((size - 1) >> rsb_class_oct_shift[o]) (shift = lg - log2(classes in")
w(" * the octave), base = its first class - classes in it). */")
w("#define RSB_CLASS_OCTAVES %d" % max(1, len(oct_base)))
w("static const uint8_t rsb_class_oct_base[RSB_CLASS_OCTAVES] = {%s};" %
  ", ".join("%d" % x for x in oct_base or [0]))
w("static const uint8_t rsb_class_oct_shift[RSB_CLASS_OCTAVES] = {%s};" %
  ", ".join("%d" % x for x in oct_shift or [0]))
w("#endif")
print("\n".join(out))
