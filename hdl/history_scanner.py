"""History scanner: the (neuron, time step) events of a layer, in a chosen order.

The core keeps spike history neuron-major: per neuron one ``TMAX``-bit word
(bit ``t`` = event at step ``t``), neurons ``g*P .. g*P+P-1`` at address ``g``
of the ``P`` history banks. Given a first group, a neuron count ``n`` and the
number of steps ``T``, the scanner reads one group (``P`` words) per cycle and
emits its events, one per cycle:

* neuron-major (``time_major=0``): neurons ascending, within a neuron steps
  ascending (``descending=0``) or descending (``descending=1``); a group
  without events costs one cycle;
* time-major (``time_major=1``): steps ascending or descending, within a step
  neurons ascending; every (step, group) costs one cycle plus its events beyond
  the first.

Throughput: one event per cycle (the next group is read while the last event
of a group is emitted); latency from ``start`` to the first event: 2 cycles.
``done`` is high once every event was taken (until the next ``start``).
``zeros`` gives, in the cycle a group is loaded, its number of empty
(neuron, step) slots (for the sparsity counters).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
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
            "time_major": In(1),
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
        TB1 = bits_for(TM)

        n_r = Signal(g.NB)
        base_r = Signal(g.HGB)
        ngroups = Signal(g.NB + 1)
        m.d.comb += ngroups.eq((n_r + P - 1) >> g.PB)

        running = Signal()
        rd_grp = Signal(g.NB + 1)       # group whose data is on rd_data this cycle
        rd_t = Signal(g.TB)             # its step (time-major)
        rd_end = Signal()               # time-major: every step was read
        rd_ok = Signal()
        vec = Signal(W)                 # events of the loaded group, bit k*TM + tt
        vec_grp = Signal(g.NB + 1)
        vec_t = Signal(g.TB)
        vec_ok = Signal()
        T_r = Signal(TB1)
        desc_r = Signal()
        tm_r = Signal()
        last_t = Signal(g.TB)
        m.d.comb += last_t.eq(Mux(desc_r, 0, T_r - 1))

        # lowest set bit of vec
        low = Signal(range(W))
        for b in reversed(range(W)):
            with m.If(vec[b]):
                m.d.comb += low.eq(b)
        has = Signal()
        m.d.comb += has.eq(vec_ok & (vec != 0))
        lane = Signal(g.PB)
        tt = Signal(g.TB)
        m.d.comb += [lane.eq(low >> (TM.bit_length() - 1) if TM & (TM - 1) == 0 else low // TM),
                     tt.eq(low % TM)]
        m.d.comb += [
            self.o.valid.eq(has),
            self.o.payload.j.eq((vec_grp << g.PB) | lane if P > 1 else vec_grp),
            self.o.payload.t.eq(Mux(tm_r, vec_t, Mux(desc_r, T_r - 1 - tt, tt))),
        ]
        taking = Signal()
        m.d.comb += taking.eq(has & self.o.ready)
        after = Signal(W)
        m.d.comb += after.eq(Mux(taking, vec & ~(Const(1, W) << low), vec))
        empty_next = Signal()
        m.d.comb += empty_next.eq(~vec_ok | (after == 0))
        load = Signal()
        m.d.comb += load.eq(running & rd_ok & empty_next)

        # the group's events: masked to n neurons and T steps; neuron-major descending
        # reverses each word within the T steps; time-major keeps only step rd_t
        masked = Signal(W)
        valid_steps = Signal(TM)
        m.d.comb += valid_steps.eq((Const(1, TM + 1) << T_r) - 1)
        for k in range(P):
            word = Signal(TM, name=f"word{k}")
            m.d.comb += word.eq(Mux((rd_grp << g.PB) + k < n_r, self.rd_data[k] & valid_steps, 0))
            rev = Signal(TM, name=f"rev{k}")
            m.d.comb += rev.eq(Cat(*[word[TM - 1 - b] for b in range(TM)]) >> (TM - T_r)[:TB1])
            one = Signal(TM, name=f"one{k}")
            m.d.comb += one.eq(word.bit_select(rd_t, 1))
            m.d.comb += masked[k * TM:(k + 1) * TM].eq(Mux(tm_r, one, Mux(desc_r, rev, word)))

        nvalid = Signal(range(P + 1))
        remaining = Signal(g.NB + 1)
        m.d.comb += remaining.eq(n_r - (rd_grp << g.PB))
        m.d.comb += nvalid.eq(Mux(remaining >= P, P, remaining))
        pop = Signal(range(W + 1))
        m.d.comb += pop.eq(sum(masked[b] for b in range(W)))

        # next group to read
        wrap = Signal()
        m.d.comb += wrap.eq(tm_r & (rd_grp + 1 >= ngroups))
        next_grp = Signal(g.NB + 1)
        m.d.comb += next_grp.eq(Mux(load, Mux(wrap, 0, rd_grp + 1), rd_grp))
        m.d.comb += self.rd_addr.eq(base_r + next_grp)

        more = Signal()
        m.d.comb += more.eq(Mux(tm_r, ~rd_end, rd_grp < ngroups))
        m.d.comb += self.zeros.eq(0)
        with m.If(self.start):
            m.d.sync += [running.eq(1), rd_grp.eq(0), rd_ok.eq(0), vec_ok.eq(0), base_r.eq(self.base),
                         n_r.eq(self.n), T_r.eq(self.T), desc_r.eq(self.descending),
                         tm_r.eq(self.time_major), self.done.eq(0),
                         rd_t.eq(Mux(self.descending, self.T - 1, 0)),
                         rd_end.eq((self.n == 0) | (self.T == 0))]
            m.d.comb += self.rd_addr.eq(self.base)
        with m.Elif(running):
            m.d.sync += rd_ok.eq(1)
            with m.If(~rd_ok):
                m.d.comb += self.rd_addr.eq(base_r)
            with m.Else():
                m.d.sync += rd_grp.eq(next_grp)
            with m.If(load):
                with m.If(more):
                    m.d.sync += [vec.eq(masked), vec_grp.eq(rd_grp), vec_t.eq(rd_t),
                                 vec_ok.eq(1)]
                    m.d.comb += self.zeros.eq(Mux(tm_r, nvalid, nvalid * T_r) - pop)
                    with m.If(wrap):
                        with m.If(rd_t == last_t):
                            m.d.sync += rd_end.eq(1)
                        with m.Else():
                            m.d.sync += rd_t.eq(Mux(desc_r, rd_t - 1, rd_t + 1))
                with m.Else():
                    m.d.sync += [vec_ok.eq(0), running.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.sync += vec.eq(after)
        return m
