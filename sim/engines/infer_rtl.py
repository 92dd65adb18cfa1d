"""``spikeforge infer --engine rtl``: the integer inference core (``hdl/inference``) in
Verilator, every sample checked bit for bit against the golden model of SPEC section 8.

:class:`RtlInferEngine` builds (or takes from the shared cache) the Verilator model
of one :class:`~spikeforge.hdl.inference.InferenceAccelerator` (ports-only build,
:func:`spikeforge.sim.verilator.session.rtl_session`), checks that the network fits
the preset (``--preset``, default ``inference-int8``, or ``inference-int4`` for a
4-bit network; one sentence with the numbers when it does not), loads it through
:class:`~spikeforge.sim.host.inference_device.InferenceDevice` and runs each
sample: its input bitmaps in, the last layer's spike counts (``spikes`` readout)
or final potentials (``potential``) out, compared with
:func:`spikeforge.sim.golden.integer.forward`, and the run's busy cycles and SOPs
(the core's own count, checked against the golden SOPs).

The report adds ``bit_exact`` (every sample's outputs equal), ``mismatched_samples``,
``cycles_per_sample``, ``sops_per_cycle``, ``peak_sops_per_cycle`` (the build's
``group`` = lanes x weights per word), ``ideal_cycles_per_sample`` (SOPs / peak)
and ``cycles_over_ideal``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from spikeforge.hdl.config import ConfigError, PRESETS, BuildConfig, preset
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import integer as I
from spikeforge.sim.host.inference_device import FitError, InferenceDevice, InferenceInfo, \
    plan_network

__all__ = ["RtlInferEngine", "session_name", "default_preset"]

CXX_OPT = "-O3"


def session_name(config: BuildConfig) -> str:
    """Verilog top name (and build cache name) of the inference top of ``config``."""
    return "inference_" + hashlib.sha256(config.to_json().encode()).hexdigest()[:8]


def default_preset(net: I.IntNetwork) -> str:
    return "inference-int4" if net.B == 4 else "inference-int8"


class RtlInferEngine:
    """The Verilator model of the integer inference core, checked against the golden model."""

    name = "rtl"
    kinds = ("integer",)

    @staticmethod
    def add_arguments(parser):
        names = sorted(n for n, c in PRESETS.items() if c.features.integer_inference)
        parser.add_argument("--preset", default=None, choices=names,
                            help="integer inference build for --engine rtl (default: "
                                 "inference-int8, or inference-int4 for 4-bit networks)")

    def __init__(self, loaded, args=None):
        self.net = net = loaded.network
        self.T = net.T
        name = getattr(args, "preset", None) or default_preset(net)
        try:
            self.config = preset(name)
            self.info = InferenceInfo.from_config(self.config)
        except ConfigError as exc:
            raise UsageError(f"--preset {name}: {exc}") from None
        self.preset = name
        try:
            plan_network(net, self.info)
        except FitError as exc:
            raise UsageError(f"the network does not fit the {name} build: {exc}") from None
        self._reset()

    def _reset(self):
        """No session yet, nothing run."""
        self._session = None
        self.device = None
        self.samples = 0
        self.mismatches = []
        self.cycles = 0
        self.sops = 0

    def _open(self):
        from spikeforge.hdl.inference import InferenceAccelerator
        from spikeforge.sim.verilator.session import rtl_session
        self._session = rtl_session(InferenceAccelerator(self.config),
                                    name=session_name(self.config), ports_only=True,
                                    wall_timeout_s=600.0, cxx_opt=CXX_OPT)
        link = self._session.__enter__()
        try:
            self.device = InferenceDevice(link)
            if self.device.info != self.info:
                raise UsageError(f"the {self.preset} model answers INFO {self.device.info}, "
                                 f"not the {self.info} its configuration gives")
            self.device.load(self.net)
            self.device.counters(clear=True)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._session is not None:
            session, self._session = self._session, None
            session.__exit__(None, None, None)

    def run(self, spikes):
        from spikeforge.sim.infer import EngineBatch
        if self._session is None:
            self._open()
        gold = I.forward(self.net, spikes)
        want = gold.potentials[-1] if self.net.readout == "potential" else gold.counts
        preds, cycles = [], 0
        for k in range(len(spikes)):
            res, c, sops = self.device.run(spikes[k])
            if not np.array_equal(res, want[k]) or sops != int(gold.sops[k].sum()):
                self.mismatches.append({"sample": self.samples + k,
                                        "rtl": [int(x) for x in res], "sops_rtl": sops,
                                        "golden": [int(x) for x in want[k]],
                                        "sops_golden": int(gold.sops[k].sum())})
            preds.append(int(np.argmax(res)))
            cycles += c
        self.samples += len(spikes)
        self.cycles += cycles
        self.sops += int(gold.sops.sum())
        return EngineBatch(predictions=np.array(preds, dtype=np.int64), sops=gold.sops,
                           extra={"cycles": cycles})

    def report(self) -> dict:
        counters = self.device.counters() if self.device is not None else {}
        self.close()
        n = max(self.samples, 1)
        peak = self.info.group
        cps = self.cycles / n
        ideal = self.sops / n / peak
        return {
            "preset": self.preset, "lanes": self.info.lanes, "build_B": self.info.weight_bits,
            "build_Q": self.info.potential_bits,
            "bit_exact": self.samples > 0 and not self.mismatches,
            "mismatched_samples": len(self.mismatches),
            "first_mismatches": self.mismatches[:3],
            "cycles_per_sample": cps,
            "sops_per_cycle": self.sops / max(self.cycles, 1),
            "peak_sops_per_cycle": peak,
            "ideal_cycles_per_sample": ideal,
            "cycles_over_ideal": cps / ideal if ideal else None,
            "rtl_counters": counters,
        }
