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

# Configure (once) and build the library in $RSB_ROOT/build.
rsb_build() {
    local root="$1"
    if [ ! -f "$root/build/build.ninja" ]; then
        meson setup "$root/build" "$root" >&2
    fi
    ninja -C "$root/build" >&2
}
