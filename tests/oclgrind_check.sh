#!/bin/sh
# Runs a test binary on the Oclgrind platform (SPARTAN_DEVICE=oclgrind, through its ICD) with
# its API, data-race and uninitialised-memory checks on. Oclgrind reports problems but does not
# change the exit status, so any line in its log fails the run here.
set -u
log=$(mktemp "${TMPDIR:-/tmp}/oclgrind-log.XXXXXX")
trap 'rm -f "$log"' EXIT
export OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1 OCLGRIND_UNINITIALIZED=1 OCLGRIND_LOG="$log"
export CK_DEFAULT_TIMEOUT=1200
"$@"
rc=$?
if [ -s "$log" ]; then
    echo "oclgrind reported errors:" >&2
    cat "$log" >&2
    exit 1
fi
exit $rc
