# Shared helpers for the program tests (sourced).  Conventions:
#   $1 of every script is the path of librsbmalloc.so; the script preloads it
#   only for the program under test, so a failure names that program.
#   Exit 0 pass, 1 fail (with "FAIL: ..." on stderr), 77 skip (tool absent).
set -u

RSB_SO=${1:?usage: $0 /path/to/librsbmalloc.so}
[ -f "$RSB_SO" ] || { echo "FAIL: $RSB_SO does not exist" >&2; exit 1; }

die() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

need() {
    command -v "$1" > /dev/null 2>&1 || skip "$1 is not installed"
}

# A private temporary directory, removed on exit; on tmpfs when available
# (git and sqlite are several times faster there than on a disk).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    TMPBASE=/dev/shm
else
    TMPBASE=${TMPDIR:-/tmp}
fi
TMP=$(mktemp -d "$TMPBASE/rsbt.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT INT TERM

# run_rsb CMD...: run CMD with librsbmalloc preloaded (prepended to any
# existing LD_PRELOAD).
run_rsb() {
    LD_PRELOAD="$RSB_SO${LD_PRELOAD:+:$LD_PRELOAD}" "$@"
}

# check_status WHAT STATUS LOGFILE: die with the log's tail if STATUS != 0.
check_status() {
    if [ "$2" -ne 0 ]; then
        echo "---- last lines of $1's output:" >&2
        tail -n 30 "$3" >&2
        if [ "$2" -gt 128 ]; then
            die "$1 was killed by signal $(($2 - 128)) under rsbmalloc"
        fi
        die "$1 exited with status $2 under rsbmalloc"
    fi
}

# same_output WHAT REF RSB: the outputs under glibc and rsbmalloc must match.
same_output() {
    if ! cmp -s "$2" "$3"; then
        echo "---- diff (glibc reference vs rsbmalloc):" >&2
        diff "$2" "$3" | head -n 40 >&2
        die "$1 produced different results under rsbmalloc than under glibc"
    fi
}
