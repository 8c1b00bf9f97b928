#!/bin/sh
# The main job on the default data: installs what is missing (apt-get), builds, and runs it.
# Until training lands, the main job is spartan-info: the OpenCL devices found, their profiles,
# the one SPARTAN_DEVICE selects, and the load-time kernel build with its binary cache.
# Usage: tools/demo.sh [spartan-info options]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/lib/deps.sh
. "$root/tools/lib/deps.sh"
spartan_install_deps
out=${SPARTAN_BUILD_ROOT:-$root}
cmake -S "$root" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out/build" -j "$(spartan_jobs)" >/dev/null
"$out/build/tools/spartan-info" "$@"
