#!/bin/sh
# check.sh PAGE...: render each manual page with man-db as a reader's `man`
# would, and fail if groff or man prints any warning, or renders nothing.
# Exit 77 (skip) without man-db.
command -v man > /dev/null || { echo "SKIP: man (package man-db) is not installed"; exit 77; }
render() {  # page, file for warnings -> rendered text on stdout
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2> "$2"
}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# The check must be able to fail: an undefined macro has to be reported.
printf '.TH BAD 1\n.SH NAME\nbad \\- bad\n.NOSUCHMACRO x\n' > "$tmp/bad.1"
render "$tmp/bad.1" "$tmp/bad.err" > /dev/null
if ! grep -q NOSUCHMACRO "$tmp/bad.err"; then
    echo "FAIL: man --warnings does not report an undefined macro; cannot check"; exit 1
fi
status=0
for page in "$@"; do
    render "$page" "$tmp/err" > "$tmp/out"
    rc=$?
    if [ $rc -ne 0 ] || [ -s "$tmp/err" ]; then
        echo "FAIL: $page (man exit $rc):"; sed 's/^/    /' "$tmp/err"; status=1
    elif [ ! -s "$tmp/out" ]; then
        echo "FAIL: $page renders nothing"; status=1
    else
        echo "ok: $page renders without warnings"
    fi
done
exit $status
