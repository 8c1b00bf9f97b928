#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: the gradient bytes per step of each preset, the time
of an all-reduce of them over a link of given bandwidth and latency, and from that the expected
efficiency of data-parallel training on 2 to 64 devices; the same for sparse (compressed) gradient
exchanges. Every table of the document's "Scaling model" section is printed by this script, in
the document's order; the assumptions (links, step times, bucket size) are the constants below.

    python3 tools/scaling_model.py                              # the tables, in Markdown
    python3 tools/scaling_model.py --check docs/distributed.md  # exit 1 if one is not in it

Standard library only. The parameter counts come from the model files (models/<preset>.model,
the files the library embeds), parsed here with the rules of docs/models.md.
"""
import argparse
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = ["mlp", "lenet5", "vgg-small", "mlp-dropout", "lstm"]
RANKS = [2, 4, 8, 16, 32, 64]
FLOAT = 4          # bytes per gradient element (float32)
PAIR = 8           # bytes per element of a sparse exchange: a 32-bit index and a float32 value
BUCKET = 1 << 20   # bucket cap, bytes (the implementation's default, about 1 MiB)
BATCH = 64         # images per rank and step
BACKWARD = 2 / 3   # share of a step that is the backward pass

# Links: (name, bandwidth in bytes/s per rank, latency per message in s). Assumptions, not
# measurements (docs/distributed.md says where each figure comes from).
LINKS = {
    "shm": ("shared memory, one node", 10e9, 1e-6),
    "tcp": ("10 GbE, TCP", 1.25e9, 50e-6),
    "ib": ("100 Gb/s InfiniBand", 12.5e9, 2e-6),
    "nvlink": ("NVLink-class, GPU-aware", 100e9, 3e-6),
}

# Single-device images/s on POCL, the 2-core Xeon (AVX-512), batch 64, the default (adaptive)
# policy; measured, docs/training.md.
CPU_IMAGES_S = {
    "mlp": (34016, "strips and bit masks stop, adaptive"),
    "lenet5": (14288, "strips and bit masks stop, adaptive"),
    "vgg-small": (2395, "strips and bit masks stop, adaptive"),
    "mlp-dropout": (14025, "tile dropout section, adaptive/Bernoulli, p 0.5"),
    "lstm": (7353, "the LSTM layer, dense (its only path)"),
}
# mlp-dropout with row dropout (--dropout-kind row), whose fc layers compute the kept neurons
# alone: the same table, adaptive/row, p 0.5.
CPU_IMAGES_S_ROW = 17966

# The assumed GPU: a step takes its arithmetic at a sustained rate plus a fixed cost per step
# (kernel launches, the step's synchronisation); gradients cross PCIe to the host and back
# (Open MPI cannot read an OpenCL buffer) unless the link is GPU-aware.
GPU_FLOPS = 10e12       # sustained float32 FLOP/s on batch-64 layers (about 1/6 of an H100's peak)
GPU_FIXED = 0.5e-3      # s per step
PCIE = 25e9             # bytes/s each way, PCIe 4.0 x16 in practice
PCIE_LATENCY = 10e-6    # s per transfer (one read and one write per bucket)

# Sparse exchanges: extra device work per step, s per parameter, on POCL (2 cores), estimated
# from the Dropback kernels' measured passes over mlp's 669,706 parameters (docs/training.md,
# "Dropback": scoring 0.30 ms, the two select levels 0.52 ms, a reset pass 0.19 ms).
CPU_TOPK_S_PER_PARAM = 2.1e-9     # scores, select, 3 passes (error feedback, pack): 1.4 ms on mlp
CPU_PACK_S_PER_PARAM = 0.6e-9     # Dropback: gather and scatter of the tracked set, 2 passes
GPU_TOPK_S = 0.15e-3              # assumed on the GPU: launch-bound (about 15 launches)
GPU_PACK_S = 0.03e-3
DROPBACK_DENSITY, DROPBACK_INTERVAL = 0.1, 50
TOPK_DENSITIES = [0.01, 0.001]


# ---------------------------------------------------------------------------------------------
# Models


def parse_model(name):
    """Parameters (name, elements) in the library's order, multiply-adds per image, and each
    parameter's share whose gradient is not structurally zero under row dropout (a dropped
    neuron's weights have none: the rows of the inputs, the columns and biases of the outputs
    that the dropout's batch-wide mask drops), from models/<name>.model."""
    path = os.path.join(ROOT, "models", name + ".model")
    params, macs, kept = [], 0, []
    h = w = c = None
    counts = {}
    keep_in = 1.0  # the kept share of the next fc layer's inputs under row dropout
    with open(path) as f:
        for raw in f:
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            kind, args = words[0], words[1:]
            if kind == "input":
                h, w, c = (int(v) for v in args[0].split("x"))
                continue
            n = int(args[0]) if args and "=" not in args[0] else None
            opt = dict(a.split("=") for a in args if "=" in a)
            counts[kind] = counts.get(kind, 0) + 1
            label = f"{kind}{counts[kind]}"
            if kind == "conv":
                k, s, p = int(opt["k"]), int(opt.get("s", 1)), int(opt.get("p", 0))
                oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                params += [(label + ".weight", k * k * c * n), (label + ".bias", n)]
                macs += oh * ow * k * k * c * n
                kept += [[1.0], [1.0]]
                h, w, c = oh, ow, n
            elif kind in ("maxpool", "avgpool"):
                k = int(opt["k"])
                s, p = int(opt.get("s", k)), int(opt.get("p", 0))
                h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif kind == "globalavgpool":
                h = w = 1
            elif kind == "fc":
                fan_in = h * w * c
                params += [(label + ".weight", fan_in * n), (label + ".bias", n)]
                kept += [[keep_in, 1.0], [1.0]]  # factors of the weight's and the bias's share
                macs += fan_in * n
                h, w, c = 1, 1, n
                keep_in = 1.0
            elif kind == "dropout":
                rate = float(opt.get("p", 0.5))
                if params and params[-1][0].startswith("fc"):  # the fc's outputs are dropped
                    kept[-2].append(1 - rate)
                    kept[-1].append(1 - rate)
                keep_in = 1 - rate
            elif kind == "lstm":
                feats, steps = w * c, h
                params += [(label + ".weight_ih", feats * 4 * n), (label + ".weight_hh", n * 4 * n),
                           (label + ".bias", 4 * n)]
                macs += steps * (feats + n) * 4 * n
                kept += [[1.0]] * 3
                h, w, c = 1, 1, n
            elif kind not in ("relu", "flatten"):
                sys.exit(f"{path}: layer kind {kind!r} is not in this script")
    return params, macs, [math.prod(f) for f in kept]


