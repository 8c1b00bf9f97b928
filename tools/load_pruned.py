#!/usr/bin/env python3
"""Loads a Spartan pruned export into the PyTorch model of tools/pytorch_train.py and prints its
test accuracy on Fashion-MNIST and each layer's density; with --compare CHECKPOINT, checks it bit
for bit against the weights of a dense checkpoint instead, with numpy alone.

The export (spartan-train --export FILE, spartan_model_export_pruned; include/spartan/checkpoint.h
and docs/architecture.md describe it) holds for every parameter P two tensors, "P.indices" (I32:
the flat positions of its non-zero elements in its native layout, strictly ascending) and
"P.values" (F32: those elements), and its dense shape in the metadata entry "P.shape"; every
element not listed is +0.0. The file is read by hand (json + numpy, with load_checkpoint.py's
reader), both checksums are verified, every parameter's pair is checked (dtypes, equal lengths,
positions ascending and in range) and rebuilt dense, and its layouts are converted to PyTorch's
exactly as load_checkpoint.py converts a checkpoint's.

Run by hand (torch is not a dependency of the product; --compare needs only numpy), e.g.
    build/apps/spartan-train --model mlp --epochs 3 --dropback-density 0.1 \\
        --export mlp.pruned.safetensors --save mlp.safetensors
    /usr/bin/python3 tools/load_pruned.py mlp.pruned.safetensors
    python3 tools/load_pruned.py mlp.pruned.safetensors --compare mlp.safetensors
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_checkpoint import (eval_options, evaluate, fitting_model,  # noqa: E402
                             read_checkpoint, read_safetensors, torch_state, verify)

FORMAT = "spartan-pruned-1"


def dense_shape(path, meta, name):
    """Parameter name's dense shape, from its "P.shape" entry."""
    try:
        shape = json.loads(meta[name + ".shape"])
    except (KeyError, ValueError):
        sys.exit(f"{path}: no valid shape entry \"{name}.shape\"")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        sys.exit(f"{path}: \"{name}.shape\" is {meta[name + '.shape']!r}, not a list of sizes")
    return shape


def read_pruned(path):
    """(metadata, {P: dense float32 array} in file order) of an export, everything checked."""
    meta, tensors, raw, header_end = read_safetensors(path)
    if meta.get("format") != FORMAT:
        sys.exit(f"{path}: format {meta.get('format')!r}: not a Spartan pruned export ({FORMAT})")
    verify(path, meta, raw, header_end)
    names = [k[:-len(".indices")] for k in tensors if k.endswith(".indices")]
    paired = {n + s for n in names for s in (".indices", ".values")}
    if set(tensors) != paired:
        sys.exit(f"{path}: tensors without their pair: {', '.join(sorted(set(tensors) ^ paired))}")
    shapes = {k[:-len(".shape")] for k in meta if k.endswith(".shape")}
    if shapes != set(names):
        sys.exit(f"{path}: shape entries and parameters differ: "
                 f"{', '.join(sorted(shapes ^ set(names)))}")
    dense = {}
    for name in names:
        pos, val = tensors[name + ".indices"], tensors[name + ".values"]
        shape = dense_shape(path, meta, name)
        size = int(np.prod(shape, dtype=np.int64))
        if pos.dtype != np.dtype("<i4") or val.dtype != np.dtype("<f4"):
            sys.exit(f"{path}: {name}: indices {pos.dtype}, values {val.dtype}; expected I32, F32")
        if pos.ndim != 1 or val.shape != pos.shape:
            sys.exit(f"{path}: {name}: indices {pos.shape} and values {val.shape} differ")
        if len(pos) and (pos[0] < 0 or pos[-1] >= size or np.any(np.diff(pos) <= 0)):
            sys.exit(f"{path}: {name}: the indices are not strictly ascending in [0, {size})")
        flat = np.zeros(size, np.float32)
        flat[pos] = val
        dense[name] = flat.reshape(shape)
    return meta, dense


def print_density(dense):
    """Each layer's non-zero elements (weight and bias together), then the model's."""
    layers = {}
    for name, t in dense.items():
        n, k = layers.get(name.rsplit(".", 1)[0], (0, 0))
        layers[name.rsplit(".", 1)[0]] = (n + int(np.count_nonzero(t.view("<u4"))), k + t.size)
    for layer, (n, k) in layers.items():
        print(f"  {layer:<8} {n:>10,} of {k:>10,} non-zero ({100 * n / max(k, 1):5.1f} %)")
    n, k = (sum(v) for v in zip(*layers.values())) if layers else (0, 0)
    print(f"  {'total':<8} {n:>10,} of {k:>10,} non-zero ({100 * n / max(k, 1):5.1f} %)")


def compare(path, meta, dense, checkpoint):
    """Exits non-zero unless every parameter equals the checkpoint's bit for bit."""
    cmeta, ctensors = read_checkpoint(checkpoint)
    if cmeta.get("architecture") != meta.get("architecture"):
        sys.exit(f"{path}: another architecture than {checkpoint}")
    params = {k: v for k, v in ctensors.items() if not k.endswith(".momentum")}
    if set(params) != set(dense):
        sys.exit(f"{path}: parameters differ from {checkpoint}'s: "
                 f"{', '.join(sorted(set(params) ^ set(dense)))}")
    bad = []
    for name, t in dense.items():
        want = params[name]
        if t.shape != want.shape:
            bad.append(f"{name}: shape {list(t.shape)}, the checkpoint's {list(want.shape)}")
            continue
        differ = np.flatnonzero(t.view("<u4").ravel() != want.view("<u4").ravel())
        if len(differ):
            i = int(differ[0])
            bad.append(f"{name}: {len(differ)} of {t.size} elements differ, the first at {i}: "
                       f"{t.ravel()[i]!r} against {want.ravel()[i]!r}")
    if bad:
        print("\n".join(f"  {b}" for b in bad))
        sys.exit(f"{path}: differs from {checkpoint} (steps {meta.get('step')} and "
                 f"{cmeta.get('step')}) in {len(bad)} of {len(dense)} parameters")
    total = sum(t.size for t in dense.values())
    print(f"{path}: equal to {checkpoint} bit for bit ({len(dense)} parameters, {total:,} "
          f"elements, step {meta.get('step')}; checksums verified)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export")
    ap.add_argument("--compare", metavar="CHECKPOINT",
                    help="check the weights bit for bit against a spartan-train --save "
                         "checkpoint (numpy only; exit status 1 on any difference)")
    eval_options(ap)
    a = ap.parse_args()

    meta, dense = read_pruned(a.export)
    print(f"{a.export}: {len(dense)} parameters at step {meta.get('step')} (checksums verified)")
    print_density(dense)
    if a.compare:
        compare(a.export, meta, dense, a.compare)
        return
    name, net = fitting_model(a.export, torch_state(meta, dense), a.model)
    count, loss, acc = evaluate(net, a.data, a.test_limit)
    measured = meta.get("test_accuracy")
    print(f"{a.export}: {name}, {count} test images: loss {loss:.4f} accuracy {100 * acc:.2f}%"
          + (f" (spartan-train measured {100 * float(measured):.2f}%)" if measured else ""))


if __name__ == "__main__":
    main()
