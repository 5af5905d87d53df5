#!/bin/sh
# Compare the exported symbols of librsbmalloc with the expected list.
#
# usage: exports.sh NM librsbmalloc.so [librsbmalloc.a [librsbmalloc-prefixed.a]]
#
#   .so           nm -D --defined-only must list exactly EXPECTED (no more,
#                 no less; version-node names of type A are ignored)
#   .a            must define every libc name (a static link must not pull
#                 libc's malloc.o: "multiple definition" otherwise)
#   -prefixed.a   must define every rsb_* name and none of the libc names
set -u
NM=$1
SO=$2
A=${3:-}
PA=${4:-}

LIBC_NAMES="malloc free calloc realloc reallocarray posix_memalign aligned_alloc
memalign valloc pvalloc cfree malloc_usable_size free_sized free_aligned_sized
malloc_trim mallinfo mallinfo2 mallopt malloc_stats malloc_info
__libc_malloc __libc_calloc __libc_realloc __libc_free __libc_memalign
__libc_valloc __libc_pvalloc __posix_memalign"
RSB_NAMES="rsb_malloc rsb_calloc rsb_realloc rsb_reallocarray rsb_free
rsb_free_sized rsb_free_aligned_sized rsb_posix_memalign rsb_aligned_alloc
rsb_memalign rsb_valloc rsb_pvalloc rsb_malloc_usable_size rsb_malloc_trim
rsb_stats rsb_stats_print rsb_prof_dump"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

for s in $LIBC_NAMES $RSB_NAMES; do echo "$s"; done | sort -u > "$tmp/expected"

# --- shared library: exact match -------------------------------------------
if ! "$NM" -D --defined-only "$SO" > "$tmp/nm.so" 2> "$tmp/nm.err"; then
    echo "FAIL: $NM -D --defined-only $SO failed:"; cat "$tmp/nm.err"; exit 1
fi
awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm.so" | sort -u > "$tmp/actual"
missing=$(comm -23 "$tmp/expected" "$tmp/actual")
extra=$(comm -13 "$tmp/expected" "$tmp/actual")
if [ -n "$missing" ]; then
    echo "FAIL: $SO does not export:"; echo "$missing" | sed 's/^/    /'; status=1
fi
if [ -n "$extra" ]; then
    echo "FAIL: $SO exports symbols outside the expected list:"; echo "$extra" | sed 's/^/    /'; status=1
fi
# The libc names must be functions (T/W/i), not data.
bad_type=$(awk '$2 != "A" && $2 !~ /^[TWi]$/ { print $3 " (type " $2 ")" }' "$tmp/nm.so")
if [ -n "$bad_type" ]; then
    echo "FAIL: exported non-function symbols:"; echo "$bad_type" | sed 's/^/    /'; status=1
fi
[ $status -eq 0 ] && echo "ok: $SO exports exactly the $(wc -l < "$tmp/expected") expected symbols"

# --- static library: defines the whole libc family ------------------------
defined_in_archive() {   # archive -> sorted list of defined global names
    "$NM" -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[TWDBRVi]$/ { print $3 }' | sort -u
}
if [ -n "$A" ]; then
    defined_in_archive "$A" > "$tmp/a"
    for s in $LIBC_NAMES $RSB_NAMES; do
        grep -qx "$s" "$tmp/a" || { echo "FAIL: $A does not define $s"; status=1; }
    done
    [ $status -eq 0 ] && echo "ok: $A defines the libc family and the rsb_* API"
fi
if [ -n "$PA" ]; then
    defined_in_archive "$PA" > "$tmp/pa"
    for s in $RSB_NAMES; do
        grep -qx "$s" "$tmp/pa" || { echo "FAIL: $PA does not define $s"; status=1; }
    done
    for s in $LIBC_NAMES; do
        grep -qx "$s" "$tmp/pa" && { echo "FAIL: $PA defines the libc name $s (must be usable beside the system malloc)"; status=1; }
    done
    [ $status -eq 0 ] && echo "ok: $PA defines only the prefixed API"
fi
exit $status
