#!/bin/sh
# An example program, run briefly: it must exit 0 and print "test accuracy: X %" with X at least
# MIN (a floor far below what it reaches, so that the check is not flaky: see CMakeLists.txt).
# Usage: example_check.sh MIN COMMAND...
set -u
min=$1
shift
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then
    echo "FAIL: $* exited with $rc"
    exit 1
fi
acc=$(printf '%s\n' "$out" | sed -n 's/^test accuracy: \([0-9.]*\) %.*/\1/p')
if [ -z "$acc" ]; then
    echo "FAIL: $* printed no test accuracy line"
    exit 1
fi
if ! awk -v a="$acc" -v m="$min" 'BEGIN { exit !(a + 0 >= m + 0) }'; then
    echo "FAIL: test accuracy $acc % is below $min %"
    exit 1
fi
echo "ok: test accuracy $acc % (at least $min %)"