def buckets(params):
    """Bucket sizes in bytes: the parameters from the last to the first, a bucket closed once it
    holds at least BUCKET bytes; a parameter is never split."""
    out, cur = [], 0
    for _, n in reversed(params):
        cur += n * FLOAT
        if cur >= BUCKET:
            out.append(cur)
            cur = 0
    if cur:
        out.append(cur)
    return out


# ---------------------------------------------------------------------------------------------
# Collectives: time of one message of n bytes over p ranks on a link of bandwidth b, latency a.


def ring(n, p, a, b):
    return 2 * (p - 1) * a + 2 * (p - 1) / p * n / b


def doubling(n, p, a, b):
    return math.log2(p) * (a + n / b)


def rabenseifner(n, p, a, b):
    return 2 * math.log2(p) * a + 2 * (p - 1) / p * n / b


def binomial(n, p, a, b):
    return 2 * math.ceil(math.log2(p)) * (a + n / b)


def allgather(n_each, p, a, b):
    """Each rank contributes n_each bytes and receives the others': the better of a ring and
    recursive doubling (the same bytes, (p - 1) n_each, in p - 1 or log2 p messages)."""
    return min(p - 1, math.log2(p)) * a + (p - 1) * n_each / b


ALGORITHMS = {"ring": ring, "rd": doubling, "rab": rabenseifner}


def best(n, p, a, b):
    """(time, name) of the fastest of ring, recursive doubling and Rabenseifner's."""
    return min((f(n, p, a, b), name) for name, f in ALGORITHMS.items())


def allreduce(sizes, p, a, b):
    """The buckets one after another, each by its fastest algorithm; returns (total, the last
    bucket's time, the algorithms used)."""
    times, algs = [], set()
    for n in sizes:
        t, name = best(n, p, a, b)
        times.append(t)
        algs.add(name)
    return sum(times), times[-1], algs


def libnbc_default(sizes, p, a, b, in_place):
    """MPI_Iallreduce's own choice per bucket (Open MPI's libnbc, nbc_iallreduce.c): binomial
    (reduce then broadcast) below 4 ranks, below 64 KiB or in place; else Rabenseifner's."""
    return sum(binomial(n, p, a, b) if p < 4 or n < 65536 or in_place else
               rabenseifner(n, p, a, b) for n in sizes)


