#!/bin/sh
# static_link.sh LIB.so CC INCLUDE_DIR librsbmalloc.a SOURCE
# Link SOURCE with -static against librsbmalloc.a (pitfall: one malloc_trim
# or mallinfo2 reference pulling libc.a's malloc.o gives "multiple
# definition") and run it.  Skips if the C library has no static archive.
. "$(dirname "$0")/lib.sh"
CC=$2
INC=$3
ARCHIVE=$4
SRC=$5

echo 'int main(void){return 0;}' > "$TMP/probe.c"
$CC -static "$TMP/probe.c" -o "$TMP/probe" > "$TMP/probe.log" 2>&1 ||
    skip "no static C library (libc.a) for $CC: $(head -n 3 "$TMP/probe.log")"

$CC -std=c17 -O2 -static -pthread -I"$INC" "$SRC" "$ARCHIVE" -o "$TMP/static_prog" > "$TMP/link.log" 2>&1
st=$?
if [ $st -ne 0 ]; then
    cat "$TMP/link.log" >&2
    grep -q 'multiple definition' "$TMP/link.log" &&
        die "static link against librsbmalloc.a pulled in libc.a's malloc (multiple definition): a symbol of the malloc family is missing from librsbmalloc.a"
    die "static link against librsbmalloc.a failed"
fi
"$TMP/static_prog" > "$TMP/out" 2>&1
st=$?
cat "$TMP/out"
[ $st -eq 0 ] || die "the statically linked program failed (status $st)"
grep -q '^static_prog ok$' "$TMP/out" || die "the statically linked program did not report ok"
