#!/bin/sh
# Builds the kernel families for every tuned configuration the tests use, two at a time (or
# SPARTAN_TEST_JOBS), in the tests' cache (SPARTAN_CACHE_DIR, on SPARTAN_DEVICE): a fixture that
# runs before the tests of a driver, so that tests running side by side never build (and
# validate: on a simulator a minute or more, on a cold POCL one to two) the same configuration
# twice. A configuration missing here costs time, never a result.
# Usage: warm_cache.sh SPARTAN-INFO TUNE...  ("default": the untuned configuration)
set -u
info=$1
shift
jobs=${SPARTAN_TEST_JOBS:-2}
one() {
    start=$(date +%s)
    tune=$1
    [ "$tune" = default ] && tune=""
    if ! SPARTAN_TUNE="$tune" "$info" >/dev/null; then
        echo "warm_cache: no context with SPARTAN_TUNE='$1'" >&2
        return 1
    fi
    echo "warm_cache: '$1' in $(($(date +%s) - start)) s"
}
failed=0
running=""
n=0
for tune in "$@"; do
    one "$tune" &
    running="$running $!"
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then
        for pid in $running; do wait "$pid" || failed=1; done
        running=""
        n=0
    fi
done
for pid in $running; do wait "$pid" || failed=1; done
exit $failed
