"""Operation loops the engines are built from; each issues at most one lane operation
per cycle on ``op`` and holds it until the lane datapath accepts it.

* :class:`TimeGroupLoop` -- for every time step (ascending or descending), for up
  to three operation kinds in turn, for every neuron group of a layer: one
  operation. Consecutive operations go to different groups, so a chain over time
  (``u[t]`` after ``u[t-1]``, ``du[t]`` after ``du[t+1]``) waits for the FMA
  pipeline only when a layer has fewer groups than pipeline stages.
* :class:`PairLoop` -- for every (neuron, time step) event from a history
  scanner, for every group of the other side of the layer: one operation
  (forward accumulation, input gradient, weight gradient).
* :class:`AddrLoop` -- one operation per weight address (the update).

All: ``start`` (one cycle) latches the parameters; ``busy`` is high until the
last operation was accepted. Throughput one operation per cycle.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from amaranth.utils import bits_for

from .defs import CoreGeometry, OpKind
from .history_scanner import pair_layout

__all__ = ["TimeGroupLoop", "PairLoop", "AddrLoop"]


class _Loop(wiring.Component):
    """A loop's ports: its own ``members``, then ``busy`` and the ``op`` stream."""

    def __init__(self, geometry: CoreGeometry, members: dict):
        self.geo = geometry
        super().__init__({**members, "busy": Out(1),
                          "op": Out(stream.Signature(geometry.op_layout))})


def _nvalid(geo, rem):
    return Mux(rem >= geo.lanes, geo.lanes, rem)


