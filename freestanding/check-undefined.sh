#!/usr/bin/env bash
# usage: check-undefined.sh NM ARCHIVE
# Fails if any object of ARCHIVE references a symbol that no object of it
# defines: the freestanding library must not need libc, libgcc or anything
# else (memset/memcpy included: it brings its own).
set -euo pipefail
nm="$1"
lib="$2"
undef=$("$nm" -u "$lib" | awk 'NF == 2 && $1 ~ /^[Uwv]$/ { print $2 }' | sort -u)
defined=$("$nm" --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u)
# _GLOBAL_OFFSET_TABLE_ is made by the linker in any position-independent
# link (the hosted build's copy is PIC so PIE programs can link it); it is
# not a library symbol.
missing=$(comm -23 <(printf '%s\n' "$undef") <(printf '%s\n' "$defined") |
          sed '/^$/d; /^_GLOBAL_OFFSET_TABLE_$/d')
if [ -n "$missing" ]; then
    echo "$(basename "$lib") references symbols it does not define:"
    printf '  %s\n' $missing
    exit 1
fi
echo "$(basename "$lib"): no undefined symbols ($(printf '%s\n' "$defined" | wc -l) defined)"
