"""Request capture of the command unit: a request's beats into its command,
argument bytes and staged bulk words.

From the ``req`` beat stream (:data:`~spikeforge.hdl.protocol.BEAT_LAYOUT`, one
beat per cycle): the ``cmd`` beat, then the payload. The first bytes, up to the
command's fixed arguments (its layout in :mod:`spikeforge.hdl.protocol`; the
whole :data:`~spikeforge.hdl.protocol.ARGUMENT_BYTES` for commands without bulk
data), go to ``args``; the bytes after them are paired into 16-bit words
(little-endian) and written to the staging memory (``max_payload / 2`` words,
read through ``stage``). ``nbytes`` counts the payload bytes, ``nwords`` the bulk
words. ``valid`` is high from the cycle after the ``last`` beat until
``release``; no beat is taken meanwhile.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import protocol as proto
from ..protocol import BEAT_LAYOUT, Command

__all__ = ["RequestCapture", "StageRead"]

#: Fixed argument bytes of the commands that carry bulk data after them.
_HEADER_BYTES = {Command.WRITE_WEIGHTS: proto.nbytes(proto.WRITE_WEIGHTS),
                 Command.LOAD_SPIKES: proto.nbytes(proto.LOAD_SPIKES)}


class StageRead(wiring.Signature):
    """Read port of the staging memory (members from the reader's side; one cycle)."""

    def __init__(self, depth: int):
        super().__init__({"addr": Out(range(depth)), "data": In(16)})


class RequestCapture(wiring.Component):
    def __init__(self, *, max_payload: int):
        self.words = max(1, max_payload // 2)
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "valid": Out(1),
            "release": In(1),
            "cmd": Out(8),
            "args": Out(data.ArrayLayout(8, proto.ARGUMENT_BYTES)),
            "nbytes": Out(17),
            "nwords": Out(16),
            "stage": In(StageRead(self.words)),
        })

    def elaborate(self, platform):
        m = Module()
        req, args = self.req, self.args
        nbytes, nwords = self.nbytes, self.nwords
        m.submodules.stage = stage = Memory(shape=16, depth=self.words, init=[])
        wp = stage.write_port()
        rp = stage.read_port()
        m.d.comb += [rp.addr.eq(self.stage.addr), self.stage.data.eq(rp.data), wp.en.eq(0)]
        low = Signal(8)
        hdr_len = Signal(8)
        with m.Switch(self.cmd):
            for cmd, n in _HEADER_BYTES.items():
                with m.Case(cmd):
                    m.d.comb += hdr_len.eq(n)
            with m.Default():
                m.d.comb += hdr_len.eq(proto.ARGUMENT_BYTES)

        with m.FSM(name="capture"):
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid & req.payload.first):
                    m.d.sync += [self.cmd.eq(req.payload.data), nbytes.eq(0), nwords.eq(0),
                                 args.eq(0)]
                    with m.If(req.payload.last):
                        m.next = "FULL"
                    with m.Else():
                        m.next = "RECV"
            with m.State("RECV"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    b = req.payload.data
                    m.d.sync += nbytes.eq(nbytes + 1)
                    with m.If(nbytes < hdr_len):
                        with m.Switch(nbytes):
                            for i in range(proto.ARGUMENT_BYTES):
                                with m.Case(i):
                                    m.d.sync += args[i].eq(b)
                    with m.Else():
                        with m.If(~(nbytes - hdr_len)[0]):
                            m.d.sync += low.eq(b)
                        with m.Else():
                            with m.If(nwords < self.words):
                                m.d.comb += [wp.addr.eq(nwords), wp.data.eq(Cat(low, b)),
                                             wp.en.eq(1)]
                            m.d.sync += nwords.eq(nwords + 1)
                    with m.If(req.payload.last):
                        m.next = "FULL"
            with m.State("FULL"):
                m.d.comb += self.valid.eq(1)
                with m.If(self.release):
                    m.next = "IDLE"
        return m
