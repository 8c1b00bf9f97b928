#!/bin/sh
# spartan-tune end to end on POCL, in a cache directory of its own: a candidate that fails its
# family's validation is rejected with the reason and never wins. The gemm_sparse kernel file is
# edited (a copy, through SPARTAN_KERNEL_DIR) to add 1 to its products when SP_SPARSE_NB is 2:
# the table's value (4 on AVX-512, 8 on AVX2) builds a correct kernel, the candidate 2 a wrong
# one, which the family's known-answer self-test must catch. The other candidate (16) is
# measured. About 30 s (two candidates rebuild one family each).
# usage: cli_tune.sh SPARTAN-TUNE KERNEL-SOURCE-DIR
set -eu
tune=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/kernels"
from='if (c < nb) acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]);'
to='if (c < nb) acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]) + (SP_SPARSE_NB == 2 ? 1.0f : 0.0f);'
python3 - "$tmp/kernels/gemm_sparse.cl" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if old not in text:
    sys.exit("cli_tune.sh: the line to edit is not in gemm_sparse.cl any more: update the test")
open(path, "w").write(text.replace(old, new, 1))
PY
fail() {
    echo "cli_tune.sh: $*" >&2
    cat "$tmp/out" >&2
    exit 1
}
unset SPARTAN_TUNE
SPARTAN_DEVICE=pocl SPARTAN_KERNEL_DIR="$tmp/kernels" "$tune" --quick --runs 1 --minutes 5 \
    --param SPARSE_NB=2,16 --cache-dir "$tmp/cache" >"$tmp/out" 2>&1 || fail "spartan-tune failed"
grep -q "^  rejected SPARSE_NB=2: gemm_sparse failed its validation" "$tmp/out" ||
    fail "the broken candidate SPARSE_NB=2 was not rejected by its validation"
grep -q "^winner: .*SPARSE_NB=2," "$tmp/out" && fail "the rejected candidate won"
grep -Eq "^  (SPARSE_NB=16 |pruned   SPARSE_NB=16:)" "$tmp/out" ||
    fail "the sound candidate SPARSE_NB=16 was not measured"
grep -q "^2 candidates: 1 rejected" "$tmp/out" || fail "not two candidates, one rejected"
# a database it wrote (when the candidate won) names the device and is what the next context reads
if grep -q "^written to " "$tmp/out"; then
    db=$(sed -n 's/^written to //p' "$tmp/out")
    grep -q '"SPARSE_NB":	16' "$db" || fail "the database does not hold the winner"
fi
echo "cli_tune.sh: passed"
