# Sourced by scripts/*: install Debian packages that are missing.
# rsb_need PKG... runs `apt-get update` once and `apt-get install` only when a
# package is not installed yet, so a second run costs nothing.
rsb_need() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "rsbmalloc: installing ${missing[*]}" >&2
    if [ -z "${RSB_APT_UPDATED:-}" ]; then
        $sudo apt-get update -qq >&2
        RSB_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# What building the library needs (libunwind-dev: heap profiling's unwinder,
# meson option `prof`; without it the library builds with profiling off).
RSB_BUILD_PKGS=(gcc libc6-dev meson ninja-build pkg-config python3 libunwind-dev)
# What scripts/test, scripts/test-arm64 and scripts/test-robust add
# (google-perftools: google-pprof reads the heap profiles back in the prof-*
# tests; graphviz: its --svg).
RSB_TEST_PKGS=(g++ libcriterion-dev libbenchmark-dev binutils file git sqlite3 python3 valgrind
    google-perftools graphviz
    gcc-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf qemu-system-misc libc6-dev-i386
    lib32gcc-12-dev)
# arm64 with clang-14, not gcc-aarch64-linux-gnu, which gcc-multilib conflicts
# with (scripts/cross/aarch64-linux-gnu-clang.txt).
RSB_ARM64_PKGS=(clang-14 binutils-aarch64-linux-gnu libgcc-12-dev-arm64-cross libc6-dev-arm64-cross
    qemu-user-static)
RSB_ROBUST_PKGS=(libcriterion-dev valgrind clang-14 libclang-rt-14-dev libpython3.11-testsuite
    redis-server redis-tools perl lua5.4 jq)

# What meson's configure step may see: which of those packages are
# installed (and their versions), the tool search path, the compiler
# variables and meson's version.  A build dir configured under another state
# (say by rsbmalloc-run before scripts/test installed Criterion) has stale
# "not found" results and must be configured anew.
rsb_deps_stamp() {
    {
        local p
        for p in $(printf '%s\n' "${RSB_BUILD_PKGS[@]}" "${RSB_TEST_PKGS[@]}" "${RSB_ARM64_PKGS[@]}" \
            "${RSB_ROBUST_PKGS[@]}" | sort -u); do
            echo "$p $(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$p" 2>/dev/null)"
        done
        echo "PATH=$PATH CC=${CC-} CXX=${CXX-} PKG_CONFIG_PATH=${PKG_CONFIG_PATH-}"
        meson --version
    } | sha256sum | cut -d' ' -f1
}

# rsb_setup DIR SRC [MESON ARGS...]: configure DIR; if it was configured
# under other packages or tools (rsb_deps_stamp), configure it anew with
# `meson setup --wipe` (same options, objects rebuilt): `--reconfigure`, even
# after `meson configure --clearcache`, keeps meson 1.0's cached compiler
# checks, so a has_header('valgrind/memcheck.h') that failed before valgrind
# was installed would stay failed.
rsb_setup() {
    local dir="$1" src="$2"
    shift 2
    local stamp
    stamp=$(rsb_deps_stamp)
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$src" "$@" >&2 || return 1
    elif [ "$(cat "$dir/rsb-deps.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "rsbmalloc: packages or tools changed since $dir was configured: configuring it anew" >&2
        meson setup --wipe "$dir" "$src" "$@" >&2 || return 1
    fi
    echo "$stamp" > "$dir/rsb-deps.stamp"
}

# Configure (again when the packages changed) and build the library in
# $RSB_ROOT/build.
rsb_build() {
    local root="$1"
    rsb_setup "$root/build" "$root" || return 1
    ninja -C "$root/build" >&2
}
