#!/bin/sh
# diffrun.sh LIB.so PROG [ARGS...]
# Run PROG under glibc (reference) and with librsbmalloc preloaded; both must
# exit 0 and print the same stdout.  PROG sees RSBT_EXPECT=glibc|rsb and
# checks which allocator it runs on.
. "$(dirname "$0")/lib.sh"
shift
PROG=$1
[ -x "$PROG" ] || die "$PROG is not executable"
name=$(basename "$PROG")

RSBT_EXPECT=glibc "$@" > "$TMP/ref.out" 2> "$TMP/ref.err"
st=$?
[ $st -eq 0 ] || { cat "$TMP/ref.err" >&2; die "$name fails even under glibc (status $st): test bug"; }

RSBT_EXPECT=rsb run_rsb "$@" > "$TMP/rsb.out" 2> "$TMP/rsb.err"
st=$?
cat "$TMP/rsb.err" >&2
check_status "$name" $st "$TMP/rsb.out"
same_output "$name" "$TMP/ref.out" "$TMP/rsb.out"
echo "ok: $name under rsbmalloc: $(tail -n 1 "$TMP/rsb.out")"
