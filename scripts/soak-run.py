#!/usr/bin/python3
"""Driver of scripts/soak: memory over time of a long-running server under
each allocator.  Run it through scripts/soak, which installs the packages.

Two parts, each allocator in turn (one fresh server per allocator):

pg      PostgreSQL 15 started by scripts/pg-server with the allocator preloaded
        into the postmaster (and so in every backend, which are its forks).
        One pgbench run with 8 clients whose connections stay open throughout:
        TPC-B (pgbench's tpcb-like transaction) until t1, then every client
        records its commit count and sleeps until t2 (idle: no query at all),
        then select-only until the end.  After the run: nothing lost (the
        sums of pgbench_accounts, _tellers and _branches equal sum(delta) of
        pgbench_history, which has one row per commit that pgbench counted),
        no aborted client, no ERROR/FATAL/PANIC in the server log.
server  bench/soak/server.c: 64 threads, grow / shrink / idle cycles; it checks
        every block it frees and reports its memory at each phase end.

Memory is sampled every second from /proc/PID/smaps_rollup of the server's
whole process tree.  For PostgreSQL the figure is the sum of PSS over the
postmaster and all its children, not the sum of RSS: every backend maps the
same shared buffers and binary, and a sum of RSS would count each shared page
once per process that touched it (it grows with the number of backends, not
with what the server holds).  PSS charges each shared page in equal parts to
the processes that map it, so the sum over the server counts it once.  The
synthetic server is one process, so its figure is plain RSS.
"""
import argparse
import csv
import datetime
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PGBIN = Path("/usr/lib/postgresql/15/bin")
PG_SERVER = ROOT / "scripts" / "pg-server"

# Shared helpers of the benchmark driver (build checks, allocator lookup,
# machine description, the environment scrub).
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "scripts" / "bench-run.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

