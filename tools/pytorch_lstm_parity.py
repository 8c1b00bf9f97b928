#!/usr/bin/env python3
"""Writes the LSTM parity fixture of tests/test_parity.c: a model "input 28x28x1, lstm 32, fc 10"
(Fashion-MNIST read row by row) with PyTorch's nn.LSTM initial weights, one batch of images, and
the loss and every parameter's gradient after one forward and backward pass (no update), in
Spartan's layouts and names, as a safetensors file.

Run by hand (torch is not a dependency of the product); the fixture is committed:
    /usr/bin/python3 tools/pytorch_lstm_parity.py [--out tests/fixtures/lstm_parity.safetensors]

Layouts: lstm1.weight_ih [28, 128] (nn.LSTM's weight_ih_l0 [128, 28] transposed), lstm1.weight_hh
[32, 128], lstm1.bias [128] (bias_ih_l0 + bias_hh_l0, summed in float32 as Spartan holds it),
fc1.weight [32, 10], fc1.bias [10]; "<param>.grad" of each; images [4, 28, 28, 1] (pixel / 255),
labels [4], loss [1]. The reference is nn.LSTM in float64 from those float32 values (the summed
bias as bias_ih, bias_hh zero), checked against the same cell unrolled by hand, whose gate
pre-activations give the scales: "<param>.grad.scale" is the largest sum over an element's
reduction of the terms' absolute values (|h_{t-1}| |dG_t| for weight_hh, |x_t| |dG_t| for
weight_ih, |dG_t| for the bias, |h_T| |dy| and |dy| for fc1), "loss.scale" bounds the loss's
terms, "dgates.scale" the largest |dG| (the test's chain lengths use it).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_parity import fixture_args, write_safetensors  # noqa: E402
from pytorch_train import load  # noqa: E402

H, T, F = 32, 28, 28


def main():
    a = fixture_args(__doc__.splitlines()[0], "lstm_parity.safetensors", 4, 7)

    torch.manual_seed(a.seed)
    lstm, fc = nn.LSTM(F, H, batch_first=True), nn.Linear(H, 10)
    nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
    nn.init.uniform_(fc.bias, -0.1, 0.1)
    bias32 = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()  # float32, as Spartan holds it
    x, y = load(a.data, "train")
    x, y = x[:a.batch], y[:a.batch]
    seq = x.squeeze(1).double()  # [B, T, F]

    # float64 reference through nn.LSTM
    l64, f64 = nn.LSTM(F, H, batch_first=True).double(), nn.Linear(H, 10).double()
    with torch.no_grad():
        l64.weight_ih_l0.copy_(lstm.weight_ih_l0.double())
        l64.weight_hh_l0.copy_(lstm.weight_hh_l0.double())
        l64.bias_ih_l0.copy_(bias32.double())
        l64.bias_hh_l0.zero_()
        f64.weight.copy_(fc.weight.double())
        f64.bias.copy_(fc.bias.double())
    out, _ = l64(seq)
    logits = f64(out[:, -1])
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()

    # the same cell unrolled, for the gate gradients (the scales) and as a check of the above
    Wi = lstm.weight_ih_l0.double().detach().requires_grad_()
    Wh = lstm.weight_hh_l0.double().detach().requires_grad_()
    b = bias32.double().requires_grad_()
    h = torch.zeros(a.batch, H, dtype=torch.float64)
    c = torch.zeros_like(h)
    pres, hs = [], [h]
    for t in range(T):
        pre = seq[:, t] @ Wi.t() + h @ Wh.t() + b
        pre.retain_grad()
        pres.append(pre)
        i, f, g, o = pre.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    hT = hs[-1]
    hT.retain_grad()
    logits2 = hT @ f64.weight.detach().t() + f64.bias.detach()
    loss2 = nn.functional.cross_entropy(logits2, y)
    loss2.backward()
    assert abs(loss2.item() - loss.item()) < 1e-12, (loss2.item(), loss.item())
    assert torch.allclose(hT, out[:, -1], atol=1e-12)
    assert torch.allclose(Wh.grad, l64.weight_hh_l0.grad, atol=1e-12)

    dg = [p.grad.abs() for p in pres]
    hs = [v.detach() for v in hs]
    wh_scale = sum(hs[t].abs().t() @ dg[t] for t in range(T))      # [H, 4H]
    wi_scale = sum(seq[:, t].abs().t() @ dg[t] for t in range(T))   # [F, 4H]
    b_scale = sum(g.sum(0) for g in dg)
    dy = torch.softmax(logits, 1) - nn.functional.one_hot(y, 10).double()
    dy = dy.abs() / a.batch
    fcw_scale = hT.detach().abs().t() @ dy
    fcb_scale = dy.sum(0)
    hT = hT.detach()
    zterms = hT.abs() @ f64.weight.detach().abs().t() + f64.bias.detach().abs()
    loss_scale = 2 * zterms.max() + np.log(10) + 1

    tensors = [
        ("lstm1.weight_ih", lstm.weight_ih_l0.detach().t()),
        ("lstm1.weight_hh", lstm.weight_hh_l0.detach().t()),
        ("lstm1.bias", bias32),
        ("fc1.weight", fc.weight.detach().t()),
        ("fc1.bias", fc.bias.detach()),
        ("lstm1.weight_ih.grad", l64.weight_ih_l0.grad.t()),
        ("lstm1.weight_hh.grad", l64.weight_hh_l0.grad.t()),
        ("lstm1.bias.grad", l64.bias_ih_l0.grad),
        ("fc1.weight.grad", f64.weight.grad.t()),
        ("fc1.bias.grad", f64.bias.grad),
        ("lstm1.weight_ih.grad.scale", wi_scale.max().reshape(1)),
        ("lstm1.weight_hh.grad.scale", wh_scale.max().reshape(1)),
        ("lstm1.bias.grad.scale", b_scale.max().reshape(1)),
        ("fc1.weight.grad.scale", fcw_scale.max().reshape(1)),
        ("fc1.bias.grad.scale", fcb_scale.max().reshape(1)),
        ("dgates.scale", max(g.max() for g in dg).reshape(1)),
        ("images", x.permute(0, 2, 3, 1)), ("labels", y.float()),
        ("loss", loss.detach().reshape(1)), ("loss.scale", loss_scale.detach().reshape(1))]
    tensors = [(n, t.detach().float().contiguous().numpy()) for n, t in tensors]
    meta = {"source": "tools/pytorch_lstm_parity.py", "torch": torch.__version__,
            "model": "input 28x28x1, lstm 32, fc 10", "batch": str(a.batch),
            "seed": str(a.seed),
            "reference": "float64 nn.LSTM forward and backward from the float32 weights, mean "
                         "cross-entropy over the batch, rounded to float32"}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_safetensors(a.out, tensors, meta)
    print(f"{a.out}: {os.path.getsize(a.out)} bytes, loss {loss.item():.6f}, labels "
          f"{y.tolist()}")


if __name__ == "__main__":
    main()
