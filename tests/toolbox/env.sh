#!/usr/bin/env bash
# env.sh LIB ENVPROBE: every RSBMALLOC_* variable, valid and malformed.
set -u
lib="$1" probe="$2"
fail=0
run() { env LD_PRELOAD="$lib" "$@" 2>&1; }
expect() { # expect NAME PATTERN OUTPUT
    if grep -qE -- "$2" <<<"$3"; then echo "ok   $1"; else echo "FAIL $1: expected /$2/ in:"; echo "$3" | sed 's/^/     /'; fail=1; fi
}
reject() {
    if grep -qE -- "$2" <<<"$3"; then echo "FAIL $1: unexpected /$2/ in:"; echo "$3" | sed 's/^/     /'; fail=1; else echo "ok   $1"; fi
}

out=$(RSBMALLOC_STATS=1 run /usr/bin/python3 -c pass)
expect "STATS=1 prints the report at exit" "rsbmalloc statistics" "$out"
expect "STATS=1 report has the class table" "class +size +slabs" "$out"
out=$(RSBMALLOC_STATS=0 run /usr/bin/python3 -c pass)
reject "STATS=0 prints nothing" "rsbmalloc" "$out"
out=$(RSBMALLOC_SHOW_STATS=1 run true)
expect "SHOW_STATS=1 (mimalloc's spelling) prints the report" "rsbmalloc statistics" "$out"
reject "SHOW_STATS is not an unknown option" "unknown rsbmalloc option" "$out"
out=$(RSBMALLOC_STATS=maybe run true)
expect "STATS=maybe warns" "rsbmalloc: warning: RSBMALLOC_STATS=maybe" "$out"

# A file destination, for programs that close stderr before they exit.
sf=$(mktemp -d)
out=$(RSBMALLOC_STATS_FILE="$sf/stats.%p" run sh -c 'exec 2>&-; exec ls /')
files=$(ls "$sf")
if [ -n "$files" ] && grep -q "rsbmalloc statistics" "$sf"/stats.*; then echo "ok   STATS_FILE: ls with stderr closed wrote $files"; else echo "FAIL STATS_FILE: no report in $sf ($files)"; fail=1; fi
case $files in stats.[0-9]*) echo "ok   STATS_FILE: %p became the pid" ;; *) echo "FAIL STATS_FILE: %p not expanded: $files"; fail=1 ;; esac
out=$(RSBMALLOC_STATS_FILE=/nonexistent/dir/x run true)
expect "STATS_FILE in a missing directory warns" "cannot write the statistics to /nonexistent/dir/x" "$out"
rm -rf "$sf"

out=$(RSBMALLOC_VERBOSE=yes run true)
expect "VERBOSE=yes reports start-up" "rsbmalloc: ready: [0-9]+ caches" "$out"
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_CACHES=4 run true)
expect "CACHES=4" "ready: 4 caches" "$out"
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_CACHES=5 run true)
expect "CACHES=5 rounds up to a power of two" "ready: 8 caches" "$out"
for bad in 0 abc -3 999999 ""; do
    out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_CACHES="$bad" run true)
    expect "CACHES='$bad' warns" "warning: RSBMALLOC_CACHES=$bad: expected" "$out"
    expect "CACHES='$bad' keeps the default" "ready: [0-9]+ caches" "$out"
done
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_PURGE_DELAY_MS=-1 run true)
expect "PURGE_DELAY_MS=-1 means never" "purge delay never" "$out"
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_PURGE_DELAY_MS=0 run true)
expect "PURGE_DELAY_MS=0" "purge delay 0 ms" "$out"
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_PURGE_DELAY_MS=1s run true)
expect "PURGE_DELAY_MS=1s warns" "warning: RSBMALLOC_PURGE_DELAY_MS=1s" "$out"
expect "PURGE_DELAY_MS=1s keeps the default" "purge delay 100 ms" "$out"
out=$(RSBMALLOC_JUNK=1 run "$probe" junk)
expect "JUNK=1 fills new and freed blocks" "junk ok" "$out"
out=$(RSBMALLOC_JUNK=sometimes run true)
expect "JUNK=sometimes warns" "warning: RSBMALLOC_JUNK=sometimes" "$out"
out=$(RSBMALLOC_BOGUS=1 run true)
expect "unknown RSBMALLOC_ name warns" "warning: RSBMALLOC_BOGUS=1: unknown rsbmalloc option" "$out"

