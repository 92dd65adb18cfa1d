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
of a group is emitted, the next lane's word moves in while the last event of a
lane is emitted); latency from ``start`` to the first event: 2 cycles.
``done`` is high once every event was taken (until the next ``start``).
``zeros`` gives the empty (neuron, step) slots for the sparsity counters, spread
over the group's cycles: in the cycle a group is loaded those of its lanes without
events and of its first lane with events, in the cycle the next lane with events
moves in those of that lane (the sum over a scan is unchanged), each two cycles later.

Structure (what keeps it small): the group's ``P`` words are registered as read;
the search runs on one lane word of ``TM`` bits (``cur``: masked to ``T`` steps,
bit-reversed for descending order, no shift) beside a ``P``-bit mask of the lanes
still to come, never on the whole ``P * TM``-bit group; the empty slots are
counted per lane word (one ``TM``-bit population count).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..spike_decoder import below, lowest_set_bit, popcount
from .defs import CoreGeometry

__all__ = ["HistoryScanner", "ScanRequest", "ScanRead", "pair_layout", "connect_requests"]


def pair_layout(geo: CoreGeometry) -> data.StructLayout:
    """One event: neuron ``j`` (layer-relative) at time step ``t``."""
    return data.StructLayout({"j": geo.neuron_bits, "t": geo.time_bits})


class ScanRequest(wiring.Signature):
    """An engine's use of the scanner (members from the engine's side): ``start`` (one
    cycle) with the first history group ``base``, the neuron count ``n``, the order
    (``descending``, ``time_major``) and the history read (``nz``: the ``du != 0``
    bits instead of the spikes); the events come back on ``events``, ``done`` is high
    once every event was taken. ``win`` is the window summary of the lane datapath
    (:class:`ScanRead`), passed through for the input-gradient loop."""

    def __init__(self, geo: CoreGeometry):
        super().__init__({
            "start": Out(1),
            "base": Out(geo.hist_group_bits),
            "n": Out(geo.neuron_bits),
            "descending": Out(1),
            "time_major": Out(1),
            "nz": Out(1),
            "events": In(stream.Signature(pair_layout(geo))),
            "done": In(1),
            "win": In(geo.hist_groups * geo.max_time_steps),
        })


class ScanRead(wiring.Signature):
    """The scanner's read of the history banks (members from the scanner's side):
    ``addr`` and ``nz`` (which history) in, the ``P`` words one cycle later where ``en``
    was set (else the words on ``data`` hold); ``win``:
    for every history group ``h`` and step ``t``, bit ``h * TMAX + t`` is set when a
    neuron of the group had its window bit ``m`` set at ``t`` (kept up to date by
    the LIF write-back)."""

    def __init__(self, geo: CoreGeometry):
        super().__init__({
            "addr": Out(geo.hist_group_bits),
            "en": Out(1),
            "nz": Out(1),
            "data": In(data.ArrayLayout(geo.max_time_steps, geo.lanes)),
            "win": In(geo.hist_groups * geo.max_time_steps),
        })


def connect_requests(m: Module, scanner, requests) -> None:
    """Connect the engines' ``requests`` (at most one starts at a time, and only while
    no other scan runs) to the shared ``scanner``'s request port."""
    starts = Cat(*[r.start for r in requests])
    port = scanner.req
    m.d.comb += [port.start.eq(starts.any()),
                 port.events.ready.eq(Cat(*[r.events.ready for r in requests]).any())]
    for r in requests:
        with m.If(r.start):
            m.d.comb += [port.base.eq(r.base), port.n.eq(r.n), port.descending.eq(r.descending),
                         port.time_major.eq(r.time_major), port.nz.eq(r.nz)]
        m.d.comb += [r.events.payload.eq(port.events.payload),
                     r.events.valid.eq(port.events.valid), r.done.eq(port.done),
                     r.win.eq(port.win)]


