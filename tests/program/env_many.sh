#!/bin/sh
# Start-up with a huge environment (20,000 variables: option parsing must
# not stop early or overflow) and with unknown/malformed RSBMALLOC_ options:
# programs still start, and their output is right.
. "$(dirname "$0")/lib.sh"

awk 'BEGIN { for (i = 0; i < 20000; i++) printf "export RSBT_V%05d=value%d\n", i, i }' > "$TMP/env.sh"
(
    . "$TMP/env.sh"
    export RSBMALLOC_NO_SUCH_OPTION=1 RSBMALLOC_VERBOSE=
    run_rsb /usr/bin/env > "$TMP/env.out" 2> "$TMP/env.err"
) || { cat "$TMP/env.err" >&2; die "env under rsbmalloc with 20,000 variables failed"; }
n=$(grep -c '^RSBT_V' "$TMP/env.out")
[ "$n" = 20000 ] || die "env under rsbmalloc printed $n of 20000 variables"
grep -qx 'RSBT_V19999=value19999' "$TMP/env.out" || die "the last variable is missing or wrong"
# A shell under the preload, passing the environment on (execve of a big envp)
out=$(. "$TMP/env.sh"; run_rsb /bin/sh -c 'echo "$RSBT_V00000 $RSBT_V19999"; /usr/bin/env | grep -c ^RSBT_V' 2>&1)
[ "$out" = "value0 value19999
20000" ] || die "sh under rsbmalloc with 20,000 variables printed: $out"
echo "ok: 20,000 environment variables"
