"""The integer inference core (SPEC section 8): command unit, engine and counters.

``req`` / ``rsp`` are the internal request and response beat streams of
:mod:`spikeforge.hdl.protocol` (behind the same :class:`~spikeforge.hdl.host_port.HostPort`
as the training core). No fp16 FMA, no backward or weight-gradient logic, no
history memories: :class:`~.engine.InferenceEngine` holds the weight, bias,
spike and result memories and the integer accumulate-only lanes.

Counters (32 bits, wrapping; :data:`~spikeforge.hdl.protocol.INF_COUNTERS`):
``cycles`` (every cycle), ``busy`` (cycles of runs), ``sops`` (synaptic
operations: useful weight additions), ``beats`` (input events processed),
``updates`` (group updates), ``runs``. RUN's response carries the busy cycles
and SOPs of that run.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checked import ArgumentChecked
from ..config import BuildConfig
from ..protocol import BEAT_LAYOUT, INF_COUNTERS
from .command import InferenceCommandUnit
from .engine import InferenceEngine
from .geometry import InferenceGeometry

__all__ = ["InferenceCore"]


class InferenceCore(ArgumentChecked, wiring.Component):
    @classmethod
    def check(cls, config):
        InferenceGeometry(config)

    def __init__(self, config: BuildConfig):
        self.config = config
        self.geo = InferenceGeometry(config)
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.cmd = cmd = InferenceCommandUnit(self.geo)
        m.submodules.engine = eng = InferenceEngine(self.geo)
        wiring.connect(m, wiring.flipped(self.req), cmd.req)
        wiring.connect(m, cmd.rsp, wiring.flipped(self.rsp))
        for name in ("table", "weights", "biases", "spikes", "results"):
            wiring.connect(m, getattr(cmd, name), getattr(eng, name))
        for name in ("T", "layers", "Q", "potential", "start"):
            m.d.comb += getattr(eng, name).eq(getattr(cmd, name))
        m.d.comb += cmd.done.eq(eng.done)

        ctr = {name: Signal(32, name=f"ctr_{name}") for name in INF_COUNTERS}
        inc = {"cycles": 1, "busy": eng.busy, "sops": eng.sops, "beats": eng.beat,
               "updates": eng.update, "runs": eng.done}
        for name, sig in ctr.items():
            with m.If(cmd.clear):
                m.d.sync += sig.eq(0)
            with m.Else():
                m.d.sync += sig.eq(sig + inc[name])
            m.d.comb += cmd.counters[INF_COUNTERS.index(name)].eq(sig)
        run_cycles, run_sops = Signal(32), Signal(32)
        with m.If(eng.start):
            m.d.sync += [run_cycles.eq(0), run_sops.eq(0)]
        with m.Else():
            m.d.sync += [run_cycles.eq(run_cycles + eng.busy), run_sops.eq(run_sops + eng.sops)]
        m.d.comb += [cmd.run_cycles.eq(run_cycles), cmd.run_sops.eq(run_sops)]
        return m
