"""Training on the Verilator model of a one-core accelerator, checked bit for bit.

:func:`train_rtl` runs samples of a dataset through
:class:`~spikeforge.sim.host.device.Device` (host driver over the cocotb
bridge) and through :mod:`spikeforge.sim.golden.model` side by side. After every
sample the core's ``dW`` (and with ``check_traces`` its spike / window history
and ``du``) must equal the golden model's bit for bit; after every update its
weights. The first difference stops the run with a :class:`~.rtl_compare.Mismatch`
naming layer, neuron, input or time step and both values.

Metrics: simulated cycles per sample and per phase (forward, backward, update),
the ideal cycles (useful FMAs / lanes + pipeline fill per phase, useful FMAs
counted from the golden model's sparsity), FMAs done and skipped, PE
utilisation, simulated cycles per second and the SHA-256 of the final weights.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import BuildConfig
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device
from spikeforge.sim.engines.compare import Mismatch, first_difference

__all__ = ["useful_fmas", "RtlTrainer", "weights_sha256", "Mismatch", "session_name"]

#: g++ optimisation of the model's per-cycle code for training runs: ``-O3`` measured
#: fastest on the ``digits`` core, side by side with ``-O1`` (the tests' default) and
#: ``-O2`` (``scripts/bench_sim_speed.py``, docs/core.md "Simulation speed").
CXX_OPT = "-O3"


def weights_sha256(weights) -> str:
    h = hashlib.sha256()
    for W in weights:
        h.update(np.ascontiguousarray(W, dtype=np.float16).astype("<f2").tobytes())
    return h.hexdigest()


def useful_fmas(weights, spikes, traces, grads, params) -> dict:
    """FMAs the contract needs for one sample given its sparsity (per phase).

    forward: one add per (active input, neuron) and one LIF FMA per neuron and step
    whose input was not reset; backward: the loss (3 per output), ``beta * g`` inside
    the window, ``alpha * du[t+1] + term`` where no spike resets it (and the ``through``
    terms), ``g_in`` over the non-zero ``du`` x inputs, ``dW`` over non-zero ``du`` x
    active inputs.
    """
    fwd = bwd = 0
    s_in = spikes
    T = params.T
    for l, (W, tr) in enumerate(zip(weights, traces)):
        n_out = W.shape[0]
        fwd += int(s_in.sum()) * n_out
        reset = np.zeros_like(tr.s)
        reset[1:] = tr.s[:-1]
        fwd += int((~reset).sum())
        s_in = tr.s
    if grads is not None:
        bwd += 3 * weights[-1].shape[0]
        s_in_layers = [spikes] + [tr.s for tr in traces[:-1]]
        for l, (W, tr, gr) in enumerate(zip(weights, traces, grads)):
            nz = fp16.ne(gr.du, np.float16(0))
            bwd += int(tr.m.sum()) + int((~tr.s).sum())
            if params.reset_grad == "through":
                bwd += 2 * tr.s.size
            if l:
                bwd += int(nz.sum()) * W.shape[1]
            bwd += int(sum(int(nz[t].sum()) * int(s_in_layers[l][t].sum()) for t in range(T)))
    return {"forward": fwd, "backward": bwd}


@dataclass
class RtlTrainer:
    """One Verilator accelerator and its golden twin."""

    config: BuildConfig
    sizes: tuple
    params: golden.Params
    weights: list
    batch: int = 1
    check_traces: bool = False
    stats: dict = field(default_factory=dict)

    def __enter__(self):
        from spikeforge.sim.verilator.session import rtl_session
        self._session = rtl_session(AcceleratorTop(self.config), name=session_name(self.config),
                                    ports_only=True, wall_timeout_s=600.0, cxx_opt=CXX_OPT)
        self.link = self._session.__enter__()
        self.acc = Device(self.link)
        self.acc.load_network(self.sizes, self.params, self.weights)
        self.dWs = golden.zero_grads(self.weights)
        self.in_batch = 0
        self.stats = {"samples": 0, "cycles": {"forward": 0, "backward": 0, "update": 0},
                      "fmas_done": 0, "fmas_skipped": 0, "useful": {"forward": 0, "backward": 0,
                                                                    "update": 0},
                      "counters": {}, "sim_seconds": 0.0, "sim_cycles": 0,
                      "sim_cpu_seconds": 0.0, "phases": 0,
                      "updates": 0}
        got = self.acc.read_weights("W")
        for l, W in enumerate(self.weights):
            first_difference(f"layer {l} weights after loading", got[l], W, kind="W")
        self.acc.counters(clear=True)
        return self

    def __exit__(self, *exc):
        return self._session.__exit__(*exc)

    def _timed(self, fn):
        # wall time and device cycles of a compute command (few bytes move: the
        # simulator runs on its own while Python waits for the response)
        cpu = getattr(self.link.transport, "simulator_cpu_seconds", lambda: None)
        c0, t0, p0 = self.link.cycles, time.monotonic(), cpu()
        out = fn()
        self.stats["sim_seconds"] += time.monotonic() - t0
        self.stats["sim_cycles"] += self.link.cycles - c0
        p1 = cpu()
        if p0 is not None and p1 is not None:
            self.stats["sim_cpu_seconds"] += p1 - p0
        return out

    def _collect(self):
        c = self.acc.counters(clear=True)
        st = self.stats
        for k, v in c.items():
            st["counters"][k] = st["counters"].get(k, 0) + v
        st["cycles"]["forward"] += c["cycles_forward"]
        st["cycles"]["backward"] += c["cycles_backward"]
        st["cycles"]["update"] += c["cycles_update"]
        st["fmas_done"] += c["fp_fmas"] + c["bp_fmas"] + c["wg_fmas"]
        st["fmas_skipped"] += c["fp_skipped"] + c["bp_skipped"] + c["wg_skipped"]
        return c

    def train_sample(self, spikes, label):
        """One sample forward and backward on both; the update at the end of a minibatch."""
        p = self.params
        self.acc.load_spikes(spikes)
        res = self._timed(lambda: self.acc.run_loaded(label))
        traces = golden.forward(self.weights, spikes, p)
        grads = golden.backward(self.weights, traces, spikes, label, p, self.dWs)
        counts = golden.spike_counts(traces[-1].s)
        first_difference("output spike counts", res.counts[None], counts[None], kind="trace")
        if res.nonfinite:
            raise FloatingPointError("an inf or NaN appeared in the core during training")
        use = useful_fmas(self.weights, spikes, traces, grads, p)
        self.stats["useful"]["forward"] += use["forward"]
        self.stats["useful"]["backward"] += use["backward"]
        # dependent phases, each paying one pipeline fill: per layer the forward sums and
        # LIF, du, g_in (not layer 0) and dW, plus the loss
        self.stats["phases"] += 5 * len(self.weights)
        if self.check_traces:
            for l in range(len(self.weights)):
                for which, want in (("s", traces[l].s), ("m", traces[l].m)):
                    first_difference(f"layer {l} {which}", self.acc.history(l, which), want,
                                     kind="trace")
                first_difference(f"layer {l} du", self.acc.du(l), grads[l].du, kind="trace")
        self.dWs = [gr.dW for gr in grads]
        got = self.acc.read_weights("dW")
        for l in range(len(self.weights)):
            first_difference(f"layer {l} dW", got[l], self.dWs[l], kind="W")
        self.in_batch += 1
        if self.in_batch == self.batch:
            self._timed(self.acc.update)
            self.weights = golden.update(self.weights, self.dWs, p)
            self.dWs = golden.zero_grads(self.weights)
            self.in_batch = 0
            self.stats["updates"] += 1
            self.stats["useful"]["update"] += sum(W.size for W in self.weights)
            self.stats["phases"] += 1
            got = self.acc.read_weights("W")
            for l, W in enumerate(self.weights):
                first_difference(f"layer {l} weights after the update", got[l], W, kind="W")
        self._collect()
        self.stats["samples"] += 1
        return res

    def evaluate(self, spikes, labels) -> float:
        """Inference on the core; every output count is checked against the golden model.
        Returns the accuracy."""
        want = golden.spike_counts(golden.forward(self.weights, spikes, self.params)[-1].s)
        correct = 0
        for k in range(len(spikes)):
            res = self.acc.run(spikes[k])
            first_difference(f"test sample {k} output spike counts", res.counts[None],
                             want[k][None], kind="trace")
            correct += int(res.prediction == int(labels[k]))
        return correct / max(1, len(spikes))

    def metrics(self) -> dict:
        st = self.stats
        n = max(1, st["samples"])
        info = self.acc.info
        P, S = info.lanes, info.fma_stages
        cycles = sum(st["cycles"].values())
        useful = sum(st["useful"].values())
        ideal = useful / P + st["phases"] * (S + 1)
        return {
            "samples": st["samples"],
            "cycles_per_sample": cycles / n,
            "ideal_cycles_per_sample": ideal / n,
            "ratio_to_ideal": (cycles / ideal) if ideal else None,
            "cycles_per_phase_per_sample": {k: v / n for k, v in st["cycles"].items()},
            "fmas_done": st["fmas_done"],
            "fmas_skipped": st["fmas_skipped"],
            "useful_fmas": useful,
            "pe_utilisation": (st["fmas_done"] / (cycles * P)) if cycles else 0.0,
            "simulated_cycles_per_second": ((st["sim_cycles"] / st["sim_seconds"])
                                            if st["sim_seconds"] else 0.0),
            "simulated_cycles_per_cpu_second": ((st["sim_cycles"] / st["sim_cpu_seconds"])
                                                if st["sim_cpu_seconds"] else None),
            "counters_per_sample": {k: v / n for k, v in st["counters"].items()},
            "lanes": P,
            "weights_sha256": weights_sha256(self.acc.read_weights("W")),
        }


def session_name(config: BuildConfig) -> str:
    """Verilog top name (and build cache name) of the one-core accelerator of ``config``."""
    return "accelerator_" + hashlib.sha256(config.to_json().encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------
# spikeforge train --engine rtl
# ---------------------------------------------------------------------------

def add_rtl_arguments(p):
    """Options of ``spikeforge train`` that only the ``rtl`` engine reads."""
    p.add_argument("--cores", type=int, default=1,
                   help="rtl engine: cores of the accelerator (default: %(default)s)")
    p.add_argument("--samples", type=int, default=None,
                   help="rtl engine: stop after K training samples")
    p.add_argument("--check-traces", action="store_true",
                   help="rtl engine: also compare spikes, window bits and du after every sample")
    p.add_argument("--preset", default="digits",
                   help="rtl engine: build preset of the core (default: %(default)s)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="rtl engine: test accuracy on the first N test samples (default: all)")


def main(args) -> int:
    """``spikeforge train --engine rtl``: train on the Verilator model, checked bit for bit."""
    import json
    import os
    import sys

    from spikeforge.hdl.config import ConfigError, preset
    from spikeforge.sim.golden import datasets as D
    from spikeforge.sim.cli import UsageError
    from spikeforge.sim.train import _parse_hidden, _params, _Progress

    if args.cores != 1:
        raise UsageError(f"--cores {args.cores} is not available yet with --engine rtl; "
                         "allowed: 1")
    if args.test_samples is not None and args.test_samples < 0:
        raise UsageError(f"--test-samples must be a non-negative integer, not {args.test_samples}")
    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be a positive integer, not {args.samples}")
    if args.batch < 1:
        raise UsageError(f"--batch must be an integer >= 1, not {args.batch}")
    if args.precision != "fp16":
        raise UsageError(f"--precision {args.precision} is not available with --engine rtl; "
                         "allowed: fp16")
    try:
        config = preset(args.preset)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    params = _params(T=args.T, alpha=args.alpha, v_th=args.v_th, a=args.a, beta=args.beta,
                     lr=args.lr, loss_scale=args.loss_scale, reset_grad=args.reset_grad)
    try:
        data = D.load(args.dataset)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None
    sizes = [data.n_features, *_parse_hidden(args.hidden), data.n_classes]
    x_train, y_train = data.x_train, data.y_train
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    n_train = len(x_train)
    total = args.samples if args.samples is not None else n_train * args.epochs
    weights0 = golden.init_weights(sizes, args.seed)
    from spikeforge.sim.host.device import DeviceInfo, MapError, NetworkMap
    info = DeviceInfo.from_config(config)
    try:
        NetworkMap.build(sizes, info)
    except MapError as exc:
        raise UsageError(f"{exc} (preset {args.preset})") from None
    if args.T > info.max_time_steps:
        raise UsageError(f"--T {args.T} exceeds the {info.max_time_steps} time steps the "
                         f"{args.preset} preset builds")
    if args.reset_grad not in info.modes:
        raise UsageError(f"--reset-grad {args.reset_grad} is not built in the {args.preset} "
                         f"preset; built: {', '.join(info.modes)}")
    report = {"command": "train", "engine": "rtl", "cores": 1, "preset": args.preset,
              "dataset": args.dataset, "sizes": sizes, "params": params.to_dict(),
              "config": config.to_dict(), "batch": args.batch, "seed": args.seed,
              "check_traces": bool(args.check_traces)}
    print(f"training {'-'.join(map(str, sizes))} on {args.dataset} on the Verilator model "
          f"of one core ({args.preset}: {config.features.lanes} lanes), {total} samples, "
          f"batch {args.batch}, T={args.T}, checked bit for bit against the golden model")
    bit_exact = True
    done = 0
    t0 = time.monotonic()
    try:
        trainer = RtlTrainer(config, tuple(sizes), params, weights0, batch=args.batch,
                             check_traces=args.check_traces)
        with trainer:
            ep = 0
            while done < total:
                ep += 1
                spikes_all = D.encode_batch(x_train, np.arange(n_train), split="train",
                                            seed=args.seed + 1000 * ep if args.reencode
                                            else args.seed, T=args.T)
                order = np.random.default_rng([args.seed, 2, ep]).permutation(n_train)
                bar = _Progress(min(n_train, total - done), f"epoch {ep}",
                                enabled=args.progress)
                for idx in order:
                    if done >= total:
                        break
                    try:
                        trainer.train_sample(spikes_all[idx], int(y_train[idx]))
                    except Mismatch as exc:
                        bit_exact = False
                        report["mismatch"] = {"sample": done, "message": str(exc),
                                              "where": exc.where}
                        bar.close()
                        print(f"spikeforge train: sample {done}: the core differs from the "
                              f"golden model: {exc}", file=sys.stderr)
                        raise
                    done += 1
                    bar.update(1)
                bar.close()
            metrics = trainer.metrics()
            n_test = len(data.x_test) if args.test_samples is None else min(
                args.test_samples, len(data.x_test))
            test_spikes = D.encode_batch(data.x_test[:n_test], np.arange(n_test), split="test",
                                         seed=args.seed, T=args.T)
            try:
                if n_test:
                    metrics["test_accuracy"] = trainer.evaluate(test_spikes,
                                                                data.y_test[:n_test])
                    metrics["test_samples"] = n_test
            except Mismatch as exc:
                bit_exact = False
                report["mismatch"] = {"sample": f"test {n_test}", "message": str(exc),
                                      "where": exc.where}
                print(f"spikeforge train: the core differs from the golden model in inference: "
                      f"{exc}", file=sys.stderr)
    except Mismatch:
        metrics = {}
    except MapError as exc:
        raise UsageError(str(exc)) from None
    except FloatingPointError as exc:
        print(f"spikeforge train: error: training diverged: {exc}", file=sys.stderr)
        return 1
    report.update({"bit_exact": bit_exact, "samples": done, **metrics,
                   "seconds": time.monotonic() - t0})
    if "test_accuracy" in metrics:
        print(f"test accuracy {metrics['test_accuracy']:.4f} on {metrics['test_samples']} test "
              f"samples (inference on the core, output counts bit-exact)")
    if metrics:
        print(f"{done} samples bit-exact; {metrics['cycles_per_sample']:.0f} cycles per sample "
              f"(ideal {metrics['ideal_cycles_per_sample']:.0f}, "
              f"{metrics['ratio_to_ideal']:.2f}x), PE utilisation "
              f"{metrics['pe_utilisation']:.2f}, {metrics['simulated_cycles_per_second']:.0f} "
              f"simulated cycles/s")
    if args.json is not None:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(report, fh, indent=2, sort_keys=True, default=float)
        os.replace(tmp, args.json)
    return 0 if bit_exact else 1
