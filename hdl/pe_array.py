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

from amaranth import Cat
from amaranth.lib import data

from .fp16 import DEFAULT_STAGES, FMA, OPERANDS, fma_pipeline

__all__ = ["PEArray"]


class PEArray(FMA):
    """``lanes`` pipelined fp16 FMA lanes sharing one input and one output stream
    (an :class:`~spikeforge.hdl.fp16.FMA` ``lanes`` wide: the same ``stages`` and
    ``latency``)."""

    @classmethod
    def check(cls, *, lanes, stages=DEFAULT_STAGES):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
        super().check(stages=stages)

    def __init__(self, *, lanes: int, stages: int = DEFAULT_STAGES):
        self._lanes = lanes
        self.OPERANDS = data.ArrayLayout(OPERANDS, lanes)
        self.RESULT = data.ArrayLayout(16, lanes)
        super().__init__(stages=stages)

    @property
    def lanes(self) -> int:
        return self._lanes

    def datapath(self, m, p, *, stages, en):
        return Cat(fma_pipeline(m, p[k].a, p[k].b, p[k].c, stages=stages, en=en, name=f"lane{k}",
                                platform=self._platform)
                   for k in range(self._lanes))
