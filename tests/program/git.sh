#!/bin/sh
# git under rsbmalloc: init, commit ~3000 files, four more commits that
# modify, delete and add files, gc/repack (threaded delta search), fsck,
# log.  Checks the counts, a clean status, file contents, and that every
# object id (commits, trees) equals a glibc run of the same script.
. "$(dirname "$0")/lib.sh"
need git

export HOME="$TMP/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Rsb Test" GIT_AUTHOR_EMAIL=rsb@example.invalid
export GIT_COMMITTER_NAME="Rsb Test" GIT_COMMITTER_EMAIL=rsb@example.invalid
export LC_ALL=C TZ=UTC
mkdir -p "$HOME"

NFILES=3000
ROUNDS=4

# gen DIR: the initial 3000 files in 60 directories.
gen() {
    awk -v n=$NFILES -v dir="$1" 'BEGIN {
        for (i = 0; i < n; i++) {
            d = dir "/d" (i % 60)
            if (!(d in made)) { system("mkdir -p " d); made[d] = 1 }
            f = d "/f" i ".txt"
            for (l = 0; l < 5 + i % 40; l++)
                printf "file %d line %d %s\n", i, l, substr("abcdefghijklmnopqrstuvwxyz", 1, (i + l) % 27) > f
            close(f)
        }
    }'
}

# change DIR ROUND: modify files with i % 7 == round, delete i % 97 == round,
# add 100 new files.
change() {
    awk -v n=$NFILES -v dir="$1" -v r="$2" 'BEGIN {
        for (i = 0; i < n; i++) {
            f = dir "/d" (i % 60) "/f" i ".txt"
            if (i % 97 == r) { system("rm -f " f); continue }
            if (i % 7 == r) { printf "round %d changed %d\n", r, i >> f; close(f) }
        }
        system("mkdir -p " dir "/new" r)
        for (j = 0; j < 100; j++) {
            f = dir "/new" r "/n" j ".txt"
            for (l = 0; l <= j; l++) printf "new %d %d %d\n", r, j, l > f
            close(f)
        }
    }'
}

# workload DIR: everything git does, printing results to stdout.
workload() {
    dir=$1
    git init -q -b main "$dir" || return 1
    gen "$dir"
    cd "$dir" || return 1
    export GIT_AUTHOR_DATE="@1700000000 +0000" GIT_COMMITTER_DATE="@1700000000 +0000"
    git add -A && git commit -q -m "initial $NFILES files" || return 1
    r=1
    while [ $r -le $ROUNDS ]; do
        change "$dir" $r
        export GIT_AUTHOR_DATE="@$((1700000000 + r * 3600)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + r * 3600)) +0000"
        git add -A && git commit -q -m "round $r" || return 1
        r=$((r + 1))
    done
    git -c pack.threads=4 -c gc.auto=0 gc -q || return 1
    git -c pack.threads=4 repack -a -d -f -q --window=50 || return 1
    git fsck --full --strict --no-progress 2>&1 || return 1
    echo "head $(git rev-parse HEAD)"
    echo "tree $(git rev-parse 'HEAD^{tree}')"
    echo "commits $(git rev-list --count HEAD)"
    echo "files $(git ls-files | wc -l)"
    echo "worktree_files $(find . -path ./.git -prune -o -type f -print | wc -l)"
    echo "status [$(git status --porcelain)]"
    git log --format='%H %at %s'
    git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
    git diff --stat HEAD~$ROUNDS HEAD | tail -n 1
    echo "blob $(git cat-file -p HEAD:d7/f7.txt | cksum)"
    echo "grep $(git grep -c 'changed' HEAD | wc -l)"
    echo "archive $(git archive HEAD | tar -tf - | wc -l)"
    git log -p --format=%H HEAD | cksum | sed 's/^/log-p /'
    git rev-list --objects --all | wc -l | sed 's/^/objects /'
}

# The glibc reference run.
(workload "$TMP/ref") > "$TMP/ref.out" 2>&1 || { cat "$TMP/ref.out" >&2; die "git workload fails under glibc: test bug"; }

# The preload must reach git itself: read git's own maps through an alias.
maps=$(run_rsb git -c 'alias.rsbmaps=!cat /proc/$PPID/maps' rsbmaps 2>&1) || die "git alias failed: $maps"
echo "$maps" | grep -q librsbmalloc || die "librsbmalloc.so is not mapped into git"

(LD_PRELOAD="$RSB_SO${LD_PRELOAD:+:$LD_PRELOAD}" && export LD_PRELOAD && workload "$TMP/rsb") > "$TMP/rsb.out" 2>&1
st=$?
check_status git $st "$TMP/rsb.out"

# Direct checks on the results
files_expected=$(grep '^worktree_files ' "$TMP/rsb.out" | cut -d' ' -f2)
grep -qx "commits $((ROUNDS + 1))" "$TMP/rsb.out" || die "wrong commit count: $(grep '^commits' "$TMP/rsb.out")"
grep -qx "files $files_expected" "$TMP/rsb.out" || die "git ls-files count != files in the work tree ($files_expected)"
[ "$files_expected" -gt 3000 ] || die "unexpected file count $files_expected"
grep -qx 'status \[\]' "$TMP/rsb.out" || die "work tree not clean after commit: $(grep -A5 '^status' "$TMP/rsb.out")"
grep -qx 'count: 0' "$TMP/rsb.out" || die "loose objects left after gc"
[ "$(grep -c ' round [0-9]$' "$TMP/rsb.out")" -eq $ROUNDS ] || die "git log misses commits"
same_output git "$TMP/ref.out" "$TMP/rsb.out"
echo "ok: git under rsbmalloc: $(grep -E '^(head|commits|files) ' "$TMP/rsb.out" | tr '\n' ' ')"
