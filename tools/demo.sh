#!/bin/sh
# The main job on the default data: installs what is missing (apt-get), builds, and trains.
# Default: four epochs of lenet5 on Fashion-MNIST (/usr/share/datasets/fashion-mnist), each GEMM
# pass on the path the adaptive policy picks, under a minute on a 2-core CPU, then the per-layer
# report (sparsity of each pass, path taken, device time per pass). Any arguments replace the defaults and go to
# spartan-train (e.g. tools/demo.sh --model vgg-small --epochs 4 --policy dense).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/lib/deps.sh
. "$root/tools/lib/deps.sh"
spartan_install_deps
out=${SPARTAN_BUILD_ROOT:-$root}
cmake -S "$root" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out/build" -j "$(spartan_jobs)" >/dev/null
"$out/build/tools/spartan-info"
echo
if [ $# -eq 0 ]; then
    set -- --model lenet5 --epochs 4
fi
exec "$out/build/apps/spartan-train" "$@"
