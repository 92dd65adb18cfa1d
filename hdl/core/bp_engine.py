"""Backward (BP) engine: ``du`` of one layer backwards in time, then ``g_in`` for
the layer below.

Phases (``phase``):

* ``TERM`` -- ``detach``: ``term[t] = m[t] ? fma(beta, g[t], -0) : +0`` for every
  step and group (no chain: any order). ``through``: ``du[t] = fma(-alpha, u[t], -0)``
  (the ``-(alpha*u)`` factor). ``T * G`` operations.
* ``DU`` -- ``t`` descending, every group: ``detach``: ``du[t] = s[t] ? term :
  fma(alpha, du[t+1], term)``; ``through``: three chained operations per step
  (``ds = fma(-(alpha*u), du[t+1], g)``, the term, then ``du``). The write-back
  also records ``du[t] != 0`` as a history bit, so the non-zero gradients can be
  walked like spikes. ``T * G`` (``3 * T * G``) operations.
* ``INPUT_GRAD`` -- (every ``acc[t, h]`` starts at +0, see the lane datapath) for every ``(i, t)`` with ``du[t]_i != 0`` (ascending ``i``: the
  contract's order), for every group ``h`` of ``P`` inputs:
  ``acc[t, h] = fma(W[i, h*P + k], du[t]_i, acc[t, h])`` (a row of the skewed
  weight memory). Zero gradients cost nothing: ``nonzeros * G_in`` operations.

Throughput: one ``P``-lane operation per cycle.
"""

from __future__ import annotations

from amaranth import Mux
from amaranth.lib import enum

from .defs import OpKind
from .engine import Engine
from .op_loops import PairLoop, TimeGroupLoop

__all__ = ["BPEngine", "BPPhase"]


class BPPhase(enum.Enum, shape=2):
    TERM = 0
    DU = 1
    INPUT_GRAD = 2


class BPEngine(Engine):
    Phase = BPPhase

    def build(self, m, lay, ctl):
        m.submodules.tg = tg = TimeGroupLoop(self.geo)
        m.submodules.pl = pl = PairLoop(self.geo)
        ph = ctl.phase
        start_pl = ctl.start & (ph == BPPhase.INPUT_GRAD)
        m.d.comb += [
            tg.start.eq(ctl.start & (ph != BPPhase.INPUT_GRAD)), tg.T.eq(self.T),
            tg.t_first.eq(0), tg.descending.eq(ph == BPPhase.DU),
            tg.hg.eq(lay.out_hg), tg.dg.eq(lay.out_dg),
            tg.groups.eq(lay.g_out), tg.n.eq(lay.n_out),
            tg.nkinds.eq(1),
        ]
        with m.Switch(ph):
            with m.Case(BPPhase.TERM):
                m.d.comb += tg.kinds[0].eq(Mux(self.through, OpKind.BPT1, OpKind.BPA))
            with m.Case(BPPhase.DU):
                with m.If(self.through):
                    m.d.comb += [tg.kinds[0].eq(OpKind.BPT2), tg.kinds[1].eq(OpKind.BPA),
                                 tg.kinds[2].eq(OpKind.BPB), tg.nkinds.eq(3)]
                with m.Else():
                    m.d.comb += tg.kinds[0].eq(OpKind.BPB)
        m.d.comb += [
            pl.start.eq(start_pl), pl.kind.eq(OpKind.GIN), pl.layer.eq(lay),
        ]
        self.scan_with(m, pl, start=start_pl, base=lay.out_hg, n=lay.n_out, nz=1)
        return [tg, pl]
