#!/usr/bin/env bash
# tests/packages/packages.sh SRC WORK: the Debian packages, end to end
# (scripts/test-robust --only packages).
#
#  1. copy the source tree SRC to WORK/src (dpkg-buildpackage writes into the
#     parent directory) and run `dpkg-buildpackage -us -uc -b` there, which
#     runs the short test subset of debian/rules;
#  2. the file list of every package against the expected one (dpkg-deb -c);
#  3. lintian: fails on any error, prints every tag;
#  4. `apt-get install ./*.deb` on this machine (root or sudo), then, on the
#     installed files only:
#       - rsbmalloc-run from PATH runs python3; the process maps exactly the
#         installed librsbmalloc.so.0 and its malloc is rsbmalloc's
#         (malloc_usable_size(malloc(17)) is 32, glibc says 24); the same
#         program without the wrapper is the negative control;
#       - RSBMALLOC_VERBOSE / RSBMALLOC_STATS through the wrapper;
#       - programs built with pkg-config (shared, static, region heap) and
#         with librsbmalloc-prefixed.a;
#       - man finds rsbmalloc(3) and rsbmalloc-run(1), rendered without warnings;
#     and removes the packages again (purge) unless they were installed
#     before.  RSBT_KEEP_PACKAGES=1 keeps them.
#
# The build dependencies must be installed (scripts/test-robust does it).
set -uo pipefail
src=$(cd "$1" && pwd)
work=$2
pkgs=(librsbmalloc0 librsbmalloc-dev rsbmalloc-tools)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok   $*"; }

rm -rf "$work"
mkdir -p "$work/src" || exit 1
work=$(cd "$work" && pwd)
exec > >(tee "$work/packages.log") 2>&1

