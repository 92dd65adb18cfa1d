"""An array of binary16 FMA lanes behind one stream: the unit the engines drive.

``PEArray(lanes=P, stages=S)`` computes, for every lane k,
``o.payload[k] = round(i.payload[k].a * i.payload[k].b + i.payload[k].c)`` exactly as
:class:`spikeforge.hdl.fp16.FMA` does. All lanes advance together: one ``valid``/``ready``
pair, one pipeline enable (``en = o.ready | ~o.valid``, ``i.ready = en``), one valid chain.
Latency ``S`` cycles (:attr:`PEArray.latency`), one P-wide result per cycle while
``o.ready``; results in order, nothing dropped or duplicated. Each lane uses one
MULT18X18D on ECP5.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp16 import DEFAULT_STAGES, FMA, OPERANDS, _check_stages, fma_pipeline, pipeline_control

__all__ = ["PEArray"]


class PEArray(FMA):
    """``lanes`` pipelined fp16 FMA lanes sharing one input and one output stream
    (an :class:`~spikeforge.hdl.fp16.FMA` ``lanes`` wide: the same ``stages`` and
    ``latency``)."""

    def __init__(self, *, lanes: int, stages: int = DEFAULT_STAGES):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
        _check_stages(stages)
        self._lanes = lanes
        self._stages = stages
        wiring.Component.__init__(self, {
            "i": In(stream.Signature(data.ArrayLayout(OPERANDS, lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(16, lanes))),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        en = pipeline_control(m, self.i, self.o, self._stages)
        for k in range(self._lanes):
            p = self.i.payload[k]
            m.d.comb += self.o.payload[k].eq(
                fma_pipeline(m, p.a, p.b, p.c, stages=self._stages, en=en, name=f"lane{k}"))
        return m
