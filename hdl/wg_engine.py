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

import enum

from amaranth import Module
from amaranth.lib import wiring

from .core_defs import OpKind
from .engine_base import Engine
from .op_loops import AddrLoop, PairLoop

__all__ = ["WGEngine", "WGPhase"]


class WGPhase(enum.IntEnum):
    GRADIENT = 0
    UPDATE = 1


class WGEngine(Engine):
    def elaborate(self, platform):
        m = Module()
        m.submodules.al = al = AddrLoop(self.geo)
        m.submodules.pl = pl = PairLoop(self.geo)
        lay = self.layer
        start_pl = self.start & (self.phase == WGPhase.GRADIENT)
        m.d.comb += [
            al.start.eq(self.start & (self.phase == WGPhase.UPDATE)), al.count.eq(self.wcount),
            pl.start.eq(start_pl), pl.kind.eq(OpKind.WG), pl.layer.eq(lay),
            pl.pairs_done.eq(self.pairs_done),
            self.scan_start.eq(start_pl), self.scan_base.eq(lay.in_hg), self.scan_n.eq(lay.n_in),
            self.scan_desc.eq(1), self.scan_nz.eq(0), self.scan_time_major.eq(1),
            self.busy.eq(al.busy | pl.busy),
        ]
        wiring.connect(m, wiring.flipped(self.pairs), pl.pairs)
        self.mux_ops(m, self.op, [al, pl])
        return m
