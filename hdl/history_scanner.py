"""History scanner: the ascending list of (neuron, time step) events of a layer.

The core keeps spike history neuron-major: per neuron one ``TMAX``-bit word
(bit ``t`` = event at step ``t``), neurons ``g*P .. g*P+P-1`` at address ``g``
of the ``P`` history banks. Given a first group, a neuron count ``n`` and the
number of steps ``T``, the scanner reads one group (``P`` words) per cycle and
emits its events one per cycle: neurons ascending, and within a neuron steps
ascending (``descending=0``) or descending (``descending=1``). Groups without
an event cost one cycle; a group with ``e`` events costs ``e`` cycles (the next
group is read while the last event of a group is emitted).

Throughput: one event per cycle; latency from ``start`` to the first event: 2
cycles. ``done`` is high once every event was taken (and stays high until the
next ``start``). ``zeros`` pulses with the number of empty (neuron, step) slots
of each group loaded (for the sparsity counters).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .core_defs import CoreGeometry, bits_for

__all__ = ["HistoryScanner"]


class HistoryScanner(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        if not isinstance(geometry, CoreGeometry):
            raise TypeError(f"geometry must be a CoreGeometry, not {type(geometry).__name__}")
        self.geo = g = geometry
        super().__init__({
            "start": In(1),
            "base": In(g.HGB),          # first history group
            "n": In(g.NB),              # neurons
            "T": In(bits_for(g.TMAX)),
            "descending": In(1),
            "done": Out(1),
            # history read port (driven by the core's memories, 1-cycle latency)
            "rd_addr": Out(g.HGB),
            "rd_data": In(data.ArrayLayout(g.TMAX, g.P)),
            "zeros": Out(bits_for(g.P * g.TMAX)),
            "o": Out(stream.Signature(data.StructLayout({"j": g.NB, "t": g.TB}))),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        P, TM = g.P, g.TMAX
        W = P * TM

        ngroups = Signal(g.NB + 1)
        m.d.comb += ngroups.eq((self.n + P - 1) // P if P & (P - 1) else (self.n + P - 1) >> g.PB)

        running = Signal()
        rd_grp = Signal(g.NB + 1)       # group whose data is on rd_data this cycle
        rd_ok = Signal()
        vec = Signal(W)                 # events of the loaded group, bit k*TM + tt
        vec_grp = Signal(g.NB + 1)
        vec_ok = Signal()
        n_r = Signal(g.NB)
        T_r = Signal.like(self.T)
        desc_r = Signal()

        # lowest set bit of vec
        low = Signal(range(W))
        for b in reversed(range(W)):
            with m.If(vec[b]):
                m.d.comb += low.eq(b)
        has = Signal()
        m.d.comb += has.eq(vec_ok & (vec != 0))
        lane = Signal(g.PB)
        tt = Signal(g.TB)
        m.d.comb += [lane.eq(low // TM), tt.eq(low % TM)]
        m.d.comb += [
            self.o.valid.eq(has),
            self.o.payload.j.eq(vec_grp * P + lane),
            self.o.payload.t.eq(Mux(desc_r, T_r - 1 - tt, tt)),
        ]
        taking = Signal()
        m.d.comb += taking.eq(has & self.o.ready)
        after = Signal(W)
        m.d.comb += after.eq(Mux(taking, vec & ~(Const(1, W) << low), vec))
        empty_next = Signal()
        m.d.comb += empty_next.eq(~vec_ok | (after == 0))
        load = Signal()
        m.d.comb += load.eq(running & rd_ok & empty_next)

        # the group's events, masked to n neurons and T steps, time-reversed when descending
        words = Array(self.rd_data[k] for k in range(P))
        masked = Signal(W)
        valid_steps = Signal(TM)
        m.d.comb += valid_steps.eq((Const(1, TM + 1) << T_r) - 1)
        for k in range(P):
            word = Signal(TM, name=f"word{k}")
            m.d.comb += word.eq(Mux(rd_grp * P + k < n_r, self.rd_data[k] & valid_steps, 0))
            rev = Signal(TM, name=f"rev{k}")
            # reversed within the T valid steps: bit tt <-> step T-1-tt
            m.d.comb += rev.eq(Cat(*[word[TM - 1 - b] for b in range(TM)]) >> (TM - T_r)[:bits_for(TM)])
            m.d.comb += masked[k * TM:(k + 1) * TM].eq(Mux(desc_r, rev, word))

        next_addr = Signal(g.NB + 1)
        m.d.comb += next_addr.eq(Mux(load, rd_grp + 1, rd_grp))
        m.d.comb += self.rd_addr.eq(self.base + next_addr)

        m.d.comb += self.zeros.eq(0)
        with m.If(self.start):
            m.d.sync += [running.eq(1), rd_grp.eq(0), rd_ok.eq(0), vec_ok.eq(0),
                         n_r.eq(self.n), T_r.eq(self.T), desc_r.eq(self.descending),
                         self.done.eq(0)]
            m.d.comb += self.rd_addr.eq(self.base)
        with m.Elif(running):
            m.d.sync += rd_ok.eq(1)
            with m.If(~rd_ok):
                # first cycle after start: data of group 0 arrives next cycle
                m.d.sync += rd_grp.eq(0)
                m.d.comb += self.rd_addr.eq(self.base)
            with m.Else():
                m.d.sync += rd_grp.eq(next_addr)
            with m.If(load):
                with m.If(rd_grp < ngroups):
                    m.d.sync += [vec.eq(masked), vec_grp.eq(rd_grp), vec_ok.eq(1)]
                    # slots of the group that hold no event
                    slots = Signal(range(W + 1))
                    nvalid = Signal(range(P + 1))
                    m.d.comb += nvalid.eq(Mux(n_r - rd_grp * P >= P, P, n_r - rd_grp * P))
                    pop = Signal(range(W + 1))
                    m.d.comb += pop.eq(sum(masked[b] for b in range(W)))
                    m.d.comb += slots.eq(nvalid * T_r)
                    m.d.comb += self.zeros.eq(slots - pop)
                with m.Else():
                    m.d.sync += [vec_ok.eq(0), running.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.sync += vec.eq(after)
        return m
