#!/usr/bin/env python3
"""Writes the PyTorch parity fixture of tests/test_parity.c: lenet5's initial weights, one batch
of Fashion-MNIST images, and the loss and every parameter's gradient after one forward and
backward pass (no update), all in Spartan's native layouts and names, as a safetensors file.

Run by hand (torch is not a dependency of the product); the fixture is committed:
    /usr/bin/python3 tools/pytorch_parity.py [--out tests/fixtures/lenet5_parity.safetensors]

The weights are PyTorch's He-normal draws (float32) with small random biases (so the biases'
paths matter too); the reference loss and gradients are computed in float64 from those float32
values and rounded to float32. For each gradient the fixture also holds the scale of its terms,
"<param>.grad.scale": the largest sum of |x| |dy| over the reduction that produces an element
(the same gradient computed from absolute values), and "loss.scale" bounds the loss's terms;
the test derives its tolerances from them. Tensors (F32):
    conv1.weight [5, 5, 1, 6], conv1.bias [6], conv2.weight [5, 5, 6, 16], conv2.bias [16],
    fc1.weight [400, 120] (inputs in (h, w, c) order), fc1.bias, fc2.weight [120, 84], fc2.bias,
    fc3.weight [84, 10], fc3.bias, and "<param>.grad" of each in the same shape;
    images [8, 28, 28, 1] (NHWC, pixel / 255), labels [8] (class indices as floats), loss [1].
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_train import load, model  # noqa: E402

NAMES = ["conv1", "conv2", "fc1", "fc2", "fc3"]
FC1_INPUT = (5, 5, 16)  # the h x w x c map lenet5's first fully connected layer flattens


def native(t, kind, hwc=None):
    """A weight in PyTorch's layout to Spartan's: conv [cout, cin, kh, kw] -> [kh, kw, cin,
    cout]; fc [out, in] -> [in, out], with `in` reordered from (c, h, w) to (h, w, c)."""
    if kind == "conv":
        return t.permute(2, 3, 1, 0)
    h, w, c = hwc or (1, 1, t.shape[1])
    return t.reshape(t.shape[0], c, h, w).permute(2, 3, 1, 0).reshape(h * w * c, t.shape[0])


def write_safetensors(path, tensors, meta):
    header, blobs, at = {"__metadata__": meta}, [], 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def fixture_args(description, fixture, batch, seed):
    """The parity scripts' command line: --out (tests/fixtures/FIXTURE), --data, --batch, --seed."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "tests", "fixtures", fixture))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--seed", type=int, default=seed)
    return ap.parse_args()


def main():
    a = fixture_args(__doc__.splitlines()[0], "lenet5_parity.safetensors", 8, 5)

    torch.manual_seed(a.seed)
    net = model("lenet5")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in layers:
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.uniform_(m.bias, -0.1, 0.1)
    x, y = load(a.data, "train")
    x, y = x[:a.batch], y[:a.batch]

    # The reference in float64 from the float32 values; each layer's input and output gradient
    # are kept for the scales.
    net64 = model("lenet5").double()
    net64.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    layers64 = [m for m in net64.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    seen = {}

    def keep(module, inputs, output):
        seen[module] = {"x": inputs[0].detach()}
        output.register_hook(lambda g: seen[module].__setitem__("dy", g.detach()))

    for m in layers64:
        m.register_forward_hook(keep)
    logits = net64(x.double())
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()

    tensors, grads, scales = [], [], []
    for name, m, m64 in zip(NAMES, layers, layers64):
        kind = "conv" if isinstance(m, nn.Conv2d) else "fc"
        hwc = FC1_INPUT if name == "fc1" else None
        ax, ady = seen[m64]["x"].abs(), seen[m64]["dy"].abs()
        if kind == "conv":
            wscale = torch.nn.grad.conv2d_weight(ax, m64.weight.shape, ady, m64.stride,
                                                 m64.padding)
            bscale = ady.sum((0, 2, 3))
        else:
            wscale = ady.t() @ ax.flatten(1)
            bscale = ady.sum(0)
        tensors += [(f"{name}.weight", native(m.weight.detach(), kind, hwc)),
                    (f"{name}.bias", m.bias.detach())]
        grads += [(f"{name}.weight.grad", native(m64.weight.grad, kind, hwc)),
                  (f"{name}.bias.grad", m64.bias.grad)]
        scales += [(f"{name}.weight.grad.scale", wscale.max().reshape(1)),
                   (f"{name}.bias.grad.scale", bscale.max().reshape(1))]
    # The loss of an image is log(sum exp(z - max z)) - (z_label - max z): its terms are
    # bounded by 2 max|z| + log(classes) + 1, with max|z| bounded by the logits' own terms.
    fc3 = layers64[-1]
    zterms = seen[fc3]["x"].abs() @ fc3.weight.abs().t() + fc3.bias.abs()
    loss_scale = 2 * zterms.max() + np.log(logits.shape[1]) + 1
    tensors += grads + scales + [
        ("images", x.permute(0, 2, 3, 1)), ("labels", y.float()),
        ("loss", loss.detach().reshape(1)), ("loss.scale", loss_scale.detach().reshape(1))]
    tensors = [(n, t.detach().numpy() if torch.is_tensor(t) else t) for n, t in tensors]
    meta = {"source": "tools/pytorch_parity.py", "torch": torch.__version__,
            "model": "lenet5", "batch": str(a.batch), "seed": str(a.seed),
            "images": f"the first {a.batch} Fashion-MNIST training images, pixel / 255, NHWC",
            "reference": "float64 forward and backward from the float32 weights and images, "
                         "mean cross-entropy over the batch, rounded to float32"}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_safetensors(a.out, tensors, meta)
    print(f"{a.out}: {os.path.getsize(a.out)} bytes, loss {loss.item():.6f}, labels "
          f"{y.tolist()}")


if __name__ == "__main__":
    main()
