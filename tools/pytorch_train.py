#!/usr/bin/env python3
"""The PyTorch line of the training comparison: the same presets as spartan-train (mlp, lenet5,
vgg-small, mlp-dropout: PyTorch's Bernoulli nn.Dropout, --dropout overriding its rate; lstm: nn.LSTM
with its own initialisation, as Spartan's), the same data (Fashion-MNIST IDX files, pixels / 255), batch, SGD with momentum and
weight decay, cosine learning-rate decay and He-normal initialisation, on the CPU.

Run by hand (torch is not a dependency of the product), e.g.
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/pytorch_train.py --model vgg-small --epochs 1
OPENBLAS_NUM_THREADS=1 keeps OpenBLAS's threads from fighting PyTorch's for the cores; --threads
sets PyTorch's (default 2). Prints one line per epoch (train loss and accuracy, test accuracy,
seconds, images/s) and, with --json FILE, writes the records spartan-train's --metrics writes.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {payload.size} bytes of data, header says {np.prod(dims)}")
    return payload.reshape(dims)


def load(directory, split):
    prefix = "train" if split == "train" else "t10k"
    def find(kind):
        for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return path
        sys.exit(f"pytorch_train: no {prefix}-{kind}-ubyte[.gz] in {directory}")
    images = read_idx(find("images-idx3")).astype(np.float32) / 255.0
    labels = read_idx(find("labels-idx1")).astype(np.int64)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)


class LSTMNet(nn.Module):
    """The lstm preset: the image's 28 rows as time steps, the last hidden state to fc 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.lstm(x.squeeze(1))
        return self.fc(out[:, -1])


def model(name, dropout=None):
    if name == "lstm":
        return LSTMNet()
    if name == "mlp-dropout":
        p = 0.5 if dropout is None else dropout
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Dropout(p),
                             nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(p),
                             nn.Linear(1024, 10))
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                             nn.ReLU(), nn.Linear(512, 10))
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                             nn.Linear(84, 10))
    if name == "vgg-small":
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))
    sys.exit(f"pytorch_train: unknown model {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg-small")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--dropout", type=float, help="every dropout layer's rate")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x, y = load(a.data, "train")
    tx, ty = load(a.data, "test")
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    if a.test_limit:
        tx, ty = tx[:a.test_limit], ty[:a.test_limit]
    net = model(a.model, a.dropout)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum,
                          weight_decay=a.weight_decay)
    steps = len(x) // a.batch  # the last partial batch is dropped, as in spartan-train
    total = steps * a.epochs
    loss_fn = nn.CrossEntropyLoss()
    print(f"pytorch {torch.__version__}: {a.model}, batch {a.batch}, {steps} steps per epoch, "
          f"{a.threads} threads, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    records, done = [], 0
    for epoch in range(a.epochs):
        g = torch.Generator().manual_seed(a.seed * 1000 + epoch)
        order = torch.randperm(len(x), generator=g)
        net.train()
        t0, lsum, correct = time.perf_counter(), 0.0, 0
        for s in range(steps):
            for group in opt.param_groups:
                group["lr"] = 0.5 * a.lr * (1 + math.cos(math.pi * done / total))
            idx = order[s * a.batch:(s + 1) * a.batch]
            out = net(x[idx])
            loss = loss_fn(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            lsum += loss.item() * a.batch
            correct += (out.argmax(1) == y[idx]).sum().item()
            done += 1
        secs = time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            tc = sum((net(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item()
                     for i in range(0, len(tx), 1000))
        rec = {"model": a.model, "policy": "pytorch", "epoch": epoch + 1,
               "train_loss": lsum / (steps * a.batch), "train_acc": correct / (steps * a.batch),
               "test_acc": tc / len(tx), "seconds": secs,
               "images_per_s": steps * a.batch / secs}
        records.append(rec)
        print(f"epoch {epoch + 1}: train loss {rec['train_loss']:.4f} acc "
              f"{100 * rec['train_acc']:.2f}%  test acc {100 * rec['test_acc']:.2f}%  "
              f"{secs:.1f} s  {rec['images_per_s']:.0f} images/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=2)


if __name__ == "__main__":
    main()
