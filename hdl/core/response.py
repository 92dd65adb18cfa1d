"""Response serialiser of the command unit: a response descriptor into beats.

On ``start`` (one cycle) the serialiser sends, one beat per cycle while
``rsp.ready``: the ``status`` beat (``first``), and when the status is ``OK``,
``nfix`` bytes of ``fixed``, then ``nelem`` elements of ``ebytes`` bytes each
(little-endian), then ``ntail`` bytes of ``tail``; ``last`` on the final beat.
The inputs are read while the response is sent (the command unit holds them).

Elements are fetched ahead of the bytes being sent, by a fetcher beside the
sender, through ``elem`` (:class:`ElementPort`), a pipeline of two cycles that takes
a new element every cycle: ``addr`` (the command unit presents the read address of
element ``index`` and steps on to the following one, ``last`` when it is the
final one), ``latch`` the cycle after (the command unit
registers the element's word from the memories' outputs) and ``value`` the cycle
after that (the registered word, computed from registers only; the serialiser takes
it). So no path runs from a memory's output into the serialiser. The fetcher keeps
up to ``BUFFER`` elements fetched ahead or on their way, in a small FIFO beside the
element being sent, starting while the status and fixed bytes go out.
``max_elements`` (keyword, default 65,535) bounds ``nelem`` and sizes the element
indices. ``done`` pulses with the final beat.
Throughput: one byte per cycle for elements of two or more bytes (the fetches of
the next elements overlap the bytes of this one), at least one element per two
cycles for one-byte elements; latency: the status beat the cycle after ``start``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol import BEAT_LAYOUT, Status

__all__ = ["ResponseSerialiser", "ElementPort", "BUFFER"]

#: Elements fetched ahead of the one being sent (buffered or on their way): two keep
#: one byte per cycle through the fetch's two-cycle pipeline for 2-byte elements.
BUFFER = 2


class ElementPort(wiring.Signature):
    """The serialiser's element requests (members from the serialiser's side):
    ``addr`` with ``index`` and ``last`` (the element's read address), ``latch``
    the cycle after (its word registered), ``value`` the cycle after that."""

    def __init__(self, max_elements: int = 0xFFFF):
        super().__init__({"addr": Out(1), "latch": Out(1), "value": In(32), "last": Out(1), "index": Out(range(max_elements + 1))})


class ResponseSerialiser(wiring.Component):
    def __init__(self, *, fixed_bytes: int, tail_bytes: int, max_elements: int = 0xFFFF):
        for name, v in (("fixed_bytes", fixed_bytes), ("tail_bytes", tail_bytes),
                        ("max_elements", max_elements)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
                raise ValueError(f"{name} must be an integer from 0 to 65535, not {v!r}")
        self.fixed_bytes, self.tail_bytes = fixed_bytes, tail_bytes
        super().__init__({
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "start": In(1),
            "done": Out(1),
            "status": In(8),
            "fixed": In(data.ArrayLayout(8, fixed_bytes)),
            "nfix": In(range(fixed_bytes + 1)),
            "nelem": In(range(max_elements + 1)),
            "ebytes": In(3),
            "tail": In(data.ArrayLayout(8, tail_bytes)),
            "ntail": In(range(tail_bytes + 1)),
            "elem": Out(ElementPort(max_elements)),
        })

    def elaborate(self, platform):
        m = Module()
        rsp, el = self.rsp, self.elem
        nfix, nelem, ebytes, ntail = self.nfix, self.nelem, self.ebytes, self.ntail
        # byte index within a section (fixed bytes, an element's 2 to 7 bytes, the tail)
        bi = Signal(range(max(self.fixed_bytes, self.tail_bytes, 7) + 1))
        fe = el.index               # the fetcher's element index
        se = Signal.like(el.index)  # the sender's element index
        cur, cur_ok = Signal(32), Signal()      # the element being sent
        m.d.comb += el.last.eq(fe + 1 == nelem)

        # ---- the fetcher: addr, latch, value; up to BUFFER elements ahead ----
        fetch = Signal()            # elements are to be fetched for this response
        take = Signal()             # the sender takes a fetched element this cycle
        m.submodules.ahead = ahead = fifo.SyncFIFO(width=32, depth=BUFFER)
        at_latch, at_value = Signal(), Signal()     # elements in the fetch's pipeline
        m.d.sync += [at_latch.eq(el.addr), at_value.eq(at_latch)]
        room = Signal()
        m.d.comb += room.eq(ahead.level + at_latch + at_value < BUFFER)
        with m.If(fetch & (fe != nelem) & room):
            m.d.comb += el.addr.eq(1)
            m.d.sync += fe.eq(fe + 1)
        m.d.comb += [el.latch.eq(at_latch), ahead.w_en.eq(at_value), ahead.w_data.eq(el.value)]
        # the sender takes the oldest fetched element
        with m.If(take):
            m.d.comb += ahead.r_en.eq(1)
            m.d.sync += [cur.eq(ahead.r_data), cur_ok.eq(ahead.r_rdy)]

        # ---- the sender ----
        def send(data, last, *, first=0):
            m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(data),
                         rsp.payload.first.eq(first), rsp.payload.last.eq(last)]
            with m.If(rsp.ready & last):
                m.d.comb += self.done.eq(1)
                m.d.sync += fetch.eq(0)
                m.next = "IDLE"

        def after_fixed():
            with m.If(nelem != 0):
                m.d.comb += take.eq(1)          # the first element, if it is there
                m.next = "ELEMENTS"
            with m.Else():
                m.next = "TAIL"

        with m.FSM(name="response"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [bi.eq(0), fe.eq(0), se.eq(0), cur_ok.eq(0)]
                    m.next = "STATUS"
            with m.State("STATUS"):
                only = (self.status != Status.OK) | ((nfix == 0) & (nelem == 0) & (ntail == 0))
                m.d.sync += fetch.eq(self.status == Status.OK)
                with m.If(rsp.ready & ~only):
                    m.d.sync += bi.eq(0)
                    with m.If(nfix != 0):
                        m.next = "FIXED"
                    with m.Else():
                        after_fixed()
                send(self.status, only, first=1)
            with m.State("FIXED"):
                end = bi + 1 == nfix
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(Mux(end, 0, bi + 1))
                    with m.If(end):
                        after_fixed()
                send(self.fixed.as_value().word_select(bi[:len(nfix)], 8),
                     end & (nelem == 0) & (ntail == 0))
            with m.State("ELEMENTS"):
                end = bi + 1 == ebytes
                final = se + 1 == nelem
                with m.If(~cur_ok):
                    m.d.comb += take.eq(1)      # waiting for the fetcher
                with m.Else():
                    send(cur.word_select(bi[:2], 8), final & end & (ntail == 0))
                    with m.If(rsp.ready):
                        m.d.sync += bi.eq(bi + 1)
                        with m.If(end):
                            m.d.sync += [bi.eq(0), se.eq(se + 1)]
                            with m.If(~final):
                                m.d.comb += take.eq(1)
                            with m.Else():
                                m.d.sync += cur_ok.eq(0)
                                with m.If(ntail != 0):
                                    m.next = "TAIL"
            with m.State("TAIL"):
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                send(self.tail.as_value().word_select(bi[:len(ntail)], 8), bi + 1 == ntail)
        return m
