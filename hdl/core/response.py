"""Response serialiser of the command unit: a response descriptor into beats.

On ``start`` (one cycle) the serialiser sends, one beat per cycle while
``rsp.ready``: the ``status`` beat (``first``), and when the status is ``OK``,
``nfix`` bytes of ``fixed``, then ``nelem`` elements of ``ebytes`` bytes each
(little-endian), then ``ntail`` bytes of ``tail``; ``last`` on the final beat.
The inputs are read while the response is sent (the command unit holds them).

Each element takes three steps through ``elem`` (:class:`ElementPort`): ``addr``
(one cycle: the command unit presents the element's read address), ``latch``
(one cycle: ``value`` is taken), then its bytes; ``next`` pulses with the last
byte (``last`` when it was the final element), ``index`` counts the elements.
``done`` pulses with the final beat. ``max_elements`` (keyword, default 65,535)
bounds ``nelem`` and sizes the element index. Latency: the status beat the cycle after
``start``; an element costs ``2 + ebytes`` cycles.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol import BEAT_LAYOUT, Status

__all__ = ["ResponseSerialiser", "ElementPort"]


class ElementPort(wiring.Signature):
    """The serialiser's element requests (members from the serialiser's side)."""

    def __init__(self, max_elements: int = 0xFFFF):
        super().__init__({"addr": Out(1), "latch": Out(1), "value": In(32), "next": Out(1),
                          "last": Out(1), "index": Out(range(max_elements + 1))})


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
        e = el.index                # element index
        val = Signal(32)
        m.d.comb += el.last.eq(e + 1 == nelem)

        def send(data, last, *, first=0):
            m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(data),
                         rsp.payload.first.eq(first), rsp.payload.last.eq(last)]
            with m.If(rsp.ready & last):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        def after_fixed():
            with m.If(nelem != 0):
                m.next = "EL_ADDR"
            with m.Else():
                m.next = "TAIL"

        with m.FSM(name="response"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [bi.eq(0), e.eq(0)]
                    m.next = "STATUS"
            with m.State("STATUS"):
                only = (self.status != Status.OK) | ((nfix == 0) & (nelem == 0) & (ntail == 0))
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
            with m.State("EL_ADDR"):
                m.d.comb += el.addr.eq(1)
                m.next = "EL_LATCH"
            with m.State("EL_LATCH"):
                m.d.comb += el.latch.eq(1)
                m.d.sync += val.eq(el.value)
                m.next = "EL_SEND"
            with m.State("EL_SEND"):
                end = bi + 1 == ebytes
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(end):
                        m.d.comb += el.next.eq(1)
                        m.d.sync += [bi.eq(0), e.eq(e + 1)]
                        with m.If(~el.last):
                            m.next = "EL_ADDR"
                        with m.Elif(ntail != 0):
                            m.next = "TAIL"
                send(val.word_select(bi[:2], 8), el.last & end & (ntail == 0))
            with m.State("TAIL"):
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                send(self.tail.as_value().word_select(bi[:len(ntail)], 8), bi + 1 == ntail)
        return m
