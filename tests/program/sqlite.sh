#!/bin/sh
# sqlite3 under rsbmalloc: 200,000 single-row INSERT statements plus 200,000
# rows from a recursive CTE into a table with two indexes, deletes, updates,
# a GROUP BY table, VACUUM, PRAGMA integrity_check; the counts and sums are
# compared with values computed independently by awk.
. "$(dirname "$0")/lib.sh"
need sqlite3
export LC_ALL=C

N1=200000
N2=400000
ALPHA=abcdefghijklmnopqrstuvwxyz0123456789ABCD

{
    echo "PRAGMA page_size=4096;"
    echo "PRAGMA cache_size=-32768;"
    echo "PRAGMA journal_mode=WAL;"
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, s TEXT NOT NULL, b BLOB);"
    echo "CREATE INDEX t_k ON t(k);"
    echo "CREATE INDEX t_s ON t(s);"
    echo "BEGIN;"
    awk -v n=$N1 -v a=$ALPHA 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "INSERT INTO t VALUES(%d, %d, '\''row-%08d-%s'\'', zeroblob(%d));\n",
                   i, (i * 7919) % 100003, i, substr(a, 1, i % 40), i % 700
    }'
    echo "COMMIT;"
    cat <<SQL
INSERT INTO t(id, k, s, b)
  WITH RECURSIVE c(x) AS (SELECT $((N1 + 1)) UNION ALL SELECT x + 1 FROM c WHERE x < $N2)
  SELECT x, (x * 7919) % 100003, printf('row-%08d-%s', x, substr('$ALPHA', 1, x % 40)), zeroblob(x % 700) FROM c;
DELETE FROM t WHERE id % 5 = 0;
UPDATE t SET s = s || '-u' WHERE id % 7 = 0;
CREATE TABLE agg AS SELECT k % 1000 AS g, count(*) AS n, sum(id) AS si FROM t GROUP BY g;
VACUUM;
.shell grep -c librsbmalloc /proc/\$PPID/maps
PRAGMA integrity_check;
SELECT 'count', count(*), sum(k), sum(length(s)), sum(length(b)) FROM t;
SELECT 'updated', count(*) FROM t WHERE s LIKE 'row-%-u';
SELECT 'krange', count(*) FROM t INDEXED BY t_k WHERE k BETWEEN 1000 AND 5000;
SELECT 'agg', sum(n), sum(si), count(*) FROM agg;
SELECT 'order', count(*) FROM (SELECT s, lag(s) OVER (ORDER BY s) AS p FROM t INDEXED BY t_s) WHERE p > s;
SQL
} > "$TMP/load.sql"

# Expected values, computed without sqlite.
awk -v n=$N2 -v a=$ALPHA 'BEGIN {
    for (i = 1; i <= n; i++) {
        if (i % 5 == 0) continue
        k = (i * 7919) % 100003
        s = sprintf("row-%08d-%s", i, substr(a, 1, i % 40))
        if (i % 7 == 0) { s = s "-u"; upd++ }
        cnt++; sk += k; sl += length(s); sb += i % 700; si += i
        if (k >= 1000 && k <= 5000) kr++
        g[k % 1000] = 1
    }
    ng = 0; for (x in g) ng++
    print "ok"
    printf "count|%.0f|%.0f|%.0f|%.0f\n", cnt, sk, sl, sb
    printf "updated|%.0f\n", upd
    printf "krange|%.0f\n", kr
    printf "agg|%.0f|%.0f|%.0f\n", cnt, si, ng
    print "order|0"
}' > "$TMP/expected"

run_rsb sqlite3 -bail "$TMP/db.sqlite" < "$TMP/load.sql" > "$TMP/rsb.out" 2>&1
st=$?
check_status sqlite3 $st "$TMP/rsb.out"
# Output: "wal", the maps grep count, then the checks.
sed -n 2p "$TMP/rsb.out" | grep -qv '^0$' || die "librsbmalloc.so is not mapped into sqlite3 (.shell grep printed '$(sed -n 2p "$TMP/rsb.out")')"
sed '1,2d' "$TMP/rsb.out" > "$TMP/rsb.checks"
if ! cmp -s "$TMP/expected" "$TMP/rsb.checks"; then
    echo "---- expected vs sqlite3 under rsbmalloc:" >&2
    diff "$TMP/expected" "$TMP/rsb.checks" >&2
    die "sqlite3 results are wrong under rsbmalloc"
fi
# A second process reads the database back (integrity after close/reopen).
out=$(run_rsb sqlite3 "$TMP/db.sqlite" "PRAGMA integrity_check; SELECT count(*) FROM t;" 2>&1) ||
    die "sqlite3 reopen failed: $out"
[ "$out" = "ok
$(sed -n 2p "$TMP/expected" | cut -d'|' -f2)" ] || die "sqlite3 reopen: unexpected output: $out"
echo "ok: sqlite3 under rsbmalloc: $(tr '\n' ' ' < "$TMP/rsb.checks")"
