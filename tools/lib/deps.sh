# shellcheck shell=sh
# Shared by tools/test.sh and tools/demo.sh (sourced, not run): installs with apt-get the
# Debian packages the build, the tests and the demo need, and only those that are missing.
# With sudo when not root. Set SPARTAN_NO_INSTALL=1 to skip (then a missing package shows
# up as a configure error).

SPARTAN_DEBS="cmake pkg-config gcc make ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers
pocl-opencl-icd clinfo libclblast-dev check zlib1g-dev libcjson-dev libopenblas-dev oclgrind
dataset-fashion-mnist gnuplot-nox"

spartan_install_deps() {
    if [ "${SPARTAN_NO_INSTALL:-0}" = 1 ]; then
        return 0
    fi
    missing=""
    for pkg in $SPARTAN_DEBS; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $pkg"
        fi
    done
    if [ -z "$missing" ]; then
        return 0
    fi
    echo "spartan: installing missing packages:$missing"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "spartan: need root or sudo to install:$missing" >&2
            return 1
        fi
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # A stale package index makes apt-get install fail on a fresh machine; update once first.
    $sudo apt-get update -qq || return 1
    # shellcheck disable=SC2086  # the list is meant to split
    $sudo apt-get install -y -qq --no-install-recommends $missing || return 1
}

# Number of parallel build jobs: the cores this process may use.
spartan_jobs() {
    nproc 2>/dev/null || echo 2
}
