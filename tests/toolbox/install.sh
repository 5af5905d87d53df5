#!/usr/bin/env bash
# install.sh SRC BUILD: install into a temporary prefix, then build and run
# a program against it with pkg-config, shared and static.
set -eu
src="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
meson setup "$tmp/build" "$src" --prefix="$prefix" -Dtests=disabled -Dbench=disabled >/dev/null
ninja -C "$tmp/build" >/dev/null
meson install -C "$tmp/build" >/dev/null
echo "installed files:"; (cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
pc=$(find "$prefix" -name rsbmalloc.pc | head -1)
[ -n "$pc" ] || { echo "FAIL no rsbmalloc.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir rsbmalloc)
for f in "$libdir/librsbmalloc.so.0" "$libdir/librsbmalloc.a" "$prefix/include/rsbmalloc.h" "$prefix/bin/rsbmalloc-run"; do
    [ -e "$f" ] || { echo "FAIL missing $f"; exit 1; }
done
soname=$(objdump -p "$libdir/librsbmalloc.so" | awk '/SONAME/{print $2}')
[ "$soname" = "librsbmalloc.so.0" ] || { echo "FAIL soname is '$soname'"; exit 1; }
cat > "$tmp/prog.c" <<'C'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <rsbmalloc.h>
int main(void) {
    void *p = malloc(17);            /* rsbmalloc's class for 17 B is 32 B; glibc says 24 */
    size_t u = malloc_usable_size(p);
    rsb_stats_t st;
    rsb_stats(&st);
    free(p);
    void *q = rsb_malloc(100);
    rsb_free(q);
    printf("usable=%zu caches=%u\n", u, st.caches);
    return u == 32 && st.caches > 0 ? 0 : 1;
}
C
cc -o "$tmp/shared" "$tmp/prog.c" $(pkg-config --cflags --libs rsbmalloc)
LD_LIBRARY_PATH="$libdir" "$tmp/shared" || { echo "FAIL shared program"; exit 1; }
ldd_out=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/shared")
grep -q "librsbmalloc.so.0 => $libdir" <<<"$ldd_out" || { echo "FAIL not linked to the installed library"; echo "$ldd_out"; exit 1; }
echo "ok   shared link via pkg-config"
cc -static -o "$tmp/static" "$tmp/prog.c" $(pkg-config --cflags --libs --static rsbmalloc)
"$tmp/static" || { echo "FAIL static program"; exit 1; }
file "$tmp/static" | grep -q "statically linked" || { echo "FAIL not static"; exit 1; }
echo "ok   static link via pkg-config --static"
# The region heap (rsb_heap_*), its own .pc, usable from a hosted program.
[ -e "$libdir/librsbmalloc_heap.a" ] && [ -e "$prefix/include/rsbmalloc_heap.h" ] || { echo "FAIL heap library not installed"; exit 1; }
cat > "$tmp/heap.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <rsbmalloc_heap.h>
static _Alignas(64) unsigned char region[256 * 1024];
int main(void) {
    rsb_heap *h = rsb_heap_init(region, sizeof region);
    if (!h) return 1;
    char *p = rsb_heap_alloc(h, 100);
    if (!p || (unsigned char *)p < region || (unsigned char *)p >= region + sizeof region) return 2;
    memset(p, 7, 100);
    rsb_heap_free(h, p);
    puts("heap ok");
    return 0;
}
C
cc -o "$tmp/heapprog" "$tmp/heap.c" $(pkg-config --cflags --libs rsbmalloc_heap)
"$tmp/heapprog" || { echo "FAIL heap program"; exit 1; }
echo "ok   region heap via pkg-config rsbmalloc_heap"
out=$(LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 "$prefix/bin/rsbmalloc-run" sh -c 'echo "$LD_PRELOAD"')
[ "$out" = "$libdir/librsbmalloc.so.0 /lib/x86_64-linux-gnu/libm.so.6" ] || { echo "FAIL rsbmalloc-run LD_PRELOAD='$out'"; exit 1; }
echo "ok   installed rsbmalloc-run prepends to LD_PRELOAD"
