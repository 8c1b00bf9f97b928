#!/bin/sh
# Runs every test: installs what is missing (apt-get), then
#   1. the normal build (RelWithDebInfo, -Werror, with MPI: spartan_dist) and all its tests on
#      POCL, the data-parallel ones under mpirun with two ranks,
#   2. the same kernel tests on Oclgrind with its checks on (a report fails the run),
#   3. the kernel and nn suites on Mesa's rusticl/llvmpipe, a third implementation (when
#      mesa-opencl-icd could be installed; its .icd files are moved out of /etc/OpenCL/vendors,
#      the tests give it a vendors directory of their own),
#   4. an ASan+UBSan build and its tests (Oclgrind and rusticl excluded: the oclgrind wrapper
#      cannot run ASan, and rusticl's own leaks are not ours; the MPI test without the leak
#      check),
#   5. the layering check, and an application outside the tree built against an installed
#      copy through find_package(spartan) and through pkg-config (shared and static), as are
#      the examples (examples/).
# Usage: tools/test.sh [--quick]   (--quick: step 1 only)
# Build trees: build/, build-asan/, build-embed/ under the checkout (SPARTAN_BUILD_ROOT moves them).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/lib/deps.sh
. "$root/tools/lib/deps.sh"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

spartan_install_deps
jobs=$(spartan_jobs)
out=${SPARTAN_BUILD_ROOT:-$root}
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$1" "$(($(date +%s) - start))"; }

# Tests use their own kernel cache (build/tests/kernel-cache) and never the user's.
step "normal build"
# with MPI (SPARTAN_WITH_MPI): the data-parallel tests (dist, cli_dist) run under mpirun -np 2
cmake -S "$root" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARTAN_WITH_MPI=ON >/dev/null
cmake --build "$out/build" -j "$jobs"
step "tests on POCL"
ctest --test-dir "$out/build" --output-on-failure -j "$jobs" -LE "oclgrind|rusticl"
step "kernel tests on POCL without the tuning entries (SPARTAN_TUNING=off)"
# The run above used the shipped tuning entry for this CPU where one matches (tuning/*.json):
# the kernels must pass with the built-in table alone too. Where none matches, the run above
# was the table's already. (No warm-cache fixture: the tests build what they ask for.)
if env "OCL_ICD_VENDORS=$out/build/tests/icd" "SPARTAN_CACHE_DIR=$out/build/tests/kernel-cache" \
    SPARTAN_DEVICE=pocl "$out/build/tools/spartan-info" | grep -q "tuned by *shipped"; then
    SPARTAN_TUNING=off ctest --test-dir "$out/build" --output-on-failure -j "$jobs" -L kernel \
        -LE "oclgrind|rusticl" -FA warm_pocl
else
    echo "test.sh: no shipped tuning entry matches this device: the run above had none"
fi
step "kernel tests on Oclgrind"
ctest --test-dir "$out/build" --output-on-failure -j "$jobs" -L oclgrind
[ $quick = 1 ] && { step "done (quick)"; exit 0; }

step "kernel and nn tests on rusticl/llvmpipe"
if ctest --test-dir "$out/build" -N -L rusticl | grep -q "Total Tests: [1-9]"; then
    ctest --test-dir "$out/build" --output-on-failure -j "$jobs" -L rusticl
else
    echo "test.sh: Mesa's rusticl is not installed (mesa-opencl-icd): its tests did NOT run"
fi

step "layering"
"$root/tools/check_layers.sh"

step "ASan+UBSan build"
cmake -S "$root" -B "$out/build-asan" -DCMAKE_BUILD_TYPE=Debug \
    -DSPARTAN_SANITIZE=address,undefined -DSPARTAN_WITH_MPI=ON \
    -DSPARTAN_TEST_CACHE_DIR="$out/build/tests/kernel-cache" >/dev/null
cmake --build "$out/build-asan" -j "$jobs"
step "tests under ASan+UBSan"
# LeakSanitizer: only leaks inside the OpenCL drivers (POCL, LLVM, the ICD loader) are
# suppressed; a leak with our frames on top still fails. intercept_tls_get_addr=0: GCC 12's
# runtime records a bogus dynamic-TLS range for a driver library loaded with dlopen (seen with
# Oclgrind's runtime loaded beside POCL: "DTLS 7 at 0x522-0x800001624", then "Tracer caught
# signal 11" at exit); without the interceptor the leak check still scans every thread's stack
# and static TLS, and the drivers' dynamic TLS holds none of our pointers.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:intercept_tls_get_addr=0
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan_log="$out/build-asan/ctest-asan.log"
if ! ctest --test-dir "$out/build-asan" --output-on-failure -j "$jobs" -LE "oclgrind|rusticl|mpi" \
    >"$asan_log" 2>&1; then
    cat "$asan_log"
    exit 1
fi
tail -n 12 "$asan_log"
# The data-parallel library under mpirun (test_dist): ASan and UBSan on, the leak check off. Open
# MPI unloads its plugins at exit, and what they kept until then is reported with frames that no
# longer have names, which no suppression can tell from ours (the model's side of the exchange,
# the gradient hooks, is leak-checked by test_grad_hooks above, without MPI).
if ! ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" ctest --test-dir "$out/build-asan" \
    --output-on-failure -R "^dist$" >"$asan_log" 2>&1; then
    cat "$asan_log"
    exit 1
fi
tail -n 4 "$asan_log"
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

step "embedding: install, then find_package(spartan) and pkg-config"
prefix="$out/build-embed/prefix"
rm -rf "$out/build-embed"
cmake --install "$out/build" --prefix "$prefix" >/dev/null
cmake -S "$root/tests/embed" -B "$out/build-embed/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$out/build-embed/cmake" -j "$jobs" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name spartan.pc | head -1)")
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046  # pkg-config output is meant to split
cc -std=c11 -Wall -Wextra -Werror "$root/tests/embed/embed.c" -o "$out/build-embed/embed_pc" \
    $(pkg-config --cflags --libs spartan) -Wl,-rpath,"$(pkg-config --variable=libdir spartan)"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$root/tests/embed/embed.c" -o "$out/build-embed/embed_pc_static" \
    $(pkg-config --cflags spartan) "$(pkg-config --variable=libdir spartan)/libspartan.a" \
    $(pkg-config --static --libs-only-l spartan | sed 's/-lspartan//')
icd="OCL_ICD_VENDORS=$out/build/tests/icd"
cache="SPARTAN_CACHE_DIR=$out/build/tests/kernel-cache"
for exe in cmake/embed cmake/embed_static embed_pc embed_pc_static; do
    echo "--- $exe"
    env "$icd" "$cache" "$out/build-embed/$exe"
done
# examples/ builds the same way (its CMakeLists.txt finds the installed copy on its own); its
# training example runs briefly, as the example test does in the tree
cmake -S "$root/examples" -B "$out/build-embed/examples" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS=-Werror >/dev/null
cmake --build "$out/build-embed/examples" -j "$jobs" >/dev/null
echo "--- examples/train_cnn"
env "$icd" "$cache" "$out/build-embed/examples/train_cnn" --steps 30 --test-limit 500

step "all tests passed"
