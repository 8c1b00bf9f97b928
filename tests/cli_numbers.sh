#!/bin/sh
# Numbers on the command lines of spartan-train, spartan-bench and spartan-info: a value that is
# not a plain decimal number in the option's range (a sign, junk, or too large for its type) is
# refused with exit status 2 and a message naming it, never wrapped into range.
# Usage: cli_numbers.sh SPARTAN_TRAIN SPARTAN_BENCH SPARTAN_INFO
set -u
train=$1 bench=$2 info=$3
failed=0

# refused VALUE COMMAND...: COMMAND exits 2 and its stderr names VALUE.
refused() {
    value=$1
    shift
    err=$(timeout 60 "$@" 2>&1 >/dev/null)
    rc=$?
    case "$err" in
    *"$value"*) named=1 ;;
    *) named=0 ;;
    esac
    if [ $rc -ne 2 ] || [ $named -ne 1 ]; then
        echo "FAIL: $* -> exit $rc: $err"
        failed=1
    fi
}

refused 4294967360 "$train" --batch 4294967360 # 2^32 + 64
refused 18446744073709551616 "$train" --seed 18446744073709551616
refused -1 "$train" --seed -1
refused 4294967297 "$train" --sample-every 4294967297
refused 4294967297 "$train" --epochs 4294967297
refused +5 "$train" --limit +5
refused 1 "$train" --dropout 1
refused -0.1 "$train" --dropout -0.1
refused 0.99999999999 "$train" --dropout 0.99999999999 # 1.0 as a float
refused block "$train" --dropout-kind block
refused 1 "$train" --channel-dropout 1
refused -0.5 "$train" --channel-dropout -0.5
refused 4294967297 "$info" --runs 4294967297
refused 4294967296 "$bench" train --batch 4294967296
refused 4294967297 "$bench" train --sample-every 4294967297
refused 18446744073709551616 "$bench" train --seed 18446744073709551616
refused 99999999999999999999 "$bench" gemm --runs 99999999999999999999
refused 1 "$bench" train --dropout 1
refused -0.1 "$bench" train --dropout -0.1
refused +0.5 "$bench" train --dropout +0.5
refused 0.99999999999 "$bench" train --dropout 0.99999999999 # 1.0 as a float
refused block "$bench" train --dropout-kind block
refused 1 "$bench" train --channel-dropout 0,1
refused "at most 4" "$bench" train --channel-dropout 0,0.1,0.2,0.3,0.4
refused -5x3x3 "$bench" gemm --shape -5x3x3
refused 4294967297x1x1 "$bench" gemm --shape 4294967297x1x1
[ $failed -eq 0 ] && echo "all refused"
exit $failed
