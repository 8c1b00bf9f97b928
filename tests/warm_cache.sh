#!/bin/sh
# Builds the kernel families for every tuned configuration the tests use, one after another, in
# the tests' cache (SPARTAN_CACHE_DIR, on SPARTAN_DEVICE): a fixture that runs before the tests
# of a driver, so that two tests running side by side never build (and validate, on a simulator
# for a minute or more) the same configuration twice. A configuration missing here costs time,
# never a result. Usage: warm_cache.sh SPARTAN-INFO TUNE...  ("" is the untuned configuration)
set -u
info=$1
shift
for tune in "$@"; do
    start=$(date +%s)
    if ! SPARTAN_TUNE="$tune" "$info" >/dev/null; then
        echo "warm_cache: no context with SPARTAN_TUNE='$tune'" >&2
        exit 1
    fi
    echo "warm_cache: '$tune' in $(($(date +%s) - start)) s"
done
