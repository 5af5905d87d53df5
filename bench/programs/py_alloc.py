"""Allocation-heavy Python workload for scripts/bench (run with PYTHONMALLOC=malloc
so every object goes through the process's malloc).

    python3 py_alloc.py [N]

Builds N small records (dicts, lists, strings), round-trips them through JSON,
groups and sorts them, builds strings, and churns tuples in sets and dicts.
Deterministic: the same N gives the same work and the same output.
"""
import json
import random
import sys


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rng = random.Random(12345)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]

    records = []
    for i in range(n):
        records.append({
            "id": i,
            "name": "user-%d-%s" % (i, words[i % 8]),
            "tags": [words[rng.randrange(8)] for _ in range(1 + i % 4)],
            "score": rng.random(),
            "pos": (rng.randrange(1000), rng.randrange(1000)),
        })

    text = json.dumps(records)
    back = json.loads(text)
    del records

    groups = {}
    for r in back:
        groups.setdefault(r["tags"][0], []).append(r)
    for k in groups:
        groups[k].sort(key=lambda r: (r["score"], r["id"]))

    lines = []
    for k, rs in sorted(groups.items()):
        for r in rs[::7]:
            lines.append("%s,%d,%.4f,%s" % (k, r["id"], r["score"], "|".join(r["tags"])))
    report = "\n".join(lines)

    seen = set()
    index = {}
    for r in back:
        key = (r["pos"][0] // 10, r["pos"][1] // 10)
        seen.add(key)
        index.setdefault(key, []).append(r["name"].upper())
    del back

    churn = 0
    for rnd in range(4):
        tmp = [str(i) * (1 + (i + rnd) % 5) for i in range(n // 2)]
        churn += sum(len(s) for s in tmp[::97])
        tmp = None

    print(len(text), len(report), len(seen), len(index), churn)


if __name__ == "__main__":
    main()