def pcie(nbytes, device):
    """One copy between the GPU and the host (none on a CPU device: its buffers are host memory)."""
    return PCIE_LATENCY + nbytes / PCIE if device == "gpu" else 0.0


def staging(sizes):
    """A GPU's copies of every bucket to the host and back over PCIe."""
    return sum(2 * pcie(n, "gpu") for n in sizes)


def efficiency(t_step, t_comm, t_last):
    """(no overlap, best overlap): the step's share of step + exposed communication."""
    bwd = BACKWARD * t_step
    exposed = max(t_last, t_comm - bwd)
    return t_step / (t_step + t_comm), t_step / (t_step + exposed)


# ---------------------------------------------------------------------------------------------
# Tables


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(t):
    return f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 0.1 else f"{t * 1e3:.1f}"


def mb(n):
    return f"{n / 1e6:.3f}" if n < 1e6 else f"{n / 1e6:.2f}"


def pct(e):
    return f"{round(100 * e)}"


class Model:
    def __init__(self, name):
        self.name = name
        self.params, self.macs, self.kept = parse_model(name)
        self.n = sum(n for _, n in self.params)
        self.bytes = self.n * FLOAT
        self.buckets = buckets(self.params)
        self.flops_step = 3 * 2 * self.macs * BATCH
        self.t_cpu = BATCH / CPU_IMAGES_S[name][0]
        self.t_gpu = self.flops_step / GPU_FLOPS + GPU_FIXED
        self.n_kept = sum(k * n for k, (_, n) in zip(self.kept, self.params))


def t_params(models):
    rows = []
    for m in models:
        layers = {}
        for pname, n in m.params:
            layers[pname.split(".")[0]] = layers.get(pname.split(".")[0], 0) + n
        rows.append([m.name, f"{m.n:,}", f"{m.bytes:,}",
                     ", ".join(f"{k} {v:,}" for k, v in layers.items()),
                     len(m.buckets), " + ".join(mb(b) for b in m.buckets),
                     f"{m.flops_step / 1e9:.3g}"])
    return table(["preset", "parameters", "bytes per step", "per layer", "buckets",
                  "bucket MB (last layers first)", "GFLOP per step (batch 64)"], rows)


def t_links():
    rows = [[k, v[0], f"{v[1] / 1e9:g}", f"{v[2] * 1e6:g}", f"{v[1] * v[2] / 1e3:g}"]
            for k, v in LINKS.items()]
    return table(["link", "what", "bandwidth β, GB/s", "latency α, µs", "α·β, kB"], rows)


def t_crossover(models):
    """p above which the ring's latency term exceeds its bandwidth term: p > N / (nb α β)."""
    rows = []
    for m in models:
        row = [m.name]
        for _, b, a in LINKS.values():
            pstar = m.bytes / (len(m.buckets) * a * b)
            row.append(f"{pstar:.0f}" if pstar >= 2 else "<2")
        rows.append(row)
    return table(["preset"] + [f"p* {k}" for k in LINKS], rows)


def t_allreduce(models):
    rows = []
    for m in models:
        for key, (_, b, a) in LINKS.items():
            row = [m.name, key]
            for p in RANKS:
                t, _, algs = allreduce(m.buckets, p, a, b)
                row.append(f"{ms(t)} {'+'.join(sorted(algs))}")
            rows.append(row)
    return table(["preset", "link"] + [f"p={p}" for p in RANKS], rows)


def t_libnbc(models):
    """The bucketed gradient: the model's time against MPI_Iallreduce's default choice, with a
    separate receive buffer and in place."""
    rows = []
    for m in models:
        for key in ("tcp", "ib"):
            _, b, a = LINKS[key]
            row = [m.name, key]
            for p in (2, 8, 64):
                row.append(" / ".join(ms(t) for t in (
                    allreduce(m.buckets, p, a, b)[0], libnbc_default(m.buckets, p, a, b, False),
                    libnbc_default(m.buckets, p, a, b, True))))
            rows.append(row)
    return table(["preset", "link", "p=2", "p=8", "p=64"], rows)


