#!/usr/bin/python3
"""Turn a results JSON of scripts/bench into the markdown table (latest.md) and
the PNG charts.  scripts/bench calls it at the end of a run; run it again by
hand to regenerate the report from a stored JSON:

    scripts/bench-report.py bench/results/2026-11-23-host.json --out bench/results

Every ratio is to glibc, taken per repetition (the allocators of one
repetition ran back to back, so they shared the machine's state) and then
summarised by the median; the spread is the min..max of those per-repetition
ratios.
"""
import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLORS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#ff7f0e", "rsbmalloc": "#d62728", "rsb-api": "#9e1b1b"}
GROUPS = [("pair/", "malloc+free pairs by size"), ("batch/", "N allocations, then N frees"),
          ("realloc/", "realloc"), ("aligned/", "aligned_alloc"),
          ("threads/", "threads (fixed total work, 2 cores)"),
          ("prodcons/", "producer/consumer (all frees remote)"),
          ("larson/", "larson-style server (remote frees)"), ("churn/", "thread churn"),
          ("live16/", "memory"), ("fragmentation/", "memory")]
# The callgrind patterns of bench/fastpath.c, in table order.
CALLGRIND_PATTERNS = [("32", "malloc(32) + free (`32`)"),
                      ("mixed", "sizes 8..256 B in turn (`mixed`)"),
                      ("ring", "ring of 1,000 live blocks, random 8..256 B (`ring`)")]
# Sections of the workload shapes (the group of each shape is in the results'
# shapes_spec, set by SHAPES in scripts/bench-run.py), in report order.
SHAPE_GROUPS = [
    ("remote", "servers and remote frees (larson, xmalloc-test, mstress, rptest)"),
    ("sharing", "false sharing (Hoard's cache-thrash, cache-scratch; 1 and 2 threads)"),
    ("glibc", "glibc's malloc benchtests (bench-malloc-simple, -thread)"),
    ("live", "a large random live set (alloc-test)"),
    ("large", "large blocks, 2–32 MiB"),
    ("leak", "a steady leak"),
    ("symbolic", "symbolic programs (cfrac-like bignums, espresso-like cubes)"),
    ("realloc", "realloc growth curves, 1 B → 4 MiB → 1 B"),
    ("oversub", "oversubscription: T threads on the machine's cores"),
    ("batch", "batches: 10,000 allocations, then 10,000 frees"),
]


def valid(xs):
    return [x for x in xs if x is not None]


def median(xs):
    xs = valid(xs)
    return statistics.median(xs) if xs else None


def paired(a, base):
    """Per-repetition ratios a[i]/base[i] where both exist."""
    return [x / b for x, b in zip(a, base) if x is not None and b not in (None, 0)]


def ratio(a, base):
    r = paired(a, base)
    if not r:
        return None
    return {"median": statistics.median(r), "min": min(r), "max": max(r), "n": len(r)}


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_ratio(r, bold=False):
    if r is None:
        return "—"
    m = "%.2f" % r["median"] if r["median"] < 10 else "%.1f" % r["median"]
    if bold:
        m = "**%s**" % m
    if r["n"] > 1:
        return "%s <sub>%.2f–%.2f</sub>" % (m, r["min"], r["max"])
    return m


def fmt_time(ns):
    if ns is None:
        return "—"
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return "%.3g %s" % (ns / div, unit)
    return "%.3g ns" % ns


def fmt_bytes(b):
    if b is None:
        return "—"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div:
            return "%.3g %s" % (b / div, unit)
    return "%d B" % b


