"""Request capture: a host request's beats into its command, argument bytes and
16-bit bulk words.

:class:`RequestParser` is the capture both cores share (this core's command unit
through :class:`RequestCapture`, and the integer inference core's,
:mod:`spikeforge.hdl.inference.request`). From the ``req`` beat stream
(:data:`~spikeforge.hdl.protocol.BEAT_LAYOUT`, one beat per cycle): the ``cmd``
beat, then the payload. The first bytes, up to the command's fixed arguments
(``headers[cmd]`` for the commands that carry bulk data after them, else all
``arg_bytes``), go to ``args``; the bytes after them are paired into 16-bit words
(little-endian), each offered on ``word`` in the cycle its second byte arrives,
with ``nwords`` (the words before it) as its index. ``nbytes`` counts the payload
bytes; ``header`` is the command's fixed argument bytes. ``valid`` is high from the
cycle after the ``last`` beat until ``release``; no beat is taken meanwhile, and
``cmd``, ``args``, ``nbytes`` and ``nwords`` hold. Throughput: one beat per cycle;
latency: ``valid`` one cycle after the last beat, the next request taken the cycle
after ``release``.

:class:`RequestCapture` is this core's: the parser with this core's command set,
and its words written to a staging memory (``max_payload / 2`` words, read
through ``stage``; a word beyond it is counted but not stored).
:func:`capture_members` and :func:`forward_capture` give a capture built around
the parser its members; :func:`held_until_release` is the ``valid`` / ``release``
state that ends a capture's FSM (the parser's, and the multi-core dispatcher's
request store, :mod:`spikeforge.hdl.dispatch`).
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import protocol as proto
from ..checked import ArgumentChecked
from ..protocol import BEAT_LAYOUT, Command

__all__ = ["RequestParser", "RequestCapture", "StageRead", "capture_members", "forward_capture",
           "held_until_release"]

#: Fixed argument bytes of the commands that carry bulk data after them.
_HEADER_BYTES = {Command.WRITE_WEIGHTS: proto.nbytes(proto.WRITE_WEIGHTS),
                 Command.LOAD_SPIKES: proto.nbytes(proto.LOAD_SPIKES),
                 Command.WRITE_GRADIENTS: proto.nbytes(proto.WRITE_GRADIENTS),
                 Command.LOAD_HISTORY: proto.nbytes(proto.LOAD_HISTORY)}


def capture_members(arg_bytes: int) -> dict:
    """The members every request capture has: the ``req`` beats, the ``valid`` /
    ``release`` handshake, ``cmd``, ``arg_bytes`` of ``args``, ``nbytes``, ``nwords``."""
    return {"req": In(stream.Signature(BEAT_LAYOUT)), "valid": Out(1), "release": In(1),
            "cmd": Out(8), "args": Out(data.ArrayLayout(8, arg_bytes)), "nbytes": Out(17),
            "nwords": Out(16)}


def forward_capture(m: Module, parser: "RequestParser", capture) -> None:
    """``parser`` (a submodule of ``m``) as the capture of ``capture`` (a component
    with :func:`capture_members`): its beats, handshake and outputs."""
    wiring.connect(m, wiring.flipped(capture.req), parser.req)
    m.d.comb += [capture.valid.eq(parser.valid), parser.release.eq(capture.release)]
    for name in ("cmd", "args", "nbytes", "nwords"):
        m.d.comb += getattr(capture, name).eq(getattr(parser, name))


def held_until_release(m: Module, *, valid, release) -> None:
    """The state ``FULL`` of a capture's FSM (entered after the request's last beat):
    ``valid`` until ``release``, then ``IDLE``, where the next request's first beat is
    taken the cycle after."""
    with m.State("FULL"):
        m.d.comb += valid.eq(1)
        with m.If(release):
            m.next = "IDLE"


class StageRead(wiring.Signature):
    """Read port of the staging memory (members from the reader's side; one cycle)."""

    def __init__(self, depth: int):
        super().__init__({"addr": Out(range(depth)), "data": In(16)})


class RequestParser(ArgumentChecked, wiring.Component):
    """See the module doc. Keyword-only: ``headers`` (command code -> its fixed
    argument bytes, for the commands whose payload carries bulk words after them),
    ``arg_bytes`` (the argument bytes kept, at least every header)."""

    @classmethod
    def check(cls, *, headers, arg_bytes):
        if not isinstance(arg_bytes, int) or isinstance(arg_bytes, bool) or arg_bytes < 1:
            raise ValueError(f"arg_bytes must be a positive integer, not {arg_bytes!r}")
        for cmd, n in dict(headers).items():
            if not isinstance(n, int) or not 0 <= n <= arg_bytes:
                raise ValueError(f"the header of command {cmd!r} must be 0 to {arg_bytes} "
                                 f"bytes, not {n!r}")

    def __init__(self, *, headers, arg_bytes: int):
        self.headers, self.arg_bytes = dict(headers), arg_bytes
        super().__init__({
            **capture_members(arg_bytes),
            "header": Out(range(arg_bytes + 1)),
            "word": Out(stream.Signature(16, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        req, args, word = self.req, self.args, self.word
        nbytes, nwords = self.nbytes, self.nwords
        low = Signal(8)
        header = self.header
        with m.Switch(self.cmd):
            for cmd, n in self.headers.items():
                with m.Case(cmd):
                    m.d.comb += header.eq(n)
            with m.Default():
                m.d.comb += header.eq(self.arg_bytes)
        m.d.comb += word.payload.eq(Cat(low, req.payload.data))

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
                    with m.If(nbytes < header):
                        with m.Switch(nbytes):
                            for i in range(self.arg_bytes):
                                with m.Case(i):
                                    m.d.sync += args[i].eq(b)
                    with m.Elif(~(nbytes - header)[0]):
                        m.d.sync += low.eq(b)
                    with m.Else():
                        m.d.comb += word.valid.eq(1)
                        m.d.sync += nwords.eq(nwords + 1)
                    with m.If(req.payload.last):
                        m.next = "FULL"
            held_until_release(m, valid=self.valid, release=self.release)
        return m


class RequestCapture(wiring.Component):
    """This core's request capture (see the module doc): a :class:`RequestParser`
    with this core's commands, its words staged."""

    def __init__(self, *, max_payload: int):
        self.words = max(1, max_payload // 2)
        super().__init__({**capture_members(proto.ARGUMENT_BYTES),
                          "stage": In(StageRead(self.words))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = parser = RequestParser(headers=_HEADER_BYTES,
                                                     arg_bytes=proto.ARGUMENT_BYTES)
        forward_capture(m, parser, self)
        m.submodules.stage = stage = Memory(shape=16, depth=self.words, init=[])
        wp = stage.write_port()
        rp = stage.read_port()
        m.d.comb += [rp.addr.eq(self.stage.addr), self.stage.data.eq(rp.data),
                     wp.addr.eq(parser.nwords), wp.data.eq(parser.word.payload),
                     wp.en.eq(parser.word.valid & (parser.nwords < self.words))]
        return m
