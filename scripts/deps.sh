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

# What building the library needs.
RSB_BUILD_PKGS=(gcc libc6-dev meson ninja-build pkg-config python3)

# What meson's configure step sees: every installed package and its version,
# the tool search path and the compiler variables.  A build dir configured
# under another state (say by rsbmalloc-run before scripts/test installed
# Criterion) has stale "not found" results and must be configured again.
rsb_deps_stamp() {
    {
        dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package} ${Version}\n' 2>/dev/null
        echo "PATH=$PATH CC=${CC-} CXX=${CXX-} PKG_CONFIG_PATH=${PKG_CONFIG_PATH-}"
        meson --version
    } | sha256sum | cut -d' ' -f1
}

# rsb_setup DIR SRC [MESON ARGS...]: configure DIR; if it was configured
# before under other packages or tools (rsb_deps_stamp), clear meson's cache
# of found and not-found results and configure it again (a few seconds; the
# objects stay, ninja rebuilds only what the new configuration changes).
rsb_setup() {
    local dir="$1" src="$2"
    shift 2
    local stamp
    stamp=$(rsb_deps_stamp)
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$src" "$@" >&2 || return 1
    elif [ "$(cat "$dir/rsb-deps.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "rsbmalloc: packages or tools changed since $dir was configured: reconfiguring" >&2
        meson configure --clearcache "$dir" >&2 || return 1
        meson setup --reconfigure "$dir" "$src" "$@" >&2 || return 1
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
