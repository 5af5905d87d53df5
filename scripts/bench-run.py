#!/usr/bin/python3
"""Driver of scripts/bench: builds the suite, runs every allocator through every
workload, interleaved, and writes the results JSON, the markdown table and the
charts.  Run it through scripts/bench, which installs the packages first.
The method is in bench/README.md.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "bench" / "programs"

# The allocators, in table order.  glibc is the baseline every ratio is taken
# against.  "preload" allocators run the system-malloc binary under
# LD_PRELOAD; "rsb-api" runs the rsb_* prefixed API linked into the binary
# (micro-benchmarks and callgrind only: whole programs cannot use it).
ALLOCATORS = [
    {"name": "glibc", "kind": "system", "package": "libc6"},
    {"name": "jemalloc", "kind": "preload", "soname": "libjemalloc.so.2",
     "package": "libjemalloc2"},
    {"name": "mimalloc", "kind": "preload", "soname": "libmimalloc.so.2",
     "package": "libmimalloc2.0"},
    {"name": "tcmalloc", "kind": "preload", "soname": "libtcmalloc_minimal.so.4",
     "package": "libtcmalloc-minimal4"},
    {"name": "rsbmalloc", "kind": "preload", "soname": "librsbmalloc.so"},
    {"name": "rsb-api", "kind": "linked"},
]

# Workloads that --quick keeps (a regex on benchmark names).
QUICK_FILTER = (r"^(pair/(16B|256B|4KiB|1MiB)|batch/(fifo|random)/10000|realloc/(grow|append)"
                r"|threads/(1|2|64)$|prodcons/1x1|larson/8|churn/|live16/|fragmentation/)")

# The workload shapes (bench/shapes/, documented in bench/README.md):
# standalone programs on plain malloc/free/realloc, one process per run, timed
# with wait4.  (row name, program, arguments, group); the groups are the
# sections of the report (SHAPE_GROUPS in scripts/bench-report.py).
SHAPES = [
    ("larson-2", "larson", ["-t", "2"], "remote"),
    ("larson-8", "larson", ["-t", "8"], "remote"),
    ("xmalloc-test-2", "xmalloc-test", ["-t", "2"], "remote"),
    ("xmalloc-test-8", "xmalloc-test", ["-t", "8"], "remote"),
    ("mstress", "mstress", ["-t", "2"], "remote"),
    ("rptest", "rptest", ["-t", "2"], "remote"),
    ("cache-thrash-1", "cache-thrash", ["-t", "1"], "sharing"),
    ("cache-thrash-2", "cache-thrash", ["-t", "2"], "sharing"),
    ("cache-scratch-1", "cache-scratch", ["-t", "1"], "sharing"),
    ("cache-scratch-2", "cache-scratch", ["-t", "2"], "sharing"),
    ("glibc-simple", "glibc-simple", [], "glibc"),
    ("glibc-thread", "glibc-thread", ["-t", "2"], "glibc"),
    ("alloc-test-1", "alloc-test", ["-t", "1"], "live"),
    ("alloc-test-2", "alloc-test", ["-t", "2"], "live"),
    ("malloc-large", "malloc-large", [], "large"),
    ("mleak", "mleak", [], "leak"),
    ("cfrac", "cfrac", [], "symbolic"),
    ("espresso", "espresso", [], "symbolic"),
    ("realloc-curve", "realloc-curve", ["-m", "plain"], "realloc"),
    ("realloc-curve-interleaved", "realloc-curve", ["-m", "interleaved"], "realloc"),
    ("oversub-2", "oversub", ["-t", "2"], "oversub"),
    ("oversub-16", "oversub", ["-t", "16"], "oversub"),
    ("oversub-64", "oversub", ["-t", "64"], "oversub"),
    ("oversub-256", "oversub", ["-t", "256"], "oversub"),
    ("batch-10k-fifo", "batch", ["-m", "fifo"], "batch"),
    ("batch-10k-random", "batch", ["-m", "random"], "batch"),
]

# The shapes that --quick keeps (a regex on row names).
QUICK_SHAPES = (r"^(larson-2|xmalloc-test-2|cache-thrash-1|malloc-large|mleak|cfrac|espresso"
                r"|realloc-curve|oversub-(2|256)|batch-10k-random)$")

# Per mode: repetitions, Google Benchmark min time per workload, whole-program
# sizes, callgrind iterations, shape scale (-s; "smoke" = --smoke).
MODES = {
    "full": {"reps": 5, "min_time": 0.3, "filter": None, "prog_warmup": True,
             "callgrind_n": 200000, "callgrind_patterns": ("32", "mixed", "ring"),
             "allocators": None, "shape_scale": 1.0, "shape_filter": None,
             "scale": {"python3": 40000, "sqlite3": 150000, "gcc": 100, "lua": 120000},
             "pgbench": {"scale": 10, "seconds": 20, "reps": 3}},
    "quick": {"reps": 5, "min_time": 0.05, "filter": QUICK_FILTER, "prog_warmup": False,
              "callgrind_n": 50000, "callgrind_patterns": ("32", "ring"),
              # fragmentation sleeps 1 s per run: 3 repetitions keep --quick short
              "rep_limits": [(r"^fragmentation/", 3)],
              "shape_scale": 0.25, "shape_filter": QUICK_SHAPES, "shape_reps": 3,
              "allocators": ["glibc", "jemalloc", "mimalloc", "tcmalloc", "rsbmalloc"],
              "scale": {"python3": 8000, "sqlite3": 30000, "gcc": 16, "lua": 30000},
              "pgbench": {"scale": 4, "seconds": 5, "reps": 1}},
    "smoke": {"reps": 1, "min_time": 0.001, "filter": None, "prog_warmup": False,
              "callgrind_n": 1000, "callgrind_patterns": ("32", "ring"), "allocators": None,
              "shape_scale": "smoke", "shape_filter": None,
              "scale": {"python3": 200, "sqlite3": 200, "gcc": 2, "lua": 200},
              "pgbench": None},
}

# Environment variables that tune one of the allocators: stripped from the
# runs so every allocator runs with its defaults (listed in the results).
TUNING_ENV = re.compile(r"^(LD_PRELOAD|MALLOC_.*|GLIBC_TUNABLES|MIMALLOC_.*|JE_MALLOC_CONF"
                        r"|TCMALLOC_.*|RSB_.*|RSBMALLOC_.*|PYTHONMALLOC)$")

# Build options recorded with the results (they change what rsbmalloc is).
BUILD_KNOBS = ("buildtype", "optimization", "b_lto", "b_sanitize", "debug_level", "harden",
               "page_shift", "chunk_shift", "small_max_shift", "class_steps", "class_fine_steps")

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def die(msg):
    print("bench: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=False, text=True, **kw)


def output(cmd, default=""):
    try:
        r = subprocess.run(cmd, check=False, text=True, capture_output=True)
        return r.stdout.strip() if r.returncode == 0 else default
    except OSError:
        return default


# ---- build ---------------------------------------------------------------

def build_options(builddir):
    r = run(["meson", "introspect", "--buildoptions", str(builddir)], capture_output=True)
    if r.returncode != 0:
        return None
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def suitable(opts):
    """Why a configured build tree is wrong for benchmarking, or None."""
    if opts is None:
        return "cannot read its options"
    if opts.get("buildtype") not in ("release", "plain", "minsize"):
        return "buildtype is %s, not release" % opts.get("buildtype")
    if opts.get("b_sanitize", "none") != "none":
        return "built with -Db_sanitize=%s" % opts["b_sanitize"]
    for knob, good in (("debug_level", "0"), ("valgrind", False), ("fault_injection", False)):
        if knob in opts and opts[knob] != good:
            return "built with -D%s=%s" % (knob, opts[knob])
    if opts.get("bench") == "disabled":
        return "configured with -Dbench=disabled"
    return None


def build(args):
    builddir = Path(args.builddir)
    if not builddir.is_absolute():
        builddir = ROOT / builddir
    if (builddir / "build.ninja").exists():
        why = None if args.mode == "smoke" else suitable(build_options(builddir))
        if why and not args.builddir_given:
            log("build: %s is unsuitable for benchmarking (%s); using build-bench" %
                (builddir.name, why))
            builddir = ROOT / "build-bench"
        elif why:
            die("%s is unsuitable for benchmarking: %s" % (builddir, why))
    if not (builddir / "build.ninja").exists():
        log("build: meson setup %s (release, -Dbench=enabled)" % builddir)
        r = run(["meson", "setup", str(builddir), str(ROOT), "--buildtype=release",
                 "-Dbench=enabled"], capture_output=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
            die("meson setup failed")
    if not args.no_build:
        log("build: ninja -C %s" % builddir)
        r = run(["ninja", "-C", str(builddir)], capture_output=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-6000:] + r.stderr[-3000:])
            die("build failed")
    targets = json.loads(output(["meson", "introspect", "--targets", str(builddir)], "[]"))
    found = {}
    for t in targets:
        if t["name"] in ("rsbbench", "rsbbench-system", "rsbbench-fastpath"):
            found[t["name"]] = t["filename"][0]
        elif t["name"] == "rsbmalloc" and t["type"] == "shared library":
            found["librsbmalloc"] = t["filename"][0]
        elif t["name"].startswith("rsbshape-") and t["type"] == "executable":
            found.setdefault("shapes", {})[t["name"][len("rsbshape-"):]] = t["filename"][0]
    for need in ("rsbbench", "rsbbench-system", "rsbbench-fastpath"):
        if need not in found or not Path(found[need]).exists():
            die("%s was not built: is Google Benchmark installed (libbenchmark-dev) and "
                "the build configured with -Dbench=enabled?" % need)
    opts = build_options(builddir) or {}
    found["build_options"] = {k: opts[k] for k in BUILD_KNOBS if k in opts}
    return builddir, found


# ---- allocators and machine ----------------------------------------------

def ldconfig_path(soname):
    """Path of soname for this machine's word size, from the ld.so cache."""
    want = "x86-64" if platform.machine() == "x86_64" else None
    for line in output(["/sbin/ldconfig", "-p"]).splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m and m.group(1) == soname and (want is None or want in m.group(2)
                                           or platform.machine() != "x86_64"):
            return m.group(3)
    return None


