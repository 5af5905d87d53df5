#!/bin/sh
# memcheck on a program linked with rsbmalloc built with valgrind client
# requests (-DRSB_VALGRIND=1): a clean run must report nothing, and each
# planted error must be reported as memcheck reports it with glibc's malloc.
#
# usage: valgrind.sh VALGRIND VG_PROG
#
# Flags (valgrind 3.19):
#   --soname-synonyms=somalloc=nouserintercepts
#       needed: by default memcheck replaces malloc & co. in every object
#       that defines them, librsbmalloc.so included (the program would be
#       checked with valgrind's allocator, rsbmalloc unused).  The same for
#       LD_PRELOAD=librsbmalloc.so and for librsbmalloc.a linked in.
#   --redzone-size=0
#       recommended: rsbmalloc's blocks have no redzones (neighbours are
#       adjacent); with the default 16, memcheck may describe an address as
#       "N bytes after" a live neighbour instead of "inside a block free'd".
# Never --soname-synonyms=somalloc=*rsbmalloc*: that replaces rsbmalloc.
set -u
VG=$1
PROG=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
VGFLAGS="--soname-synonyms=somalloc=nouserintercepts --redzone-size=0 --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --num-callers=20"

run() {   # mode -> exit status; output in $tmp/$mode
    "$VG" $VGFLAGS "$PROG" "$1" > "$tmp/$1" 2>&1
    echo $?
}

expect() {  # mode, wanted exit, grep patterns...
    mode=$1; want=$2; shift 2
    rc=$(run "$mode")
    ok=1
    [ "$rc" = "$want" ] || { echo "FAIL: $mode: valgrind exit $rc, expected $want"; ok=0; }
    grep -q "allocator: rsbmalloc" "$tmp/$mode" || { echo "FAIL: $mode: the blocks did not come from rsbmalloc"; ok=0; }
    for pat in "$@"; do
        grep -q -- "$pat" "$tmp/$mode" || { echo "FAIL: $mode: no '$pat' in memcheck's report"; ok=0; }
    done
    if [ $ok = 1 ]; then
        echo "ok: $mode"
    else
        status=1
        sed 's/^/    /' "$tmp/$mode"
    fi
}

expect clean 0 "ERROR SUMMARY: 0 errors" "All heap blocks were freed\|definitely lost: 0 bytes"
expect uaf 99 "Invalid read of size 1" "3 bytes inside a block of size 40 free'd" "by 0x.*: main (vg_prog.c"
expect leak 99 "definitely lost: 1,234 bytes in 1 blocks" "are definitely lost"
expect overflow 99 "Invalid write of size 1" "0 bytes after a block of size 40 alloc'd"
expect uninit 99 "Conditional jump or move depends on uninitialised value"
expect realloc 99 "Invalid read of size 1" "2 bytes inside a block of size 24 free'd" "realloc (in .*rsbmalloc"
exit $status
