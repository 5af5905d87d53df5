#!/usr/bin/env bash
# bench/embedded/run.sh [BUILD_DIR] — the embedded benchmarks: every number
# in freestanding/README-baremetal.md's tables (and README.md's bare-metal
# section), printed as Markdown: first the summary table of issue 17, with
# the issue's TLSF and o1heap figures quoted beside ours (neither is
# packaged for Debian; they are not run here), then the raw output.
#
#   BUILD_DIR   a hosted build (default: build) with embedded-bench and
#               embedded-longest built (ninja -C build)
#
# About two minutes.  For the rsbmalloc heap (librsbmalloc_heap.a) and the
# first-fit baseline (bench/embedded/firstfit.c): utilisation at the first
# failure (1 MiB heap, 100 seeds; large blocks on a 256 MiB heap),
# exhaustion rounds, fragmentation after 1M operations at 50 % load,
# random_actions (1 s of CPU, 256 MiB heap, 3 runs: median), free+alloc
# pairs (time, and instructions under callgrind), simple-chunk-allocator's
# tick benchmark (1 s), the latency tail (1M operations, one run and the
# per-operation minimum of 5), the longest paths under callgrind, and the
# utilisation on 32-bit targets under QEMU (Cortex-M3, RISC-V).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
bench="$build/freestanding/embedded-bench"
longest="$build/freestanding/embedded-longest"
for x in "$bench" "$longest"; do
    [ -x "$x" ] || { echo "missing $x: ninja -C $build" >&2; exit 1; }
done
raw="$(mktemp)"
work="$(mktemp -d)"
trap 'rm -rf "$raw" "$work"' EXIT
run() { "$@" | tee -a "$raw" >/dev/null; }

run "$bench" --seeds 100 exhaustion
run "$bench" --alloc rsb --heap 256 --seeds 3 exhaustion
run "$bench" rounds
run "$bench" --seeds 5 frag
run "$bench" --alloc rsb --seeds 5 --max-size 1024 frag
run "$bench" --alloc rsb --seeds 5 --max-size 256 frag
for i in 1 2 3; do run "$bench" random_actions; done
run "$bench" pairs
run "$bench" --seconds 1 ticks
run "$bench" --reps 1 tail
run "$bench" --reps 5 tail

# Field n (1-based, %-stripped) of the first line matching a pattern.
pick() { grep -E "$1" "$raw" | head -1 | sed 's/%//g' | awk -v n="$2" '{ print $n }'; }
# The value after "key " / "key=" on the first line matching a pattern.
after() { grep -E "$1" "$raw" | head -1 | sed -n "s/.*$2[= ]*\\([0-9.]*\\).*/\\1/p"; }
median3() { sort -g | sed -n 2p; }

ex="exhaustion +rsbmalloc heap +1024 KiB"
u16="$(after "$ex" " 16 B")" u64="$(after "$ex" " 64 B")" u256="$(after "$ex" " 256 B")"
u4096="$(after "$ex" " 4096 B")" urand="$(after "$ex" "random 1..4096 B")"
urmin="$(grep -E "$ex" "$raw" | head -1 | sed -n 's/.*(min \([0-9.]*\)%.*/\1/p')"
large="$(after "exhaustion +rsbmalloc heap +262144 KiB" "aligned")"
rounds="$(after "rounds +rsbmalloc" "(")"
frag="$(after "frag +rsbmalloc heap .*1..4096" "free bytes:")"
fragmean="$(grep -E "frag +rsbmalloc heap .*1..4096" "$raw" | sed -n 's/.*mean of [0-9]* seeds \([0-9.]*\)%.*/\1/p')"
ra="$(grep -E "random_actions +rsbmalloc" "$raw" | sed -n 's/.*(\([0-9.]*\) M\/s).*/\1/p' | median3)"
tk="$(grep -A1 -E "ticks +rsbmalloc" "$raw" | tail -1)"
tmed="$(echo "$tk" | sed -n 's/.*median= *\([0-9]*\).*/\1/p')"
t999="$(echo "$tk" | sed -n 's/.*p99.9= *\([0-9]*\).*/\1/p')"
tmax="$(echo "$tk" | sed -n 's/.*max= *\([0-9]*\).*/\1/p')"
tail5="$(grep -A2 -E "tail +rsbmalloc heap +16 MiB.*min of 5" "$raw")"
t5amax="$(echo "$tail5" | sed -n 's/.*alloc.*max= *\([0-9]*\).*/\1/p')"
t5fmax="$(echo "$tail5" | sed -n 's/.*free .*max= *\([0-9]*\).*/\1/p')"

ipp="n/a (valgrind missing)"
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    ops=200000
    valgrind --tool=callgrind --toggle-collect=pair_loop --callgrind-out-file="$work/pairs.cg" \
        "$bench" --alloc rsb --ops $ops pairs >/dev/null 2>&1
    ir="$(callgrind_annotate --inclusive=yes "$work/pairs.cg" 2>/dev/null |
        sed -n 's/^ *\([0-9,]*\) .*:rsb_heap_\(alloc\|free\) \[.*/\1/p' | tr -d , | awk '{ s += $1 } END { print s }')"
    ipp="$(awk -v i="$ir" -v n="$ops" 'BEGIN { printf "%.0f", i / n }')"
    valgrind --tool=callgrind --toggle-collect='lp_*' --callgrind-out-file="$work/lp.cg" "$longest" >/dev/null 2>&1
