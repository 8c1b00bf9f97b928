#!/bin/sh
# Checks the layering of runtime/ (docs/architecture.md): a file in one layer (its folder and the
# folders under it) may include only headers of its own layer or of layers before it in this
# order; and io/ reaches the model only through the public headers (spartan/nn.h), never nn/'s
# private ones; dist/ (built apart, with MPI) only through the public headers. Prints every violation.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
order="core device program tensor ops policy nn io dist"
rank() {
    i=0
    for l in $order; do
        [ "$l" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
    echo -1
}
bad=0
for dir in "$root"/runtime/*/; do
    layer=$(basename "$dir")
    r=$(rank "$layer")
    if [ "$r" -lt 0 ]; then
        echo "check_layers: runtime/$layer is not a known layer ($order)" >&2
        bad=1
        continue
    fi
    for f in $(find "$dir" -name '*.[ch]' | sort); do
        # shellcheck disable=SC2013  # layer names are single words
        for inc in $(sed -n 's|^#include "\([a-z_]*\)/.*|\1|p' "$f" | sort -u); do
            [ "$inc" = spartan ] && continue
            ir=$(rank "$inc")
            if [ "$layer" = dist ]; then
                echo "check_layers: ${f#"$root"/} (dist) includes $inc/: it uses the public headers only" >&2
                bad=1
            elif [ "$layer" = io ] && [ "$inc" = nn ]; then
                echo "check_layers: ${f#"$root"/} (io) includes nn/: use the public spartan/nn.h" >&2
                bad=1
            elif [ "$ir" -lt 0 ] || [ "$ir" -gt "$r" ]; then
                echo "check_layers: ${f#"$root"/} ($layer) includes $inc/" >&2
                bad=1
            fi
        done
    done
done
[ $bad = 0 ] && echo "check_layers: runtime/ respects $order"
exit $bad
