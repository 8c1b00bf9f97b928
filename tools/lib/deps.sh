# shellcheck shell=sh
# Shared by tools/test.sh and tools/demo.sh (sourced, not run): installs with apt-get the
# Debian packages the build, the tests and the demo need, and only those that are missing
# (python3-numpy: the cli_export test runs tools/load_pruned.py --compare; Open MPI: the tests
# build the MPI variant, SPARTAN_WITH_MPI, and run its tests under mpirun).
# With sudo when not root. Set SPARTAN_NO_INSTALL=1 to skip (then a missing package shows
# up as a configure error).

SPARTAN_DEBS="cmake pkg-config gcc make ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers
pocl-opencl-icd clinfo libclblast-dev check zlib1g-dev libcjson-dev libopenblas-dev oclgrind
dataset-fashion-mnist gnuplot-nox python3-numpy libopenmpi-dev openmpi-bin"

# Optional packages: the tests use them when they are there (Mesa's rusticl, a third OpenCL
# implementation the kernel and nn suites also run on); a failed install is reported, not fatal.
SPARTAN_OPTIONAL_DEBS="mesa-opencl-icd"

spartan_sudo() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 1
    fi
}

spartan_install_deps() {
    if [ "${SPARTAN_NO_INSTALL:-0}" = 1 ]; then
        return 0
    fi
    spartan_install_list "$SPARTAN_DEBS" || return 1
    if ! spartan_install_list "$SPARTAN_OPTIONAL_DEBS"; then
        echo "spartan: could not install $SPARTAN_OPTIONAL_DEBS: the tests that need it do not run" >&2
    fi
    spartan_hide_mesa_icds
}

# mesa-opencl-icd puts rusticl's and Clover's .icd files in /etc/OpenCL/vendors, where every
# program would see their platforms. The tests give rusticl a vendors directory of their own, so
# the package's files are moved aside (dpkg-divert: they stay aside through package upgrades).
spartan_hide_mesa_icds() {
    command -v dpkg-divert >/dev/null 2>&1 || return 0
    for icd in rusticl.icd mesa.icd; do
        [ -f "/etc/OpenCL/vendors/$icd" ] || continue
        spartan_sudo mkdir -p /etc/OpenCL/vendors-hidden-by-spartan &&
            spartan_sudo dpkg-divert --quiet --local --rename \
                --divert "/etc/OpenCL/vendors-hidden-by-spartan/$icd" \
                --add "/etc/OpenCL/vendors/$icd" ||
            echo "spartan: could not move /etc/OpenCL/vendors/$icd aside" >&2
    done
}

# Installs those of the packages in $1 that are missing.
spartan_install_list() {
    missing=""
    for pkg in $1; do
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
    if [ "${spartan_apt_updated:-0}" != 1 ]; then
        $sudo apt-get update -qq || return 1
        spartan_apt_updated=1
    fi
    # shellcheck disable=SC2086  # the list is meant to split
    $sudo apt-get install -y -qq --no-install-recommends $missing || return 1
}

# Number of parallel build jobs: the cores this process may use.
spartan_jobs() {
    nproc 2>/dev/null || echo 2
}
