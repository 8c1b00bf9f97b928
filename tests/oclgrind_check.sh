#!/bin/sh
# Runs a test binary on the Oclgrind platform (SPARTAN_DEVICE=oclgrind, through its ICD) with
# its API, data-race and uninitialised-memory checks on. Oclgrind prints its reports on stderr
# but does not change the exit status, so any report in the output fails the run here.
# (OCLGRIND_LOG is not used: every process check forks re-opens and truncates that file.)
set -u
out=$(mktemp "${TMPDIR:-/tmp}/oclgrind-out.XXXXXX")
trap 'rm -f "$out"' EXIT
# OCLGRIND_UNINITIALIZED may be turned off by a test (see tests/CMakeLists.txt for why).
export OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1
export OCLGRIND_UNINITIALIZED="${OCLGRIND_UNINITIALIZED:-1}"
export CK_DEFAULT_TIMEOUT=1200
"$@" >"$out" 2>&1
rc=$?
cat "$out"
# Every kernel report has a "<tab>Kernel: name" line; API errors have their own header.
if grep -Eq '^	Kernel: |^Oclgrind - OpenCL runtime error|^Oclgrind: ' "$out"; then
    echo "oclgrind_check: Oclgrind reported errors (above)" >&2
    exit 1
fi
exit $rc
