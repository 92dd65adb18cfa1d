"""Weight-gradient (WG) engine: ``dW`` of one layer, and the update of all weights.

Phases (``phase``):

* ``GRADIENT`` -- for every active input ``(j, t)`` of the layer (history scanner,
  time-major with ``t`` descending: the contract's term order for every
  ``dW[i, j]``, and consecutive operations on different ``dW`` words), for every group of ``P`` neurons: ``dW[i, j] = fma(du[t]_i, 1,
  dW[i, j])`` on the lanes whose ``du[t]_i != 0`` (the others are masked and
  counted as skipped). ``events * G`` operations.
* ``UPDATE`` -- for every weight address: ``W = fma(neg_lr, dW, W)``, ``dW = +0``
  on all ``P`` banks at once: ``wcount`` operations for the whole network.

Throughput: one ``P``-lane operation per cycle.
"""

from __future__ import annotations

from amaranth.lib import enum

from .defs import OpKind
from .engine import Engine
from .op_loops import AddrLoop, PairLoop

__all__ = ["WGEngine", "WGPhase"]


class WGPhase(enum.Enum, shape=1):
    GRADIENT = 0
    UPDATE = 1


class WGEngine(Engine):
    Phase = WGPhase

    def build(self, m, lay, ctl):
        m.submodules.al = al = AddrLoop(self.geo)
        m.submodules.pl = pl = PairLoop(self.geo)
        start_pl = ctl.start & (ctl.phase == WGPhase.GRADIENT)
        m.d.comb += [
            al.start.eq(ctl.start & (ctl.phase == WGPhase.UPDATE)), al.count.eq(self.wcount),
            pl.start.eq(start_pl), pl.kind.eq(OpKind.WG), pl.layer.eq(lay),
        ]
        self.scan_with(m, pl, start=start_pl, base=lay.in_hg, n=lay.n_in, descending=1,
                       time_major=1)
        return [al, pl]