fi

echo "# Embedded benchmarks ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "Issue 17's table: rsbmalloc measured here by \`bench/embedded/run.sh\`; TLSF and o1heap are"
echo "the issue's figures (its own harness, another machine), quoted, not rerun."
echo
echo "| metric | rsbmalloc heap | TLSF (issue) | o1heap (issue) |"
echo "| --- | --- | --- | --- |"
echo "| utilisation until the first NULL, 16 / 64 / 256 / 4096 B, 1 MiB heap | $u16 / $u64 / $u256 / $u4096 % | 49.7 / 88.3 / 96.4 / 98.8 % | 25 / 50 / 50 / 49.6 % |"
echo "| utilisation, random sizes 1..4096 B (mean of 100 seeds; min) | $urand % ($urmin %) | 98.7 % | 73.5 % |"
echo "| large blocks 10 KB..300 KB, alignment up to 1 KiB, 256 MiB heap (mean of 3 seeds) | $large % | 99.9 % | 68.9 % |"
echo "| heap-exhaustion rounds in 1 s (random 1..4096 B, 1 MiB heap; free all on failure) | $rounds | 57,130 | 40,302 |"
echo "| largest block that fits after 1 M random ops at 50 % load, share of the free bytes (1..4096 B, 1 MiB; seed 1, mean of 5) | $frag % ($fragmean %) | 89.2 % | 50.1 % |"
echo "| random alloc/free/realloc actions in 1 s (100..1000 B, alignment up to 1 KiB; median of 3) | $ra M | 11.3 M | 15.7 M |"
echo "| instructions per free+alloc pair, 512 live blocks of 16..1024 B (callgrind, rsb_heap_alloc + rsb_heap_free) | $ipp | 252 | 132 |"
echo "| alloc ticks median / p99.9 / max (tick benchmark, 1 s) | $tmed / $t999 / $tmax | 104 / 988 / 10.5 M | 52 / 338 / 10.5 M |"
echo "| max ticks of 1 M operations, per-operation minimum of 5 runs (alloc / free) | $t5amax / $t5fmax | | |"
echo
echo '```'
cat "$raw"
echo '```'

if [ -f "$work/lp.cg" ]; then
    echo
    echo "## Longest paths (callgrind, instructions including the call)"
    echo
    echo '```'
    "$longest"
    echo '```'
    echo
    echo "| path | instructions |"
    echo "|---|---|"
    callgrind_annotate --inclusive=yes --threshold=100 "$work/lp.cg" 2>/dev/null |
        sed -n 's/^ *\([0-9,]*\) (.*:lp_\([a-z_0-9]*\).*/| \2 | \1 |/p' | sed 's/_/ /g'
fi

# 32-bit targets under QEMU: the layout of this build's Cortex-M3 image.
layout="$(sed -n 's/.*build_baremetal.py.*--target cortex-m3.*--layout \([0-9]*\) \([0-9]*\).*/\1 \2/p' \
    "$build/build.ninja" | head -1)"
gcc_arm="$(command -v arm-none-eabi-gcc || true)"
qemu_arm="$(command -v qemu-system-arm || true)"
if [ -n "$gcc_arm" ] && [ -n "$qemu_arm" ]; then
    python3 "$root/freestanding/build_baremetal.py" --target cortex-m3 --cc "$gcc_arm" --ar arm-none-eabi-ar \
        --root "$root" --layout ${layout:-11 1024} \
        --elf "$work/cm3.elf" --lib "$work/cm3.a" \
        --program "$root/bench/embedded/cortex_m_bench.c" --program "$root/bench/embedded/firstfit.c" \
        --ld "$root/freestanding/cortex-m3/mps2-an385.ld"
    echo
    echo "## Cortex-M3 (qemu-system-arm -M mps2-an385; layout: window shift, largest slab class ${layout:-11 1024})"
    echo
    timeout 300 "$qemu_arm" -M mps2-an385 -nographic -monitor none -serial none -semihosting 2>&1 \
        -kernel "$work/cm3.elf"
fi
gcc_rv="$(command -v riscv64-unknown-elf-gcc || true)"
qemu_rv="$(command -v qemu-system-riscv32 || true)"
if [ -n "$gcc_rv" ] && [ -n "$qemu_rv" ]; then
    python3 "$root/freestanding/build_baremetal.py" --target riscv32 --cc "$gcc_rv" --ar riscv64-unknown-elf-ar \
        --root "$root" --layout ${layout:-11 1024} \
        --elf "$work/rv.elf" --lib "$work/rv.a" \
        --program "$root/bench/embedded/cortex_m_bench.c" --program "$root/bench/embedded/firstfit.c" \
        --ldflag=-Wl,--defsym=RAM_SIZE=0x400000
    echo
    echo "## RISC-V rv32imac (qemu-system-riscv32 -M virt; same layout)"
    echo
    timeout 300 "$qemu_rv" -M virt -bios none -nographic -monitor none -kernel "$work/rv.elf" | tr -d '\r'
fi