def dpkg_path(package, soname):
    for line in output(["dpkg", "-L", package]).splitlines():
        if line.endswith("/" + soname):
            return line
    return None


def dpkg_version(package):
    return output(["dpkg-query", "-W", "-f=${Version}", package]) or None


def resolve_allocators(wanted, found):
    allocs = []
    for a in ALLOCATORS:
        if wanted and a["name"] not in wanted:
            continue
        a = dict(a)
        if a["name"] == "glibc":
            a["lib"] = None
            a["version"] = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
        elif a["name"] == "rsbmalloc":
            a["lib"] = found.get("librsbmalloc")
            a["version"] = git_describe()
        elif a["name"] == "rsb-api":
            a["lib"] = None
            a["version"] = git_describe()
        else:
            a["lib"] = ldconfig_path(a["soname"]) or dpkg_path(a["package"], a["soname"])
            a["version"] = dpkg_version(a["package"])
        if a["kind"] == "preload" and not (a["lib"] and Path(a["lib"]).exists()):
            log("allocators: %s not found (%s); skipping it" %
                (a["name"], a.get("soname")))
            continue
        allocs.append(a)
    if not allocs or allocs[0]["name"] != "glibc":
        die("glibc must be among the allocators: it is the baseline")
    return allocs


def git(*args):
    return output(["git", "-C", str(ROOT)] + list(args))