# Purge delay in effect: 64 MiB of freed page runs leave RSS right away with
# delay 0, after the delay with the default, never with -1.
rss() { sed -E 's/.*full ([0-9]+) freed ([0-9]+) later ([0-9]+).*/\1 \2 \3/' <<<"$1"; }
read -r full freed later < <(rss "$(RSBMALLOC_PURGE_DELAY_MS=0 run "$probe" purge)")
if [ "$freed" -lt $((full - 50000)) ]; then echo "ok   delay 0 purges at free ($full -> $freed KiB)"; else echo "FAIL delay 0: $full -> $freed KiB"; fail=1; fi
read -r full freed later < <(rss "$(run "$probe" purge)")
if [ "$later" -lt $((full - 50000)) ]; then echo "ok   default delay purges later ($full -> $freed -> $later KiB)"; else echo "FAIL default delay: $full -> $freed -> $later KiB"; fail=1; fi
read -r full freed later < <(rss "$(RSBMALLOC_PURGE_DELAY_MS=-1 run "$probe" purge)")
if [ "$later" -gt $((full - 20000)) ]; then echo "ok   delay -1 never purges ($full -> $later KiB)"; else echo "FAIL delay -1: $full -> $later KiB"; fail=1; fi
# Memory freed by a program that then goes idle: returned within a second
# by the opt-in background purge, with no allocator call; kept without it.
idle() { sed -E 's/.*full ([0-9]+) freed ([0-9]+) idle ([0-9]+).*/\1 \2 \3/' <<<"$1"; }
read -r full freed later < <(idle "$(RSBMALLOC_BACKGROUND_PURGE=1 run "$probe" idle)")
if [ "$later" -lt $((full / 4)) ]; then echo "ok   BACKGROUND_PURGE=1 returns idle memory ($full -> $freed -> $later KiB)"; else echo "FAIL BACKGROUND_PURGE=1: $full -> $freed -> $later KiB"; fail=1; fi
read -r full freed later < <(idle "$(run "$probe" idle)")
if [ "$later" -gt $((full / 2)) ]; then echo "ok   without it an idle program keeps its memory ($full -> $later KiB)"; else echo "FAIL no background purge, yet $full -> $later KiB"; fail=1; fi
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_BACKGROUND_PURGE=1 run true)
expect "BACKGROUND_PURGE=1 shows in the start-up report" "background purge on" "$out"
out=$(RSBMALLOC_BACKGROUND_PURGE=sure run true)
expect "BACKGROUND_PURGE=sure warns" "warning: RSBMALLOC_BACKGROUND_PURGE=sure" "$out"
pt=$(mktemp -d) && trap 'rm -rf "$pt"' EXIT
out=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_PROF=1 RSBMALLOC_PROF_SAMPLE=4096 RSBMALLOC_PROF_PREFIX="$pt/p" run true)
expect "PROF=1 shows in the start-up report" "heap profile every 4096 B" "$out"
if ls "$pt"/p.*.0.heap > /dev/null 2>&1; then echo "ok   PROF=1 writes PROF_PREFIX.<pid>.0.heap at exit"; else echo "FAIL PROF=1 wrote no $pt/p.<pid>.0.heap"; fail=1; fi
out=$(RSBMALLOC_VERBOSE=1 run true)
expect "profiling is off by default" "heap profile off" "$out"
out=$(RSBMALLOC_PROF=perhaps run true)
expect "PROF=perhaps warns" "warning: RSBMALLOC_PROF=perhaps" "$out"
out=$(RSBMALLOC_PROF_SAMPLE=0 run true)
expect "PROF_SAMPLE=0 warns" "warning: RSBMALLOC_PROF_SAMPLE=0" "$out"
out=$(RSBMALLOC_PROF_SAMPLE=1k run true)
expect "PROF_SAMPLE=1k warns" "warning: RSBMALLOC_PROF_SAMPLE=1k" "$out"
out=$(RSBMALLOC_PROF_SIGNAL=often run true)
expect "PROF_SIGNAL=often warns" "warning: RSBMALLOC_PROF_SIGNAL=often" "$out"
out=$(RSBMALLOC_PROF_PREFIX= run true)
expect "an empty PROF_PREFIX warns" "warning: RSBMALLOC_PROF_PREFIX=" "$out"
exit $fail