class Report:
    def __init__(self, res):
        self.res = res
        self.allocs = [a["name"] for a in res["allocators"]]
        self.others = [a for a in self.allocs if a != "glibc"]
        self.prog_allocs = [a for a in self.allocs if a != "rsb-api"]
        # Workload rows in suite order: micro-benchmarks, shapes, programs.
        self.rows = []  # (label, kind, key)
        for key in res["micro"]:
            self.rows.append((key, "micro", key))
        self.shape_spec = res.get("shapes_spec", {})
        order = [g for g, _ in SHAPE_GROUPS]
        for key in sorted(res.get("shapes", {}), key=lambda k: order.index(
                self.shape_group(k)) if self.shape_group(k) in order else len(order)):
            self.rows.append((key, "shape", key))
        for key in res["programs"]:
            self.rows.append(("prog: " + key, "prog", key))

    def shape_group(self, key):
        return self.shape_spec.get(key, {}).get("group", "")

    def series(self, kind, key, alloc, what):
        if kind == "shape":
            rec = self.res["shapes"].get(key, {}).get(alloc)
            if rec is None:
                return []
            return rec["time_s"] if what == "time" else rec["max_rss"]
        if kind == "micro":
            rec = self.res["micro"].get(key, {}).get(alloc)
            if rec is None:
                return []
            return rec["time_ns"] if what == "time" else rec["peak_rss"]
        rec = self.res["programs"].get(key, {}).get(alloc)
        if rec is None:
            return []
        return rec["time_s"] if what == "time" else rec["max_rss"]

    def ratio(self, kind, key, alloc, what):
        if alloc == "glibc":
            base = self.series(kind, key, "glibc", what)
            return {"median": 1.0, "min": 1.0, "max": 1.0, "n": len(valid(base))} if valid(base) else None
        return ratio(self.series(kind, key, alloc, what), self.series(kind, key, "glibc", what))

    def geomeans(self, what, kind=None):
        out = {}
        for a in self.allocs:
            rs = [self.ratio(k, key, a, what) for _, k, key in self.rows
                  if kind is None or k == kind]
            out[a] = geomean([r["median"] for r in rs if r])
        return out

    # ---- markdown ------------------------------------------------------

    def header(self):
        r, m = self.res, self.res["machine"]
        lines = []
        mode = {"full": "full run", "quick": "quick run (subset, short runs; not for the README)",
                "smoke": "smoke run (tiny inputs; numbers meaningless)"}[r["mode"]]
        lines.append("<!-- Generated by scripts/bench from %s; do not edit by hand. -->" %
                     r.get("json_name", "the results JSON"))
        lines.append("")
        lines.append("**%s** — %s, commit `%s`%s, host `%s`" % (
            mode[0].upper() + mode[1:], r["date"], r["commit"],
            " (with uncommitted changes)" if r.get("dirty") else "", m["host"]))
        lines.append("")
        lines.append("- Machine: %s, %s cores, %s RAM, %s, Linux %s, %s, %s" % (
            m["cpu"], m["cores"], fmt_bytes(m["memory_bytes"]), m["os"], m["kernel"],
            m["glibc"], m["compiler"]))
        lines.append("- Allocators: " + ", ".join(
            "%s %s" % (a["name"], a.get("version") or "") for a in r["allocators"]) +
            " (Debian packages, default settings; rsbmalloc = librsbmalloc.so under "
            "LD_PRELOAD like the others%s)" % (
                "; rsb-api = its rsb_* functions linked in" if "rsb-api" in self.allocs else ""))
        c = r["config"]
        bo = c.get("build_options") or {}
        if bo:
            lines.append("- rsbmalloc build: " + ", ".join(
                "%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)
                for k, v in bo.items()))
        lines.append("- Command: `%s` — %d repetitions, allocators interleaved in every "
                     "repetition; cells are the median of the per-repetition ratios to glibc "
                     "with their min–max below; lower is better; **bold** = best in the row. "
                     "Load average %.1f at start, %.1f at end; %d s in all." % (
                         r["command"], c["reps"], m.get("loadavg_start", 0),
                         m.get("loadavg_end", 0), r.get("elapsed_s", 0)))
        for pattern, limit in c.get("rep_limits") or []:
            lines.append("- Workloads matching `%s`: %d repetitions only." % (pattern, limit))
        if c.get("ignored_env"):
            lines.append("- Ignored allocator tuning variables: " + ", ".join(c["ignored_env"]))
        return lines

    def ratio_table(self, what, kind, allocs):
        title_abs = "glibc time" if what == "time" else "glibc peak RSS"
        lines = ["| workload | %s | %s |" % (title_abs, " | ".join(allocs)),
                 "|---|---:|" + "---:|" * len(allocs)]
        keys = [(label, k, key) for label, k, key in self.rows if k == kind]
        group = None
        for label, k, key in keys:
            if kind in ("micro", "shape"):
                if kind == "micro":
                    g = next((title for pre, title in GROUPS if key.startswith(pre)), "")
                else:
                    g = dict(SHAPE_GROUPS).get(self.shape_group(key), "")
                if g != group:
                    group = g
                    lines.append("| *%s* | | %s |" % (g, " | ".join("" for _ in allocs)))
            base = self.series(k, key, "glibc", what)
            b = median(base)
            if what == "time":
                absval = fmt_time(b * (1 if kind == "micro" else 1e9)) if b else "—"
            else:
                absval = fmt_bytes(b)
            rs = {a: self.ratio(k, key, a, what) for a in allocs}
            best = min((r["median"] for r in rs.values() if r), default=None)
            cells = []
            for a in allocs:
                r = rs[a]
                errs = self.errors(k, key, a)
                cell = fmt_ratio(r, bold=r is not None and r["median"] == best)
                if errs:
                    cell += " ⚠ %d failed" % len(errs)
                cells.append(cell)
            lines.append("| %s | %s | %s |" % (key, absval, " | ".join(cells)))
        gm = self.geomeans(what, kind)
        lines.append("| **geometric mean** | | %s |" % " | ".join(
            "**%.2f**" % gm[a] if gm.get(a) else "—" for a in allocs))
        return lines

    def errors(self, kind, key, alloc):
        src = {"micro": self.res["micro"], "shape": self.res.get("shapes", {})}.get(
            kind, self.res["programs"])
        return (src.get(key, {}).get(alloc) or {}).get("errors") or []

    def behind(self, alloc="rsbmalloc", n=3):
        """Workloads where alloc's time ratio is furthest above the best."""
        if alloc not in self.allocs:
            return []
        gaps = []
        for label, k, key in self.rows:
            rs = {a: self.ratio(k, key, a, "time") for a in self.allocs if a != "rsb-api"}
            if rs.get(alloc) is None:
                continue
            best_a = min((a for a in rs if rs[a]), key=lambda a: rs[a]["median"])
            gaps.append((rs[alloc]["median"] / rs[best_a]["median"], label, best_a,
                         rs[alloc]["median"], rs[best_a]["median"]))
        gaps.sort(reverse=True)
        return gaps[:n]

    def markdown(self, charts=(), prefix=""):
        """The report; charts are linked as prefix + file name."""
        L = self.header()
        micro = bool(self.res["micro"])
        shapes = bool(self.res.get("shapes"))
        progs = bool(self.res["programs"])
        if "summary.png" in charts:
            L += ["", "![Time and peak RSS relative to glibc, geometric means by kind of "
                  "workload](%ssummary.png)" % prefix]
        def gm_line(title, kind=None):
            gt, gr = self.geomeans("time", kind), self.geomeans("rss", kind)
            allocs = [a for a in self.allocs if a != "glibc" and (kind is None or gt.get(a))]
            return title + " (time / peak RSS, ratio to glibc): " + ", ".join(
                "%s %s / %s" % (a, "%.2f" % gt[a] if gt.get(a) else "—",
                                "%.2f" % gr[a] if gr.get(a) else "—") for a in allocs) + "."
        if micro or progs or shapes:
            L += ["", gm_line("Geometric mean over all workloads")]
        if shapes:
            L += ["", gm_line("Geometric mean over the %d workload shapes alone" %
                              len(self.res["shapes"]), "shape")]
        b = self.behind()
        if b:
            L += ["", "Where rsbmalloc is furthest behind the best allocator (time):"]
            for gap, label, best, mine, theirs in b:
                L.append("- `%s`: rsbmalloc %.2f vs %s %.2f (×%.2f)" %
                         (label, mine, best, theirs, gap))
        if micro:
            L += ["", "#### Micro-benchmarks: time relative to glibc", ""]
            L += self.ratio_table("time", "micro", self.others)
            L += ["", "#### Micro-benchmarks: peak RSS relative to glibc", "",
                  "Peak resident memory of the whole benchmark process (VmHWM) during the "
                  "workload; small workloads show the process baseline and read ≈1.", ""]
            L += self.ratio_table("rss", "micro", self.others)
            L += self.memory_tables()
            L += self.thread_table()
        if shapes:
            L += self.shape_section(charts, prefix)
        if progs:
            L += ["", "#### Whole programs under LD_PRELOAD (hyperfine)", ""]
            spec = self.res.get("programs_spec", {})
            for name, s in spec.items():
                L.append("- **%s**: %s" % (name, s["what"]))
            L += ["", "Wall time relative to glibc:", ""]
            L += self.ratio_table("time", "prog", [a for a in self.prog_allocs if a != "glibc"])
            L += ["", "Max RSS relative to glibc (GNU time %M; the largest process of the run):",
                  ""]
            L += self.ratio_table("rss", "prog", [a for a in self.prog_allocs if a != "glibc"])
        L += self.callgrind_table()
        others = [c for c in charts if c != "summary.png"]
        if others:
            L += ["", "Charts: " + ", ".join("[%s](%s%s)" % (c, prefix, c) for c in others)]
        L.append("")
        return "\n".join(L)

    def shape_section(self, charts, prefix):
        c = self.res["config"]
        scale = c.get("shape_scale")
        allocs = [a for a in self.others if a != "rsb-api"]
        L = ["", "#### Workload shapes: time relative to glibc", "",
             "Standalone programs in `bench/shapes/` (described in bench/README.md), one "
             "process per run under `LD_PRELOAD`; wall time of the process, %d repetitions%s." %
             (c.get("shape_reps", c["reps"]),
              "" if scale in (None, 1.0) else ", inputs scaled by %s" % scale), ""]
        if "shapes.png" in charts:
            L += ["![Workload shapes: time and peak RSS relative to glibc](%sshapes.png)" %
                  prefix, ""]
        L += self.ratio_table("time", "shape", allocs)
        L += ["", "#### Workload shapes: peak RSS relative to glibc", "",
              "The process's peak resident set (VmHWM, read by the program as it exits), "
              "start-up included: the smallest shapes mostly show each allocator's fixed "
              "footprint.",
              ""]
        L += self.ratio_table("rss", "shape", allocs)
        L += self.oversub_table()
        return L

    def oversub_table(self):
        keys = [k for k in self.res.get("shapes", {}) if k.startswith("oversub-")]
        if not keys:
            return []
        keys.sort(key=lambda k: int(k.split("-")[1]))
        L = ["", "#### Oversubscription: throughput (million replace steps per second)", "",
             "A fixed total of steps split over T threads on %s cores; the last row is the "
             "throughput at the most threads relative to that at 2 threads." %
             self.res["machine"]["cores"], "",
             "| threads | " + " | ".join(self.prog_allocs) + " |",
             "|---:|" + "---:|" * len(self.prog_allocs)]
        thr = {}
        for k in keys:
            cells = []
            for a in self.prog_allocs:
                rec = self.res["shapes"][k].get(a) or {}
                ops = median(rec.get("counters", {}).get("ops", []))
                t = median(rec.get("time_s", []))
                v = ops / t / 1e6 if ops and t else None
                thr[(k, a)] = v
                cells.append("%.1f" % v if v else "—")
            L.append("| %s | %s |" % (k.split("-")[1], " | ".join(cells)))
        lo, hi = keys[0], keys[-1]
        if lo != hi:
            L.append("| %s vs %s | %s |" % (hi.split("-")[1], lo.split("-")[1], " | ".join(
                "%.2f" % (thr[(hi, a)] / thr[(lo, a)]) if thr.get((hi, a)) and thr.get((lo, a))
                else "—" for a in self.prog_allocs)))
        return L

    def memory_tables(self):
        L = []
        frag = [k for k in self.res["micro"] if k.startswith("fragmentation/")]
        for key in frag:
            L += ["", "#### Fragmentation: does memory go back to the OS? (`%s`)" % key, "",
                  "Live set grown to its peak, then shrunk to ~5% in six rounds. RSS above "
                  "the process's RSS before the run; `retained / live` is that RSS one second "
                  "after the shrink divided by the bytes still live (1.0 = nothing kept).", "",
                  "| allocator | peak RSS | after shrink | after shrink + 1 s | live at end | "
                  "retained / live |", "|---|---:|---:|---:|---:|---:|"]
            for a in self.allocs:
                rec = self.res["micro"][key].get(a)
                if not rec:
                    continue
                c = rec["counters"]
                base = median(c.get("rss_base", []))
                peak = median(rec["peak_rss"])
                shr = median(c.get("rss_shrunk", []))
                s1 = median(c.get("rss_shrunk_1s", []))
                live = median(c.get("live_end", []))
                if None in (base, peak, shr, s1, live):
                    L.append("| %s | — | — | — | — | — |" % a)
                    continue
                L.append("| %s | %s | %s | %s | %s | %.2f |" % (
                    a, fmt_bytes(peak - base), fmt_bytes(shr - base), fmt_bytes(s1 - base),
                    fmt_bytes(live), (s1 - base) / live if live else float("nan")))
        live = [k for k in self.res["micro"] if k.startswith("live16/")]
        for key in live:
            L += ["", "#### Footprint of small objects (`%s`)" % key, "",
                  "RSS growth per live 16-byte block (16.0 would be no overhead at all).", "",
                  "| " + " | ".join(self.allocs) + " |", "|" + "---:|" * len(self.allocs),
                  "| " + " | ".join(
                      "%.1f B" % median(self.res["micro"][key][a]["counters"].get(
                          "bytes_per_object", [None])) if self.res["micro"][key].get(a)
                      and median(self.res["micro"][key][a]["counters"].get(
                          "bytes_per_object", [])) is not None else "—"
                      for a in self.allocs) + " |"]
        return L

    def thread_table(self):
        keys = [k for k in self.res["micro"] if k.startswith("threads/")]
        if not keys:
            return []
        L = ["", "#### Thread scaling: throughput (million malloc+free operations per second)",
             "", "Fixed total work split over T threads on %s cores." %
             self.res["machine"]["cores"], "",
             "| threads | " + " | ".join(self.allocs) + " |", "|---:|" + "---:|" * len(self.allocs)]
        for k in keys:
            cells = []
            for a in self.allocs:
                rec = self.res["micro"][k].get(a)
                v = median(rec["counters"].get("items_per_second", [])) if rec else None
                cells.append("%.1f" % (v / 1e6) if v else "—")
            L.append("| %s | %s |" % (k.split("/")[1], " | ".join(cells)))
        return L

    def callgrind_table(self):
        cg = self.res.get("callgrind") or {}
        if "32" not in cg:
            return []
        allocs = [a for a in self.allocs if a in cg["32"]]
        L = ["", "#### Fast path: instructions per malloc+free pair (callgrind)", "",
             "Single thread, %d vs %d iterations to cancel start-up; the loop's own "
             "instructions per pair (%s) are subtracted. Exact counts: these do not vary from "
             "run to run." % (cg["iterations"], 2 * cg["iterations"], ", ".join(
                 "%s for %s" % (cg[p].get("loop", {}).get("per_pair", "?"), p)
                 for p, label in CALLGRIND_PATTERNS if p in cg)), "",
             "| pattern | " + " | ".join(allocs) + " |", "|---|" + "---:|" * len(allocs)]
        for pat, label in CALLGRIND_PATTERNS:
            if pat not in cg:
                continue
            row = cg[pat]
            vals = {a: row.get(a, {}).get("allocator") for a in allocs}
            best = min((v for v in vals.values() if v is not None), default=None)
            cells = []
            for a in allocs:
                v = vals[a]
                cells.append("—" if v is None else ("**%.0f**" if v == best else "%.0f") % v)
            L.append("| %s | %s |" % (label, " | ".join(cells)))
        return L

    def categories(self):
        """Workloads grouped by kind, for the summary chart: [(title, [(kind, key)])]."""
        def size_of(key):
            m = key.split("/")[1]
            for suf, mul in (("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)):
                if m.endswith(suf):
                    return int(m[:-len(suf)]) * mul
            return 0
        tests = [
            ("malloc+free ≤ 1 KiB", lambda k, key: k == "micro" and key.startswith("pair/")
             and size_of(key) <= 1024),
            ("malloc+free > 1 KiB", lambda k, key: k == "micro" and key.startswith("pair/")
             and size_of(key) > 1024),
            ("batches", lambda k, key: key.startswith("batch/")),
            ("realloc", lambda k, key: key.startswith("realloc/")),
            ("aligned_alloc", lambda k, key: key.startswith("aligned/")),
            ("1–8 threads", lambda k, key: key.startswith("threads/")
             and key != "threads/64"),
            ("64 threads on 2 cores", lambda k, key: key == "threads/64"),
            ("remote frees", lambda k, key: key.startswith(("prodcons/", "larson/"))),
            ("thread churn", lambda k, key: key.startswith("churn/")),
            ("memory workloads", lambda k, key: key.startswith(("live16/", "fragmentation/"))),
        ]
        short = {"remote": "shapes: remote frees", "sharing": "shapes: false sharing",
                 "glibc": "shapes: glibc benchtests", "live": "shapes: random live set",
                 "large": "shapes: large blocks", "leak": "shapes: leak",
                 "symbolic": "shapes: cfrac, espresso", "realloc": "shapes: realloc curves",
                 "oversub": "shapes: oversubscription", "batch": "shapes: batches"}
        for g, _ in SHAPE_GROUPS:
            tests.append((short[g], lambda k, key, g=g: k == "shape"
                          and self.shape_group(key) == g))
        tests.append(("whole programs", lambda k, key: k == "prog"))
        out = []
        for title, test in tests:
            rows = [(k, key) for _, k, key in self.rows if test(k, key)]
            if rows:
                out.append((title, rows))
        return out

    # ---- charts ----------------------------------------------------------

    def charts(self, out):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        stamp = "%s · %s · %s · %s" % (self.res["date"], self.res["commit"],
                                       self.res["machine"]["host"], self.res["mode"])
        written = []

        def draw_ratios(ax, labels, cells, allocs, groups, legend_gm, xlabel, annotate=False):
            """Horizontal bars growing from 1.0 (glibc): one row per label,
            one bar per allocator; cells[i][a] is a ratio dict or None.  The
            last row is the geometric mean, below a rule."""
            n = len(labels)
            h = 0.84 / max(1, len(allocs))
            lo, hi = 1.0, 1.0
            for j, a in enumerate(allocs):
                off = (j - (len(allocs) - 1) / 2) * h
                ys, xs, el, eh = [], [], [], []
                for i in range(n):
                    r = cells[i].get(a)
                    if r is None:
                        continue
                    ys.append(i + off)
                    xs.append(r["median"])
                    el.append(r["median"] - r["min"])
                    eh.append(r["max"] - r["median"])
                    lo, hi = min(lo, r["min"]), max(hi, r["max"])
                label = a
                if legend_gm.get(a):
                    label = "%s (geomean %.2f)" % (a, legend_gm[a])
                ax.barh(ys, [x - 1.0 for x in xs], left=1.0, height=h * 0.92,
                        color=COLORS.get(a), hatch="///" if a == "rsb-api" else None,
                        edgecolor="white", linewidth=0.3, label=label)
                ax.errorbar(xs, ys, xerr=[el, eh], fmt="none", ecolor="black",
                            elinewidth=0.6, capsize=1.2, alpha=0.6)
                if annotate:
                    for x, y in zip(xs, ys):
                        ax.text(x * (1.03 if x >= 1 else 1 / 1.03), y, "%.2f" % x,
                                va="center", ha="left" if x >= 1 else "right", fontsize=6)
            ax.set_xscale("log")
            pad = 1.6 if annotate else 1.25
            ax.set_xlim(max(min(lo / pad, 0.5), 0.02), min(max(hi * pad, 2.0), 50.0))
            ax.axvline(1.0, color="black", linewidth=1.0)
            ax.set_yticks(range(n))
            ax.set_yticklabels(labels, fontsize=8)
            ticks = ax.get_yticklabels()
            if ticks:
                ticks[-1].set_fontweight("bold")
            ax.set_ylim(n - 0.5, -0.5)
            for i in range(1, n - 1):
                if groups[i] != groups[i - 1]:
                    ax.axhline(i - 0.5, color="grey", linewidth=0.4)
            ax.axhline(n - 1.5, color="black", linewidth=0.8)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
            ax.grid(axis="x", which="major", linestyle=":", linewidth=0.6)
            ax.set_xlabel(xlabel, fontsize=8)

        def gm_cell(v):
            return {"median": v, "min": v, "max": v, "n": 1} if v else None

        reps = self.res["config"]["reps"]
        xlabel = ("ratio to glibc, log scale: left of 1 is %s, right is %s\n"
                  "bars: median of %d repetitions; whiskers: min–max")

        def ratio_chart(what, fname, title, better, worse):
            allocs = self.others
            gm = self.geomeans(what)
            labels = [label for label, _, _ in self.rows] + ["geometric mean"]
            cells = [{a: self.ratio(k, key, a, what) for a in allocs}
                     for _, k, key in self.rows]
            cells.append({a: gm_cell(gm.get(a)) for a in allocs})
            groups = ["prog" if k == "prog" else "shape:" + self.shape_group(key)
                      if k == "shape" else key.split("/")[0] for _, k, key in self.rows]
            groups.append("gm")
            fig, ax = plt.subplots(
                figsize=(10, 1.8 + len(labels) * (0.1 + 0.075 * len(allocs))))
            draw_ratios(ax, labels, cells, allocs, groups, gm,
                        xlabel % (better, worse, reps))
            ax.set_title("%s\n%s" % (title, stamp), fontsize=10)
            ax.legend(loc="upper right", fontsize=8, framealpha=0.92)
            fig.tight_layout()
            fig.savefig(out / fname, dpi=110)
            plt.close(fig)
            written.append(fname)

        if self.rows:
            ratio_chart("time", "time.png", "Time relative to glibc, per workload "
                        "(lower is better)", "faster", "slower")
            ratio_chart("rss", "rss.png", "Peak RSS relative to glibc, per workload "
                        "(lower is better)", "smaller", "larger")

            # The workload shapes alone: time and peak RSS side by side.
            srows = [(label, k, key) for label, k, key in self.rows if k == "shape"]
            if srows:
                allocs = [a for a in self.others if a != "rsb-api"]
                fig, axes = plt.subplots(1, 2, figsize=(13, 1.8 + (len(srows) + 1) *
                                                        (0.1 + 0.075 * len(allocs))),
                                         sharey=True)
                for ax, what, title, better, worse in (
                        (axes[0], "time", "Time", "faster", "slower"),
                        (axes[1], "rss", "Peak RSS", "smaller", "larger")):
                    gm = self.geomeans(what, "shape")
                    labels = [label for label, _, _ in srows] + ["geometric mean"]
                    cells = [{a: self.ratio(k, key, a, what) for a in allocs}
                             for _, k, key in srows]
                    cells.append({a: gm_cell(gm.get(a)) for a in allocs})
                    groups = [self.shape_group(key) for _, _, key in srows] + ["gm"]
                    draw_ratios(ax, labels, cells, allocs, groups, gm,
                                xlabel % (better, worse, self.res["config"].get(
                                    "shape_reps", reps)))
                    ax.set_title("%s relative to glibc (lower is better)" % title,
                                 fontsize=10)
                    ax.legend(loc="lower right", fontsize=7, framealpha=0.92)
                fig.suptitle("Workload shapes (bench/shapes), one process per run under "
                             "LD_PRELOAD · " + stamp, fontsize=10)
                fig.tight_layout(rect=(0, 0, 1, 0.97))
                fig.savefig(out / "shapes.png", dpi=110)
                plt.close(fig)
                written.append("shapes.png")

            # Summary: geometric means per kind of workload, time and RSS.
            cats = self.categories()
            if cats:
                # (an allocator with no result in this run, e.g. rsb-api when
                # only shapes ran, gets no legend entry)
                allocs = [a for a in self.others if any(
                    self.ratio(k, key, a, "time") for _, k, key in self.rows)]
                fig, axes = plt.subplots(1, 2, figsize=(12, 1.6 + (len(cats) + 1) *
                                                        (0.12 + 0.07 * len(allocs))),
                                         sharey=True)
                for ax, what, title, better, worse in (
                        (axes[0], "time", "Time", "faster", "slower"),
                        (axes[1], "rss", "Peak RSS", "smaller", "larger")):
                    gm = self.geomeans(what)
                    labels, cells = [], []
                    for cat, rows in cats:
                        labels.append("%s (%d)" % (cat, len(rows)))
                        cells.append({a: gm_cell(geomean(
                            [(self.ratio(k, key, a, what) or {}).get("median")
                             for k, key in rows])) for a in allocs})
                    labels.append("all workloads")
                    cells.append({a: gm_cell(gm.get(a)) for a in allocs})
                    draw_ratios(ax, labels, cells, allocs, labels, {},
                                "geometric mean of the ratios to glibc, log scale:\n"
                                "left of 1 is %s, right is %s" % (better, worse),
                                annotate=True)
                    ax.set_title("%s relative to glibc (lower is better)" % title, fontsize=10)
                fig.suptitle("rsbmalloc vs glibc, jemalloc, mimalloc, tcmalloc · " + stamp,
                             fontsize=10)
                handles, names = axes[0].get_legend_handles_labels()
                fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=8,
                           bbox_to_anchor=(0.5, 0.955), frameon=False)
                fig.tight_layout(rect=(0, 0, 1, 0.93))
                fig.savefig(out / "summary.png", dpi=110)
                plt.close(fig)
                written.append("summary.png")

        tkeys = [k for k in self.res["micro"] if k.startswith("threads/")]
        if tkeys:
            fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
            ts = [int(k.split("/")[1]) for k in tkeys]
            for a in self.allocs:
                thr, rel = [], []
                for k in tkeys:
                    rec = self.res["micro"][k].get(a)
                    v = median(rec["counters"].get("items_per_second", [])) if rec else None
                    thr.append(v / 1e6 if v else float("nan"))
                    r = self.ratio("micro", k, a, "time")
                    rel.append(r["median"] if r else float("nan"))
                style = dict(color=COLORS.get(a), marker="o", markersize=4,
                             linestyle="--" if a == "rsb-api" else "-", label=a)
                ax1.plot(ts, thr, **style)
                ax2.plot(ts, rel, **style)
            for ax in (ax1, ax2):
                ax.set_xscale("log", base=2)
                ax.set_xticks(ts)
                ax.set_xticklabels([str(t) for t in ts])
                ax.set_xlabel("threads (%s cores)" % self.res["machine"]["cores"])
                ax.grid(linestyle=":", linewidth=0.6)
            ax1.set_ylabel("million malloc+free per second")
            ax1.set_ylim(bottom=0)
            ax1.set_title("Throughput, fixed total work", fontsize=10)
            ax2.set_yscale("log")
            ax2.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
            ax2.yaxis.set_minor_formatter(NullFormatter())
            ax2.axhline(1.0, color="black", linewidth=0.8)
            ax2.set_ylabel("time relative to glibc (log)")
            ax2.set_title("Time relative to glibc at each thread count", fontsize=10)
            ax1.legend(fontsize=8)
            fig.suptitle("Thread scaling · " + stamp, fontsize=10)
            fig.tight_layout()
            fig.savefig(out / "threads.png", dpi=110)
            plt.close(fig)
            written.append("threads.png")

        cg = self.res.get("callgrind") or {}
        if "32" in cg:
            allocs = [a for a in self.allocs if a in cg["32"]]
            fig, ax = plt.subplots(figsize=(8, 3.8))
            pats = [(p, label) for p, label in (("32", "malloc(32)+free"),
                                                 ("mixed", "sizes 8..256 B in turn"),
                                                 ("ring", "ring of 1,000, 8..256 B"))
                    if p in cg]
            w = 0.76 / len(pats)
            for j, (pat, label) in enumerate(pats):
                vals = [cg[pat].get(a, {}).get("allocator") or 0 for a in allocs]
                xs = [i + (j - (len(pats) - 1) / 2) * w for i in range(len(allocs))]
                bars = ax.bar(xs, vals, width=w * 0.95,
                              color=[COLORS.get(a) for a in allocs],
                              alpha=(1.0, 0.6, 0.35)[min(j, 2)], edgecolor="black",
                              linewidth=0.4, hatch=(None, None, "..")[min(j, 2)], label=label)
                for b, v in zip(bars, vals):
                    ax.text(b.get_x() + b.get_width() / 2, v, "%.0f" % v, ha="center",
                            va="bottom", fontsize=7)
            ax.set_xticks(range(len(allocs)))
            ax.set_xticklabels(allocs)
            ax.set_ylabel("instructions per pair")
            ax.set_title("Fast path: instructions inside the allocator per malloc+free "
                         "(callgrind)\n%s · %s" % (
                             ", ".join("%s: %s" % (("solid", "light", "dotted")[j], label)
                                       for j, (_, label) in enumerate(pats))
                             if len(pats) > 1 else pats[0][1], stamp), fontsize=9)
            ax.grid(axis="y", linestyle=":", linewidth=0.6)
            fig.tight_layout()
            fig.savefig(out / "fastpath.png", dpi=110)
            plt.close(fig)
            written.append("fastpath.png")
        return written


BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"


def update_readme(readme, rep, charts, out):
    """Put the report into readme between the markers, with chart links
    relative to the readme.  Leaves the file alone if a marker is missing."""
    try:
        text = readme.read_text()
    except OSError as e:
        print("bench-report: cannot read %s: %s" % (readme, e), file=sys.stderr)
        return
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        print("bench-report: %s has no %s ... %s section; not updated" % (readme, BEGIN, END))
        return
    prefix = os.path.relpath(out.resolve(), readme.resolve().parent)
    prefix = "" if prefix == "." else prefix + "/"
    body = rep.markdown(charts, prefix)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + "\n" + body + END + tail)
    print("bench-report: updated %s" % readme)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json")
    ap.add_argument("--out", help="directory for latest.md and the charts "
                                  "(default: the JSON's directory)")
    ap.add_argument("--no-charts", action="store_true")
    ap.add_argument("--readme", help="also replace the part of this markdown file between "
                                     "%s and %s with the report" % (BEGIN, END))
    args = ap.parse_args()
    path = Path(args.json)
    res = json.loads(path.read_text())
    res["json_name"] = path.name
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(res)
    charts = []
    if not args.no_charts:
        try:
            charts = rep.charts(out)
        except ImportError:
            print("bench-report: matplotlib not installed (python3-matplotlib); no charts",
                  file=sys.stderr)
    md = rep.markdown(charts)
    (out / "latest.md").write_text(md)
    if args.readme:
        update_readme(Path(args.readme), rep, charts, out)
    print("bench-report: wrote %s%s" % (out / "latest.md",
                                         "".join(", " + str(out / c) for c in charts)))
    for gap, label, best, mine, theirs in rep.behind():
        print("bench-report: rsbmalloc behind on %s: %.2f vs %s %.2f (x%.2f)" %
              (label, mine, best, theirs, gap))


if __name__ == "__main__":
    main()
