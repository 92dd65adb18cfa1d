"""Forward (FP) engine: the synaptic sums and the LIF update of one layer.

Phases (``phase``):

* ``ACCUMULATE`` -- (the lane datapath starts every ``acc[t, g]`` at +0: a
  word not written since the phase began reads as +0) for every active input ``(j, t)`` (from the history scanner,
  ascending ``j``: the contract's term order), for every group of ``P`` neurons:
  ``acc[t, g] = fma(W[i, j], 1, acc[t, g])``. Inactive inputs cost nothing:
  ``events * G`` operations (plus one cycle per input group without events).
* ``LIF`` -- for ``t`` ascending, for every group: ``u[t] = s[t-1] ? x[t] :
  fma(alpha, u[t-1], x[t])`` written over ``x[t]``; the write-back sets the spike
  bit ``u >= V_th`` and the window bit ``lo < u < hi`` (and stores ``u`` in
  ``through`` builds). ``T * G`` operations; a layer with fewer groups than FMA
  stages waits for the pipeline between steps.

Throughput: one ``P``-lane operation per cycle.
"""

from __future__ import annotations

from amaranth.lib import enum

from .defs import OpKind
from .engine import Engine
from .op_loops import PairLoop, TimeGroupLoop

__all__ = ["FPEngine", "FPPhase"]


class FPPhase(enum.Enum, shape=1):
    ACCUMULATE = 0
    LIF = 1


class FPEngine(Engine):
    Phase = FPPhase

    def build(self, m, lay, ctl):
        m.submodules.tg = tg = TimeGroupLoop(self.geo)
        m.submodules.pl = pl = PairLoop(self.geo)
        start_tg = ctl.start & (ctl.phase == FPPhase.LIF)
        start_pl = ctl.start & (ctl.phase == FPPhase.ACCUMULATE)
        m.d.comb += [
            tg.start.eq(start_tg), tg.T.eq(self.T), tg.t_first.eq(0), tg.descending.eq(0),
            tg.kinds[0].eq(OpKind.LIF),
            tg.nkinds.eq(1), tg.groups.eq(lay.g_out), tg.n.eq(lay.n_out),
            tg.hg.eq(lay.out_hg), tg.dg.eq(lay.out_dg),
            pl.start.eq(start_pl), pl.kind.eq(OpKind.FP), pl.layer.eq(lay),
        ]
        self.scan_with(m, pl, start=start_pl, base=lay.in_hg, n=lay.n_in)
        return [tg, pl]