class TimeGroupLoop(_Loop):
    def __init__(self, geometry: CoreGeometry):
        g = geometry
        super().__init__(g, {
            "start": In(1),
            "T": In(bits_for(g.max_time_steps)),
            "t_first": In(g.time_bits),            # lowest step visited
            "descending": In(1),
            "kinds": In(data.ArrayLayout(OpKind, 3)),
            "nkinds": In(2),                # 1..3
            "groups": In(g.neuron_bits),
            "n": In(g.neuron_bits),                  # neurons (lanes beyond n are off)
            "hg": In(g.hist_group_bits),
            "dg": In(g.du_group_bits),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        t = Signal(g.time_bits + 1)
        sub = Signal(2)
        grp = Signal(g.neuron_bits)
        rem = Signal(g.neuron_bits + 1)
        T_r = Signal.like(self.T)
        tf = Signal(g.time_bits)
        desc = Signal()
        kinds = Signal.like(self.kinds)
        nk = Signal(2)
        G = Signal(g.neuron_bits)
        n = Signal(g.neuron_bits)
        hg = Signal(g.hist_group_bits)
        dg = Signal(g.du_group_bits)
        o = self.op.payload
        m.d.comb += [
            self.op.valid.eq(self.busy),
            o.kind.eq(kinds[sub]),
            o.t.eq(t),
            o.g.eq(grp),
            o.dg.eq(dg + grp),
            o.hg.eq(hg + grp),
            o.nvalid.eq(_nvalid(g, rem)),
        ]
        with m.If(self.start):
            empty = (self.groups == 0) | (self.t_first >= self.T)
            m.d.sync += [
                self.busy.eq(~empty), T_r.eq(self.T), tf.eq(self.t_first), desc.eq(self.descending),
                kinds.eq(self.kinds), nk.eq(self.nkinds), G.eq(self.groups), n.eq(self.n),
                hg.eq(self.hg), dg.eq(self.dg), sub.eq(0), grp.eq(0), rem.eq(self.n),
                t.eq(Mux(self.descending, self.T - 1, self.t_first)),
            ]
        with m.Elif(self.op.valid & self.op.ready):
            with m.If(grp + 1 < G):
                m.d.sync += [grp.eq(grp + 1), rem.eq(rem - g.lanes)]
            with m.Else():
                m.d.sync += [grp.eq(0), rem.eq(n)]
                with m.If(sub + 1 < nk):
                    m.d.sync += sub.eq(sub + 1)
                with m.Else():
                    m.d.sync += sub.eq(0)
                    with m.If(desc):
                        with m.If(t == tf):
                            m.d.sync += self.busy.eq(0)
                        with m.Else():
                            m.d.sync += t.eq(t - 1)
                    with m.Else():
                        with m.If(t + 1 >= T_r):
                            m.d.sync += self.busy.eq(0)
                        with m.Else():
                            m.d.sync += t.eq(t + 1)
        return m


class PairLoop(_Loop):
    """Modes: ``FP`` (column of weights, acc[t, g]), ``WG`` (column of dW, du[t, g]),
    ``GIN`` (row of weights of neuron ``i``, acc[t, h] of the inputs)."""

    def __init__(self, geometry: CoreGeometry):
        g = geometry
        super().__init__(g, {
            "start": In(1),
            "kind": In(OpKind),
            "layer": In(g.layer_layout),
            "pairs": In(stream.Signature(pair_layout(g))),
            "pairs_done": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        P = g.lanes
        kind = Signal(OpKind)
        lay = Signal(g.layer_layout)
        grp = Signal(g.neuron_bits)
        rem = Signal(g.neuron_bits + 1)
        wa = Signal(g.waddr_bits + 1)          # weight address of this operation (column mode)
        running = Signal()
        is_gin = Signal()
        m.d.comb += is_gin.eq(kind == OpKind.GIN)
        pr = self.pairs.payload
        jg = Signal(g.neuron_bits)
        jl = Signal(g.lane_bits)
        if P & (P - 1) == 0:
            m.d.comb += [jg.eq(pr.j >> g.lane_shift), jl.eq(pr.j[:g.lane_bits] if P > 1 else 0)]
        else:
            m.d.comb += [jg.eq(pr.j // P), jl.eq(pr.j % P)]
        G = Signal(g.neuron_bits)
        n = Signal(g.neuron_bits)
        m.d.comb += [G.eq(Mux(is_gin, lay.g_in, lay.g_out)), n.eq(Mux(is_gin, lay.n_in, lay.n_out))]
        o = self.op.payload
        # first operation of a pair: column address = wbase + j, row address = wbase + (i div P) * n_in
        base = Signal(g.waddr_bits + 1)
        m.d.comb += base.eq(Mux(is_gin, lay.wbase + jg * lay.n_in, lay.wbase + pr.j))
        addr = Signal(g.waddr_bits + 1)
        m.d.comb += addr.eq(Mux(grp == 0, base, wa))
        m.d.comb += [
            self.op.valid.eq(running & self.pairs.valid),
            o.kind.eq(kind),
            o.t.eq(pr.t),
            o.g.eq(grp),
            o.dg.eq(Mux(is_gin, lay.out_dg + jg, lay.out_dg + grp)),
            o.hg.eq(lay.out_hg + grp),
            o.waddr.eq(addr),
            o.rot.eq(jl),
            o.row.eq(is_gin),
            o.bsel.eq(jl),
            o.nvalid.eq(_nvalid(g, Mux(grp == 0, n, rem))),
        ]
        m.d.comb += self.busy.eq(running)
        step = Signal()
        m.d.comb += step.eq(self.op.valid & self.op.ready)
        m.d.comb += self.pairs.ready.eq(step & (grp + 1 >= G))
        with m.If(self.start):
            m.d.sync += [running.eq(1), kind.eq(self.kind), lay.eq(self.layer), grp.eq(0)]
        with m.Elif(running):
            with m.If(step):
                with m.If(grp + 1 < G):
                    m.d.sync += [grp.eq(grp + 1),
                                 rem.eq(Mux(grp == 0, n, rem) - P),
                                 wa.eq(addr + Mux(is_gin, P, lay.n_in))]
                with m.Else():
                    m.d.sync += grp.eq(0)
            with m.If(~self.pairs.valid & self.pairs_done):
                m.d.sync += running.eq(0)
        return m


class AddrLoop(_Loop):
    """One ``UPD`` operation per weight address ``0 .. count-1`` (all lanes)."""

    def __init__(self, geometry: CoreGeometry):
        g = geometry
        super().__init__(g, {
            "start": In(1),
            "count": In(g.waddr_bits),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        a = Signal(g.waddr_bits)
        cnt = Signal(g.waddr_bits)
        o = self.op.payload
        m.d.comb += [self.op.valid.eq(self.busy), o.kind.eq(OpKind.UPD), o.waddr.eq(a),
                     o.nvalid.eq(g.lanes)]
        with m.If(self.start):
            m.d.sync += [a.eq(0), cnt.eq(self.count), self.busy.eq(self.count != 0)]
        with m.Elif(self.op.valid & self.op.ready):
            m.d.sync += a.eq(a + 1)
            with m.If(a + 1 >= cnt):
                m.d.sync += self.busy.eq(0)
        return m
