#!/bin/sh
# spartan-train under mpirun (docs/distributed.md): two ranks on POCL, one core each.
#   - a run prints its figures once (rank 0), with the all-reduce report, and writes its metrics;
#   - --resume under mpirun continues the run exactly (dense path, constant learning rate: the
#     resumed epoch's figures equal the uninterrupted run's);
#   - a configuration that differs between the ranks (the batch, the model) ends the run on every
#     rank with a message saying what differs;
#   - a rank that fails (its data set missing) tells the others: rank 0 ends with its message;
#   - a rank that dies (kill -9) ends the job: mpirun says which, rank 0 says it was stopped.
# None of them may hang: each run has a time limit.
# Usage: cli_dist.sh SPARTAN_TRAIN MPIRUN [MPIRUN FLAGS...]
set -u
train=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export POCL_MAX_PTHREAD_COUNT=1 SPARTAN_DEVICE=pocl
fails=0
bad() {
    echo "cli_dist: FAILED: $*" >&2
    fails=$((fails + 1))
}
# mpirun with the given flags, at most $1 seconds; output in $tmp/out, status in $rc
run() {
    limit=$1
    shift
    timeout "$limit" "$@" >"$tmp/out" 2>&1
    rc=$?
    [ $rc = 124 ] && bad "timed out after $limit s (a hang): $*"
}
count() { grep -c -- "$1" "$tmp/out"; }
small="--limit 2048 --test-limit 500 --batch 32 --quiet"

# 1. a run: its figures once, the all-reduce report, the metrics file
run 300 "$@" -np 2 "$train" $small --metrics "$tmp/m.json"
[ $rc = 0 ] || bad "two ranks: status $rc"
[ "$(count '^epoch 1:')" = 1 ] || bad "the epoch line is not printed once: $(count '^epoch 1:')"
grep -q "batch 64 (2 ranks x 32" "$tmp/out" || bad "no global batch in the header"
grep -q "^gradient all-reduce (2 ranks" "$tmp/out" || bad "no all-reduce report"
grep -q '"epoch":	1' "$tmp/m.json" || bad "no metrics record"
grep -q '"ranks":	2' "$tmp/m.json" && grep -q '"batch":	64' "$tmp/m.json" ||
    bad "the metrics record lacks the ranks and the global batch"
cp "$tmp/out" "$tmp/run.out"

# 2. --resume under mpirun: one epoch saved, then the second from it, against two uninterrupted
exact="$small --policy dense --schedule const"
run 300 "$@" -np 2 "$train" $exact --epochs 2
[ $rc = 0 ] || bad "two epochs: status $rc"
grep '^epoch 2:' "$tmp/out" | sed 's/  [0-9.]* s .*//' >"$tmp/whole"
run 300 "$@" -np 2 "$train" $exact --epochs 1 --save "$tmp/ck.safetensors"
[ $rc = 0 ] || bad "saving: status $rc"
run 300 "$@" -np 2 "$train" $exact --epochs 2 --resume "$tmp/ck.safetensors"
[ $rc = 0 ] || bad "resuming: status $rc"
grep -q "^resumed from .*: step 32 (epoch 2, step 0 of 32)" "$tmp/out" || bad "no resume line"
grep '^epoch 2:' "$tmp/out" | sed 's/  [0-9.]* s .*//' >"$tmp/resumed"
if [ ! -s "$tmp/whole" ] || ! cmp -s "$tmp/whole" "$tmp/resumed"; then
    bad "the resumed epoch differs: '$(cat "$tmp/whole")' against '$(cat "$tmp/resumed")'"
fi

# 3. configurations that differ: every rank says what differs, the run ends
run 120 "$@" -np 1 "$train" $small : -np 1 "$train" $small --batch 16
[ $rc != 0 ] || bad "different batches: status 0"
for r in 0 1; do
    grep -q "rank $r of 2: checking the configuration: the ranks disagree on the model and the training options: rank 0 and rank 1 differ at line .*\"batch per rank 32\" against \"batch per rank 16\"" "$tmp/out" ||
        bad "different batches: rank $r did not say so"
done
run 120 "$@" -np 1 "$train" $small --model mlp : -np 1 "$train" $small --model lenet5
[ $rc != 0 ] || bad "different models: status 0"
[ "$(count 'disagree on the model and the training options: rank 0 and rank 1 differ at line 2: "flatten" against "conv 6 k=5 s=1 p=2"')" = 2 ] ||
    bad "different models: not both ranks said so"

# 4. a rank that fails tells the others
run 120 "$@" -np 1 "$train" $small : -np 1 "$train" $small --data "$tmp/no-such-dir"
[ $rc != 0 ] || bad "a failing rank: status 0"
grep -q "rank 1 of 2: loading the training set: cannot open" "$tmp/out" || bad "rank 1 did not say why"
grep -q "rank 0 of 2: .*rank 1 stopped: loading the training set: cannot open" "$tmp/out" ||
    bad "rank 0 did not pass on rank 1's reason"

# 5. a rank that dies: killed once the second epoch has begun
timeout 120 "$@" -np 2 "$train" --limit 4096 --test-limit 200 --batch 32 --epochs 200 \
    >"$tmp/out" 2>&1 &
job=$!
killed=0
i=0
while [ $i -lt 600 ] && [ $killed = 0 ] && kill -0 $job 2>/dev/null; do
    if grep -q '^epoch 1:' "$tmp/out"; then
        # rank 1's process: spartan-train with OMPI_COMM_WORLD_RANK=1 (from /proc: no procps)
        for d in /proc/[0-9]*; do
            case "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" in
            "$train "*) ;;
            *) continue ;;
            esac
            if tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then
                kill -9 "${d#/proc/}" && killed=1
            fi
        done
    fi
    sleep 0.2
    i=$((i + 1))
done
wait $job
rc=$?
[ $killed = 1 ] || bad "rank 1 was not found to kill"
[ $rc = 124 ] && bad "a dead rank left the job hanging"
[ $rc != 0 ] || bad "a dead rank: status 0"
grep -q "rank 0 of 2: stopped by a signal from the MPI launcher" "$tmp/out" ||
    bad "rank 0 did not say it was stopped"
grep -q "process rank 1 .*exited on signal 9" "$tmp/out" || bad "mpirun did not name the dead rank"

if [ $fails != 0 ]; then
    echo "--- the last run's output:" >&2
    cat "$tmp/out" >&2
    exit 1
fi
echo "cli_dist: every check passed"
sed -n '/^gradient all-reduce/,/^$/p' "$tmp/run.out"