def t_efficiency(models, device):
    rows = []
    links = ["shm", "tcp", "ib"] if device == "cpu" else ["shm", "tcp", "ib", "nvlink"]
    for m in models:
        t_step = m.t_cpu if device == "cpu" else m.t_gpu
        for key in links:
            _, b, a = LINKS[key]
            row = [m.name, ms(t_step), key]
            for p in RANKS:
                t, last, _ = allreduce(m.buckets, p, a, b)
                if device == "gpu" and key != "nvlink":
                    t += staging(m.buckets)
                    last += staging(m.buckets[-1:])
                lo, hi = efficiency(t_step, t, last)
                row.append(pct(lo) if pct(lo) == pct(hi) else f"{pct(lo)}–{pct(hi)}")
            rows.append(row)
    return table(["preset", "step ms", "link"] + [f"p={p}" for p in RANKS], rows)


def sparse_times(m, p, a, b, device):
    """Per step, s: the exchange, its copies through the host on a GPU, and the extra device
    work, for the dense all-reduce and each sparse scheme. No overlap with the backward pass."""
    pack = m.n * CPU_PACK_S_PER_PARAM if device == "cpu" else GPU_PACK_S
    dense, _, _ = allreduce(m.buckets, p, a, b)
    out = {"dense": dense + sum(2 * pcie(n, device) for n in m.buckets)}
    if m.n_kept < m.n:  # row dropout's mask, the same on every rank: the kept part, packed
        kb = m.n_kept * FLOAT
        out["row mask"] = best(kb, p, a, b)[0] + 2 * pcie(kb, device)  # held packed already
    if "lstm" not in m.name:  # Dropback refuses models with an LSTM
        kb = DROPBACK_DENSITY * m.n * FLOAT
        sel = (1 - DROPBACK_DENSITY) * m.n * FLOAT + m.n / 8  # untracked momenta + the set's bits
        t = best(kb, p, a, b)[0] + 2 * pcie(kb, device) + pack
        t += (best(sel, p, a, b)[0] + 2 * pcie(sel, device)) / DROPBACK_INTERVAL
        out[f"Dropback {DROPBACK_DENSITY * 100:g} %"] = t
    for d in TOPK_DENSITIES:
        k = d * m.n
        t = allgather(k * PAIR, p, a, b) + pcie(k * PAIR, device)
        t += pcie(min(p * k * PAIR, m.n * FLOAT), device)  # the sum back: pairs or dense
        t += m.n * CPU_TOPK_S_PER_PARAM if device == "cpu" else GPU_TOPK_S
        out[f"top-k {d * 100:g} %"] = t
    return out


def t_sparse(models, device):
    cols = [("tcp", 8), ("tcp", 64), ("ib", 8), ("ib", 64)]
    rows = []
    for m in models:
        t_step = m.t_cpu if device == "cpu" else m.t_gpu
        per = {c: sparse_times(m, c[1], LINKS[c[0]][2], LINKS[c[0]][1], device) for c in cols}
        for scheme in per[cols[0]]:
            row = [m.name, scheme]
            step = t_step
            if scheme == "row mask":  # the row-dropout run's own, shorter step
                step = (BATCH / CPU_IMAGES_S_ROW if device == "cpu" else
                        m.flops_step * m.n_kept / m.n / GPU_FLOPS + GPU_FIXED)
            for c in cols:
                t = per[c][scheme]
                row.append(f"{ms(t)} ({pct(step / (step + t))} %)")
            rows.append(row)
    return table(["preset", "exchange", "tcp p=8", "tcp p=64", "ib p=8", "ib p=64"], rows)


def tables():
    models = [Model(n) for n in PRESETS]
    return [
        ("parameters and bytes", t_params(models)),
        ("links", t_links()),
        ("latency crossover", t_crossover(models)),
        ("all-reduce time", t_allreduce(models)),
        ("libnbc algorithms", t_libnbc(models)),
        ("efficiency, POCL", t_efficiency(models, "cpu")),
        ("efficiency, GPU", t_efficiency(models, "gpu")),
        ("sparse exchange, POCL", t_sparse(models, "cpu")),
        ("sparse exchange, GPU", t_sparse(models, "gpu")),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="FILE",
                    help="exit 1 unless every table printed is in FILE, verbatim")
    args = ap.parse_args()
    if args.check:
        text = open(args.check).read()
        missing = [name for name, t in tables() if t not in text]
        for name in missing:
            print(f"{args.check}: table \"{name}\" differs from the script's", file=sys.stderr)
        sys.exit(1 if missing else 0)
    for name, t in tables():
        print(f"<!-- {name} -->")
        print(t)
        print()


if __name__ == "__main__":
    main()