class HistoryScanner(wiring.Component):
    """``req`` is the request port (:class:`ScanRequest`, flipped), ``rd`` the history
    read (:class:`ScanRead`), ``T`` the steps of the run, ``zeros`` the empty slots of
    the group being loaded. The scanner latches the whole request at ``start``."""

    def __init__(self, geometry: CoreGeometry):
        if not isinstance(geometry, CoreGeometry):
            raise TypeError(f"geometry must be a CoreGeometry, not {type(geometry).__name__}")
        self.geo = g = geometry
        super().__init__({
            "req": In(ScanRequest(g)),
            "rd": Out(ScanRead(g)),
            "T": In(bits_for(g.max_time_steps)),
            "zeros": Out(bits_for(g.lanes * g.max_time_steps)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        P, TM = g.lanes, g.max_time_steps
        TB1 = bits_for(TM)
        req, o = self.req, self.req.events
        m.d.comb += req.win.eq(self.rd.win)

        n_r = Signal(g.neuron_bits)
        base_r = Signal(g.hist_group_bits)
        ngroups = Signal(g.neuron_bits + 1)
        m.d.comb += ngroups.eq((n_r + P - 1) >> g.lane_shift)

        running = Signal()
        rd_grp = Signal(g.neuron_bits + 1)  # group whose data is on rd.data this cycle
        rd_t = Signal(g.time_bits)          # its step (time-major)
        rd_end = Signal()                   # time-major: every step was read
        rd_ok = Signal()
        # The loaded group: its P words as read (``vec``, loaded once, never cleared),
        # the lanes whose events are still to come (``pend``) and the events being
        # emitted (``cur``): neuron-major, the word of lane ``cur_lane``, masked to T
        # steps and reversed for descending order (bit TM-1-t = step t); time-major,
        # bit k = lane k's event at step ``vec_t``.
        vec = Signal(data.ArrayLayout(TM, P))
        pend = Signal(P)
        cur = Signal(TM if TM >= P else P)
        cur_lane = Signal(g.lane_bits)
        vec_grp = Signal(g.neuron_bits + 1)
        vec_t = Signal(g.time_bits)
        vec_ok = Signal()
        T_r = Signal(TB1)
        desc_r = Signal()
        tm_r = Signal()
        nz_r = Signal()
        last_t = Signal(g.time_bits)
        m.d.comb += last_t.eq(Mux(desc_r, 0, T_r - 1))
        m.d.comb += self.rd.nz.eq(nz_r)

        low = Signal(range(len(cur)))
        m.d.comb += low.eq(lowest_set_bit(cur)[0])
        has = Signal()
        m.d.comb += has.eq(vec_ok & (cur != 0))
        lane = Signal(g.lane_bits)
        m.d.comb += lane.eq(Mux(tm_r, low, cur_lane))
        m.d.comb += [
            o.valid.eq(has),
            o.payload.j.eq((vec_grp << g.lane_shift) | lane if P > 1 else vec_grp),
            o.payload.t.eq(Mux(tm_r, vec_t, Mux(desc_r, TM - 1 - low, low))),
        ]
        taking = Signal()
        m.d.comb += taking.eq(has & o.ready)
        # cur after this cycle: taking clears its lowest set bit (cur & (cur - 1), no
        # decoder from the search); the lane word is done when nothing is left
        after = Signal(len(cur))
        m.d.comb += after.eq(Mux(taking, cur & (cur - 1), cur))
        done_word = Signal()
        m.d.comb += done_word.eq(after == 0)
        refill = Signal()                   # the current lane is done, another one waits
        m.d.comb += refill.eq(vec_ok & done_word & (pend != 0))
        empty_next = Signal()
        m.d.comb += empty_next.eq(~vec_ok | (done_word & (pend == 0)))
        load = Signal()
        m.d.comb += load.eq(running & rd_ok & empty_next)

        # the group on rd.data: which lanes hold events (within n neurons and T steps)
        valid_steps = Signal(TM)
        m.d.comb += valid_steps.eq((Const(1, TM + 1) << T_r) - 1)
        rev_steps = Signal(TM)
        m.d.comb += rev_steps.eq(Cat(*[valid_steps[TM - 1 - b] for b in range(TM)]))
        nvalid = Signal(range(P + 1))
        remaining = Signal(g.neuron_bits + 1)
        m.d.comb += remaining.eq(n_r - (rd_grp << g.lane_shift))
        m.d.comb += nvalid.eq(Mux(remaining >= P, P, remaining))
        lane_ok = Signal(P)
        busy = Signal(P)                    # neuron-major: lanes with an event
        one = Signal(P)                     # time-major: lanes with an event at rd_t
        m.d.comb += lane_ok.eq(below(nvalid, P))
        for k in range(P):
            m.d.comb += [
                         busy[k].eq(lane_ok[k] & (self.rd.data[k] & valid_steps).any()),
                         one[k].eq(lane_ok[k] & self.rd.data[k].bit_select(rd_t, 1))]
        first, first_any = lowest_set_bit(busy)
        first_bit = Signal(P)
        m.d.comb += first_bit.eq(Mux(first_any, Const(1, P) << first, 0))
        nxt, _ = lowest_set_bit(pend)

        # the word that goes to cur: at a load the group's first busy lane (from
        # rd.data), at a refill the next pending lane (from vec)
        word = Signal(TM)
        m.d.comb += word.eq(Mux(load, self.rd.data[first[:g.lane_bits] if P > 1 else 0],
                                vec[nxt[:g.lane_bits] if P > 1 else 0]))
        oriented = Signal(TM)
        m.d.comb += oriented.eq(Mux(desc_r, Cat(*[word[TM - 1 - b] for b in range(TM)]) & rev_steps,
                                    word & valid_steps))
        new_cur = Signal(len(cur))
        m.d.comb += new_cur.eq(Mux(tm_r, one, oriented))

        pend_next = Signal(P)
        m.d.comb += pend_next.eq(busy & ~first_bit)
        count = self._empty_slots(m, tm_r=tm_r, T_r=T_r, nvalid=nvalid, load=load,
                                  pend_next=pend_next, new_cur=new_cur)

        wrap, next_grp, next_addr = self._next_group(m, tm_r=tm_r, rd_grp=rd_grp, n_r=n_r,
                                                     rd_ok=rd_ok, base_r=base_r, load=load)

        more = Signal()
        m.d.comb += more.eq(Mux(tm_r, ~rd_end, rd_grp < ngroups))
        m.d.comb += count.eq(0)
        with m.If(req.start):
            m.d.sync += [running.eq(1), rd_grp.eq(0), rd_ok.eq(0), vec_ok.eq(0),
                         base_r.eq(req.base), n_r.eq(req.n), T_r.eq(self.T),
                         desc_r.eq(req.descending), tm_r.eq(req.time_major), nz_r.eq(req.nz),
                         req.done.eq(0), rd_t.eq(Mux(req.descending, self.T - 1, 0)),
                         rd_end.eq((req.n == 0) | (self.T == 0)), next_addr.eq(req.base)]
        with m.Elif(running):
            m.d.sync += rd_ok.eq(1)
            with m.If(~rd_ok):
                m.d.comb += self.rd.en.eq(1)        # the first group, at next_addr = base
            with m.Elif(load):
                m.d.sync += rd_grp.eq(next_grp)
                m.d.comb += self.rd.en.eq(1)
            with m.If(load):
                with m.If(more):
                    m.d.sync += [vec.eq(self.rd.data), cur.eq(new_cur), cur_lane.eq(first),
                                 pend.eq(Mux(tm_r, 0, pend_next)),
                                 vec_grp.eq(rd_grp), vec_t.eq(rd_t), vec_ok.eq(1)]
                    m.d.comb += count.eq(1)
                    with m.If(wrap):
                        with m.If(rd_t == last_t):
                            m.d.sync += rd_end.eq(1)
                        with m.Else():
                            m.d.sync += rd_t.eq(Mux(desc_r, rd_t - 1, rd_t + 1))
                with m.Else():
                    m.d.sync += [vec_ok.eq(0), running.eq(0), req.done.eq(1)]
            with m.Elif(refill):
                m.d.sync += [cur.eq(new_cur), cur_lane.eq(nxt),
                             pend.eq(pend & ~(Const(1, P) << nxt))]
                m.d.comb += count.eq(1)
            with m.Else():
                m.d.sync += cur.eq(after)
        return m

    def _next_group(self, m, *, tm_r, rd_grp, n_r, rd_ok, base_r, load):
        """The next group to read, the group after ``rd_grp`` (time-major: back to 0 after
        the last, ``wrap``), read where a load takes the group on ``rd.data`` (the words
        hold meanwhile). It and its address are registers, stepped at a load (one
        compare with the last group, an increment), so no adder chain runs into them or
        into the histories' read port: at a start the address is the request's base,
        read the cycle after (``~rd_ok``), where the group after the first, its address
        and the last group are set from the registered request.
        Returns ``(wrap, next_grp, next_addr)``."""
        g, P = self.geo, self.geo.lanes
        next_grp = Signal(g.neuron_bits + 1)
        next_addr = Signal(g.hist_group_bits)
        last_grp = Signal(g.neuron_bits + 1)    # the last group of n neurons (n >= 1)
        with m.If(~rd_ok):
            one = Mux(tm_r & (n_r <= P), 0, 1)  # time-major with one group: back to 0
            m.d.sync += [next_grp.eq(one), next_addr.eq(base_r + one),
                         last_grp.eq((n_r - 1) >> g.lane_shift)]
        with m.Elif(load):
            wrap_next = Signal()
            m.d.comb += wrap_next.eq(tm_r & (next_grp >= last_grp))
            m.d.sync += [next_grp.eq(Mux(wrap_next, 0, next_grp + 1)),
                         next_addr.eq(Mux(wrap_next, base_r, next_addr + 1))]
        wrap = Signal()
        m.d.comb += wrap.eq(tm_r & (rd_grp >= last_grp))
        m.d.comb += [self.rd.addr.eq(next_addr), self.rd.en.eq(0)]
        return wrap, next_grp, next_addr

    def _empty_slots(self, m, *, tm_r, T_r, nvalid, load, pend_next, new_cur):
        """The empty (neuron, step) slots on ``zeros``, two cycles after the cycle whose
        slots are counted (the returned signal set): per lane moved to ``cur``, ``T`` less
        its events; at a load also ``T`` for every valid lane without events (time-major:
        1 per lane). The cycle's words are registered as they are, their population counts
        are taken and registered the cycle after, so no path runs from the search through
        the counts and the product into the counters (the scan's phase lasts longer than
        these cycles)."""
        count = Signal()
        a_count, a_load = Signal(), Signal()
        a_nvalid, a_pend, a_cur = Signal.like(nvalid), Signal.like(pend_next), Signal.like(new_cur)
        m.d.sync += [a_count.eq(count), a_load.eq(load), a_nvalid.eq(nvalid),
                     a_pend.eq(pend_next), a_cur.eq(new_cur)]
        slots = Signal(range(self.geo.lanes + 1))   # lanes whose slots are counted
        m.d.comb += slots.eq(Mux(tm_r, a_nvalid,
                                 Mux(a_load, a_nvalid - popcount(a_pend), 1)))
        pop = Signal(range(len(new_cur) + 1))
        m.d.comb += pop.eq(popcount(a_cur))
        z_slots, z_pop = Signal.like(slots), Signal.like(pop)
        m.d.sync += [z_slots.eq(Mux(a_count, slots, 0)), z_pop.eq(Mux(a_count, pop, 0))]
        m.d.comb += self.zeros.eq(Mux(tm_r, z_slots, z_slots * T_r) - z_pop)
        return count
