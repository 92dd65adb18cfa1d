"""Response serialiser of the integer inference core: a response into beats.

On ``start`` (one cycle) the serialiser takes the response: ``status`` and the
first ``nout`` bytes of ``payload``, or with ``results`` status ``OK`` and the
``count`` (at least one) 16-bit results from ``first`` on, read row by row from
the result memory through ``read``. From the next cycle on it sends, one beat per
cycle while ``rsp.ready``: the status beat (``first``), then the payload bytes, or
the results little-endian at three cycles a result (the row's read, then its two
bytes); ``last`` on the final beat, with which ``done`` pulses.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .. import protocol as proto
from ..protocol import BEAT_LAYOUT, Status
from .geometry import GeometryChecked
from .memories import ResultRead

__all__ = ["InferenceSerialiser", "PAYLOAD_BYTES"]

#: The longest fixed payload of a response (INFO, a run's result or the counters).
PAYLOAD_BYTES = max(proto.nbytes(proto.INF_INFO), proto.nbytes(proto.INF_RUN_RESULT),
                    4 * len(proto.INF_COUNTERS))


class InferenceSerialiser(GeometryChecked, wiring.Component):
    """See the module doc."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "start": In(1), "done": Out(1),
            "status": In(8),
            "payload": In(data.ArrayLayout(8, PAYLOAD_BYTES)),
            "nout": In(range(PAYLOAD_BYTES + 1)),
            "results": In(1), "first": In(16), "count": In(16),
            "read": Out(ResultRead(geo)),
        })

    def elaborate(self, platform):
        m = Module()
        rsp = self.rsp
        gbits = ceil_log2(self.geo.group)
        status = Signal(8)
        out = Signal(data.ArrayLayout(8, PAYLOAD_BYTES))
        nout = Signal(range(PAYLOAD_BYTES + 1))
        bi = Signal(16)
        e = Signal(16)                          # results sent
        e_first = Signal(16)
        e_count = Signal(16)
        res_i = Signal(17)
        res_val = Signal(16)
        m.d.comb += [res_i.eq(e_first + e), self.read.row.eq(res_i >> gbits),
                     res_val.eq(self.read.data.as_value().word_select(res_i[:gbits], 16)
                                if gbits else self.read.data[0])]

        def send(byte, last, first=0):
            m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(byte),
                         rsp.payload.first.eq(first), rsp.payload.last.eq(last)]
            with m.If(rsp.ready & last):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        with m.FSM(name="response"):
            with m.State("IDLE"):
                with m.If(self.start & self.results):
                    m.d.sync += [e.eq(0), e_first.eq(self.first), e_count.eq(self.count)]
                    m.next = "RES_STATUS"
                with m.Elif(self.start):
                    m.d.sync += [status.eq(self.status), nout.eq(self.nout), bi.eq(0),
                                 out.eq(self.payload)]
                    m.next = "STATUS"
            with m.State("STATUS"):
                only = nout == 0
                with m.If(rsp.ready & ~only):
                    m.next = "BYTES"
                send(status, only, first=1)
            with m.State("BYTES"):
                end = bi + 1 == nout
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                send(out.as_value().word_select(bi[:ceil_log2(PAYLOAD_BYTES)], 8), end)
            with m.State("RES_STATUS"):
                send(Status.OK, 0, first=1)
                with m.If(rsp.ready):
                    m.next = "RES_WAIT"
            with m.State("RES_WAIT"):           # the result row's read
                m.next = "RES_LO"
            with m.State("RES_LO"):
                send(res_val[:8], 0)
                with m.If(rsp.ready):
                    m.next = "RES_HI"
            with m.State("RES_HI"):
                end = e + 1 == e_count
                with m.If(rsp.ready):
                    m.d.sync += e.eq(e + 1)
                    with m.If(~end):
                        m.next = "RES_WAIT"
                send(res_val[8:], end)
        return m