def git_describe():
    return git("describe", "--always", "--dirty", "--tags") or "uncommitted"


def machine_info():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    osname = platform.system()
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "kernel": platform.release(),
        "os": osname,
        "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
        "compiler": output(["cc", "--version"]).splitlines()[0] if output(["cc", "--version"]) else "",
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg()[0],
    }


def clean_env():
    env = {k: v for k, v in os.environ.items() if not TUNING_ENV.match(k)}
    tuned = {k: v for k, v in os.environ.items() if TUNING_ENV.match(k)}
    return env, tuned


# ---- micro-benchmarks ------------------------------------------------------

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
SUFFIX = re.compile(r"/(iterations:\d+|real_time|manual_time|min_time:[\d.]+)")


def display_name(name):
    return SUFFIX.sub("", name)


def micro_cmd(a, found, smoke):
    if a["kind"] == "linked":
        cmd = [found["rsbbench"], "--allocator=rsb"]
    else:
        cmd = [found["rsbbench-system"], "--allocator=system"]
    return cmd + (["--smoke"] if smoke else [])


def alloc_env(base, a):
    env = dict(base)
    if a["kind"] == "preload":
        env["LD_PRELOAD"] = a["lib"]
    return env


def check_provider(a, context):
    """The binary reports which object provides malloc: make sure the
    preload took effect (a failed LD_PRELOAD only prints a warning)."""
    prov = context.get("malloc_provider", "")
    if a["kind"] == "preload":
        ok = Path(prov).name.split(".so")[0] == Path(a["lib"]).name.split(".so")[0]
    elif a["kind"] == "system":
        ok = "libc.so" in prov
    else:
        ok = context.get("allocator") == "rsb"
    if not ok:
        die("%s: malloc comes from %s, not the allocator under test" % (a["name"], prov))


SKIP_KEYS = {"real_time", "cpu_time", "iterations", "repetitions", "repetition_index",
             "threads", "family_index", "per_family_instance_index", "peak_rss"}


