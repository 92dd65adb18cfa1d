"""``spikeforge infer``: run a network file over a dataset's test set with an inference engine.

The command owns the data (the test split, rate-coded with
:func:`spikeforge.sim.golden.datasets.encode` and the seed the network was
ported with, so the accuracy is the one the port recorded), the timing, the
printout and the JSON report; an *engine* owns the arithmetic.

Engines are listed in :data:`ENGINES` (``--engine`` offers exactly these). An
engine is a class with

* ``name`` (str) and ``kinds`` (the network-file kinds it runs: ``"integer"``,
  ``"fp16"``);
* ``__init__(self, loaded: NetworkFile, args)`` -- ``loaded`` is what
  :func:`spikeforge.sim.network_file.load` returned, ``args`` the parsed
  command line (an engine may add its own options through an
  ``add_arguments(parser)`` static method);
* ``T`` (int): the time steps per sample it expects;
* ``run(self, spikes) -> EngineBatch`` -- one chunk of samples, spikes bool
  ``(N, T, N_in)``; the predictions, the SOPs per sample and layer, and an
  ``extra`` dict of numbers to add up over chunks (for example ``cycles``);
* ``report(self) -> dict`` -- keys the engine adds to the JSON at the end
  (for example ``bit_exact``, cycles per sample); only keys it can fill.

``golden`` (:class:`GoldenEngine`) runs the integer golden model
(:mod:`spikeforge.sim.golden.integer`) for an ``integer`` file and the fp16
golden model's inference (:func:`spikeforge.sim.golden.model.forward`, most
spikes) for an ``fp16`` file.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field

import numpy as np

from spikeforge.sim import energy as E
from spikeforge.sim.files import output_folder, write_json
from spikeforge.sim.cli import UsageError
from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import integer as I
from spikeforge.sim.golden import model as golden
from spikeforge.sim import network_file as NF
from spikeforge.sim.engines.fpga import FpgaInferEngine
from spikeforge.sim.engines.infer_rtl import RtlInferEngine

__all__ = ["EngineBatch", "GoldenEngine", "ENGINES", "run", "add_arguments", "main"]


@dataclass
class EngineBatch:
    """What an engine returns for one chunk of ``N`` samples."""

    predictions: np.ndarray            # int (N,)
    sops: np.ndarray                   # int (N, L): synaptic operations per sample and layer
    extra: dict = field(default_factory=dict)   # numbers summed over chunks


def fp16_sops(weights, spikes, traces) -> np.ndarray:
    """SOPs of the fp16 forward pass: per sample and layer, active inputs x N_out."""
    out = []
    s = spikes
    for W, tr in zip(weights, traces):
        out.append(s.sum(axis=(1, 2), dtype=np.int64) * W.shape[0])
        s = tr.s
    return np.stack(out, axis=1)


class GoldenEngine:
    """The golden models as an inference engine (integer: SPEC section 8; fp16: section 3)."""

    name = "golden"
    kinds = ("integer", "fp16")

    def __init__(self, loaded: NF.NetworkFile, args=None):
        self.loaded = loaded
        net = loaded.network
        self.T = net.T if loaded.kind == "integer" else net.params.T

    def run(self, spikes) -> EngineBatch:
        net = self.loaded.network
        if self.loaded.kind == "integer":
            res = I.forward(net, spikes)
            return EngineBatch(predictions=res.predictions, sops=res.sops)
        weights = list(net.weights)
        traces = golden.forward(weights, spikes, net.params)
        preds = np.argmax(golden.spike_counts(traces[-1].s), axis=-1)
        return EngineBatch(predictions=preds, sops=fp16_sops(weights, spikes, traces))

    def report(self) -> dict:
        return {}


#: engine name -> engine class
ENGINES: dict[str, type] = {"golden": GoldenEngine, "rtl": RtlInferEngine,
                            "fpga": FpgaInferEngine}


def run(*, network, engine="golden", dataset=None, seed=None, limit=None, chunk=128, args=None,
        log=print) -> dict:
    """Run the test set through ``engine``; returns the report (the JSON of ``--json``)."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; available: {', '.join(sorted(ENGINES))}")
    try:
        loaded = NF.load(network)
    except NF.NetworkFileError as exc:
        raise UsageError(str(exc)) from None
    cls = ENGINES[engine]
    if loaded.kind not in cls.kinds:
        raise UsageError(f"engine {engine!r} runs {' and '.join(cls.kinds)} networks, and "
                         f"{network!r} holds an {loaded.kind} network")
    prov = loaded.provenance
    dataset = dataset if dataset is not None else prov.get("dataset", "digits")
    seed = seed if seed is not None else prov.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"--seed must be an integer, not {seed!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a positive integer, not {limit!r}")
    try:
        data = D.load(dataset)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None
    sizes = loaded.sizes
    if sizes[0] != data.n_features or sizes[-1] != data.n_classes:
        raise UsageError(f"{network!r} has sizes {sizes}, which do not fit {dataset} "
                         f"({data.n_features} inputs, {data.n_classes} classes)")
    eng = cls(loaded, args)
    x, y = data.x_test, data.y_test
    if limit is not None:
        x, y = x[:limit], y[:limit]
    n = len(x)
    T = eng.T
    spikes = D.encode_batch(x, np.arange(n), split="test", seed=seed, T=T)
    preds, sops, extra = [], [], {}
    seconds = 0.0
    for k in range(0, n, chunk):
        t0 = time.perf_counter()
        batch = eng.run(spikes[k:k + chunk])
        seconds += time.perf_counter() - t0
        preds.append(np.asarray(batch.predictions))
        sops.append(np.asarray(batch.sops))
        for key, value in batch.extra.items():
            extra[key] = extra.get(key, 0) + value
    preds = np.concatenate(preds)
    sops = np.concatenate(sops)
    acc = float((preds == y).mean())
    per_sample = sops.sum(axis=1)
    report = {
        "command": "infer", "network": os.fspath(network), "kind": loaded.kind,
        "engine": engine, "dataset": dataset, "seed": seed, "samples": n, "T": T,
        "sizes": sizes,
        "accuracy": acc,
        "correct": int((preds == y).sum()),
    }
    if loaded.kind == "integer":
        net = loaded.network
        report.update(B=net.B, Q=net.Q, readout=net.readout)
    if "float_accuracy" in loaded.metrics:
        report["float_accuracy"] = loaded.metrics["float_accuracy"]
    if "accuracy" in loaded.metrics:
        report["recorded_accuracy"] = loaded.metrics["accuracy"]
    report.update({
        "sops_per_sample": float(per_sample.mean()),
        "sops_per_sample_max": int(per_sample.max()),
        "sops_per_sample_by_layer": [float(v) for v in sops.mean(axis=0)],
        "sops_total": int(per_sample.sum()),
        "seconds": seconds,
        "samples_per_s": n / max(seconds, 1e-9),
        "sops_per_s": float(per_sample.sum()) / max(seconds, 1e-9),
    })
    report.update(extra)
    report.update(eng.report())
    if "rtl_counters" in report and report["rtl_counters"].get("runs"):
        report["energy"] = _energy(eng, report, loaded.sizes, T)
        log(E.summary_line(report["energy"]))
    line = f"{n} test samples of {dataset}, engine {engine}: accuracy {acc:.4f}"
    if "float_accuracy" in report:
        line += f" (float32 {report['float_accuracy']:.4f})"
    log(line)
    log(f"{report['sops_per_sample']:.0f} SOPs per sample "
        f"({' + '.join(f'{v:.0f}' for v in report['sops_per_sample_by_layer'])} by layer); "
        f"{report['samples_per_s']:.0f} samples/s, "
        f"{report['sops_per_s'] / 1e6:.1f} MSOP/s ({engine} model)")
    return report


