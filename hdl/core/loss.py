"""Loss unit: the output-layer gradient of SPEC section 3 on the lanes.

Phases (``phase``), on the output layer's neuron groups (lane ``k`` = neuron
``g*P + k``; its spike count is read from the spike history and converted to
fp16 exactly):

* ``GRADIENT`` -- three chained operations per group at ``acc[0, g]``:
  ``r = fma(count, inv_T, -0)``, ``e = fma(r, 1, -y)`` (``y`` = 1.0 on the label's
  lane, else 0.0), ``g = fma(e, gscale, -0)``. ``3 * G`` operations; the chain
  waits for the FMA pipeline when ``G`` is below the stage count.
* ``BROADCAST`` -- ``acc[t, g] = fma(acc[0, g], 1, -0)`` (exact copy) for
  ``t = 1 .. T-1``, so the backward engine finds ``g[t]`` where it finds the
  gradient of any other layer. ``(T-1) * G`` operations.
"""

from __future__ import annotations

from amaranth import Mux
from amaranth.lib import enum

from .defs import OpKind
from .engine import Engine
from .op_loops import TimeGroupLoop

__all__ = ["LossUnit", "LossPhase"]


class LossPhase(enum.Enum, shape=1):
    GRADIENT = 0
    BROADCAST = 1


class LossUnit(Engine):
    Phase = LossPhase
    uses_scanner = False

    def build(self, m, lay, ctl):
        m.submodules.tg = tg = TimeGroupLoop(self.geo)
        grad = ctl.phase == LossPhase.GRADIENT
        m.d.comb += [
            tg.start.eq(ctl.start), tg.T.eq(Mux(grad, 1, self.T)),
            tg.t_first.eq(Mux(grad, 0, 1)), tg.descending.eq(0),
            tg.kinds[0].eq(Mux(grad, OpKind.LOSS_R, OpKind.COPY)),
            tg.kinds[1].eq(OpKind.LOSS_E), tg.kinds[2].eq(OpKind.LOSS_G),
            tg.nkinds.eq(Mux(grad, 3, 1)),
            tg.groups.eq(lay.g_out), tg.n.eq(lay.n_out), tg.hg.eq(lay.out_hg), tg.dg.eq(lay.out_dg),
        ]
        return [tg]
