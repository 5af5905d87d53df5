#!/usr/bin/env bash
# tests/robust/pg_server.sh PRELOAD_LIB — the contract of scripts/pg-server:
# start prints eval-able connection lines and the postmaster runs the
# preloaded allocator, as an unprivileged user; pid agrees; stop shuts down
# and fails on an ERROR in the server log; a second start in the same
# directory is refused; a preload that cannot load leaves nothing running;
# and a caller killed with SIGKILL takes its server with it.  About 10 s.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pgs=$root/scripts/pg-server
lib=$(readlink -f "${1:?usage: pg_server.sh PRELOAD_LIB}")
work=$(mktemp -d /tmp/rsbpgtest.XXXXXX)
chmod 755 "$work"
pass=0 fail=0
ok() { echo "  ok    $*"; pass=$((pass + 1)); }
bad() { echo "  FAIL  $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
gone() {  # pid: not running (or a zombie) within 5 s
    local i st
    for i in $(seq 1 50); do
        st=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[1] }' "/proc/$1/stat" 2>/dev/null)
        [ -z "$st" ] || [ "$st" = Z ] && return 0
        sleep 0.1
    done
    return 1
}
cleanup() {
    for d in "$work"/*/; do [ -d "$d" ] && "$pgs" stop "$d" >/dev/null 2>&1; done
    rm -rf "$work"
}
trap cleanup EXIT

# 1. start, connect, the allocator is in the postmaster
out=$("$pgs" start "$work/a" "$lib") || bad "start"
eval "$out"
check "start prints PGHOST/PGPORT/PGUSER/PG_SERVER_PID" \
    test -n "${PGHOST:-}" -a -n "${PGPORT:-}" -a -n "${PGUSER:-}" -a -n "${PG_SERVER_PID:-}"
check "pid agrees with start" test "$("$pgs" pid "$work/a")" = "${PG_SERVER_PID:-x}"
check "a query over the unix socket" test "$(psql -XAtc 'select 6 * 7')" = 42
check "a query over TCP" test "$(psql -h "$PG_SERVER_TCP" -XAtc 'select 1')" = 1
check "the postmaster maps $lib" grep -qF "$lib" "/proc/$PG_SERVER_PID/maps"
check "the server runs as an unprivileged user" test "$(stat -c %u "/proc/$PG_SERVER_PID")" != 0
check "a second start in the same directory is refused" \
    bash -c "! '$pgs' start '$work/a' >/dev/null 2>&1"
check "stop of a clean run exits 0" "$pgs" stop "$work/a"
check "the postmaster is gone after stop" gone "$PG_SERVER_PID"
check "pid fails once stopped" bash -c "! '$pgs' pid '$work/a' >/dev/null 2>&1"

# 2. an ERROR in the log makes stop fail and print it
eval "$("$pgs" start "$work/a")"
psql -XAtc 'select 1/0' >/dev/null 2>&1
msg=$("$pgs" stop "$work/a" 2>&1); rc=$?
check "stop exits non-zero after an ERROR" test $rc -ne 0
check "stop prints the ERROR line" grep -q "ERROR:  division by zero" <<<"$msg"

# 3. a preload that does not load: start fails, nothing left running
printf 'not an ELF file\n' >"$work/bad.so"
chmod 644 "$work/bad.so"
check "start with a broken preload fails" bash -c "! '$pgs' start '$work/b' '$work/bad.so' >/dev/null 2>&1"
check "no server left in that directory" bash -c "! '$pgs' pid '$work/b' >/dev/null 2>&1"

# 4. the caller is killed with SIGKILL: the watcher stops its server
cat >"$work/caller.sh" <<EOF
#!/usr/bin/env bash
eval "\$('$pgs' start '$work/c' '$lib')"
echo "\$PG_SERVER_PID" > '$work/c.pid'
exec sleep 600
EOF
chmod +x "$work/caller.sh"
"$work/caller.sh" &
caller=$!
for _ in $(seq 1 300); do [ -s "$work/c.pid" ] && break; sleep 0.1; done
spid=$(cat "$work/c.pid" 2>/dev/null)
check "the caller's server started" test -n "$spid"
kill -KILL "$caller"
wait "$caller" 2>/dev/null
check "SIGKILL of the caller stops its server within 5 s" gone "${spid:-0}"
check "its log shows a clean shutdown" grep -q "database system is shut down" "$work/c/server.log"

echo "pg-server: $pass passed, $fail failed"
[ $fail = 0 ]