def _energy(eng, report, sizes, T) -> dict:
    """The energy estimate of an rtl inference run (docs/energy.md) from the inference
    core's own counters, with the off-chip bytes of the input spikes."""
    info = eng.info
    offchip = E.offchip_bytes_per_sample(sizes, T, train=False)
    events = E.inference_core_events(
        report["rtl_counters"], sizes=sizes, T=T, lanes=info.lanes, group=info.group,
        weight_bits=info.weight_bits, potential_bits=info.potential_bits,
        weight_bank_bytes=2 * info.weight_depth, dram_bytes=offchip["bytes_per_sample"])
    out = E.estimate(events, samples=1)
    out["offchip"] = offchip
    return out


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--network", metavar="NET", required=True, help="network file to run")
    p.add_argument("--engine", default="golden", choices=sorted(ENGINES),
                   help="inference engine (default: golden)")
    p.add_argument("--dataset", default=None,
                   help="dataset (default: the one the network file names, else digits)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the spike encoding (default: the network file's, else 0)")
    p.add_argument("--limit", type=int, default=None, help="only the first N test samples")
    p.add_argument("--json", metavar="FILE", default=None, help="write the report as JSON")
    for cls in ENGINES.values():
        if hasattr(cls, "add_arguments"):
            cls.add_arguments(p)


def main(args) -> int:
    if args.json is not None:
        output_folder(args.json, UsageError, "--json")
    report = run(network=args.network, engine=args.engine, dataset=args.dataset, seed=args.seed,
                 limit=args.limit, args=args)
    if args.json is not None:
        write_json(args.json, report, UsageError)
    return 0
