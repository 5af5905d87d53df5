#!/bin/sh
# /usr/bin/python3 with PYTHONMALLOC=malloc (every object through malloc)
# running an allocation-heavy script under rsbmalloc; its results are checked
# by the script itself and compared with a glibc run.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"

cat > "$TMP/work.py" <<'PYEOF'
import gc, hashlib, json, os, random, subprocess, sys, threading

def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)

maps = open("/proc/self/maps").read()
expect = os.environ.get("RSBT_EXPECT")
if expect == "rsb":
    check("librsbmalloc" in maps, "librsbmalloc.so is not mapped into python3")
elif expect == "glibc":
    check("librsbmalloc" not in maps, "reference run has librsbmalloc mapped")

h = hashlib.sha256()

# 1. a dict of 300,000 entries, half deleted
d = {}
for i in range(300000):
    d["key-%d" % i] = [i, str(i) * 3, (i, i * 2)]
for i in range(0, 300000, 2):
    del d["key-%d" % i]
check(len(d) == 150000, "dict size %d" % len(d))
check(sum(v[0] for v in d.values()) == sum(range(1, 300000, 2)), "dict values sum")
check(all(v[1] == str(v[0]) * 3 and v[2] == (v[0], 2 * v[0]) for v in d.values()), "dict values content")
h.update(json.dumps(sorted(d.items())[:2000]).encode())
del d

# 2. growing buffers: realloc through every class into the mmap range
ba = bytearray()
for i in range(20000):
    ba += bytes([i % 256]) * (i % 700)
check(len(ba) == sum(i % 700 for i in range(20000)), "bytearray length")
h.update(hashlib.sha256(ba).digest())
parts = ["%07d" % i for i in range(200000)]
big = "".join(parts)
check(len(big) == 1400000 and big[-7:] == "0199999", "joined string")
h.update(big[::997].encode())
del ba, parts, big

# 3. blocks of 1 KiB .. 8 MiB, all live at once, then checked
blobs = [bytes([i % 251]) * (1 << (10 + i % 14)) for i in range(70)]
for i, b in enumerate(blobs):
    check(len(b) == 1 << (10 + i % 14) and b[0] == b[-1] == i % 251 and b.count(i % 251) == len(b),
          "blob %d content" % i)
del blobs

# 4. json round trip of a nested structure
obj = [{"id": i, "name": "n%d" % i, "tags": ["t%d" % j for j in range(i % 10)], "f": i / 7}
       for i in range(60000)]
txt = json.dumps(obj)
check(json.loads(txt) == obj, "json round trip")
h.update(hashlib.sha256(txt.encode()).digest())
del obj, txt

# 5. eight threads allocating at once (cross-thread frees via the GIL hand-off)
def work(k, out):
    r = random.Random(k)
    acc = []
    total = 0
    for i in range(15000):
        acc.append(("x" * r.randrange(1, 3000), [r.random() for _ in range(4)]))
        if len(acc) > 400:
            total += sum(len(a[0]) for a in acc[:200])
            acc = acc[200:]
    out[k] = total + sum(len(a[0]) for a in acc)

res = [None] * 8
ts = [threading.Thread(target=work, args=(k, res)) for k in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
ref = [None] * 8
work(3, ref)
check(res[3] == ref[3], "thread result differs from a sequential rerun")
h.update(repr(res).encode())

# 6. sorting 200,000 random strings
r = random.Random(42)
L = ["%x" % r.getrandbits(64) for _ in range(200000)]
S = sorted(L)
check(all(S[i] <= S[i + 1] for i in range(len(S) - 1)), "sort order")
check(sorted(S, reverse=True)[::-1] == S, "reverse sort")
h.update("".join(S[::1000]).encode())

# 7. reference cycles for the collector
class Node:
    pass
for _ in range(5):
    nodes = [Node() for _ in range(50000)]
    for i, n in enumerate(nodes):
        n.next = nodes[(i + 1) % len(nodes)]
        n.payload = "p" * (i % 100)
    del nodes
    gc.collect()

# 8. a child process (fork + exec under the preload)
out = subprocess.run([sys.executable, "-c", "print(sum(range(100000)))"],
                     capture_output=True, text=True)
check(out.returncode == 0 and out.stdout.strip() == "4999950000", "child python: %r" % (out,))

print("OK", h.hexdigest())
PYEOF

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
RSBT_EXPECT=glibc "$PY" "$TMP/work.py" > "$TMP/ref.out" 2> "$TMP/ref.err" ||
    { cat "$TMP/ref.err" >&2; die "the python workload fails under glibc: test bug"; }
RSBT_EXPECT=rsb run_rsb "$PY" "$TMP/work.py" > "$TMP/rsb.out" 2> "$TMP/rsb.err"
st=$?
cat "$TMP/rsb.err" >&2
check_status python3 $st "$TMP/rsb.out"
grep -q '^OK ' "$TMP/rsb.out" || die "python3 did not print its OK line"
same_output python3 "$TMP/ref.out" "$TMP/rsb.out"
echo "ok: python3 under rsbmalloc: $(cat "$TMP/rsb.out")"
