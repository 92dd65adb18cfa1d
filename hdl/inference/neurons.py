"""Neuron group of the integer inference engine: the ``group`` neurons one group of
lanes updates together, their accumulators, potentials and spike counts.

Neuron ``k`` is sub-word ``k % per_word`` of lane ``k // per_word``'s weight word
(``weights``). Each cycle with ``add`` its B-bit weight is added into its
accumulator ``x`` (integer add, no multiplier). With ``end`` (the beat that ends a
step's bitmap, which may also add) the neuron updates in the same cycle, exactly
SPEC section 8: ``l = v`` (``leak.none``) or ``v - (v >> leak.shift)``,
``v' = sat_Q(l + x + b)`` with the run-time ``Q`` and the bias ``b`` (``bias``),
a spike when ``fire`` and ``v' >= theta``, reset by subtracting ``theta`` or to
zero; ``x`` clears. ``spikes`` are the update's spikes of the first ``nvalid``
neurons, ``result`` the row the last layer stores with a group's final update
(``potential``: the potentials after it, else the spike counts). ``clear``
starts a group (every register 0). All combinational into one register stage:
one update per cycle.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..protocol import INF_SET_LAYER, ResetKind
from .geometry import GeometryChecked

__all__ = ["NeuronGroup"]


class NeuronGroup(GeometryChecked, wiring.Component):
    """See the module doc; ``layer`` is the current layer's table entry (``leak``,
    ``theta``, ``reset``)."""

    def __init__(self, geo):
        self.geo = g = geo
        super().__init__({
            "add": In(1), "end": In(1), "clear": In(1),
            "weights": In(data.ArrayLayout(16, g.lanes)),
            "bias": In(data.ArrayLayout(signed(g.Q), g.group)),
            "layer": In(INF_SET_LAYER), "Q": In(range(g.Q + 1)), "fire": In(1),
            "nvalid": In(range(g.group + 1)), "potential": In(1),
            "spikes": Out(g.group),
            "result": Out(data.ArrayLayout(16, g.group)),
        })

    def elaborate(self, platform):
        m = Module()
        g, lay = self.geo, self.layer
        P, B, QB = g.per_word, g.B, g.Q
        qhi = Signal(signed(QB + 1))
        qlo = Signal(signed(QB + 1))
        m.d.comb += [qhi.eq((Const(1, QB + 1) << (self.Q - 1)[:len(self.Q)].as_unsigned()) - 1),
                     qlo.eq(-1 - qhi)]
        theta = lay.theta.as_signed()
        sw = max(QB, g.acc_bits) + 3
        for k in range(g.group):
            acc = Signal(signed(g.acc_bits), name=f"acc{k}")
            v = Signal(signed(QB), name=f"v{k}")
            cnt = Signal(range(g.max_T + 1), name=f"cnt{k}")
            lane, p = divmod(k, P)
            w = self.weights[lane][p * B:(p + 1) * B].as_signed()
            x = Signal(signed(g.acc_bits + 1), name=f"x{k}")
            m.d.comb += x.eq(acc + Mux(self.add, w, 0))
            leak = Signal(signed(QB + 1), name=f"leak{k}")
            m.d.comb += leak.eq(Mux(lay.leak.none, v, v - (v >> lay.leak.shift)))
            total = Signal(signed(sw), name=f"sum{k}")
            m.d.comb += total.eq(leak + x + self.bias[k])
            vp = Signal(signed(QB), name=f"vp{k}")
            with m.If(total > qhi):
                m.d.comb += vp.eq(qhi)
            with m.Elif(total < qlo):
                m.d.comb += vp.eq(qlo)
            with m.Else():
                m.d.comb += vp.eq(total)
            s = Signal(name=f"s{k}")
            m.d.comb += [s.eq(self.fire & (vp >= theta)), self.spikes[k].eq(s & (k < self.nvalid))]
            vn = Signal(signed(QB), name=f"vn{k}")       # v[t] after this step's update
            cn = Signal(range(g.max_T + 1), name=f"cn{k}")
            m.d.comb += [vn.eq(Mux(s, Mux(lay.reset == ResetKind.ZERO, 0, vp - theta), vp)),
                         cn.eq(cnt + s),
                         self.result[k].eq(Mux(self.potential, vn.as_signed(), cn))]
            with m.If(self.clear):
                m.d.sync += [acc.eq(0), v.eq(0), cnt.eq(0)]
            with m.Elif(self.end):
                m.d.sync += [acc.eq(0), v.eq(vn), cnt.eq(cn)]
            with m.Elif(self.add):
                m.d.sync += acc.eq(x)
        return m