def run_bench_process(args, mode, a, found, env, names):
    """Run the listed workloads in one rsbbench process under allocator a.
    Returns ({name: benchmark record}, context, error message or None)."""
    smoke = args.mode == "smoke"
    regex = "^(%s)$" % "|".join(names)
    cmd = micro_cmd(a, found, smoke) + ["--benchmark_filter=%s" % regex,
                                        "--benchmark_min_time=%g" % mode["min_time"],
                                        "--benchmark_format=json"]
    try:
        r = run(cmd, capture_output=True, env=alloc_env(env, a), timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {}, {}, "timeout after %ds" % args.timeout
    data = {}
    try:
        data = json.loads(r.stdout) if r.stdout.strip() else {}
    except ValueError:
        pass
    got = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred"):
            got[b["name"]] = b
    err = None
    if r.returncode != 0 or len(got) < len(names):
        err = (r.stderr.strip().splitlines() or ["exit code %d" % r.returncode])[-1]
        if r.returncode < 0:
            err = "killed by signal %d: %s" % (-r.returncode, err)
        err = err[:300]
    return got, data.get("context", {}), err


def run_micro(args, mode, allocs, found, env, results):
    smoke = args.mode == "smoke"
    listing = run(micro_cmd(allocs[0], found, smoke) + ["--benchmark_list_tests"],
                  capture_output=True, env=env)
    if listing.returncode != 0:
        die("rsbbench --benchmark_list_tests failed: " + listing.stderr)
    names = [n for n in listing.stdout.split() if n]
    flt = args.filter or mode["filter"]
    if flt:
        names = [n for n in names if re.search(flt, display_name(n))]
    if not names:
        if args.filter:  # it may select shapes only
            log("micro: no micro-benchmark matches the filter")
            return
        die("no workload matches the filter")
    # Each workload runs in a process of its own, so its peak RSS is its own
    # and no workload inherits another's heap.  The smoke mode runs them all
    # in one process per allocator: it only checks that they run.
    groups = [names] if smoke else [[n] for n in names]
    reps = mode["reps"]
    micro = results["micro"]
    checked = set()
    def reps_of(group):
        for pattern, limit in mode.get("rep_limits", []):
            if re.search(pattern, display_name(group[0])):
                return min(reps, limit)
        return reps
    total = sum(reps_of(g) for g in groups)
    done = 0
    t_start = time.monotonic()
    log("micro: %d workloads x %d allocators x %d repetitions" % (len(names), len(allocs), reps))
    for rep in range(reps):
        order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
        for group in groups:
            if rep >= reps_of(group):
                continue
            line = []
            for a in order:
                got, context, err = run_bench_process(args, mode, a, found, env, group)
                if got and a["name"] not in checked:
                    check_provider(a, context)
                    checked.add(a["name"])
                for name in group:
                    rec = micro.setdefault(display_name(name), {}).setdefault(
                        a["name"], {"time_ns": [], "peak_rss": [], "counters": {},
                                    "errors": []})
                    b = got.get(name)
                    if b is None:
                        rec["errors"].append(err or "no result")
                        rec["time_ns"].append(None)
                        rec["peak_rss"].append(None)
                        continue
                    t = b["real_time"] * UNIT_NS[b.get("time_unit", "ns")]
                    rec["time_ns"].append(t)
                    rec["peak_rss"].append(b.get("peak_rss"))
                    for k, v in b.items():
                        if k not in SKIP_KEYS and isinstance(v, (int, float)) \
                                and not isinstance(v, bool):
                            rec["counters"].setdefault(k, []).append(v)
                if len(group) == 1:
                    b = got.get(group[0])
                    line.append("%s=%s" % (a["name"], fmt_ns(
                        b["real_time"] * UNIT_NS[b.get("time_unit", "ns")]) if b else "FAIL"))
                else:
                    line.append("%s=%d/%d%s" % (a["name"], len(got), len(group),
                                                "" if not err else " (%s)" % err))
            done += 1
            el = time.monotonic() - t_start
            eta = el / done * (total - done)
            shown = display_name(group[0]) if len(group) == 1 else "all workloads"
            log("micro %3d/%d rep %d/%d %-22s %s  (eta %ds)" %
                (done, total, rep + 1, reps_of(group), shown, " ".join(line), eta))


def fmt_ns(t):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if t >= div:
            return "%.3g%s" % (t / div, unit)
    return "%.3gns" % t


def fmt_s(t):
    return "FAIL" if t is None else "%.2fs" % t


# ---- workload shapes ---------------------------------------------------------

OK_LINE = re.compile(r"^(\S+): ok (.*)$", re.M)


def run_measured(cmd, env, timeout):
    """Run cmd to completion; returns (wall seconds, rusage, exit code as
    from subprocess, stdout, stderr).  rusage comes from wait4: the CPU times
    and page faults are this process's own (its ru_maxrss is not: see
    run_shapes)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        killer = threading.Timer(timeout, p.kill)
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, ru, p.returncode, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))


def shape_specs(args, mode, found):
    flt = mode.get("shape_filter")
    specs = []
    for name, prog, argv, group in SHAPES:
        if flt and not re.search(flt, name):
            continue
        if args.filter and not re.search(args.filter, name):
            continue
        exe = found.get("shapes", {}).get(prog)
        if not exe or not Path(exe).exists():
            log("shapes: %s not built (rsbshape-%s); skipping it" % (name, prog))
            continue
        scale = mode["shape_scale"]
        extra = ["--smoke"] if scale == "smoke" else ([] if scale == 1.0 else
                                                      ["-s", "%g" % scale])
        specs.append({"name": name, "group": group, "argv": [exe] + argv + extra,
                      "command": " ".join(["rsbshape-" + prog] + argv + extra)})
    return specs


def run_shapes(args, mode, allocs, found, env, results):
    allocs = [a for a in allocs if a["kind"] != "linked"]
    specs = shape_specs(args, mode, found)
    if not specs:
        log("shapes: nothing to run")
        return
    results["shapes_spec"] = {s["name"]: {"command": s["command"], "group": s["group"]}
                              for s in specs}
    shapes = results["shapes"]
    reps = mode.get("shape_reps", mode["reps"])
    if args.reps:
        reps = args.reps
    results["config"]["shape_reps"] = reps
    checked = set()
    total = reps * len(specs)
    done = 0
    t_start = time.monotonic()
    log("shapes: %d workloads x %d allocators x %d repetitions (one process each, "
        "wait4)" % (len(specs), len(allocs), reps))
    for rep in range(reps):
        order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
        for s in specs:
            line = []
            for a in order:
                rec = shapes.setdefault(s["name"], {}).setdefault(
                    a["name"], {"time_s": [], "max_rss": [], "user_s": [], "sys_s": [],
                                "minflt": [], "counters": {}, "errors": []})
                try:
                    wall, ru, code, out, err = run_measured(s["argv"], alloc_env(env, a),
                                                            args.timeout)
                except OSError as e:
                    wall, ru, code, out, err = None, None, -1, "", str(e)
                m = OK_LINE.search(out)
                if code != 0 or not m:
                    why = (err.strip().splitlines() or ["exit code %s" % code])[-1][:300]
                    if code is not None and code < 0:
                        why = "killed by signal %d: %s" % (-code, why)
                    rec["errors"].append(why)
                    for k in ("time_s", "max_rss", "user_s", "sys_s", "minflt"):
                        rec[k].append(None)
                    line.append("%s=FAIL" % a["name"])
                    continue
                fields = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
                if a["name"] not in checked:
                    check_provider(a, {"malloc_provider": fields.get("malloc", "")})
                    checked.add(a["name"])
                rec["time_s"].append(wall)
                # The shape's own VmHWM: wait4's ru_maxrss would include the
                # driver's RSS, which the kernel carries over at exec.
                rss = int(fields.get("peak_rss_kib", "-1"))
                rec["max_rss"].append(rss * 1024 if rss > 0 else None)
                rec["user_s"].append(ru.ru_utime)
                rec["sys_s"].append(ru.ru_stime)
                rec["minflt"].append(ru.ru_minflt)
                for k, v in fields.items():
                    if re.fullmatch(r"\d+", v):
                        rec["counters"].setdefault(k, []).append(int(v))
                line.append("%s=%s" % (a["name"], fmt_s(wall)))
            done += 1
            eta = (time.monotonic() - t_start) / done * (total - done)
            log("shapes %3d/%d rep %d/%d %-26s %s  (eta %ds)" %
                (done, total, rep + 1, reps, s["name"], " ".join(line), eta))


# ---- whole programs --------------------------------------------------------

def program_specs(mode, workdir):
    s = mode["scale"]
    specs = []
    py = "/usr/bin/python3"
    if Path(py).exists():
        specs.append({"name": "python3", "env": {"PYTHONMALLOC": "malloc"},
                      "argv": [py, str(PROGRAMS_DIR / "py_alloc.py"), str(s["python3"])],
                      "what": "py_alloc.py %d records, PYTHONMALLOC=malloc" % s["python3"]})
    if shutil.which("sqlite3"):
        sql = workdir / ("sqlite-%d.sql" % s["sqlite3"])
        if not sql.exists():
            run([sys.executable, str(PROGRAMS_DIR / "generate.py"), "sql", str(s["sqlite3"]),
                 str(sql)])
        specs.append({"name": "sqlite3", "env": {},
                      "argv": [shutil.which("sqlite3"), ":memory:", ".read %s" % sql],
                      "what": "%d-row bulk insert, 3 indexes, queries, :memory:" % s["sqlite3"]})
    if shutil.which("gcc"):
        src = workdir / ("gcc-%d.c" % s["gcc"])
        if not src.exists():
            run([sys.executable, str(PROGRAMS_DIR / "generate.py"), "c", str(s["gcc"]),
                 str(src)])
        specs.append({"name": "gcc", "env": {},
                      "argv": [shutil.which("gcc"), "-O2", "-c", str(src), "-o", "/dev/null"],
                      "what": "gcc -O2 -c of a generated %d KiB C file" %
                              (src.stat().st_size // 1024)})
    lua = shutil.which("lua5.4") or shutil.which("lua")
    if lua:
        specs.append({"name": "lua", "env": {},
                      "argv": [lua, str(PROGRAMS_DIR / "tables.lua"), str(s["lua"])],
                      "what": "tables.lua %d records (tables, strings, realloc)" % s["lua"]})
    return specs


def run_programs(args, mode, allocs, env, results, workdir):
    if not shutil.which("hyperfine"):
        log("programs: hyperfine not installed; skipping whole-program timings")
        return
    gnu_time = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
    if not gnu_time:
        log("programs: /usr/bin/time missing (package 'time'); max RSS not measured")
    allocs = [a for a in allocs if a["kind"] != "linked"]
    specs = program_specs(mode, workdir)
    results["programs_spec"] = {p["name"]: {"command": " ".join(shlex.quote(x) for x in p["argv"]),
                                            "what": p["what"], "env": p["env"]} for p in specs}
    progs = results["programs"]
    reps = mode["reps"]
    rounds = ([-1] if mode["prog_warmup"] else []) + list(range(reps))
    log("programs: %s x %d allocators x %d repetitions (hyperfine, one run per command "
        "per round)" % (", ".join(p["name"] for p in specs), len(allocs), reps))
    for rnd in rounds:
        order = allocs[max(rnd, 0) % len(allocs):] + allocs[:max(rnd, 0) % len(allocs)]
        cmds = []
        for p in specs:
            for a in order:
                rss_file = workdir / ("rss-%s-%s.txt" % (p["name"], a["name"]))
                if rss_file.exists():
                    rss_file.unlink()
                inner = ["env", "LD_PRELOAD=%s" % (a["lib"] or "")]
                inner += ["%s=%s" % kv for kv in p["env"].items()] + p["argv"]
                if gnu_time:
                    inner = [gnu_time, "-f", "%M", "-o", str(rss_file)] + inner
                cmds.append((p, a, rss_file, " ".join(shlex.quote(x) for x in inner)))
        out_json = workdir / "hyperfine-round.json"
        hf = ["hyperfine", "-N", "--runs", "1", "--style", "basic", "--ignore-failure",
              "--export-json", str(out_json)]
        for p, a, _, c in cmds:
            hf += ["-n", "%s@%s" % (p["name"], a["name"]), c]
        r = run(hf, capture_output=True, env=env, timeout=args.timeout * len(cmds))
        if r.returncode != 0 or not out_json.exists():
            sys.stderr.write(r.stderr[-2000:])
            die("programs: hyperfine failed; see above")
        data = json.loads(out_json.read_text())
        out_json.unlink()
        label = "warm-up" if rnd < 0 else "rep %d/%d" % (rnd + 1, reps)
        summary = []
        for (p, a, rss_file, _), res in zip(cmds, data["results"]):
            if rnd < 0:
                continue
            rec = progs.setdefault(p["name"], {}).setdefault(
                a["name"], {"time_s": [], "max_rss": [], "user_s": [], "sys_s": [],
                            "errors": []})
            code = (res.get("exit_codes") or [0])[0]
            if code != 0:
                rec["errors"].append("exit code %s" % code)
                for k in ("time_s", "max_rss", "user_s", "sys_s"):
                    rec[k].append(None)
                continue
            rec["time_s"].append(res["times"][0])
            rec["user_s"].append(res["user"])
            rec["sys_s"].append(res["system"])
            rss = None
            if rss_file.exists():
                txt = rss_file.read_text().strip().splitlines()
                if txt and txt[-1].isdigit():
                    rss = int(txt[-1]) * 1024
            rec["max_rss"].append(rss)
        for p in specs:
            if rnd >= 0:
                summary.append("%s[%s]" % (p["name"], " ".join(
                    "%s=%s" % (a["name"], fmt_s(progs[p["name"]][a["name"]]["time_s"][-1]))
                    for a in allocs)))
        log("programs %s %s" % (label, "; ".join(summary) if summary else "done (not counted)"))


# ---- PostgreSQL under pgbench -------------------------------------------------

def server_rss(pid):
    """Sum of the RSS of a process and its descendants (bytes), from /proc."""
    kids = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(d.name))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            for line in Path("/proc/%d/status" % p).read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_pgbench(args, mode, allocs, env, results, workdir):
    """A PostgreSQL server (scripts/pg-server, LD_PRELOAD on the postmaster)
    under pgbench, read-only (-S) and TPC-B, 8 clients; one fresh server per
    allocator and repetition, allocators rotated.  Recorded as whole-program
    rows: time = seconds per 10,000 transactions, max RSS = the server's RSS
    (postmaster and backends, summed) at the end of the TPC-B run."""
    cfg = mode.get("pgbench")
    pg_server = ROOT / "scripts" / "pg-server"
    pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not cfg or not Path(pgbench).exists():
        log("pgbench: not in this mode, or PostgreSQL not installed; skipping")
        return
    allocs = [a for a in allocs if a["kind"] != "linked"]
    progs = results["programs"]
    spec = results.setdefault("programs_spec", {})
    for name, flag in (("pgbench-select", ["-S"]), ("pgbench-tpcb", [])):
        spec[name] = {"command": "pgbench %s -c 8 -j 2 -T %d (scale %d)" % (" ".join(flag), cfg["seconds"], cfg["scale"]),
                      "what": "PostgreSQL 15, %s, 8 clients, %d s, scale %d; time per 10,000 transactions" %
                              ("select-only" if flag else "TPC-B", cfg["seconds"], cfg["scale"]),
                      "env": {}}
    log("pgbench: %d allocators x %d repetitions, %d s per run" % (len(allocs), cfg["reps"], cfg["seconds"]))
    for rnd in range(cfg["reps"]):
        order = allocs[rnd % len(allocs):] + allocs[:rnd % len(allocs)]
        line = []
        for a in order:
            d = Path(tempfile.mkdtemp(prefix="rsbpg-", dir="/tmp"))
            os.chmod(d, 0o755)
            r = run(["bash", str(pg_server), "start", str(d), a["lib"] or ""], capture_output=True, env=env)
            if r.returncode != 0:
                die("pgbench: the server did not start under %s: %s" % (a["name"], r.stderr[-500:]))
            pgenv = dict(env)
            for l in r.stdout.splitlines():
                m = re.match(r"^(?:export )?(PG\w+)=(.*)$", l.strip())
                if m:
                    pgenv[m.group(1)] = m.group(2).strip("'\"")
            try:
                ri = run([pgbench, "-i", "-q", "-s", str(cfg["scale"])], capture_output=True, env=pgenv)
                if ri.returncode != 0:
                    die("pgbench -i failed under %s: %s" % (a["name"], ri.stderr[-500:]))
                for name, flag in (("pgbench-select", ["-S"]), ("pgbench-tpcb", [])):
                    rr = run([pgbench] + flag + ["-c", "8", "-j", "2", "-T", str(cfg["seconds"]), "-n"],
                             capture_output=True, env=pgenv)
                    m = re.search(r"number of transactions actually processed: (\d+)", rr.stdout)
                    rec = progs.setdefault(name, {}).setdefault(
                        a["name"], {"time_s": [], "max_rss": [], "user_s": [], "sys_s": [], "errors": []})
                    if rr.returncode != 0 or not m or int(m.group(1)) == 0:
                        rec["errors"].append("pgbench failed: %s" % rr.stderr[-200:])
                        for k in ("time_s", "max_rss", "user_s", "sys_s"):
                            rec[k].append(None)
                        continue
                    n = int(m.group(1))
                    rec["time_s"].append(cfg["seconds"] * 10000.0 / n)
                    rec["max_rss"].append(server_rss(int(pgenv.get("PG_SERVER_PID", "0"))))
                    rec["user_s"].append(None)
                    rec["sys_s"].append(None)
                    line.append("%s %s=%d tps" % (name, a["name"], n // cfg["seconds"]))
            finally:
                st = run(["bash", str(pg_server), "stop", str(d)], capture_output=True, env=env)
                shutil.rmtree(d, ignore_errors=True)
                if st.returncode != 0:
                    die("pgbench: the server under %s logged errors: %s" % (a["name"], st.stdout[-500:]))
        log("pgbench rep %d/%d: %s" % (rnd + 1, cfg["reps"], "; ".join(line)))


# ---- callgrind ---------------------------------------------------------------

def callgrind_one(cmd, env, outfile):
    r = run(["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % outfile] + cmd,
            capture_output=True, env=env)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1:] if r.stderr else ["failed"]
    for line in Path(outfile).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1]), None
    return None, ["no totals in callgrind output"]


def run_callgrind(args, mode, allocs, found, env, results, workdir):
    if not shutil.which("valgrind"):
        log("callgrind: valgrind not installed; skipping instruction counts")
        return
    n = mode["callgrind_n"]
    fp = found["rsbbench-fastpath"]
    runs = []  # (alloc name, pattern, iterations, cmd, env)
    subjects = [{"name": "loop", "kind": "none", "lib": None}] + allocs
    patterns = mode.get("callgrind_patterns", ("32", "mixed"))
    for a in subjects:
        sel = {"none": "none", "linked": "rsb"}.get(a["kind"], "system")
        for pattern in patterns:
            for iters in (n, 2 * n):
                e = alloc_env(env, a) if a["kind"] == "preload" else dict(env)
                runs.append((a["name"], pattern, iters, [fp, sel, pattern, str(iters)], e))
    log("callgrind: %d runs (%s; N=%d and 2N), 2 at a time" %
        (len(runs), ", ".join(a["name"] for a in subjects), n))
    totals = {}
    errors = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futs = {}
        for i, (name, pattern, iters, cmd, e) in enumerate(runs):
            out = workdir / ("callgrind-%d.out" % i)
            futs[pool.submit(callgrind_one, cmd, e, out)] = (name, pattern, iters)
        for f in concurrent.futures.as_completed(futs):
            name, pattern, iters = futs[f]
            ir, err = f.result()
            if ir is None:
                errors[(name, pattern)] = err
            else:
                totals[(name, pattern, iters)] = ir
    cg = results["callgrind"]
    cg["iterations"] = n
    for pattern in patterns:
        base = None
        if ("loop", pattern, n) in totals and ("loop", pattern, 2 * n) in totals:
            base = (totals[("loop", pattern, 2 * n)] - totals[("loop", pattern, n)]) / n
        row = {}
        for a in subjects:
            k1, k2 = (a["name"], pattern, n), (a["name"], pattern, 2 * n)
            if k1 in totals and k2 in totals:
                per_pair = (totals[k2] - totals[k1]) / n
                row[a["name"]] = {"per_pair": round(per_pair, 2),
                                  "allocator": round(per_pair - base, 2) if base else None}
            else:
                row[a["name"]] = {"error": " ".join(errors.get((a["name"], pattern), ["?"]))}
        cg[pattern] = row
        log("callgrind malloc(%s)+free, instructions in the allocator per pair: %s" % (
            pattern, " ".join("%s=%s" % (k, v.get("allocator", "ERR"))
                              for k, v in row.items() if k != "loop")))


# ---- main ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark rsbmalloc against glibc, jemalloc, mimalloc and tcmalloc. "
                    "See bench/README.md.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="a subset with short runs (under 3 minutes)")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                   help="everything once on tiny inputs (seconds; checks the pipeline)")
    ap.set_defaults(mode="full")
    ap.add_argument("--reps", type=int, help="repetitions (default 5)")
    ap.add_argument("--allocators", help="comma-separated subset of: " +
                    ",".join(a["name"] for a in ALLOCATORS) + " (glibc is always included)")
    ap.add_argument("--only", default="micro,shapes,programs,callgrind",
                    help="comma-separated parts to run: micro, shapes, programs, callgrind")
    ap.add_argument("--filter", help="regex on micro-benchmark and shape names")
    ap.add_argument("--builddir", help="meson build directory (default: build)")
    ap.add_argument("--out", help="results directory (default: bench/results, "
                                  "bench/results/quick for --quick)")
    ap.add_argument("--no-build", action="store_true", help="do not run ninja")
    ap.add_argument("--no-install", action="store_true",
                    help="do not install missing packages (handled by scripts/bench)")
    ap.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per process")
    args = ap.parse_args()
    args.builddir_given = args.builddir is not None
    args.builddir = args.builddir or "build"
    mode = dict(MODES[args.mode])
    if args.reps:
        mode["reps"] = args.reps
    parts = set(args.only.split(","))

    builddir, found = build(args)
    wanted = None
    if args.allocators:
        wanted = set(args.allocators.split(",")) | {"glibc"}
    elif mode["allocators"]:
        wanted = set(mode["allocators"])
    allocs = resolve_allocators(wanted, found)
    env, tuned = clean_env()
    if tuned:
        log("environment: ignoring allocator tuning variables %s" % ", ".join(sorted(tuned)))

    out = Path(args.out) if args.out else (
        ROOT / "bench" / "results" / ("quick" if args.mode == "quick" else "")
        if args.mode != "smoke" else builddir / "bench-smoke")
    out.mkdir(parents=True, exist_ok=True)
    workdir = builddir / "bench-work"
    workdir.mkdir(exist_ok=True)

    now = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info()
    command = "scripts/bench" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    results = {
        "schema": 1,
        "mode": args.mode,
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD") or "uncommitted",
        "describe": git_describe(),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": command,
        "machine": machine,
        "config": {"reps": mode["reps"], "min_time_s": mode["min_time"],
                   "rep_limits": mode.get("rep_limits", []),
                   "filter": args.filter or mode["filter"], "builddir": str(builddir),
                   "shape_scale": mode["shape_scale"], "shape_filter": mode.get("shape_filter"),
                   "build_options": found.get("build_options", {}),
                   "ignored_env": sorted(tuned)},
        "allocators": [{k: a.get(k) for k in ("name", "kind", "lib", "version", "package")}
                       for a in allocs],
        "micro": {}, "shapes": {}, "programs": {}, "callgrind": {},
    }
    log("bench %s: %s on %s (%s, %d cores); allocators: %s" % (
        args.mode, results["describe"], machine["host"], machine["cpu"], machine["cores"],
        ", ".join("%s %s" % (a["name"], a["version"]) for a in allocs)))

    if "micro" in parts:
        run_micro(args, mode, allocs, found, env, results)
    if "shapes" in parts:
        run_shapes(args, mode, allocs, found, env, results)
    if "programs" in parts:
        run_programs(args, mode, allocs, env, results, workdir)
        run_pgbench(args, mode, allocs, env, results, workdir)
    if "callgrind" in parts:
        run_callgrind(args, mode, allocs, found, env, results, workdir)
    machine["loadavg_end"] = os.getloadavg()[0]
    results["elapsed_s"] = round(time.monotonic() - T0, 1)

    stamp = now.strftime("%Y-%m-%d")
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", machine["host"])
    json_path = out / ("%s-%s.json" % (stamp, host))
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    log("wrote %s" % (json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT)
                      else json_path))
    report = [sys.executable, str(ROOT / "scripts" / "bench-report.py"), str(json_path),
              "--out", str(out)]
    if args.no_charts:
        report.append("--no-charts")
    if args.mode == "full" and not args.out and not args.filter and not args.allocators \
            and (args.reps or 5) >= 5 and parts == {"micro", "shapes", "programs", "callgrind"}:
        # Only a complete default run may replace the README's table.
        report += ["--readme", str(ROOT / "README.md")]
    r = run(report)
    if r.returncode != 0:
        die("report generation failed")
    log("done in %.0fs" % (time.monotonic() - T0))


if __name__ == "__main__":
    main()
