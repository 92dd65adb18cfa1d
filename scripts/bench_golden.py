"""Benchmark of golden-model training speed beside a plain PyTorch implementation.

One run measures, on the digits network (default 64-128-10, T = 8), training
samples per second of

* the golden model in fp16 (the contract: one fp16 operation at a time, in order)
  at minibatch 1 and at ``--golden-batch`` (default 16),
* its float64 twin at the same minibatch sizes,
* a plain PyTorch float32 implementation of the same network on the CPU (LIF
  with hard reset, rectangular surrogate times beta, the rate loss, SGD
  summed over the minibatch; one intra-op thread unless ``--torch-threads``),
  at minibatch 1 and at several sizes, of which the best is reported.

Every case is repeated ``--repeats`` times on the same encoded samples; the
medians are printed and all times are written to JSON (wall-clock and CPU
time of this process: the machine may be shared, CPU time is the steadier).

Usage: ``python scripts/bench_golden.py [--json FILE] [--samples N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden
from spikeforge.sim.golden import float64 as golden64


def _time(fn, n_samples, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"samples": n_samples, "repeats": repeats, "wall_s": walls, "cpu_s": cpus,
            "samples_per_s_wall": n_samples / statistics.median(walls),
            "samples_per_s_cpu": n_samples / statistics.median(cpus)}


def bench_golden(module, weights, spikes, labels, params, batch, repeats):
    def go():
        W = weights
        for k in range(0, len(spikes), batch):
            W = module.train_step(W, spikes[k:k + batch], labels[k:k + batch], params).weights
    go()                                                     # warm-up
    return _time(go, len(spikes), repeats)


def bench_torch(weights, spikes, labels, params, batch, repeats):
    import torch

    T = params.T
    lo, hi, v_th, alpha, beta = (params.v_th - params.a, params.v_th + params.a, params.v_th,
                                 params.alpha, params.beta)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= v_th).float()

        @staticmethod
        def backward(ctx, grad):
            (u,) = ctx.saved_tensors
            return grad * beta * ((u > lo) & (u < hi)).float()

    Ws = [torch.tensor(np.asarray(W, dtype=np.float32), requires_grad=True) for W in weights]
    opt = torch.optim.SGD(Ws, lr=params.lr)
    x_all = torch.tensor(spikes, dtype=torch.float32)          # (N, T, N_in)
    y_all = torch.nn.functional.one_hot(torch.tensor(labels), weights[-1].shape[0]).float()

    def step(x, y):
        inp = x
        for W in Ws:
            B = inp.shape[0]
            u = torch.zeros(B, W.shape[0])
            s = torch.zeros(B, W.shape[0])
            outs = []
            for t in range(T):
                u = alpha * u * (1 - s.detach()) + inp[:, t] @ W.T
                s = Spike.apply(u)
                outs.append(s)
            inp = torch.stack(outs, 1)
        r = inp.sum(1) / T
        loss = 0.5 * ((r - y) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def go():
        for k in range(0, len(x_all), batch):
            step(x_all[k:k + batch], y_all[k:k + batch])
    go()
    return _time(go, len(x_all), repeats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench_golden.json", help="output JSON file")
    parser.add_argument("--hidden", default="128", help="hidden sizes, comma separated")
    parser.add_argument("--T", type=int, default=golden.Params().T)
    parser.add_argument("--samples", type=int, default=256, help="training samples per case")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--golden-batch", type=int, default=16)
    parser.add_argument("--torch-batches", default="1,8,32,128,256")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch intra-op threads (default 1, like the golden model)")
    args = parser.parse_args(argv)

    data = D.load("digits")
    hidden = [int(h) for h in args.hidden.split(",")]
    sizes = [data.n_features, *hidden, data.n_classes]
    n = min(args.samples, len(data.x_train))
    spikes = D.encode_batch(data.x_train, np.arange(n), split="train", seed=0, T=args.T)
    labels = data.y_train[:n]
    params = golden.Params(T=args.T)
    w16 = golden.init_weights(sizes, 0)
    w64 = golden64.to_float64(w16)

    report = {"sizes": sizes, "T": args.T, "params": params.to_dict(), "samples": n,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "numpy": np.__version__}, "cases": []}

    def record(name, batch, res):
        res = {"engine": name, "batch": batch, **res}
        report["cases"].append(res)
        print(f"{name:>16} batch {batch:4d}: {res['samples_per_s_wall']:10.1f} samples/s "
              f"(wall, median of {res['repeats']})  {res['samples_per_s_cpu']:10.1f} samples/s (CPU)",
              flush=True)

    for b in sorted({1, args.golden_batch}):
        record("golden fp16", b, bench_golden(golden, w16, spikes, labels, params, b, args.repeats))
    for b in sorted({1, args.golden_batch}):
        record("golden float64", b, bench_golden(golden64, w64, spikes, labels, params, b,
                                                  args.repeats))
    try:
        import torch
    except ImportError:
        report["torch"] = "not installed (pip install torch==2.13.0)"
        print("PyTorch is not installed: its cases are skipped")
    else:
        torch.set_num_threads(args.torch_threads)
        report["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
        best = None
        for b in [int(x) for x in args.torch_batches.split(",")]:
            res = bench_torch(w16, spikes, labels, params, b, args.repeats)
            record("torch float32", b, res)
            if best is None or res["samples_per_s_wall"] > best[1]["samples_per_s_wall"]:
                best = (b, res)
        report["torch_best_batch"] = best[0]

    def median_of(name, batch):
        for c in report["cases"]:
            if c["engine"] == name and c["batch"] == batch:
                return c["samples_per_s_wall"]
        return None

    report["summary"] = {
        "golden_fp16_batch1": median_of("golden fp16", 1),
        f"golden_fp16_batch{args.golden_batch}": median_of("golden fp16", args.golden_batch),
        "golden_float64_batch1": median_of("golden float64", 1),
        f"golden_float64_batch{args.golden_batch}": median_of("golden float64", args.golden_batch),
        "torch_float32_batch1": median_of("torch float32", 1),
        "torch_float32_best": (median_of("torch float32", report["torch_best_batch"])
                               if "torch_best_batch" in report else None),
        "torch_best_batch": report.get("torch_best_batch"),
    }
    print("medians (samples/s, wall):", json.dumps(report["summary"]))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
