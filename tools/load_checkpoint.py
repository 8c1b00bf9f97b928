#!/usr/bin/env python3
"""Loads a Spartan checkpoint into the PyTorch model of tools/pytorch_train.py and prints its
test accuracy on Fashion-MNIST: the proof that a checkpoint is usable outside Spartan.

The safetensors format is read by hand (json + numpy; the `safetensors` package is not needed),
and both checksums of the checkpoint are verified: "sha256" (the data section) and
"header_sha256" (the header, with that value's 64 hex digits read as zeros). Layouts are
converted from Spartan's native ones (the checkpoint's "layout" entry says the same):
    conv weight [kh, kw, cin, cout] -> Conv2d.weight [cout, cin, kh, kw]
    fc weight   [in, out]           -> Linear.weight [out, in], where `in` of a layer that takes
                                       an h x w x c map is reordered from (h, w, c) to PyTorch's
                                       flattening order (c, h, w)
Run by hand (torch is not a dependency of the product), e.g.
    build/apps/spartan-train --model mlp --epochs 1 --save run.safetensors
    /usr/bin/python3 tools/load_checkpoint.py run.safetensors
The reading and checking helpers need numpy alone (torch is imported by the functions that use
it): tools/load_pruned.py imports them.
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """(metadata dict, {name: numpy array}, raw bytes, header end); checks the byte ranges."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    n = struct.unpack("<Q", raw[:8])[0]
    if n > len(raw) - 8:
        sys.exit(f"{path}: truncated: the header length is {n}, the file has {len(raw) - 8}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, at = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = e["data_offsets"]
        dtype = np.dtype(DTYPES[e["dtype"]])
        if begin != at or end - begin != dtype.itemsize * int(np.prod(e["shape"], dtype=np.int64)):
            sys.exit(f"{path}: tensor {name}: bad data_offsets {begin}, {end}")
        tensors[name] = np.frombuffer(data, dtype, count=(end - begin) // dtype.itemsize,
                                      offset=begin).reshape(e["shape"])
        at = end
    if at != len(data):
        sys.exit(f"{path}: {len(data) - at} bytes after the last tensor")
    return meta, tensors, raw, 8 + n


def verify(path, meta, raw, header_end):
    if hashlib.sha256(raw[header_end:]).hexdigest() != meta.get("sha256"):
        sys.exit(f"{path}: the data's checksum does not match: the tensor data are corrupt")
    key = b'"header_sha256":"'
    at = raw.find(key, 0, header_end) + len(key)
    zeroed = raw[:at] + b"0" * 64 + raw[at + 64:header_end]
    if at < len(key) or hashlib.sha256(zeroed).hexdigest() != meta.get("header_sha256"):
        sys.exit(f"{path}: the header's checksum does not match: the header is corrupt")


def gemm_layers(architecture):
    """[(name, kind, (h, w, c) of the input before any flatten)] of the conv and fc layers."""
    fields = architecture.split(";")
    cur = tuple(int(v) for v in fields[0].split("=")[1].split("x"))
    out = []
    for field in fields[2:]:
        name, kind, shapes = field.split(":")
        kind = kind.split("(")[0]
        if kind in ("conv", "fc"):
            out.append((name, kind, cur))
        if kind != "flatten":  # a flatten keeps the (h, w, c) order of what it flattens
            cur = tuple(int(v) for v in shapes.split("->")[1].split("x"))
    return out


def torch_state(meta, tensors):
    """The checkpoint's weights in PyTorch's layouts, in layer order: [(weight, bias)]."""
    import torch
    params = []
    for name, kind, (h, w, c) in gemm_layers(meta["architecture"]):
        wt, b = tensors[name + ".weight"], tensors[name + ".bias"]
        if kind == "conv":
            wt = wt.transpose(3, 2, 0, 1)
        else:
            n = wt.shape[1]
            wt = wt.reshape(h, w, c, n).transpose(3, 2, 0, 1).reshape(n, c * h * w)
        params.append((torch.from_numpy(np.ascontiguousarray(wt)),
                       torch.from_numpy(b.copy())))
    return params


def into_model(name, params):
    """The preset `name` of pytorch_train.py with params, or None when the shapes differ."""
    import torch
    import torch.nn as nn
    from pytorch_train import model
    net = model(name)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if len(layers) != len(params) or any(
            m.weight.shape != w.shape or m.bias.shape != b.shape
            for m, (w, b) in zip(layers, params)):
        return None
    with torch.no_grad():
        for m, (w, b) in zip(layers, params):
            m.weight.copy_(w)
            m.bias.copy_(b)
    return net


def fitting_model(path, params, name=None):
    """(name, net): the preset `name`, or the first of mlp, lenet5, vgg-small, with params."""
    names = [name] if name else ["mlp", "lenet5", "vgg-small"]
    net = next(((n, m) for n in names if (m := into_model(n, params)) is not None), None)
    if net is None:
        sys.exit(f"{path}: the weights fit none of {', '.join(names)}")
    return net


def evaluate(net, data, test_limit=0):
    """(images, mean loss, accuracy) of net on the Fashion-MNIST test set in directory data."""
    import torch
    import torch.nn as nn
    from pytorch_train import load
    tx, ty = load(data, "test")
    if test_limit:
        tx, ty = tx[:test_limit], ty[:test_limit]
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(tx[i:i + 1000]) for i in range(0, len(tx), 1000)])
    loss = nn.functional.cross_entropy(logits.double(), ty).item()
    acc = (logits.argmax(1) == ty).double().mean().item()
    return len(tx), loss, acc


def eval_options(ap):
    """The options of the PyTorch evaluation, shared with load_pruned.py."""
    ap.add_argument("--model", help="mlp, lenet5 or vgg-small (default: the one that fits)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--test-limit", type=int, default=0)


def read_checkpoint(path):
    """(metadata, {name: array}) of a Spartan checkpoint, both checksums verified."""
    meta, tensors, raw, header_end = read_safetensors(path)
    if meta.get("format") != "spartan-checkpoint-1":
        sys.exit(f"{path}: not a Spartan checkpoint")
    verify(path, meta, raw, header_end)
    return meta, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    eval_options(ap)
    a = ap.parse_args()

    meta, tensors = read_checkpoint(a.checkpoint)
    name, net = fitting_model(a.checkpoint, torch_state(meta, tensors), a.model)
    count, loss, acc = evaluate(net, a.data, a.test_limit)
    print(f"{a.checkpoint}: {name} at step {meta.get('step')} (checksums verified), "
          f"{count} test images: loss {loss:.4f} accuracy {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