ALLOCATORS = [a for a in bench.ALLOCATORS if a["name"] != "rsb-api"]
COLORS = {"glibc": "#555555", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#9467bd", "rsbmalloc": "#d62728"}

T0 = time.monotonic()
MiB = 1024.0


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def die(msg):
    print("soak: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


# ---- durations -----------------------------------------------------------

def plan(args):
    """Phase lengths in seconds and sizes, for --ci or for --minutes M."""
    if args.ci:
        return {
            "pg": {"tpcb": 8, "idle": 5, "ro": 4, "scale": 1, "clients": 8},
            "server": {"threads": 64, "live_mib": 64, "cycles": 2, "grow": 1.5,
                       "shrink": 1.5, "idle": 2, "slice_ms": 250, "ops": 100},
        }
    m = args.minutes
    # TPC-B : idle : select-only = 10 : 1 : 2 as in the issue, with floors so
    # that a short run still has an idle spell longer than the peers' purge
    # timers (jemalloc decays dirty pages over about 10 s).
    return {
        "pg": {"tpcb": round(60 * m), "idle": max(round(6 * m), 15),
               "ro": max(round(12 * m), 15), "scale": args.scale or 10, "clients": 8},
        "server": {"threads": 64, "live_mib": 256, "cycles": 3,
                   "grow": max(4 * m, 6), "shrink": max(4 * m, 6), "idle": max(4 * m, 12),
                   "slice_ms": 250, "ops": 100},
    }


# ---- build -----------------------------------------------------------------

def build(args):
    builddir = Path(args.builddir or "build")
    if not builddir.is_absolute():
        builddir = ROOT / builddir
    if (builddir / "build.ninja").exists():
        why = bench.suitable(bench.build_options(builddir))
        if why and not args.builddir:
            log("build: %s is unsuitable for measuring (%s); using build-bench" %
                (builddir.name, why))
            builddir = ROOT / "build-bench"
        elif why:
            die("%s is unsuitable for measuring: %s" % (builddir, why))
    if not (builddir / "build.ninja").exists():
        log("build: meson setup %s (release, -Dbench=enabled)" % builddir)
        r = subprocess.run(["meson", "setup", str(builddir), str(ROOT), "--buildtype=release",
                            "-Dbench=enabled"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
            die("meson setup failed")
    targets = json.loads(bench.output(["meson", "introspect", "--targets", str(builddir)], "[]"))
    found = {}
    for t in targets:
        if t["name"] == "rsbmalloc" and t["type"] == "shared library":
            found["lib"] = t["filename"][0]
        elif t["name"] == "rsbsoak-server":
            found["server"] = t["filename"][0]
    if "lib" not in found or "server" not in found:
        die("%s has no librsbmalloc.so or rsbsoak-server target (bench disabled?)" % builddir)
    if not args.no_build:
        names = [os.path.relpath(found[k], builddir) for k in ("lib", "server")]
        log("build: ninja -C %s %s" % (builddir, " ".join(names)))
        r = subprocess.run(["ninja", "-C", str(builddir)] + names, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-6000:] + r.stderr[-3000:])
            die("build failed")
    for k in ("lib", "server"):
        if not Path(found[k]).exists():
            die("%s was not built" % found[k])
    opts = bench.build_options(builddir) or {}
    found["build_options"] = {k: opts[k] for k in bench.BUILD_KNOBS if k in opts}
    found["builddir"] = str(builddir)
    return found


def resolve_allocators(wanted, found):
    out = []
    for a in ALLOCATORS:
        if wanted and a["name"] not in wanted:
            continue
        a = dict(a)
        if a["name"] == "glibc":
            a["lib"] = None
            a["version"] = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
        elif a["name"] == "rsbmalloc":
            a["lib"] = os.path.realpath(found["lib"])
            a["version"] = bench.git_describe()
        else:
            a["lib"] = bench.ldconfig_path(a["soname"]) or bench.dpkg_path(a["package"], a["soname"])
            a["version"] = bench.dpkg_version(a["package"])
            if not (a["lib"] and Path(a["lib"]).exists()):
                die("%s not found (%s; Debian package %s)" % (a["name"], a["soname"], a["package"]))
            a["lib"] = os.path.realpath(a["lib"])
        out.append(a)
    unknown = set(wanted or []) - {a["name"] for a in out}
    if unknown:
        die("unknown allocator(s): %s" % ", ".join(sorted(unknown)))
    return out


# ---- memory sampling -------------------------------------------------------

ROLLUP_KEYS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file",
               "Pss_Shmem": "pss_shmem"}


def rollup(pid):
    """smaps_rollup of one process in KiB, or None if it is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, rest = line.partition(":")
        if k in ROLLUP_KEYS:
            out[ROLLUP_KEYS[k]] = int(rest.split()[0])
    return out or None


def tree(root):
    """root and all its descendants, from the parent links in /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def sample(root):
    total = {v: 0 for v in ROLLUP_KEYS.values()}
    n = 0
    for pid in tree(root):
        r = rollup(pid)
        if r is None:
            continue
        n += 1
        for k, v in r.items():
            total[k] += v
    total["nproc"] = n
    return total


class Sampler(threading.Thread):
    """Samples the process tree of a PID every `interval` s on a grid from t0
    (wall clock, the same clock as pgbench's logs and the server's lines)."""

    def __init__(self, pid, t0, interval=1.0):
        super().__init__(daemon=True)
        self.pid, self.t0, self.interval = pid, t0, interval
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        k = 0
        while not self.stop_ev.is_set():
            target = self.t0 + k * self.interval
            delay = target - time.time()
            if delay > 0 and self.stop_ev.wait(delay):
                break
            s = sample(self.pid)
            if s["nproc"] == 0:
                break
            s["t"] = round(time.time() - self.t0, 3)
            self.samples.append(s)
            k = max(k + 1, math.floor((time.time() - self.t0) / self.interval) + 1)

    def stop(self):
        self.stop_ev.set()
        self.join()


def lib_mapped(pid, lib):
    if lib is None:
        return True
    try:
        with open("/proc/%d/maps" % pid) as f:
            return lib in f.read()
    except OSError:
        return False


# ---- PostgreSQL ------------------------------------------------------------

PGBENCH_SCRIPT = r"""-- scripts/soak: TPC-B until t1, idle until t2, then select-only.
-- t0 is the start (epoch seconds); el is the elapsed time that the TPC-B
-- transaction reads from the server's clock.  pgbench's tpcb-like script
-- with one extra column in its SELECT.
\if :el < :t1
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance, floor(extract(epoch FROM clock_timestamp()) - :t0)::int AS el FROM pgbench_accounts WHERE aid = :aid \gset
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
\set ntx :ntx + 1
\elif :recorded = 0
-- once per client: its number of committed TPC-B transactions, then sleep
INSERT INTO soak_counts (client, n) VALUES (:client_id, :ntx);
\set recorded 1
\if :el < :t2
\set rem :t2 - :el
\sleep :rem s
\endif
\else
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
\endif
"""


def pg_env(envlines, base):
    env = dict(base)
    for line in envlines.splitlines():
        m = re.match(r"^([A-Z_]+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def pg_start(d, lib, env):
    r = subprocess.run([str(PG_SERVER), "start", str(d)] + ([lib] if lib else []),
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        die("pg-server start %s failed:\n%s" % (d, r.stderr[-3000:]))
    return pg_env(r.stdout, env)


def pg_stop(d, env):
    r = subprocess.run([str(PG_SERVER), "stop", str(d)], capture_output=True, text=True, env=env)
    return r.returncode == 0, r.stderr.strip()


def psql(env, sql):
    r = subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-c", sql], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.strip())
    return r.stdout.strip()


def pg_template(work, p, env):
    """One initialised database, copied for every allocator: the same data
    for everyone, and the initialisation is not part of the measurement."""
    d = work / "template"
    log("pg: template: initdb, pgbench -i -s %d" % p["scale"])
    e = pg_start(d, None, env)
    try:
        r = subprocess.run([str(PGBIN / "pgbench"), "-i", "-q", "-s", str(p["scale"])],
                           capture_output=True, text=True, env=e)
        if r.returncode != 0:
            die("pgbench -i failed: %s" % r.stderr[-2000:])
        psql(e, "CREATE TABLE soak_counts (client int PRIMARY KEY, n bigint NOT NULL)")
        psql(e, "CHECKPOINT")
    finally:
        ok, msg = pg_stop(d, env)
    if not ok:
        die("template server: %s" % msg)
    return d


def agg_counts(prefix_dir):
    """Per-second transaction counts from pgbench's aggregate logs (one file
    per pgbench thread): {epoch second: transactions}."""
    counts = {}
    for f in prefix_dir.glob("agg.*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                sec = int(float(parts[0]))
                counts[sec] = counts.get(sec, 0) + int(parts[1])
    return counts


def run_pg(a, p, work, template, env):
    d = work / ("pg-" + a["name"])
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    subprocess.run(["cp", "-a", str(template / "data"), str(d / "data")], check=True)
    e = pg_start(d, a["lib"], env)
    pid = int(e["PG_SERVER_PID"])
    res = {"checks": {}, "errors": []}
    t1, t2 = p["tpcb"], p["tpcb"] + p["idle"]
    total = t2 + p["ro"]
    script = work / "soak.sql"
    script.write_text(PGBENCH_SCRIPT)
    res["checks"]["preload"] = lib_mapped(pid, a["lib"])
    t0 = time.time()
    sampler = Sampler(pid, t0)
    sampler.start()
    cmd = [str(PGBIN / "pgbench"), "-n", "-c", str(p["clients"]), "-j", "2", "-T", str(total),
           "-f", str(script), "-D", "t0=%.6f" % t0, "-D", "t1=%d" % t1, "-D", "t2=%d" % t2,
           "-D", "el=0", "-D", "ntx=0", "-D", "recorded=0", "-D", "scale=%d" % p["scale"],
           "-l", "--aggregate-interval=1", "--log-prefix=%s" % (d / "agg")]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=str(d),
                           timeout=total + 120)
        rc, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as ex:
        rc, out = -1, "pgbench timed out: %s" % ex
    sampler.stop()
    (d / "pgbench.out").write_text(out)
    res["checks"]["pgbench_exit_0"] = rc == 0
    if rc != 0:
        res["errors"].append("pgbench exit %d: %s" % (rc, out.strip().splitlines()[-1:] or ""))
    # Nothing lost: one statement, one snapshot.
    try:
        row = psql(e, "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),"
                      " (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),"
                      " (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),"
                      " (SELECT coalesce(sum(delta), 0) FROM pgbench_history),"
                      " (SELECT count(*) FROM pgbench_history),"
                      " (SELECT coalesce(sum(n), 0) FROM soak_counts),"
                      " (SELECT count(*) FROM soak_counts)").split("|")
        acc, tel, bra, delta, hist, commits, nclients = (int(x) for x in row)
        res["ledger"] = {"sum_abalance": acc, "sum_tbalance": tel, "sum_bbalance": bra,
                         "sum_delta": delta, "history_rows": hist, "commits_counted": commits,
                         "clients_reporting": nclients}
        res["checks"]["sums_equal"] = acc == tel == bra == delta
        res["checks"]["history_eq_commits"] = hist == commits and commits > 0
        res["checks"]["all_clients_reported"] = nclients == p["clients"]
    except (RuntimeError, ValueError) as ex:
        res["errors"].append(str(ex))
        res["checks"]["sums_equal"] = False
    ok, msg = pg_stop(d, env)
    res["checks"]["server_log_clean"] = ok
    if not ok:
        res["errors"].append(msg[-2000:])
    # Throughput: TPC-B commits over the TPC-B time; select-only from the
    # per-second log over the seconds wholly inside that phase.
    counts = agg_counts(d)
    # an interval [sec, sec + 1) is drawn at its middle
    series = sorted((sec + 0.5 - t0, n) for sec, n in counts.items())
    commits = res.get("ledger", {}).get("commits_counted", 0)
    ro_secs = [n for sec, n in counts.items() if sec >= t0 + t2 + 1 and sec + 1 <= t0 + total]
    res["tps"] = {"tpcb": commits / t1 if t1 else 0,
                  "ro": sum(ro_secs) / len(ro_secs) if ro_secs else 0}
    res["tps_series"] = [[round(t, 3), n] for t, n in series]
    # after the run the clients disconnect: that drop belongs to no phase
    res["samples"] = [x for x in sampler.samples if x["t"] <= total]
    res["phases"] = [["TPC-B", 0, t1], ["idle", t1, t2], ["select-only", t2, total]]
    res["phase_end"] = {name: last_before(sampler.samples, end) for name, _, end in res["phases"]}
    res["t0"] = t0
    if not args_global.keep:
        shutil.rmtree(d, ignore_errors=True)
    return res


def last_before(samples, t):
    """The last sample taken before time t (the state at the end of a phase)."""
    best = None
    for s in samples:
        if s["t"] < t - 0.05:
            best = s
    return best


# ---- the synthetic server --------------------------------------------------

def die_with_parent():
    """In the child before exec: SIGKILL when the driver dies."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

LINE = re.compile(r"^soak-server: (\S+)(.*)$")


def parse_kv(text):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", text)}


def run_server(a, s, found, env):
    e = dict(env)
    if a["lib"]:
        e["LD_PRELOAD"] = a["lib"]
    cmd = [found["server"], "--threads", str(s["threads"]), "--live-mib", str(s["live_mib"]),
           "--cycles", str(s["cycles"]), "--grow", str(s["grow"]), "--shrink", str(s["shrink"]),
           "--idle", str(s["idle"]), "--slice-ms", str(s["slice_ms"]), "--ops", str(s["ops"])]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                            preexec_fn=die_with_parent)
    sampler = Sampler(proc.pid, t0)
    sampler.start()
    res = {"checks": {}, "errors": [], "phases": [], "phase_end": {}, "events": []}
    begin = {}
    preload_ok = None
    nominal = s["cycles"] * (s["grow"] + s["shrink"] + s["idle"])
    killer = threading.Timer(nominal * 3 + 120, proc.kill)
    killer.start()
    for line in proc.stdout:
        m = LINE.match(line.strip())
        if not m:
            continue
        kind, kv = m.group(1), parse_kv(m.group(2))
        if kind == "start":
            preload_ok = lib_mapped(proc.pid, a["lib"])
        elif kind == "phase":
            begin[(kv["cycle"], kv["name"])] = float(kv["epoch"]) - t0
        elif kind == "phase-end":
            key = (kv["cycle"], kv["name"])
            tb = begin.get(key, 0)
            te = float(kv["epoch"]) - t0
            res["phases"].append([kv["name"], round(tb, 3), round(te, 3), int(kv["cycle"])])
            res["phase_end"]["%s %s" % (kv["name"], kv["cycle"])] = {
                "t": round(te, 3), "rss": int(kv["rss"]), "pss": int(kv["pss"]),
                "pss_anon": int(kv["anon"]), "live": int(kv["live"]),
                "overrun": int(kv["overrun"]), "slices": int(kv["slices"])}
        elif kind == "ok":
            res["counts"] = {k: int(v) for k, v in kv.items()}
    rc = proc.wait()
    killer.cancel()
    err = proc.stderr.read()
    sampler.stop()
    res["checks"]["preload"] = bool(preload_ok)
    res["checks"]["exit_0"] = rc == 0
    res["checks"]["blocks_checked"] = "counts" in res and res["counts"]["checked"] > 0
    res["checks"]["phases_complete"] = len(res["phases"]) == 3 * s["cycles"]
    if rc != 0:
        res["errors"].append("exit %d: %s" % (rc, err.strip()[-500:]))
    res["samples"] = trim_server(sampler.samples, res["phases"])
    return res


def trim_server(samples, phases):
    """Samples up to the end of the last phase (then the server frees
    everything and exits: that belongs to no phase)."""
    end = max((p[2] for p in phases), default=None)
    return [x for x in samples if end is None or x["t"] <= end]


def peak(x, metric):
    """The highest reading: the samples and, for the synthetic server, its
    own readings at the phase ends."""
    vals = [s[metric] for s in x["samples"]] + [
        v[metric] for v in x["phase_end"].values() if v and metric in v and "live" in v]
    return max(vals, default=None)


# ---- report ----------------------------------------------------------------

def mib(kib):
    return "—" if kib is None else "%.1f" % (kib / MiB)


def fmt_tps(x):
    return "%.0f" % x


def targets(part, results, names, metric):
    """rsbmalloc at or below every peer at every phase end; after each idle
    phase at or below glibc.  Returns (lines, all_met)."""
    if "rsbmalloc" not in results:
        return [], None
    rsb = results["rsbmalloc"]["phase_end"]
    peers = [n for n in names if n != "rsbmalloc" and n in results]
    lines, met_all = [], True
    miss = []
    for phase, s in rsb.items():
        if s is None:
            continue
        mine = s[metric]
        for n in peers:
            o = results[n]["phase_end"].get(phase)
            if o is not None and mine > o[metric]:
                miss.append("%s: rsbmalloc %s MiB > %s %s MiB" % (phase, mib(mine), n, mib(o[metric])))
    total = sum(1 for s in rsb.values() if s is not None)
    if miss:
        met_all = False
        lines.append("- At or below every peer at every phase end: **missed** at %d comparisons "
                     "(%d phase ends × %d peers):" % (len(miss), total, len(peers)))
        lines.extend("  - " + m for m in miss)
    else:
        lines.append("- At or below every peer at every phase end: **met** (%d phase ends × %d "
                     "peers)." % (total, len(peers)))
    if "glibc" in results:
        idle = []
        for phase, s in rsb.items():
            if s is None or not phase.startswith("idle"):
                continue
            g = results["glibc"]["phase_end"].get(phase)
            if g is None:
                continue
            idle.append("%s: %s vs glibc %s MiB (%s)" % (phase, mib(s[metric]), mib(g[metric]),
                                                        "met" if s[metric] <= g[metric] else "**missed**"))
            if s[metric] > g[metric]:
                met_all = False
        lines.append("- After the idle phase at or below glibc: " + "; ".join(idle) + ".")
    return lines, met_all


def summary_md(meta, results, names, plan_, charts_rel):
    L = []
    pgp, sp = plan_["pg"], plan_["server"]
    L.append("**%s** — %s, commit `%s`, host `%s`, load average %.1f at start, %.1f at end; %d s in all." % (
        "CI form (`--ci`)" if meta["ci"] else "Soak", meta["date"], meta["commit"], meta["machine"]["host"],
        meta["machine"]["loadavg_start"], meta["loadavg_end"], meta["seconds"]))
    L.append("")
    L.append("- Command: `%s`" % meta["command"])
    L.append("- Allocators: %s (Debian packages, default settings; rsbmalloc = librsbmalloc.so, "
             "all under LD_PRELOAD)" % ", ".join("%s %s" % (a["name"], a["version"]) for a in meta["allocators"]))
    L.append("- Machine: %s, %s cores, %.1f GiB RAM, %s, shared with other work: tps and "
             "timings are noisy, memory figures much less so." % (
                 meta["machine"]["cpu"], meta["machine"]["cores"],
                 meta["machine"]["memory_bytes"] / 2**30, meta["machine"]["os"]))
    if "pg" in results:
        r = results["pg"]
        L.append("")
        L.append("#### PostgreSQL %s under pgbench" % meta.get("pg_version", "15"))
        L.append("")
        L.append("%d clients (`-j 2`), scale %d, connections open throughout: TPC-B %d s, idle %d s "
                 "(no query at all), select-only %d s. Server settings: defaults "
                 "(shared_buffers 128 MB) with fsync, synchronous_commit and full_page_writes off. "
                 "Memory: sum of PSS over the postmaster and all its children, sampled every "
                 "second; the phase-end value is the last sample before the phase ends; *heap* "
                 "is the anonymous part (Pss_Anon: the allocators' memory, without shared "
                 "buffers and files)." % (
                     pgp["clients"], pgp["scale"], pgp["tpcb"], pgp["idle"], pgp["ro"]))
        L.append("")
        if charts_rel.get("pg"):
            L.append("![PostgreSQL: PSS of the whole server over time](%s)" % charts_rel["pg"])
            L.append("")
        L.append("| allocator | TPC-B tps | select-only tps | PSS end of TPC-B | end of idle | end of select-only | peak | heap end of TPC-B | end of idle | end of select-only | checks |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n in names:
            if n not in r:
                continue
            x = r[n]
            pe = x["phase_end"]
            cells = [mib(pe[k]["pss"]) if pe.get(k) else "—" for k in ("TPC-B", "idle", "select-only")]
            heap = [mib(pe[k]["pss_anon"]) if pe.get(k) else "—" for k in ("TPC-B", "idle", "select-only")]
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, fmt_tps(x["tps"]["tpcb"]), fmt_tps(x["tps"]["ro"]), *cells, mib(peak(x, "pss")), *heap,
                checks_cell(x)))
        L.append("")
        L.append("MiB. Checks: the preload took effect (the library is mapped in the postmaster); "
                 "pgbench exited 0 (no client aborted); sum(abalance) = sum(tbalance) = "
                 "sum(bbalance) = sum(delta) of pgbench_history, and its row count equals the "
                 "commits pgbench's clients counted; every client reached the idle phase; no "
                 "ERROR/FATAL/PANIC line in the server log.")
        led = ["%s %d (sum(delta) %d)" % (n, r[n]["ledger"]["commits_counted"], r[n]["ledger"]["sum_delta"])
               for n in names if n in r and r[n].get("ledger")]
        if led:
            L.append("TPC-B commits: " + ", ".join(led) + ".")
        tl, _ = targets("pg", r, names, "pss")
        if tl:
            L.append("")
            L.append("Targets (PSS of the whole server; reported, not enforced):")
            L.extend(tl)
    if "server" in results:
        r = results["server"]
        L.append("")
        L.append("#### Synthetic server (`bench/soak/server.c`)")
        L.append("")
        L.append("%d threads; %d cycles of grow (to %g MiB live, then %g s of load in which every "
                 "free is of another thread's block), shrink (free all but 10 %% at random, then "
                 "%g s of load at that level) and idle (%g s without a single allocator call). "
                 "Blocks of 16 B–64 KiB, half of them ≤ 256 B; every block is written in full and "
                 "checked before it is freed. RSS of the process; the phase-end values are read "
                 "by the server itself at the end of each phase." % (
                     sp["threads"], sp["cycles"], sp["live_mib"], sp["grow"], sp["shrink"], sp["idle"]))
        L.append("")
        if charts_rel.get("server"):
            L.append("![Synthetic server: RSS over time](%s)" % charts_rel["server"])
            L.append("")
        first = next((r[n] for n in names if n in r), None)
        keys = list(first["phase_end"].keys()) if first else []
        L.append("| allocator | " + " | ".join("end of %s" % k for k in keys) + " | peak | checks |")
        L.append("|---|" + "---:|" * (len(keys) + 1) + "---|")
        live = first["phase_end"] if first else {}
        L.append("| *live set* | " + " | ".join(mib(live[k]["live"] / 1024) for k in keys) + " | | |")
        for n in names:
            if n not in r:
                continue
            x = r[n]
            L.append("| %s | %s | %s | %s |" % (
                n, " | ".join(mib(x["phase_end"][k]["rss"]) if k in x["phase_end"] else "—" for k in keys),
                mib(peak(x, "rss")), checks_cell(x)))
        L.append("")
        L.append("MiB. Checks: the preload took effect, the server exited 0 after checking every "
                 "block it freed, every phase completed; every allocator did the same work "
                 "(%s)." % ("identical operation counts" if same_counts(r) else "**operation counts differ**"))
        over = ["%s %s" % (n, k) for n in names if n in r for k, v in r[n]["phase_end"].items()
                if v.get("overrun")]
        if over:
            L.append("Slices that overran their time (the load fell behind): " + ", ".join(over) + ".")
        tl, _ = targets("server", r, names, "rss")
        if tl:
            L.append("")
            L.append("Targets (RSS; reported, not enforced):")
            L.extend(tl)
    return "\n".join(L) + "\n"


def checks_cell(x):
    bad = [k for k, v in x["checks"].items() if not v]
    return "ok" if not bad else "**FAILED: %s**" % ", ".join(bad)


def same_counts(r):
    counts = [json.dumps(x.get("counts", {}).get("allocs")) + json.dumps(x.get("counts", {}).get("bytes"))
              for x in r.values()]
    return len(set(counts)) <= 1


def charts(results, names, plan_, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("charts: matplotlib missing (python3-matplotlib); skipping the charts")
        return {}
    made = {}
    shade = {"TPC-B": "#fde7c8", "idle": "#e6e6e6", "select-only": "#d9e8f6",
             "grow": "#fde7c8", "shrink": "#d9e8f6"}
    if "pg" in results:
        r = results["pg"]
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.2]})
        first = next(r[n] for n in names if n in r)
        for name, a, b in first["phases"]:
            for axx in (ax, ax2):
                axx.axvspan(a, b, color=shade[name], alpha=0.8, lw=0)
            ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=9, color="#444444")
        for n in names:
            if n not in r:
                continue
            x = r[n]
            t = [s["t"] for s in x["samples"]]
            lw = 2.2 if n == "rsbmalloc" else 1.3
            ax.plot(t, [s["pss"] / MiB for s in x["samples"]], color=COLORS[n], lw=lw,
                    label="%s — TPC-B %s tps, select-only %s tps" % (
                        n, fmt_tps(x["tps"]["tpcb"]), fmt_tps(x["tps"]["ro"])))
            ts = [p for p in x["tps_series"] if 0 <= p[0] <= first["phases"][-1][2]]
            ax2.plot([p[0] for p in ts], [max(p[1], 0.5) for p in ts], color=COLORS[n], lw=0.9)
        ax.set_ylabel("PSS of the whole server (MiB)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("PostgreSQL 15 under pgbench, %d clients, scale %d: memory of the postmaster "
                     "and all backends" % (plan_["pg"]["clients"], plan_["pg"]["scale"]), fontsize=10,
                     pad=16)
        ax2.set_yscale("log")
        ax2.set_ylabel("transactions/s")
        ax2.set_xlabel("seconds since pgbench started")
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "pg.png", dpi=110)
        plt.close(fig)
        made["pg"] = "pg.png"
    if "server" in results:
        r = results["server"]
        fig, ax = plt.subplots(figsize=(10, 5))
        first = next(r[n] for n in names if n in r)
        for name, a, b, cyc in first["phases"]:
            ax.axvspan(a, b, color=shade[name], alpha=0.8, lw=0)
            if cyc == 1:
                ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center",
                        va="bottom", fontsize=9, color="#444444")
        # the live set (the same for everyone): a step at each phase end
        lt, lv = [0], [0]
        for name, a, b, cyc in first["phases"]:
            v = first["phase_end"]["%s %d" % (name, cyc)]["live"] / 2**20
            lt += [a, b]
            lv += [v, v]
        ax.plot(lt, lv, color="black", ls="--", lw=1, label="live bytes (requested)")
        for n in names:
            if n not in r:
                continue
            x = r[n]
            lw = 2.2 if n == "rsbmalloc" else 1.3
            samples = trim_server(x["samples"], x["phases"])
            ax.plot([s["t"] for s in samples], [s["rss"] / MiB for s in samples],
                    color=COLORS[n], lw=lw, label="%s (peak %.0f MiB)" % (n, peak(x, "rss") / MiB))
            ax.plot([v["t"] for v in x["phase_end"].values()],
                    [v["rss"] / MiB for v in x["phase_end"].values()], "o", color=COLORS[n], ms=3.5)
        ax.set_ylabel("RSS (MiB)")
        ax.set_xlabel("seconds since start (dots: the server's own reading at each phase end)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        sp = plan_["server"]
        ax.set_title("Synthetic server: %d threads, grow to %g MiB / shrink to 10 %% / idle, "
                     "%d cycles" % (sp["threads"], sp["live_mib"], sp["cycles"]), fontsize=10, pad=16)
        fig.tight_layout()
        fig.savefig(out / "server.png", dpi=110)
        plt.close(fig)
        made["server"] = "server.png"
    return made


def write_csv(results, out):
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["part", "allocator", "t_s", "phase", "rss_kib", "pss_kib", "pss_anon_kib",
                    "pss_shmem_kib", "pss_file_kib", "processes"])
        for part, r in results.items():
            for n, x in r.items():
                phases = [(p[0], p[1], p[2]) for p in x["phases"]]
                for s in x["samples"]:
                    ph = next((p[0] for p in phases if p[1] <= s["t"] < p[2]), "")
                    w.writerow([part, n, s["t"], ph, s["rss"], s["pss"], s["pss_anon"],
                                s["pss_shmem"], s["pss_file"], s["nproc"]])
    with open(out / "tps.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["allocator", "t_s", "transactions"])
        for n, x in results.get("pg", {}).items():
            for t, c in x["tps_series"]:
                w.writerow([n, t, c])


def update_readme(md, meta):
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = "<!-- soak-results:begin -->", "<!-- soak-results:end -->"
    if begin not in text or end not in text:
        log("readme: no %s ... %s markers in README.md; not updated" % (begin, end))
        return
    body = md.replace("](pg.png)", "](bench/results/soak/pg.png)").replace(
        "](server.png)", "](bench/results/soak/server.png)")
    # the README shows the PostgreSQL chart; the other stays linked
    body = body.replace("![Synthetic server: RSS over time](bench/results/soak/server.png)",
                        "Chart: [server.png](bench/results/soak/server.png)")
    new = "%s\n<!-- Generated by scripts/soak; do not edit by hand. -->\n\n%s%s" % (begin, body, end)
    a, b = text.index(begin), text.index(end) + len(end)
    readme.write_text(text[:a] + new + text[b:])
    log("readme: soak section rewritten")


# ---- main ------------------------------------------------------------------

args_global = None


def main():
    global args_global
    ap = argparse.ArgumentParser(
        prog="scripts/soak",
        description="Memory over time under PostgreSQL/pgbench and a synthetic 64-thread server, "
                    "for every allocator.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases with --minutes M: TPC-B 60*M s, idle max(6*M, 15) s, select-only "
               "max(12*M, 15) s; the synthetic server runs 3 cycles of grow max(4*M, 6) s, "
               "shrink max(4*M, 6) s, idle max(4*M, 12) s with 256 MiB live.  --ci: TPC-B 8 s, "
               "idle 5 s, select-only 4 s at scale 1; 2 server cycles of 1.5/1.5/2 s, 64 MiB.")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="length of the TPC-B phase in minutes; the rest scales with it (default 10)")
    ap.add_argument("--ci", action="store_true",
                    help="the short form (about 3 minutes): exit 1 if a check fails")
    ap.add_argument("--allocators", help="comma-separated subset of: " +
                    ",".join(a["name"] for a in ALLOCATORS))
    ap.add_argument("--only", choices=["pg", "server"], help="run one part only")
    ap.add_argument("--scale", type=int, help="pgbench scale factor (default 10; 1 with --ci)")
    ap.add_argument("--builddir", help="meson build directory (default: build, or build-bench "
                    "if build is not a release build)")
    ap.add_argument("--out", help="results directory (default: bench/results/soak; with --ci "
                    "<builddir>/soak-ci)")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite the soak section of README.md (between the soak-results markers)")
    ap.add_argument("--no-build", action="store_true", help="do not run ninja")
    ap.add_argument("--no-install", action="store_true", help="(handled by scripts/soak)")
    ap.add_argument("--keep", action="store_true", help="keep the server directories")
    ap.add_argument("--report", metavar="DIR",
                    help="run nothing: redraw the charts and rewrite the summary (and with "
                         "--readme the README block) from DIR/soak.json")
    args = ap.parse_args()
    args_global = args
    if args.report:
        return report_only(args)
    if args.minutes <= 0:
        die("--minutes must be positive")
    if args.ci and args.readme:
        die("--readme needs a full run, not --ci")

    found = build(args)
    wanted = [x.strip() for x in args.allocators.split(",")] if args.allocators else None
    allocs = resolve_allocators(wanted, found)
    names = [a["name"] for a in allocs]
    plan_ = plan(args)
    parts = [args.only] if args.only else ["pg", "server"]
    out = Path(args.out) if args.out else (Path(found["builddir"]) / "soak-ci" if args.ci
                                          else ROOT / "bench" / "results" / "soak")
    out.mkdir(parents=True, exist_ok=True)
    env, tuned = bench.clean_env()
    if tuned:
        log("environment: removed allocator tuning variables %s" % ", ".join(sorted(tuned)))

    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": bench.git("rev-parse", "--short", "HEAD") or "unknown",
            "describe": bench.git_describe(),
            "command": "scripts/soak " + " ".join(sys.argv[1:]),
            "ci": args.ci, "plan": plan_, "machine": bench.machine_info(),
            "allocators": [{k: a.get(k) for k in ("name", "version", "lib")} for a in allocs],
            "build_options": found["build_options"], "removed_env": sorted(tuned)}
    results = {}

    # A temporary directory the server's user can reach (/tmp is searchable).
    work = Path(tempfile.mkdtemp(prefix="rsbsoak."))
    os.chmod(work, 0o755)
    servers = []

    def cleanup(*_):
        for d in servers:
            if (d / "postmaster.pid").exists():
                subprocess.run([str(PG_SERVER), "stop", str(d)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def on_signal(sig, _frame):
        cleanup()
        sys.exit(128 + sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if "pg" in parts:
            p = plan_["pg"]
            for x in ("postgres", "pgbench", "psql", "initdb"):
                if not (PGBIN / x).exists():
                    die("%s missing (Debian: postgresql-15, postgresql-client-15)" % (PGBIN / x))
            m = re.search(r"\d+\.\d+", bench.output([str(PGBIN / "postgres"), "--version"]))
            meta["pg_version"] = m.group(0) if m else "15"
            servers.append(work / "template")
            template = pg_template(work, p, env)
            results["pg"] = {}
            for a in allocs:
                servers.append(work / ("pg-" + a["name"]))
                log("pg: %s: %d clients, TPC-B %d s, idle %d s, select-only %d s" % (
                    a["name"], p["clients"], p["tpcb"], p["idle"], p["ro"]))
                res = run_pg(a, p, work, template, env)
                results["pg"][a["name"]] = res
                pe = res["phase_end"]
                log("pg: %s: TPC-B %.0f tps, select-only %.0f tps; PSS at phase ends %s MiB; %s" % (
                    a["name"], res["tps"]["tpcb"], res["tps"]["ro"],
                    " / ".join(mib(pe[k]["pss"]) if pe.get(k) else "—" for k in pe),
                    checks_cell(res)))
                for e in res["errors"]:
                    log("pg: %s: %s" % (a["name"], e))
        if "server" in parts:
            s = plan_["server"]
            results["server"] = {}
            for a in allocs:
                log("server: %s: %d threads, %g MiB, %d cycles of %g/%g/%g s" % (
                    a["name"], s["threads"], s["live_mib"], s["cycles"], s["grow"], s["shrink"], s["idle"]))
                res = run_server(a, s, found, env)
                results["server"][a["name"]] = res
                log("server: %s: RSS at phase ends %s MiB; %s" % (
                    a["name"], " / ".join(mib(v["rss"]) for v in res["phase_end"].values()),
                    checks_cell(res)))
                for e in res["errors"]:
                    log("server: %s: %s" % (a["name"], e))
    finally:
        cleanup()

    meta["loadavg_end"] = os.getloadavg()[0]
    meta["seconds"] = round(time.monotonic() - T0)
    if "server" in results and not same_counts(results["server"]):
        log("server: the allocators did not do the same work (operation counts differ)")
    finish(meta, results, out, args.readme)


def finish(meta, results, out, readme):
    """Charts, summary, CSV and JSON; the README block; the exit status."""
    names = [a["name"] for a in meta["allocators"]]
    plan_ = meta["plan"]
    made = charts(results, names, plan_, out)
    md = summary_md(meta, results, names, plan_, made)
    (out / "summary.md").write_text(md)
    write_csv(results, out)
    with open(out / "soak.json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, separators=(",", ":"))
    log("results: %s/{summary.md,soak.json,samples.csv,tps.csv%s}" % (
        out, "".join("," + v for v in made.values())))
    if readme:
        update_readme(md, meta)

    failed = [(part, n, k) for part, r in results.items() for n, x in r.items()
              for k, v in x["checks"].items() if not v]
    if "server" in results and not same_counts(results["server"]):
        failed.append(("server", "*", "same_work"))
    for part, n, k in failed:
        log("check FAILED: %s %s %s" % (part, n, k))
    print(md)
    if failed:
        print("soak: %d check(s) failed" % len(failed), file=sys.stderr)
        sys.exit(1)
    print("soak: all checks passed (%s)" % ", ".join(results))


def report_only(args):
    """--report DIR: redraw the charts and rewrite the summary from DIR/soak.json."""
    d = Path(args.report)
    with open(d / "soak.json") as f:
        data = json.load(f)
    if args.readme and data["meta"].get("ci"):
        die("--readme needs a full run, not --ci")
    finish(data["meta"], data["results"], d, args.readme)


if __name__ == "__main__":
    main()
