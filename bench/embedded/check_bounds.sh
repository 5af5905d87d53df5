#!/usr/bin/env bash
# usage: check_bounds.sh EMBEDDED_LONGEST
# The test embedded-longest-bound: runs every worst-case path that
# embedded-longest builds under callgrind and fails if one costs more
# instructions than the bound stated for it (x86-64, default layout; the
# bounds in steps are in include/rsbmalloc_heap.h, the measured counts in
# freestanding/README-baremetal.md).  Exit 77 (skipped) without valgrind.
set -euo pipefail
longest="$1"
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || {
    echo "valgrind not installed: skipped"
    exit 77
}
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --toggle-collect='lp_*' --callgrind-out-file="$out" "$longest" >/dev/null 2>&1
# path  bound (instructions, the call included)
bounds="
alloc_full_release_all_then_fit 5500
alloc_aligned_second_search 500
alloc_new_slab 500
alloc_full_fails 400
alloc_fit_split_relist 300
alloc_slab_pop 60
free_last_block_release_slab_merge_both 400
free_fit_merge_both_relist 300
free_slab_push 120
free_double_free_reported 200
realloc_grow_in_place 300
"
measured="$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) (.*:lp_\([a-z_0-9]*\).*/\2 \1/p' | tr -d ,)"
fail=0
while read -r path bound; do
    [ -n "$path" ] || continue
    n="$(printf '%s\n' "$measured" | awk -v p="$path" '$1 == p { print $2 }')"
    if [ -z "$n" ]; then
        echo "FAIL $path: not measured"
        fail=1
    elif [ "$n" -gt "$bound" ]; then
        echo "FAIL $path: $n instructions > $bound"
        fail=1
    else
        echo "ok   $path: $n <= $bound"
    fi
done <<< "$bounds"
exit $fail
