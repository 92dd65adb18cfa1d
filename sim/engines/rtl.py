"""The ``rtl`` training engine: the Verilator model of an accelerator (one core, or a
network split over the cores of a multi-core system), checked bit for bit.

:class:`RtlEngine` implements the engine interface of
:mod:`spikeforge.sim.engines.base` (so ``spikeforge train --engine rtl`` runs the
same loop as the golden engine): it runs every sample through
:class:`~spikeforge.sim.host.device.Device` (host driver over the cocotb bridge)
and through :mod:`spikeforge.sim.golden.model` side by side. After every sample
the core's ``dW`` (and with ``check_traces`` its spike / window history and
``du``) must equal the golden model's bit for bit; after every update its
weights (``check="digest"``, the default: the core's CRC-32 of each layer, READ_DIGEST,
must equal that of the golden values, and only when it does not are the values read
back to name the first difference; ``check="full"``: every value read back); in inference every output count. The first difference raises a
:class:`~spikeforge.sim.engines.compare.Mismatch` naming layer, neuron, input or
time step and both values.

With ``cores > 1`` the system top is built with that many cores and the network runs
over them by the split-layer schedule (:class:`~spikeforge.sim.host.split.SplitDevice`,
``docs/multicore.md``): the same checks, the same bits; the cycles per sample are then
the device cycles of the schedule's phases (cores in parallel where it runs them so),
the ideal is the busiest core's useful FMAs / lanes, and the report adds per-core
cycles and utilisation and the cycles the host spent moving data.

Metrics: simulated cycles per sample and per phase (forward, backward, update),
the ideal cycles (useful FMAs / lanes + pipeline fill per phase, useful FMAs
counted from the golden model's sparsity), FMAs done and skipped, PE
utilisation, simulated cycles per second and the SHA-256 of the final weights.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import BuildConfig, ConfigError
from spikeforge.sim.engines.base import Engine, EvalStats, StepStats
from spikeforge.sim.engines.compare import Mismatch, first_difference
from spikeforge.sim.engines.golden import layer_activity, step_stats
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden import model as golden
from spikeforge.hdl.system import System
from spikeforge.sim.host.device import CoreLink, Device, DeviceInfo, MapError, NetworkMap
from spikeforge.sim.host.mapping import MappingError, compile_mapping
from spikeforge.sim.options import add_config_arguments, config_from_options

__all__ = ["useful_fmas", "RtlEngine", "weights_sha256", "Mismatch", "session_name",
           "system_session_name", "TOPS", "CHECKS"]

#: The tops the engine can train on (``--top``).
TOPS = ("accelerator", "system")

#: How ``dW`` and ``W`` are compared after every sample and update (``--check``):
#: ``digest`` compares the core's READ_DIGEST of every layer with the golden values'
#: digest and reads the values (to name the first difference) only when one differs;
#: ``full`` reads every value back. A split network (``--cores N``) compares the digest
#: of every block (a layer's rows on one core).
CHECKS = ("digest", "full")

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
    terms), ``g_in`` over the non-zero ``du`` x the inputs whose window bit is set in
    the layer below (the only entries it reads), ``dW`` over non-zero ``du`` x active
    inputs.
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
            if l:     # g_in only for the inputs the layer below uses (its window bit)
                m_below = traces[l - 1].m
                bwd += int(sum(int(nz[t].sum()) * int(m_below[t].sum()) for t in range(T)))
            bwd += int(sum(int(nz[t].sum()) * int(s_in_layers[l][t].sum()) for t in range(T)))
    return {"forward": fwd, "backward": bwd}


def useful_fmas_per_block(mapping, weights, spikes, traces, grads, params) -> dict:
    """The FMAs of :func:`useful_fmas` (forward and backward) of every block of
    ``mapping``, by phase: ``{(layer, core): {"forward", "loss", "backward",
    "input_grad", "weight_grad"}}``."""
    T = params.T
    out = {}
    s_in_layers = [spikes] + [tr.s for tr in traces[:-1]]
    for l, blocks in enumerate(mapping.layers):
        tr, s_in = traces[l], s_in_layers[l]
        reset = np.zeros_like(tr.s)
        reset[1:] = tr.s[:-1]
        nz = None if grads is None else fp16.ne(grads[l].du, np.float16(0))
        for b in blocks:
            sl = slice(b.lo, b.hi)
            n = dict.fromkeys(("forward", "loss", "backward", "input_grad", "weight_grad"), 0)
            n["forward"] = int(s_in.sum()) * b.n + int((~reset[:, sl]).sum())
            if nz is not None:
                n["backward"] = int(tr.m[:, sl].sum()) + int((~tr.s[:, sl]).sum())
                if params.reset_grad == "through":
                    n["backward"] += 2 * tr.s[:, sl].size
                if l == len(mapping.layers) - 1:
                    n["loss"] = 3 * b.n
                if l:
                    m_below = traces[l - 1].m
                    n["input_grad"] = sum(int(nz[t, sl].sum()) * int(m_below[t].sum())
                                          for t in range(T))
                n["weight_grad"] = sum(int(nz[t, sl].sum()) * int(s_in[t].sum())
                                       for t in range(T))
            out[l, b.core] = n
    return out


def useful_fmas_per_core(mapping, per_block: dict) -> list[int]:
    """The FMAs of :func:`useful_fmas_per_block` that each core of ``mapping`` does: its
    blocks' share of every layer."""
    per = [0] * mapping.cores
    for (_, core), n in per_block.items():
        per[core] += sum(n.values())
    return per


