#!/bin/sh
# `spartan-bench portability --quick` on POCL into a temporary directory: it exits 0, writes the
# report and the JSON, both name the device, every JSON record has "device", nothing in them is
# WRONG or FAILED, and the plots are there when gnuplot is.
# Usage: cli_portability.sh SPARTAN_BENCH
set -u
bench=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
    echo "FAIL: $*"
    tail -n 60 "$dir/log"
    exit 1
}

timeout 240 "$bench" portability --quick --device pocl --out "$dir" >"$dir/log" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc"
md=$dir/portability.md json=$dir/portability.json
[ -s "$md" ] || fail "no $md"
[ -s "$json" ] || fail "no $json"
grep -q '^## POCL ' "$md" || fail "the report has no POCL section"
grep -q 'all within tolerance' "$md" || fail "the report does not say every result was right"
grep -q '"device":[[:space:]]*"pthread' "$json" || fail "the JSON does not name the POCL device"
if grep -n 'WRONG\|FAILED' "$md" "$json"; then
    fail "a result is wrong or a benchmark failed"
fi
records=$(grep -c '"bench":' "$json")
named=$(grep -c '"device":' "$json")
[ "$records" -gt 0 ] && [ "$records" -eq "$named" ] ||
    fail "$records records, $named with a device"
for bench in gemm conv train; do
    grep -q "\"bench\":[[:space:]]*\"$bench\"" "$json" || fail "no $bench record"
done
if command -v gnuplot >/dev/null 2>&1; then
    for png in dense speedup-gemm speedup-conv train; do
        [ -s "$dir/$png.png" ] || fail "no $png.png though gnuplot is installed"
    done
fi
echo "ok: $records records"
