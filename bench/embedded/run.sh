#!/usr/bin/env bash
# bench/embedded/run.sh [BUILD_DIR] — the embedded benchmarks, every number
# in freestanding/README-baremetal.md's tables, printed as Markdown.
#
#   BUILD_DIR   a hosted build (default: build) with embedded-bench and
#               embedded-longest built (ninja -C build)
#
# Runs, for the rsbmalloc heap (librsbmalloc_heap.a) and the first-fit
# baseline: heap_exhaustion (utilisation at the first failure, 1 MiB heap),
# random_actions (1 s of CPU, 256 MiB heap, 3 runs), simple-chunk-allocator's
# tick benchmark (1 s and 10 s), the latency tail (1M operations: one run,
# and per-operation minimum of 5 runs), the callgrind instruction count of
# each longest path (needs valgrind), and the utilisation on a Cortex-M3
# under QEMU (needs arm-none-eabi-gcc and qemu-system-arm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
bench="$build/freestanding/embedded-bench"
longest="$build/freestanding/embedded-longest"
for x in "$bench" "$longest"; do
    [ -x "$x" ] || { echo "missing $x: ninja -C $build" >&2; exit 1; }
done

echo "# Embedded benchmarks ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs)"
echo
echo '```'
"$bench" --seeds 100 exhaustion
for i in 1 2 3; do "$bench" random_actions; done
"$bench" --seconds 1 ticks
"$bench" --seconds 10 ticks
"$bench" --reps 1 tail
"$bench" --reps 5 tail
echo '```'

if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    out="$(mktemp)"
    trap 'rm -f "$out"' EXIT
    echo
    echo "## Longest paths (callgrind, instructions including the call)"
    echo
    valgrind --tool=callgrind --toggle-collect='lp_*' --callgrind-out-file="$out" "$longest" 2>/dev/null
    echo
    echo "| path | instructions |"
    echo "|---|---|"
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
        sed -n 's/^ *\([0-9,]*\) (.*:lp_\([a-z_0-9]*\).*/| \2 | \1 |/p' | sed 's/_/ /g'
fi

gcc_arm="$(command -v arm-none-eabi-gcc || true)"
qemu="$(command -v qemu-system-arm || true)"
if [ -n "$gcc_arm" ] && [ -n "$qemu" ]; then
    work="$(mktemp -d)"
    # The 32-bit layout of this build (freestanding/meson.build), from the
    # command that built the Cortex-M3 test image.
    layout="$(sed -n 's/.*build_baremetal.py.*--target cortex-m3.*--layout \([0-9]*\) \([0-9]*\).*/\1 \2/p' \
        "$build/build.ninja" | head -1)"
    python3 "$root/freestanding/build_baremetal.py" --target cortex-m3 --cc "$gcc_arm" --ar arm-none-eabi-ar \
        --root "$root" --layout ${layout:-10 1024} \
        --elf "$work/bench.elf" --lib "$work/lib.a" \
        --program "$root/bench/embedded/cortex_m_bench.c" --program "$root/bench/embedded/firstfit.c" \
        --ld "$root/freestanding/cortex-m3/mps2-an385.ld"
    echo
    echo "## Cortex-M3 (qemu-system-arm -M mps2-an385)"
    echo
    echo "layout (window shift, largest slab class): ${layout:-10 1024}"
    echo
    timeout 300 "$qemu" -M mps2-an385 -nographic -monitor none -serial none -semihosting \
        -kernel "$work/bench.elf"
    rm -rf "$work"
fi