# --- 1. build ----------------------------------------------------------------
# The tracked and untracked (not ignored) files: what is being tested, without
# build directories.  Outside git (an unpacked meson dist tarball): all of it
# except build trees.
if git -C "$src" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    (cd "$src" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -x -C "$work/src"
else
    (cd "$src" && tar --exclude='./build*' --exclude='./obj-*' --exclude='./debian/tmp' -cf - .) | tar -x -C "$work/src"
fi
[ -f "$work/src/debian/control" ] || fail "no debian/control in the copy of $src"
version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$triplet
t0=$SECONDS
if ! (cd "$work/src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
    tail -80 "$work/build.log"
    fail "dpkg-buildpackage -us -uc -b (log: $work/build.log)"
fi
ok "dpkg-buildpackage -us -uc -b ($((SECONDS - t0)) s, version $version)"
# meson test's summaries (one per dh_auto_test call), added up.
grep -E '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' "$work/build.log" |
    awk -F: '{ n[$1] += $2 } END { printf "     package-build tests: ok %d, expected fail %d, fail %d, skipped %d\n",
                                   n["Ok"], n["Expected Fail"], n["Fail"], n["Skipped"] }'
grep -q '^Ok: ' "$work/build.log" || fail "the package build ran no test (nocheck set?)"

debs=()
for p in "${pkgs[@]}"; do
    f="$work/${p}_${version}_${arch}.deb"
    [ -f "$f" ] || fail "missing $f"
    debs+=("$f")
done

# --- 2. contents ---------------------------------------------------------------
# Files and links, without directories and the usual /usr/share/doc files.
contents() {
    dpkg-deb -c "$1" | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }' |
        grep -v "^/usr/share/doc/$2/\(copyright\|changelog.Debian.gz\)$" | sort
}
expect_librsbmalloc0="$libdir/librsbmalloc.so.0
$libdir/librsbmalloc.so.0.1.0"
expect_librsbmalloc_dev="/usr/include/rsbmalloc.h
/usr/include/rsbmalloc_heap.h
$libdir/librsbmalloc-prefixed.a
$libdir/librsbmalloc.a
$libdir/librsbmalloc.so
$libdir/librsbmalloc_heap.a
$libdir/pkgconfig/rsbmalloc.pc
$libdir/pkgconfig/rsbmalloc_heap.pc
/usr/share/man/man3/rsbmalloc.3.gz"
expect_rsbmalloc_tools="/usr/bin/rsbmalloc-run
/usr/share/man/man1/rsbmalloc-run.1.gz"
for i in 0 1 2; do
    p=${pkgs[$i]}
    var=expect_${p//-/_}
    expected=$(printf '%s\n' "${!var}" | sed "s/0\.1\.0$/${version%-*}/" | sort)
    actual=$(contents "${debs[$i]}" "$p")
    if [ "$actual" != "$expected" ]; then
        echo "FAIL: $p contents differ from the expected list (< expected, > actual):"
        diff <(echo "$expected") <(echo "$actual") | sed 's/^/    /'
        exit 1
    fi
    echo "ok   $p: $(echo "$actual" | wc -l) files: $(echo "$actual" | tr '\n' ' ')"
done
link=$(dpkg-deb -c "${debs[1]}" | awk '$6 ~ /librsbmalloc\.so$/ { print $8 }')
[ "$link" = "librsbmalloc.so.0" ] || fail "librsbmalloc.so links to '$link', not librsbmalloc.so.0"

# --- 3. lintian ----------------------------------------------------------------
changes="$work/rsbmalloc_${version}_${arch}.changes"
lintian --display-info --display-experimental --pedantic --fail-on error "$changes" > "$work/lintian.log" 2>&1
lrc=$?
grep -v '^running with root privileges' "$work/lintian.log" | sed 's/^/     lintian: /'
ne=$(grep -c '^E: ' "$work/lintian.log")
nw=$(grep -c '^W: ' "$work/lintian.log")
[ $lrc -eq 0 ] && [ "$ne" -eq 0 ] || fail "lintian: $ne errors (exit $lrc)"
tags() { grep "^$1: " "$work/lintian.log" | awk '{ print $3 }' | sort | uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }'; }
ok "lintian: 0 errors, $nw warnings ($(tags W)), other tags: $(tags '[IPX]')"

# --- 4. install and use --------------------------------------------------------
before=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" && before+=("$p")
done
cleanup() {
    [ "${RSBT_KEEP_PACKAGES:-0}" = 1 ] && return
    local rm=()
    for p in "${pkgs[@]}" librsbmalloc0-dbgsym; do
        [[ " ${before[*]} " == *" $p "* ]] && continue
        dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" && rm+=("$p")
    done
    [ ${#rm[@]} -eq 0 ] && return
    DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq -o DPkg::Lock::Timeout=300 "${rm[@]}" > "$work/purge.log" 2>&1 ||
        { cat "$work/purge.log"; echo "WARNING: could not remove ${rm[*]}"; }
}
trap cleanup EXIT
# apt-get install ./*.deb, as a user would (the dbgsym package included).
(cd "$work" && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 ./*.deb) \
    > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "apt-get install ./*.deb"; }
for p in "${pkgs[@]}"; do
    v=$(dpkg-query -W -f='${Version}' "$p")
    [ "$v" = "$version" ] || fail "$p $v installed, not $version"
done
ok "apt-get install ./*.deb: ${pkgs[*]} $version installed"

run=$(command -v rsbmalloc-run)
[ "$run" = /usr/bin/rsbmalloc-run ] || fail "rsbmalloc-run on PATH is '$run', not /usr/bin/rsbmalloc-run"
grep -q "$work" /usr/bin/rsbmalloc-run && fail "the installed wrapper names the build tree $work"
real=$(readlink -f "$libdir/librsbmalloc.so.0")
probe='
import ctypes, sys
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
libc.free.argtypes = [ctypes.c_void_p]
p = libc.malloc(17)
usable = libc.malloc_usable_size(p)
libc.free(p)
d = {i: str(i) * 8 for i in range(200000)}
maps = sorted({l.split()[-1] for l in open("/proc/self/maps") if "librsbmalloc" in l})
print("maps=" + ",".join(maps))
print("usable17=%d" % usable)
print("dict=%d" % len(d))
'
out=$(/usr/bin/rsbmalloc-run /usr/bin/python3 -c "$probe") || fail "rsbmalloc-run python3 exited $?"
[ "$(sed -n 's/^maps=//p' <<< "$out")" = "$real" ] || fail "python3 under rsbmalloc-run maps '$(sed -n 's/^maps=//p' <<< "$out")', expected $real"
[ "$(sed -n 's/^usable17=//p' <<< "$out")" = 32 ] || fail "malloc_usable_size(malloc(17)) = $(sed -n 's/^usable17=//p' <<< "$out") under rsbmalloc-run, expected 32 (rsbmalloc's class)"
[ "$(sed -n 's/^dict=//p' <<< "$out")" = 200000 ] || fail "python3 dict: $out"
ok "rsbmalloc-run python3: maps $real only, malloc_usable_size(malloc(17)) = 32, 200000-entry dict"
# Negative control: the same probe without the wrapper.
ctl=$(env -u LD_PRELOAD /usr/bin/python3 -c "$probe") || fail "python3 alone exited $?"
[ -z "$(sed -n 's/^maps=//p' <<< "$ctl")" ] && [ "$(sed -n 's/^usable17=//p' <<< "$ctl")" != 32 ] ||
    fail "control without the wrapper also looks like rsbmalloc: $ctl"
ok "control without rsbmalloc-run: no librsbmalloc mapped, malloc_usable_size(malloc(17)) = $(sed -n 's/^usable17=//p' <<< "$ctl")"
err=$(RSBMALLOC_VERBOSE=1 RSBMALLOC_STATS=1 /usr/bin/rsbmalloc-run /usr/bin/python3 -c 'x = [bytes(100) for i in range(1000)]' 2>&1 > /dev/null)
grep -q '^rsbmalloc: ready: ' <<< "$err" || fail "RSBMALLOC_VERBOSE=1 printed no 'rsbmalloc: ready:' line: $err"
grep -q '^rsbmalloc statistics' <<< "$err" || fail "RSBMALLOC_STATS=1 printed no report: $err"
ok "RSBMALLOC_VERBOSE=1 and RSBMALLOC_STATS=1 through the installed wrapper"
out=$(LD_PRELOAD=/nonexistent.so /usr/bin/rsbmalloc-run /bin/sh -c 'echo "$LD_PRELOAD"' 2> /dev/null)
[ "$out" = "$libdir/librsbmalloc.so.0 /nonexistent.so" ] || fail "rsbmalloc-run LD_PRELOAD is '$out'"
ok "rsbmalloc-run puts $libdir/librsbmalloc.so.0 before an existing LD_PRELOAD"

tmp=$(mktemp -d)
cat > "$tmp/prog.c" << 'C'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <rsbmalloc.h>
int main(void) {
    void *p = malloc(17);             /* rsbmalloc's class for 17 B is 32 B; glibc says 24 */
    size_t u = malloc_usable_size(p);
    rsb_stats_t st;
    rsb_stats(&st);
    free(p);
    printf("usable=%zu caches=%u\n", u, st.caches);
    return u == 32 && st.caches > 0 ? 0 : 1;
}
C
cat > "$tmp/prefixed.c" << 'C'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <rsbmalloc.h>
int main(void) {                      /* both allocators side by side */
    void *p = malloc(17), *q = rsb_malloc(17);
    size_t u = malloc_usable_size(p), v = rsb_malloc_usable_size(q);
    free(p);
    rsb_free(q);
    printf("glibc=%zu rsb=%zu\n", u, v);
    return u == 24 && v == 32 ? 0 : 1;
}
C
cat > "$tmp/heap.c" << 'C'
#include <string.h>
#include <rsbmalloc_heap.h>
static _Alignas(64) unsigned char region[256 * 1024];
int main(void) {
    rsb_heap *h = rsb_heap_init(region, sizeof region);
    if (!h) return 1;
    unsigned char *p = rsb_heap_alloc(h, 100);
    if (!p || p < region || p >= region + sizeof region) return 2;
    memset(p, 7, 100);
    rsb_heap_free(h, p);
    return 0;
}
C
[ "$(pkg-config --variable=libdir rsbmalloc)" = "$libdir" ] || fail "pkg-config rsbmalloc libdir is '$(pkg-config --variable=libdir rsbmalloc)'"
cc -o "$tmp/shared" "$tmp/prog.c" $(pkg-config --cflags --libs rsbmalloc) || fail "cc with pkg-config rsbmalloc"
"$tmp/shared" > /dev/null || fail "program linked with -lrsbmalloc"
# /lib is /usr/lib on a merged-/usr system: compare the files.
linked=$(ldd "$tmp/shared" | awk '$1 == "librsbmalloc.so.0" { print $3 }')
[ -n "$linked" ] && [ "$(readlink -f "$linked")" = "$real" ] || fail "not linked to $real: $(ldd "$tmp/shared")"
cc -static -o "$tmp/static" "$tmp/prog.c" $(pkg-config --cflags --libs --static rsbmalloc) || fail "cc -static with pkg-config --static rsbmalloc"
"$tmp/static" > /dev/null || fail "static program"
cc -o "$tmp/prefixed" "$tmp/prefixed.c" "$libdir/librsbmalloc-prefixed.a" -pthread || fail "cc with librsbmalloc-prefixed.a"
"$tmp/prefixed" > /dev/null || fail "prefixed program: $("$tmp/prefixed")"
cc -o "$tmp/heapprog" "$tmp/heap.c" $(pkg-config --cflags --libs rsbmalloc_heap) || fail "cc with pkg-config rsbmalloc_heap"
"$tmp/heapprog" || fail "region heap program"
rm -rf "$tmp"
ok "built against the installed -dev: pkg-config shared (ldd: $libdir) and static, librsbmalloc-prefixed.a beside glibc, rsbmalloc_heap"

m3=$(man -w 3 rsbmalloc 2> /dev/null)
m1=$(man -w 1 rsbmalloc-run 2> /dev/null)
[ "$m3" = /usr/share/man/man3/rsbmalloc.3.gz ] || fail "man -w 3 rsbmalloc: '$m3'"
[ "$m1" = /usr/share/man/man1/rsbmalloc-run.1.gz ] || fail "man -w 1 rsbmalloc-run: '$m1'"
sh "$src/docs/man/check.sh" "$m3" "$m1" | sed 's/^/     /'
[ "${PIPESTATUS[0]}" = 0 ] || fail "installed manual pages render with warnings"
ok "man rsbmalloc(3), rsbmalloc-run(1) installed and rendered without warnings"
echo "packages: all checks passed"
