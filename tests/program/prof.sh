#!/bin/bash
# prof.sh LIB.so PROG MODE: heap profiling (RSBMALLOC_PROF) checked through
# google-pprof, the reader the profiles are written for.  MODE:
#   sites    two allocation sites of known live bytes and a freed churn:
#            `google-pprof --text` of the API dump and of the exit dump must
#            give each site its live bytes within 10 % and the churn nothing;
#            --svg must render; the .collapsed file must hold the same total
#   signal   RSBMALLOC_PROF_SIGNAL=1: SIGUSR2 writes a profile
#   off      RSBMALLOC_PROF unset: no file is written, the API call fails
#   threads  4 threads with remote frees, dumps meanwhile: no crash, no hang
# google-pprof missing is a failure, not a skip (scripts/test installs it).
. "$(dirname "$0")/lib.sh"
shift
PROG=$1 MODE=$2
[ -x "$PROG" ] || die "$PROG is not executable"
# The programs run in $TMP (the exit dump's default place): absolute paths.
PROG=$(realpath "$PROG") RSB_SO=$(realpath "$RSB_SO")
command -v google-pprof > /dev/null || die "google-pprof is not installed (Debian: google-perftools)"

# mb FUNCTION TEXTFILE: the cumulative in-use MB pprof gives FUNCTION (0 if absent)
mb() { awk -v f="$1" '$6 == f { print $4; found = 1 } END { if (!found) print 0 }' "$2"; }
# within NAME GOT WANT: |GOT - WANT| <= 10 % of WANT
within() {
    awk -v g="$2" -v w="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w / 10) }' ||
        die "$1: pprof attributes $2 MB, the program keeps $3 MB live (more than 10 % apart)"
    echo "ok: $1: $2 MB (live: $3 MB)"
}
check_sites() { # check_sites PROFILE WHAT
    google-pprof --text "$PROG" "$1" > "$TMP/text" 2> "$TMP/text.err" ||
        { cat "$TMP/text.err" >&2; die "google-pprof --text failed on the $2"; }
    grep -q "^Total: " "$TMP/text" || { cat "$TMP/text" "$TMP/text.err" >&2; die "no Total in pprof's output ($2)"; }
    within "site_a ($2)" "$(mb site_a "$TMP/text")" 40.0
    within "site_b ($2)" "$(mb site_b "$TMP/text")" 10.0
    churn=$(mb site_churn "$TMP/text")
    awk -v c="$churn" 'BEGIN { exit !(c == 0) }' ||
        { cat "$TMP/text" >&2; die "site_churn freed everything but pprof gives it $churn MB ($2)"; }
    echo "ok: site_churn absent ($2)"
}

