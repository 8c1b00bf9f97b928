#!/bin/sh
# The pruned export end to end: spartan-train trains mlp for 50 steps with Dropback (density 0.1,
# decay 0.05: the untracked weights are exact zeros after about 35 updates) and writes both an
# export (--export) and a dense checkpoint (--save) of the same weights; tools/load_pruned.py
# --compare must find them equal bit for bit with numpy alone (a torch module that fails to import
# comes first on its path), and must refuse an export with a flipped byte and the export of
# another run (another seed). A python3 with numpy is required (tools/lib/deps.sh installs
# python3-numpy): without one the test fails, it does not skip.
# Usage: cli_export.sh SPARTAN_TRAIN LOAD_PRUNED_PY
set -u
train=$1 loader=$2
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
dir=$(mktemp -d "${TMPDIR:-/tmp}/cli_export.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

# Debian's python3-numpy is /usr/bin/python3's; a python3 first on PATH may lack it.
py=""
for cand in ${SPARTAN_PYTHON:-} /usr/bin/python3 python3; do
    if "$cand" -c "import numpy" >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
[ -n "$py" ] || fail "no python3 with numpy (tools/lib/deps.sh installs python3-numpy)"
mkdir "$dir/notorch"
echo 'raise ImportError("torch imported on the numpy-only path of load_pruned.py")' \
    >"$dir/notorch/torch.py"
if PYTHONPATH="$dir/notorch" "$py" -c "import torch" >/dev/null 2>&1; then
    fail "the torch stand-in did not take the place of torch"
fi

# train SEED EXTRA...: 50 steps of mlp with Dropback.
train() {
    seed=$1
    shift
    "$train" --model mlp --epochs 1 --limit 3200 --test-limit 500 --seed "$seed" \
        --dropback-density 0.1 --dropback-decay 0.05 --quiet "$@"
}
# compare EXPORT: load_pruned.py --compare against the checkpoint, numpy alone.
compare() {
    PYTHONPATH="$dir/notorch" "$py" "$loader" "$1" --compare "$dir/ckpt.safetensors" 2>&1
}

out=$(train 1 --export "$dir/x.safetensors" --save "$dir/ckpt.safetensors" 2>&1) ||
    fail "spartan-train exited with $?: $out"
line=$(printf '%s\n' "$out" | grep "^export: $dir/x.safetensors, ")
printf '%s\n' "$line"
case "$line" in
*" of 669,706 parameters ("*"x smaller)") ;;
*) fail "no export line of mlp's 669,706 parameters, smaller than dense, in: $out" ;;
esac

out=$(compare "$dir/x.safetensors") || fail "load_pruned.py --compare exited with $?: $out"
printf '%s\n' "$out"
case "$out" in
*"bit for bit"*) ;;
*) fail "load_pruned.py --compare did not say the weights are equal: $out" ;;
esac

# A flipped byte near the end of the data: refused by the data's checksum.
"$py" -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-3] ^= 0x10
open(sys.argv[2], "wb").write(b)' "$dir/x.safetensors" "$dir/bad.safetensors" ||
    fail "could not write the damaged copy"
out=$(compare "$dir/bad.safetensors") && fail "a damaged export was accepted: $out"
case "$out" in
*"checksum does not match"*) echo "ok: damaged copy refused" ;;
*) fail "the damaged export was refused for another reason: $out" ;;
esac

# Another run's weights: the comparison must find the difference.
train 2 --export "$dir/other.safetensors" >/dev/null 2>&1 || fail "the second run failed"
out=$(compare "$dir/other.safetensors") && fail "another run's export compared equal: $out"
case "$out" in
*"differs from"*) echo "ok: another run's export differs" ;;
*) fail "another run's export was refused for another reason: $out" ;;
esac
echo "ok"