def schedule_bound(mapping, per_block: dict) -> float:
    """Useful FMAs on the split-layer schedule's critical path: layer after layer, the
    slowest block of each phase (the blocks of a phase run in parallel), except the
    input gradient, which passes through a layer's blocks one after the other."""
    total = 0
    for l, blocks in enumerate(mapping.layers):
        for phase in ("forward", "loss", "backward", "weight_grad"):
            total += max(per_block[l, b.core][phase] for b in blocks)
        total += sum(per_block[l, b.core]["input_grad"] for b in blocks)
    return total


def session_name(config: BuildConfig) -> str:
    """Verilog top name (and build cache name) of the one-core accelerator of ``config``."""
    return "accelerator_" + hashlib.sha256(config.to_json().encode()).hexdigest()[:8]


def system_session_name(config: BuildConfig) -> str:
    """Verilog top name (and build cache name) of the multi-core system of ``config``."""
    return "system_" + hashlib.sha256(config.to_json().encode()).hexdigest()[:8]


class RtlEngine(Engine):
    """One Verilator accelerator and its golden twin, compared after every command."""

    name = "rtl"
    hardware = "the core"
    # the whole training set through the simulated core after every epoch would cost
    # about half an epoch of training again: the test set (or --test-samples) only
    train_eval = False

    @classmethod
    def add_arguments(cls, p):
        add_config_arguments(p, ("cores",), defaults={"cores": 1},
                             help_prefix="rtl engine: ")
        p.add_argument("--check-traces", action="store_true",
                       help="rtl engine: also compare spikes, window bits and du after every "
                            "sample")
        p.add_argument("--preset", default="digits",
                       help="rtl engine: build preset of the core (default: %(default)s)")
        p.add_argument("--check", choices=CHECKS, default="digest",
                       help="rtl engine: how dW and W are compared after every sample and "
                            "update: the core's CRC-32 of each layer, the values read back "
                            "only on a difference (digest), or every value read back (full) "
                            "(default: %(default)s)")
        p.add_argument("--top", choices=TOPS, default="accelerator",
                       help="rtl engine: the one-core top (accelerator) or the core behind the "
                            "multi-core system top (system: dispatcher, NoC, every request "
                            "routed to core 0) (default: %(default)s)")

    @classmethod
    def options_from(cls, args) -> dict:
        return {"cores": args.cores, "preset": args.preset, "check_traces": args.check_traces,
                "top": args.top, "check": args.check}

    def __init__(self, sizes, params: golden.Params, *, weights, precision="fp16", cores=1,
                 preset="digits", check_traces=False, top="accelerator", config=None,
                 check="digest"):
        """``config``, if given, is the :class:`BuildConfig` to build (in place of the
        preset; ``preset`` then only names it in the report)."""
        self.split = (config.features.cores if config is not None else cores) > 1
        if self.split and top == "accelerator":
            top = "system"          # the one top with several cores
        if top not in TOPS:
            raise UsageError(f"--top {top} is unknown; allowed: {', '.join(TOPS)}")
        self.top = top
        if check not in CHECKS:
            raise UsageError(f"--check {check} is unknown; allowed: {', '.join(CHECKS)}")
        self.check = check
        if precision != "fp16":
            raise UsageError(f"--precision {precision} is not available with --engine rtl; "
                             "allowed: fp16")
        self.sizes, self.params = tuple(sizes), params
        built = config if config is not None else (
            config_from_options(preset, cores=cores) if preset is not None else None)
        if built is not None and built.features.inference_only:
            from spikeforge.hdl.config import PRESETS
            training = sorted(n for n, c in PRESETS.items() if not c.features.inference_only)
            raise UsageError(f"the {preset or 'given'} configuration builds the inference-only "
                             f"core, which cannot train; --engine rtl trains on one of the "
                             f"presets {', '.join(training)}")
        if config is not None:
            self.config, self.preset = config, preset
            self._check_fits(lambda: DeviceInfo.from_config(config), "the configuration given")
        elif preset is not None:
            self.config = config_from_options(preset, cores=cores)
            self.preset = preset
            self._check_fits(lambda: DeviceInfo.from_config(self.config), f"the {preset} preset")
        self.weights = [np.array(W, dtype=np.float16) for W in weights]
        self.check_traces = bool(check_traces)
        self.mismatch: Mismatch | None = None   # the first difference, if any
        self.phase = "loading"                  # where it happened: loading, training, inference
        self.stats = {"samples": 0, "cycles": {"forward": 0, "backward": 0, "update": 0},
                      "fmas_done": 0, "fmas_skipped": 0,
                      "useful": {"forward": 0, "backward": 0, "update": 0},
                      "counters": {}, "sim_seconds": 0.0, "sim_cycles": 0,
                      "sim_cpu_seconds": 0.0, "phases": 0, "updates": 0, "digest_checks": 0,
                      "train_seconds": 0.0, "train_link_cycles": 0,
                      "core_cycles": None, "core_fmas": None, "core_useful": None}

    def _check_fits(self, info, built: str) -> None:
        """One sentence (:class:`UsageError`) when the network or its constants do not fit
        what ``built`` (a preset, a board) holds."""
        if callable(info):              # the INFO of a configuration: it may not build
            try:
                info = info()
            except ConfigError as exc:
                raise UsageError(f"{exc} ({built})") from None
        try:
            if self.split:
                self.mapping = compile_mapping(self.sizes, self.config, T=self.params.T)
            else:
                NetworkMap.build(self.sizes, info)
        except (MapError, MappingError) as exc:
            raise UsageError(f"{exc} ({built})") from None
        if self.params.T > info.max_time_steps:
            raise UsageError(f"--T {self.params.T} exceeds the {info.max_time_steps} time "
                             f"steps {built} builds")
        if self.params.reset_grad not in info.modes:
            raise UsageError(f"--reset-grad {self.params.reset_grad} is not built in "
                             f"{built}; built: {', '.join(info.modes)}")

    def describe(self) -> str:
        f = self.config.features
        if self.split:
            return (f"engine rtl: the Verilator model of {f.cores} cores ({f.rows}x{f.cols} "
                    f"mesh, {self.preset}: {f.lanes} lanes each), the network split over "
                    "them, checked bit for bit against the golden model")
        return (f"engine rtl: the Verilator model of one core ({self.preset}: "
                f"{f.lanes} lanes), checked bit for bit against the golden model")

    # -- the session -----------------------------------------------------------------

    def _open(self):
        """A context manager whose value is the :class:`HostLink` to the hardware."""
        from spikeforge.sim.verilator.session import rtl_session
        # the top is made from the configuration alone (the name says which top): its
        # Verilog is kept by it, and made only when it is not in the cache
        if self.top == "system":
            name = system_session_name(self.config)
            top = lambda: System(self.config)               # noqa: E731
        else:
            name = session_name(self.config)
            top = lambda: AcceleratorTop(self.config)       # noqa: E731
        return rtl_session(top, name=name, ports_only=True, wall_timeout_s=600.0,
                           cxx_opt=CXX_OPT, verilog_key=self.config.to_json())

    def _connected(self) -> None:
        """Called with ``self.acc`` open, before the network is loaded."""

    def __enter__(self):
        self._session = self._open()
        self.link = self._session.__enter__()
        try:
            if self.split:
                from spikeforge.sim.host.split import SplitDevice
                self.acc = SplitDevice(self.link, self.config,
                                       cores=self.config.features.cores)
            else:
                self.acc = Device(CoreLink(self.link, 0) if self.top == "system" else self.link)
            self._connected()
            self.acc.load_network(self.sizes, self.params, self.weights)
            self._check(self._check_weights, "after loading")
            self.acc.counters(clear=True)
            if self.split:      # the cycles of training samples only
                self.acc.compute_cycles = self.acc.transfer_cycles = 0
                self.acc.phase_cycles = {}
        except BaseException:
            self._session.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self._session.__exit__(*exc)

    def _check(self, fn, *args, sample=None):
        # a difference is remembered for the report (with the sample it happened in:
        # the training sample's number, or "test K") before it stops the run
        try:
            return fn(*args)
        except Mismatch as exc:
            exc.sample = self.stats["samples"] if sample is None else sample
            if self.mismatch is None:
                self.mismatch, self.mismatch_phase = exc, self.phase
            raise

    def _finished_training(self) -> bool:
        """Whether the hardware numbers describe training that ran to its end."""
        return self.mismatch is None or self.mismatch_phase == "inference"

    def _check_weights(self, when):
        self._compare("W", self.weights, lambda l: f"layer {l} weights {when}")

    def _digests(self) -> bool:
        """Whether the weights are compared by their digests (a core that answers them)."""
        return (self.check == "digest" and
                getattr(getattr(self, "acc", None), "has_digest", False))

    def _compare(self, which, want, what):
        """The device's ``W`` or ``dW`` (``which``) against the golden ``want`` (one array
        per layer), :class:`Mismatch` at the first difference (``what(l)`` names it)."""
        if self._digests():
            got, expect = self.acc.digests(which), self.acc.digests_of(want)
            self.stats["digest_checks"] += 1
            if got == expect:
                return
        values = self.acc.read_weights(which)
        for l, W in enumerate(want):
            first_difference(what(l), values[l], W, kind="W")
        if self._digests():
            l = next(l for l, (a, b) in enumerate(zip(got, expect)) if a != b)
            raise Mismatch(f"{what(l)}: the core's digests {[hex(d) for d in got[l]]} differ "
                           f"from the golden values' {[hex(d) for d in expect[l]]}, yet every "
                           "value read back equals the golden model", {"layer": l})

    def _timed(self, fn):
        # wall time and device cycles of a compute command (few bytes move: the
        # simulator runs on its own while Python waits for the response)
        cpu = getattr(self.link.transport, "simulator_cpu_seconds", lambda: None)
        c0, t0, p0 = self.link.cycles, time.monotonic(), cpu()
        out = fn()
        self.stats["sim_seconds"] += time.monotonic() - t0
        if c0 is not None:          # a board's cycles are not visible to the host
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
        if self.split:
            per = self.acc.core_counters
            busy = [k["cycles_forward"] + k["cycles_backward"] + k["cycles_update"] for k in per]
            fmas = [k["fp_fmas"] + k["bp_fmas"] + k["wg_fmas"] for k in per]
            for key, add in (("core_cycles", busy), ("core_fmas", fmas)):
                st[key] = add if st[key] is None else [a + b for a, b in zip(st[key], add)]
            engines = [{f"{e}_{w}": k[f"{e}_{w}"] for e in ("fp", "bp", "wg")
                        for w in ("busy", "stalled")} for k in per]
            st["core_engines"] = engines if st.get("core_engines") is None else \
                [{n: a[n] + b[n] for n in a} for a, b in zip(st["core_engines"], engines)]
        return c

    # -- the engine interface --------------------------------------------------------

    def set_params(self, params: golden.Params):
        """New constants on both (between minibatches: ``dW`` is zero)."""
        self.params = params
        self.acc.load_network(self.sizes, params)

    def train_step(self, spikes, labels) -> StepStats:
        """Each sample forward and backward on both, checked; then the update, checked."""
        self.phase = "training"
        c0, t0 = self.link.cycles, time.monotonic()
        try:
            return self._train_step(spikes, labels)
        finally:
            self.stats["train_seconds"] += time.monotonic() - t0
            if c0 is not None:
                self.stats["train_link_cycles"] += self.link.cycles - c0

    def _train_step(self, spikes, labels) -> StepStats:
        dWs = golden.zero_grads(self.weights)
        losses, correct, traces_all, grads_all = [], 0, [], []
        for spikes_k, label in zip(spikes, labels):
            res, traces, grads = self._check(self._sample, spikes_k, int(label), dWs)
            if res.nonfinite:
                return StepStats(0.0, 0, [], [], [], nonfinite="the core's arithmetic "
                                 "(it reported an inf or NaN)")
            dWs = [gr.dW for gr in grads]
            losses.append(float(golden.loss_value(traces[-1].s, label)))
            correct += int(res.prediction == int(label))
            traces_all.append(traces)
            grads_all.append(grads)
            self._collect()
            self.stats["samples"] += 1
        self._timed(self.acc.update)
        self.weights = golden.update(self.weights, dWs, self.params)
        self.stats["updates"] += 1
        self.stats["useful"]["update"] += sum(W.size for W in self.weights)
        self.stats["phases"] += 1
        self._check(self._check_weights, "after the update",
                    sample=self.stats["samples"] - 1)    # the minibatch's last sample
        self._collect()
        return _sum_stats(losses, correct, traces_all, grads_all)

    def _sample(self, spikes, label, dWs):
        p = self.params
        self.acc.load_spikes(spikes)
        res = self._timed(lambda: self.acc.run_loaded(label))
        traces = golden.forward(self.weights, spikes, p)
        grads = golden.backward(self.weights, traces, spikes, label, p, dWs)
        counts = golden.spike_counts(traces[-1].s)
        first_difference("output spike counts", res.counts[None], counts[None], kind="trace")
        if res.nonfinite:
            return res, traces, grads
        use = useful_fmas(self.weights, spikes, traces, grads, p)
        if self.split:
            blocks = useful_fmas_per_block(self.acc.mapping, self.weights, spikes, traces,
                                           grads, p)
            per = useful_fmas_per_core(self.acc.mapping, blocks)
            st = self.stats
            st["core_useful"] = per if st["core_useful"] is None else \
                [a + b for a, b in zip(st["core_useful"], per)]
            st["schedule_useful"] = st.get("schedule_useful", 0) + schedule_bound(
                self.acc.mapping, blocks)
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
        self._compare("dW", [gr.dW for gr in grads], lambda l: f"layer {l} dW")
        return res, traces, grads

    def evaluate(self, spikes, labels) -> EvalStats:
        """Inference on the core; every output count is checked against the golden model
        (losses and spike densities are the golden twin's)."""
        self.phase = "inference"
        kept = (self.acc.compute_cycles, self.acc.transfer_cycles,
                dict(self.acc.phase_cycles)) if self.split else None
        traces = golden.forward(self.weights, spikes, self.params)
        want = golden.spike_counts(traces[-1].s)
        preds = np.zeros(len(spikes), dtype=np.int64)
        for k in range(len(spikes)):
            res = self.acc.run(spikes[k])
            self._check(lambda: first_difference(f"test sample {k} output spike counts",
                                                 res.counts[None], want[k][None], kind="trace"),
                        sample=f"test {k}")
            preds[k] = res.prediction
        self.acc.counters(clear=True)       # inference is not part of the training counts
        if kept is not None:
            self.acc.compute_cycles, self.acc.transfer_cycles, self.acc.phase_cycles = kept
        spikes_l, slots_l = layer_activity(traces)
        return EvalStats(predictions=preds, loss=golden.loss_value(traces[-1].s, labels),
                         spikes=spikes_l, slots=slots_l)

    # -- the report ------------------------------------------------------------------

    def metrics(self) -> dict:
        st = self.stats
        n = max(1, st["samples"])
        info = self.acc.info
        P, S = info.lanes, info.fma_stages
        cycles = sum(st["cycles"].values())
        useful = sum(st["useful"].values())
        ideal = useful / P + st["phases"] * (S + 1)
        split = {}
        if self.split:
            # the schedule's cycles: the phases as they ran (in parallel where broadcast);
            # the ideal: the busiest core's useful FMAs (its share of the update too)
            cycles = self.acc.compute_cycles
            cores = self.acc.cores
            upd = st["useful"]["update"] / cores
            busiest = max(st["core_useful"]) + upd if st["core_useful"] else upd
            ideal = busiest / P + st["phases"] * (S + 1)
            core_cycles = st["core_cycles"] or [0] * cores
            core_fmas = st["core_fmas"] or [0] * cores
            split = {
                "cores_used": cores,
                "mapping": self.acc.mapping.to_dict(),
                "per_core": [{"core": k, "busy_cycles_per_sample": core_cycles[k] / n,
                              "fmas_per_sample": core_fmas[k] / n,
                              "useful_fmas_per_sample": (st["core_useful"][k] / n
                                                         if st["core_useful"] else 0),
                              "utilisation": (core_fmas[k] / (cycles * P)) if cycles else 0.0,
                              # busy and stalled cycles per engine (FP, BP with the loss, WG)
                              "engines_per_sample": {
                                  name: v / n for name, v in
                                  (st.get("core_engines") or [{}] * cores)[k].items()}}
                             for k in range(cores)],
                "transfer_cycles_per_sample": self.acc.transfer_cycles / n,
                # the critical path of the unstaged schedule (layers one after the other,
                # the input-gradient chain through a layer's blocks in turn) / lanes
                "schedule_ideal_cycles_per_sample": (
                    (st.get("schedule_useful", 0) + upd) / P + st["phases"] * (S + 1)) / n,
                # the schedule's cycles by phase (the cores' own phase counters, summed
                # over the cores, stay in counters_per_sample)
                "schedule_cycles_per_phase_per_sample": {
                    k: v / n for k, v in sorted(self.acc.phase_cycles.items())},
                # every flit is a command or its answer between the host node and a core
                # (the host moves the data between the phases): one link class so far
                "noc_flits_per_sample": {
                    "host_to_core": st["counters"].get("noc_flits_in", 0) / n,
                    "core_to_host": st["counters"].get("noc_flits_out", 0) / n,
                    "core_to_core": 0.0},
            }
        return {
            "cycles_per_sample": cycles / n,
            "ideal_cycles_per_sample": ideal / n,
            "ratio_to_ideal": (cycles / ideal) if ideal else None,
            "cycles_per_phase_per_sample": {k: v / n for k, v in st["cycles"].items()},
            "fmas_done": st["fmas_done"],
            "fmas_skipped": st["fmas_skipped"],
            "fmas_skipped_output": st["counters"].get("bp_skipped_out", 0),
            "useful_fmas": useful,
            "pe_utilisation": (st["fmas_done"] / (cycles * P * (self.acc.cores if self.split
                                                                else 1))) if cycles else 0.0,
            "simulated_cycles_per_second": ((st["sim_cycles"] / st["sim_seconds"])
                                            if st["sim_seconds"] else 0.0),
            "simulated_cycles_per_cpu_second": ((st["sim_cycles"] / st["sim_cpu_seconds"])
                                                if st["sim_cpu_seconds"] else None),
            "counters_per_sample": {k: v / n for k, v in st["counters"].items()},
            # everything a training sample costs: spikes in, run, checks, update, counters
            "link_cycles_per_sample": st["train_link_cycles"] / n,
            "train_wall_seconds_per_sample": st["train_seconds"] / n,
            "lanes": P,
            "weights_sha256": weights_sha256(self.acc.read_weights("W")),
            **split,
        }

    def identity(self) -> dict:
        """The report's keys that say what ran (the build, the top)."""
        return {"cores": self.config.features.cores, "preset": self.preset, "top": self.top,
                "config": self.config.to_dict()}

    def _final_check(self) -> None:
        """Every final weight read back and compared bit for bit (whatever ``check`` is:
        digests compared after every sample, the values once at the end)."""
        if self.mismatch is not None or not self._digests():
            return
        self.phase = "training"         # a difference here is one in the trained weights
        try:
            self._check(lambda: [first_difference(f"layer {l} weights at the end", got, W,
                                                  kind="W")
                                 for l, (got, W) in enumerate(zip(self.acc.read_weights("W"),
                                                                  self.weights))],
                        sample=self.stats["samples"] - 1)
        except Mismatch:
            pass                        # remembered in self.mismatch: bit_exact is false

    def report(self) -> dict:
        self._final_check()
        out = {**self.identity(), "check_traces": self.check_traces,
               "check": "digest" if self._digests() else "full",
               "digest_checks": self.stats["digest_checks"],
               "bit_exact": self.mismatch is None}
        # after a difference in training the hardware numbers describe no finished run
        if self._finished_training():
            out.update(self.metrics())
        return out

    #: where the run was bit-exact, and its speed, for the summary line
    where = ""

    def speed(self, report) -> str:
        return f"{report['simulated_cycles_per_second']:.0f} simulated cycles/s"

    def summary(self, report) -> str | None:
        if not self._finished_training():
            return None
        return (f"{self.stats['samples']} samples bit-exact{self.where}; "
                f"{report['cycles_per_sample']:.0f} cycles per sample (ideal "
                f"{report['ideal_cycles_per_sample']:.0f}, {report['ratio_to_ideal']:.2f}x), "
                f"PE utilisation {report['pe_utilisation']:.2f}, {self.speed(report)}")


def _sum_stats(losses, correct, traces_all, grads_all) -> StepStats:
    per = [step_stats([loss], 0, tr, gr) for loss, tr, gr in zip(losses, traces_all, grads_all)]
    return StepStats(loss=float(sum(losses)), correct=correct,
                     spikes=[sum(x) for x in zip(*(p.spikes for p in per))],
                     slots=[sum(x) for x in zip(*(p.slots for p in per))],
                     du_nonzero=[sum(x) for x in zip(*(p.du_nonzero for p in per))])