case $MODE in
sites)
    # A small sampling interval: at the default 512 KiB site_a's 10240
    # blocks would give about 80 samples, an estimate within +-11 % (1 sigma);
    # at 16 KiB about 2260, within 2 %.  The default is checked below, loosely.
    (cd "$TMP" && RSBMALLOC_PROF=1 RSBMALLOC_PROF_SAMPLE=16384 RSBMALLOC_PROF_PREFIX="$TMP/exit" \
        run_rsb "$PROG" sites "$TMP/api.heap") > "$TMP/out" 2>&1
    check_status "prof sites" $? "$TMP/out"
    [ -s "$TMP/api.heap" ] || die "rsb_prof_dump wrote no $TMP/api.heap"
    [ -f "$TMP/api.collapsed" ] || die "rsb_prof_dump wrote no $TMP/api.collapsed"
    head -n 1 "$TMP/api.heap" | grep -Eq '^heap profile: +[0-9]+: +[0-9]+ \[ *[0-9]+: +[0-9]+\] @ heapprofile$' ||
        die "bad header: $(head -n 1 "$TMP/api.heap")"
    grep -q '^MAPPED_LIBRARIES:$' "$TMP/api.heap" || die "no MAPPED_LIBRARIES section"
    check_sites "$TMP/api.heap" "API dump"
    exitfile=$(ls "$TMP"/exit.*.0.heap 2> /dev/null | head -n 1)
    [ -n "$exitfile" ] || die "no profile written at exit ($TMP/exit.<pid>.0.heap)"
    check_sites "$exitfile" "exit dump"
    # The collapsed stacks hold the same bytes as the profile's header.
    total=$(awk '{ s += $NF } END { printf "%d", s }' "$TMP/api.collapsed")
    header=$(head -n 1 "$TMP/api.heap" | awk '{ sub(":", "", $4); print $4 }')
    awk -v a="$total" -v b="$header" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b / 100 + 16) }' ||
        die "collapsed stacks total $total B, the profile $header B"
    echo "ok: collapsed stacks: $total B"
    google-pprof --svg "$PROG" "$TMP/api.heap" > "$TMP/out.svg" 2> "$TMP/svg.err" ||
        { cat "$TMP/svg.err" >&2; die "google-pprof --svg failed"; }
    grep -q "<svg" "$TMP/out.svg" || die "google-pprof --svg wrote no SVG"
    echo "ok: --svg renders"
    # The default interval: the estimates are noisier, check to 35 %.
    (cd "$TMP" && RSBMALLOC_PROF=1 RSBMALLOC_PROF_PREFIX="$TMP/dflt" \
        run_rsb "$PROG" sites "$TMP/dflt.heap") > "$TMP/out" 2>&1
    check_status "prof sites (default interval)" $? "$TMP/out"
    google-pprof --text "$PROG" "$TMP/dflt.heap" > "$TMP/text" 2> /dev/null || die "google-pprof failed (default interval)"
    a=$(mb site_a "$TMP/text")
    awk -v g="$a" 'BEGIN { exit !(g >= 26 && g <= 54) }' || die "site_a at the default interval: $a MB, not 40 +- 35 %"
    echo "ok: default interval: site_a $a MB"
    ;;
signal)
    (cd "$TMP" && RSBMALLOC_PROF=1 RSBMALLOC_PROF_SIGNAL=1 RSBMALLOC_PROF_PREFIX="$TMP/sig" \
        run_rsb "$PROG" signal "$TMP/sig") > "$TMP/out" 2>&1
    check_status "prof signal" $? "$TMP/out"
    cat "$TMP/out"
    n=$(ls "$TMP"/sig.*.heap | wc -l)
    [ "$n" -ge 2 ] || die "expected the SIGUSR2 dump and the exit dump, found $n file(s)"
    echo "ok: SIGUSR2 and exit dumps written"
    ;;
off)
    mkdir "$TMP/cwd"
    (cd "$TMP/cwd" && RSBMALLOC_PROF_PREFIX="$TMP/off" RSBMALLOC_PROF_SIGNAL=1 \
        run_rsb "$PROG" off "$TMP/off.heap") > "$TMP/out" 2>&1
    check_status "prof off" $? "$TMP/out"
    files=$(ls -A "$TMP/cwd"; ls "$TMP" | grep -E '^off' || true)
    [ -z "$files" ] || die "profiling off, yet files were written: $files"
    echo "ok: no profile without RSBMALLOC_PROF"
    ;;
threads)
    (cd "$TMP" && RSBMALLOC_PROF=1 RSBMALLOC_PROF_SAMPLE=4096 RSBMALLOC_PROF_PREFIX="$TMP/thr" \
        timeout 120 env LD_PRELOAD="$RSB_SO" "$PROG" threads "$TMP/thr.heap") > "$TMP/out" 2>&1
    st=$?
    [ $st -ne 124 ] || die "prof threads hung (killed after 120 s)"
    check_status "prof threads" $st "$TMP/out"
    google-pprof --text "$PROG" "$TMP/thr.heap" > /dev/null 2> "$TMP/err" ||
        { cat "$TMP/err" >&2; die "google-pprof cannot read the threaded dump"; }
    echo "ok: 4 threads with remote frees, 21 dumps"
    ;;
*)
    die "unknown mode $MODE"
    ;;
esac
