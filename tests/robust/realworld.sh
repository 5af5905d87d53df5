#!/usr/bin/env bash
# Real programs under LD_PRELOAD=librsbmalloc.so, each with a result check.
#
# usage: realworld.sh LIBRSBMALLOC_SO ci|long [SUITE...]
#
#   python  CPython's own regression tests (Debian libpython3.11-testsuite),
#           /usr/bin/python3 -m test with PYTHONMALLOC=malloc (every object
#           through malloc), a chosen set of modules that allocate hard and
#           use threads; a module that fails is rerun without rsbmalloc: if
#           it fails there too the environment is to blame (reported, not
#           counted), else rsbmalloc is.
#   redis   redis-server on 127.0.0.1 (a random port), a bounded
#           redis-benchmark, then a data set written and read back (strings
#           up to 3 MiB, lists, hashes, sets, sorted sets), SHUTDOWN NOSAVE
#           and a clean exit; RSBMALLOC_STATS proves rsbmalloc served it.
#   perl, lua, jq, gcc
#           generated inputs; the output must be identical to the same
#           program's output without rsbmalloc (gcc: identical object file
#           and identical output of the compiled program).
#
# ci: about two minutes on two cores.  long: more modules, bigger inputs.
# Ends with "N passed, N failed".
set -u
LIB=$(readlink -f "$1")
MODE=${2:-ci}
shift 2 || true
SUITES=${*:-python redis perl lua jq gcc}
[ -f "$LIB" ] || { echo "realworld: no library $LIB"; exit 2; }
WORK=$(mktemp -d /tmp/rsb-realworld.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
export LC_ALL=C

say() { echo "realworld: $*"; }
pass() { say "ok: $1"; passed=$((passed + 1)); }
fail() { say "FAIL: $1"; failed=$((failed + 1)); }
have() { command -v "$1" > /dev/null 2>&1; }
pre() { env LD_PRELOAD="$LIB" "$@"; }

# The preloaded library must really serve the program: its exit report.
served() {  # stderr file
    grep -q "rsbmalloc statistics" "$1"
}

# ---------------------------------------------------------------- python --
PY_CI="test_list test_dict test_set test_tuple test_bytes test_unicode test_json test_re
test_gc test_weakref test_threading test_thread test_queue test_array test_deque
test_collections test_heapq test_itertools test_struct test_pickle test_zlib test_memoryview
test_decimal test_long test_sort test_ordered_dict test_functools test_mmap"
PY_LONG="test_io test_concurrent_futures test_multiprocessing_fork test_subprocess test_asyncio
test_codecs test_copy test_enum test_dataclasses test_statistics test_fractions test_ast
test_compile test_grammar test_sys test_hashlib test_float test_bisect test_signal
test_select test_sqlite3 test_xml_etree test_email test_unittest test_bigmem test_math
test_random test_string test_textwrap test_difflib test_csv test_tempfile test_shutil
test_zipfile test_tarfile test_lzma test_bz2 test_gzip test_base64 test_binascii
test_contextlib test_generators test_coroutines test_exceptions test_traceback test_inspect
test_typing test_pprint test_format test_fstring test_int test_complex test_userdict
test_userlist test_userstring test_slice test_range test_iter test_enumerate test_class"

suite_python() {
    local py=/usr/bin/python3
    if [ ! -x $py ] || [ ! -d /usr/lib/python3.11/test ]; then
        fail "python: /usr/bin/python3 or libpython3.11-testsuite missing"; return
    fi
    local mods="$PY_CI"
    [ "$MODE" = long ] && mods="$PY_CI $PY_LONG"
    # The preload took: the library is mapped in the interpreter.
    if ! pre PYTHONMALLOC=malloc $py -c 'import sys; sys.exit(0 if "rsbmalloc" in open("/proc/self/maps").read() else 1)'; then
        fail "python: librsbmalloc is not mapped in the interpreter"; return
    fi
    local n; n=$(echo $mods | wc -w)
    say "python: $n CPython test modules under rsbmalloc (PYTHONMALLOC=malloc, -j2)"
    local t0=$SECONDS
    ( cd "$WORK" && pre PYTHONMALLOC=malloc $py -m test -j2 --timeout 900 $mods ) > "$WORK/py.log" 2>&1
    local rc=$?
    tail -4 "$WORK/py.log" | sed 's/^/    /'
    if [ $rc -eq 0 ] && grep -q "Tests result: SUCCESS" "$WORK/py.log"; then
        pass "python: $n modules passed ($((SECONDS - t0)) s)"
        PY_MODULES_PASSED=$n
        return
    fi
    # Which modules failed?  regrtest lists them after "N tests failed:".
    local bad
    bad=$(awk '/tests? failed( again)?:$/ {f=1; next} f && /^    / {print; next} {f=0}' "$WORK/py.log" |
          tr ' ' '\n' | grep '^test_' | sort -u)
    [ -n "$bad" ] || bad=$(grep -o 'test_[a-z0-9_]* failed' "$WORK/py.log" | awk '{print $1}' | sort -u)
    if [ -z "$bad" ]; then
        sed 's/^/    /' "$WORK/py.log" | tail -40
        fail "python: regrtest exit $rc, no failing module named"; return
    fi
    local ours="" env_bad=""
    for m in $bad; do
        if ( cd "$WORK" && PYTHONMALLOC=malloc $py -m test --timeout 900 "$m" ) > "$WORK/py-$m.log" 2>&1; then
            ours="$ours $m"
        else
            env_bad="$env_bad $m"
        fi
    done
    [ -n "$env_bad" ] && say "python: fail without rsbmalloc too (environment, not counted):$env_bad"
    if [ -n "$ours" ]; then
        grep -B5 -A30 -E "^(FAIL|ERROR):|Fatal Python error|Segmentation|Abort" "$WORK/py.log" | head -80 | sed 's/^/    /'
        fail "python: fail only under rsbmalloc:$ours"
    else
        PY_MODULES_PASSED=$((n - $(echo $env_bad | wc -w)))
        pass "python: $PY_MODULES_PASSED modules passed ($((SECONDS - t0)) s), environment failures:$env_bad"
    fi
}

# ----------------------------------------------------------------- redis --
suite_redis() {
    if ! have redis-server || ! have redis-cli || ! have redis-benchmark; then
        fail "redis: redis-server / redis-tools missing"; return
    fi
    local dir="$WORK/redis" port pid n=20000 big=3
    [ "$MODE" = long ] && n=300000
    mkdir -p "$dir"
    port=$((20000 + RANDOM % 20000))
    pre RSBMALLOC_STATS=1 redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" --logfile "$dir/redis.log" > "$dir/out" 2> "$dir/err" &
    pid=$!
    local up=0
    for _ in $(seq 100); do
        redis-cli -p $port ping 2> /dev/null | grep -q PONG && { up=1; break; }
        sleep 0.1
    done
    if [ $up = 0 ]; then
        kill $pid 2> /dev/null; wait $pid 2> /dev/null
        cat "$dir/redis.log" | tail -5 | sed 's/^/    /'
        fail "redis: server did not come up"; return
    fi
    local rc=0
    timeout 300 redis-benchmark -h 127.0.0.1 -p $port -n $n -c 20 -r 100000 --csv \
        -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset -d 200 \
        > "$dir/bench.csv" 2>&1 || rc=$?
    timeout 120 redis-benchmark -h 127.0.0.1 -p $port -n $((n / 20)) -c 4 -r 1000 --csv \
        -t set,get -d 300000 >> "$dir/bench.csv" 2>&1 || rc=$?
    [ $rc = 0 ] || { fail "redis: redis-benchmark exit $rc"; }
    redis-cli -p $port flushall > /dev/null
    # The data set: written through the protocol, read back, compared.
    python3 - "$dir" $big << 'EOF'
import sys, hashlib
d, big = sys.argv[1], int(sys.argv[2])
def cmd(*a):
    out = ["*%d\r\n" % len(a)]
    for x in a:
        x = str(x)
        out.append("$%d\r\n%s\r\n" % (len(x.encode()), x))
    return "".join(out)
with open(d + "/load.txt", "w") as f, open(d + "/expect.txt", "w") as e:
    for i in range(20000):
        v = hashlib.sha1(str(i).encode()).hexdigest() * (1 + i % 7)
        f.write(cmd("SET", "k:%d" % i, v))
    for i in range(200):
        for j in range(100):
            f.write(cmd("RPUSH", "l:%d" % i, "e%d-%d" % (i, j)))
        f.write(cmd("HSET", "h:%d" % i, *sum((["f%d" % j, "v%d" % (i * j)] for j in range(50)), [])))
        f.write(cmd("SADD", "s:%d" % i, *["m%d" % (j * i % 97) for j in range(60)]))
        f.write(cmd("ZADD", "z:%d" % i, *sum(([j * 1.5, "z%d" % j] for j in range(40)), [])))
    for i in range(8):
        f.write(cmd("SET", "big:%d" % i, chr(97 + i) * ((1 + i % big) << 20)))
    # expectations
    e.write("dbsize %d\n" % (20000 + 4 * 200 + 8))
    for i in range(0, 20000, 997):
        e.write("k:%d %s\n" % (i, hashlib.sha1(str(i).encode()).hexdigest() * (1 + i % 7)))
    for i in range(0, 200, 37):
        e.write("l:%d %s\n" % (i, " ".join("e%d-%d" % (i, j) for j in range(100))))
        e.write("h:%d %d %s\n" % (i, 50, "v%d" % (i * 49)))
        e.write("s:%d %d\n" % (i, len(set(j * i % 97 for j in range(60)))))
        e.write("z:%d %s\n" % (i, "z39"))
    for i in range(8):
        e.write("big:%d %d\n" % (i, (1 + i % big) << 20))
EOF
    redis-cli -p $port --pipe < "$dir/load.txt" > "$dir/pipe.out" 2>&1 || { fail "redis: --pipe load failed"; }
    {
        echo "dbsize $(redis-cli -p $port dbsize)"
        for i in $(seq 0 997 19999); do echo "k:$i $(redis-cli -p $port --raw get k:$i)"; done
        for i in $(seq 0 37 199); do
            echo "l:$i $(redis-cli -p $port --raw lrange l:$i 0 -1 | tr '\n' ' ' | sed 's/ $//')"
            echo "h:$i $(redis-cli -p $port hlen h:$i) $(redis-cli -p $port --raw hget h:$i f49)"
            echo "s:$i $(redis-cli -p $port scard s:$i)"
            echo "z:$i $(redis-cli -p $port --raw zrange z:$i -1 -1)"
        done
        for i in $(seq 0 7); do echo "big:$i $(redis-cli -p $port strlen big:$i)"; done
    } > "$dir/got.txt"
    redis-cli -p $port shutdown nosave > /dev/null 2>&1
    local status=0
    timeout 60 tail --pid=$pid -f /dev/null || { kill -9 $pid; status=1; }
    wait $pid; local exit_code=$?
    if ! diff -q "$dir/expect.txt" "$dir/got.txt" > /dev/null; then
        diff "$dir/expect.txt" "$dir/got.txt" | head -10 | sed 's/^/    /'
        fail "redis: data read back differs"; return
    fi
    if [ $status != 0 ] || [ $exit_code != 0 ]; then
        tail -5 "$dir/redis.log" "$dir/err" | sed 's/^/    /'
        fail "redis: server exit $exit_code after SHUTDOWN"; return
    fi
    served "$dir/err" || { fail "redis: rsbmalloc did not serve redis-server (no exit report)"; return; }
    local reqs; reqs=$(grep '^"' "$dir/bench.csv" | grep -vc '^"test"')
    pass "redis: $reqs redis-benchmark tests ($n and $((n / 20)) requests), $(head -1 "$dir/got.txt" | cut -d" " -f2) keys written and checked, clean SHUTDOWN"
}

# ------------------------------------------------------------ perl / lua --
# Differential: the same program with and without rsbmalloc, same output.
diffrun() {  # name, then the command
    local name=$1; shift
    local a="$WORK/$name.base" b="$WORK/$name.rsb"
    "$@" > "$a" 2> "$a.err"; local ra=$?
    pre RSBMALLOC_STATS=1 "$@" > "$b" 2> "$b.err"; local rb=$?
    if [ $ra != 0 ]; then tail -3 "$a.err" | sed 's/^/    /'; fail "$name: fails without rsbmalloc (exit $ra)"; return 1; fi
    if [ $rb != 0 ]; then tail -5 "$b.err" | sed 's/^/    /'; fail "$name: exit $rb under rsbmalloc"; return 1; fi
    if ! cmp -s "$a" "$b"; then diff "$a" "$b" | head -5 | sed 's/^/    /'; fail "$name: output differs under rsbmalloc"; return 1; fi
    if ! served "$b.err"; then fail "$name: rsbmalloc did not serve it (no exit report)"; return 1; fi
    return 0
}

suite_perl() {
    have perl || { fail "perl: missing"; return; }
    local n=150000; [ "$MODE" = long ] && n=1500000
    cat > "$WORK/work.pl" << 'EOF'
use strict; use warnings;
my $n = shift; srand(42);
my (%h, @a, @refs);
for my $i (1 .. $n) {
    my $k = join('', map { chr(97 + int(rand(26))) } 1 .. (4 + $i % 17));
    $h{$k} .= $i;
    push @a, $k x (1 + $i % 5);
    push @refs, { id => $i, tags => [ split //, substr($k, 0, 3) ], blob => 'x' x ($i % 3000) } if $i % 7 == 0;
    delete $h{$a[$i / 2]} if $i % 11 == 0 && defined $a[$i / 2];
}
my @s = sort keys %h;
my $t = 0; $t += length($_) for @a;
my $j = join(',', @s[0 .. ($#s < 20000 ? $#s : 20000)]);
(my $r = $j) =~ s/([aeiou]+)/uc($1) . length($1)/ge;
my %c; $c{substr($_, 0, 2)}++ for @s;
my $blob = 0; $blob += length($_->{blob}) + @{ $_->{tags} } for @refs;
my $big = join('', map { chr(65 + $_ % 26) x 1000 } 1 .. 5000);   # 5 MB string
$big =~ tr/A-M/n-z/;
print scalar(@s), " $t ", length($r), " ", unpack('%32C*', $r), " ", scalar(keys %c), " $blob ",
      unpack('%32C*', $big), "\n";
EOF
    diffrun perl perl "$WORK/work.pl" $n && pass "perl: hashes, sorts, regexes, nested refs, a 5 MB string ($n items)"
}

suite_lua() {
    local lua=lua5.4
    have $lua || { fail "lua: lua5.4 missing"; return; }
    local n=200000; [ "$MODE" = long ] && n=2000000
    cat > "$WORK/work.lua" << 'EOF'
local n = tonumber(arg[1])
math.randomseed(42)
local t, keys, parts = {}, {}, {}
for i = 1, n do
  local k = string.format("k%x_%d", math.random(1, 1 << 30), i % 97)
  t[k] = { i, tostring(i):rep(1 + i % 4), nested = { i % 13 } }
  keys[#keys + 1] = k
  if i % 5 == 0 then t[keys[i // 2]] = nil end
  if i % 1000 == 0 then collectgarbage("step", 100) end
end
table.sort(keys)
local sum, cnt = 0, 0
for _, k in ipairs(keys) do
  local v = t[k]
  if v then sum = sum + v[1] + #v[2] + v.nested[1]; cnt = cnt + 1 end
end
for i = 1, 2000 do parts[#parts + 1] = string.rep(string.char(65 + i % 26), i % 700) end
local s = table.concat(parts, "|")
local g = s:gsub("[AEIOU]+", function(x) return x:lower() .. #x end)
local co = coroutine.wrap(function() for i = 1, 50000 do coroutine.yield({ i }) end end)
local csum = 0
for _ = 1, 50000 do csum = csum + co()[1] end
local big = string.rep("abc", 1 << 21)  -- 6 MB
print(cnt, sum, #s, #g, csum, #big:upper(), collectgarbage("count") > 0)
EOF
    diffrun lua $lua "$WORK/work.lua" $n && pass "lua: tables, sort, gsub, coroutines, GC steps, a 6 MB string ($n items)"
}

# -------------------------------------------------------------------- jq --
suite_jq() {
    have jq || { fail "jq: missing"; return; }
    local n=25000; [ "$MODE" = long ] && n=400000
    python3 - "$WORK/data.json" $n << 'EOF'
import json, random, sys
random.seed(7)
n = int(sys.argv[2])
items = [{"id": i, "name": "item-%d-%s" % (i, "x" * (i % 40)), "group": i % 97,
          "score": random.random(), "tags": ["t%d" % (i * j % 31) for j in range(i % 9)],
          "nested": {"a": [i, i * 2, {"b": str(i) * (i % 5)}]}} for i in range(n)]
json.dump(items, open(sys.argv[1], "w"))
EOF
    local f='([.[] | select(.id % 7 == 0) | {id, n: (.name | ascii_upcase), t: (.tags | join("-"))}] | length),
       (group_by(.group) | map({g: .[0].group, c: length, s: (map(.score) | add | . * 1000 | floor)})),
       (map(.tags) | flatten | unique | length),
       ([paths] | length),
       (map(.nested.a[2].b) | join("") | length),
       (sort_by(.score) | .[0:50] | map(.id)),
       (reduce .[] as $x ({}; .[$x.name[0:6]] += 1) | length)'
    diffrun jq jq -c "$f" "$WORK/data.json" && pass "jq: $n objects, 7 filters ($(du -h "$WORK/data.json" | cut -f1) of JSON)"
}

# ------------------------------------------------------------------- gcc --
suite_gcc() {
    have gcc || { fail "gcc: missing"; return; }
    local n=600; [ "$MODE" = long ] && n=6000
    python3 - "$WORK/gen.c" $n << 'EOF'
import sys
n = int(sys.argv[2])
out = ["#include <stdio.h>", "#include <string.h>"]
for i in range(n):
    out.append("static const char *s%d[] = {%s};" % (i, ", ".join('"%s"' % ("w%d_%d" % (i, j) * (1 + j % 3)) for j in range(8))))
    out.append("""static unsigned long f%d(unsigned long x) {
    unsigned long a[%d]; for (unsigned i = 0; i < %d; i++) a[i] = x * %d + i;
    switch (x %% 7) { case 0: x += a[%d]; break; case 1: x ^= a[0] << 3; break; case 2: x -= strlen(s%d[x %% 8]); break;
    case 3: x *= 0x9e3779b97f4a7c15ul; break; default: for (unsigned i = 0; i < %d; i++) x += a[i] >> (i %% 5); }
    return x;
}""" % (i, 1 + i % 32, 1 + i % 32, i + 3, i % 32 // 2, i, 1 + i % 32))
out.append("int main(void) { unsigned long x = 1;")
for i in range(n):
    out.append("  x = f%d(x);" % i)
out.append('  printf("%lu\\n", x); return 0; }')
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
    local rc=0
    gcc -O2 -c "$WORK/gen.c" -o "$WORK/base.o" 2> "$WORK/gcc.base.err" || rc=$?
    [ $rc = 0 ] || { fail "gcc: fails without rsbmalloc"; return; }
    pre RSBMALLOC_STATS=1 gcc -O2 -c "$WORK/gen.c" -o "$WORK/rsb.o" 2> "$WORK/gcc.rsb.err" || rc=$?
    [ $rc = 0 ] || { tail -5 "$WORK/gcc.rsb.err" | sed 's/^/    /'; fail "gcc: exit $rc under rsbmalloc"; return; }
    served "$WORK/gcc.rsb.err" || { fail "gcc: rsbmalloc did not serve gcc"; return; }
    cmp -s "$WORK/base.o" "$WORK/rsb.o" || { fail "gcc: object file differs under rsbmalloc"; return; }
    gcc "$WORK/rsb.o" -o "$WORK/gen" && diffrun gen-prog "$WORK/gen" || return
    pass "gcc: -O2 of a generated $(wc -l < "$WORK/gen.c")-line file, identical object, same program output"
}

PY_MODULES_PASSED=0
for s in $SUITES; do
    t0=$SECONDS
    "suite_$s"
    say "($s: $((SECONDS - t0)) s)"
done
echo "realworld figures: python modules passed: $PY_MODULES_PASSED"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
