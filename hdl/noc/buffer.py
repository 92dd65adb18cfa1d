"""Input buffer of a router port: a first-word-fall-through FIFO in LUT RAM with registered flags.

``w_data``/``w_en``/``w_rdy`` write, ``r_data``/``r_en``/``r_rdy`` read; the
head entry is on ``r_data`` whenever ``r_rdy`` is high (an asynchronous read
of the storage at the read pointer, so on ECP5 the storage is distributed RAM,
``TRELLIS_DPR16X4``). ``r_en`` must only be raised while ``r_rdy`` is.

Unlike :class:`amaranth.lib.fifo.SyncFIFO`, whose ``r_rdy``/``w_rdy`` are
compares of the fill level, both flags here are flip-flops (computed one cycle
ahead from the level), so logic that reads them starts at a register.

``peek`` (a bit range ``(lo, hi)`` of an entry, or None) adds ``p_data``/``p_rdy``:
those bits of the second entry held, the one after the head (a copy of those
bits in a second small LUT RAM, read at the read pointer plus one; ``p_rdy``
is a flip-flop). The router uses it to know, as the head leaves, where the
entry after it goes.

Timing: an entry written at edge ``t`` is on ``r_data`` with ``r_rdy`` from
edge ``t`` on; one write and one read per cycle. ``w_rdy`` does not look at
the same cycle's read, so a full buffer of depth 1 passes one entry every two
cycles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..checked import ArgumentChecked
from ..config import ConfigError

__all__ = ["InputBuffer"]


class InputBuffer(ArgumentChecked, wiring.Component):
    """``depth`` entries of ``width`` bits (keyword-only; ``depth >= 1``, ``width >= 1``)."""

    @classmethod
    def check(cls, *, width, depth, peek=None):
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"buffer width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"router_buffer_depth must be at least 1, not {depth!r}")
        if peek is not None and not (0 <= peek[0] < peek[1] <= width):
            raise ConfigError(f"peek range {peek!r} is not a bit range of a {width}-bit entry")

    def __init__(self, *, width: int, depth: int, peek: tuple[int, int] | None = None):
        self.width, self.depth, self.peek = width, depth, peek
        ports = {
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
        }
        if peek is not None:
            ports.update({"p_data": Out(peek[1] - peek[0]), "p_rdy": Out(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        storage = m.submodules.storage = Memory(shape=self.width, depth=depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="comb")
        produce = Signal(range(depth))
        consume = Signal(range(depth))
        level = Signal(range(depth + 1))
        nonempty = Signal()          # level >= 1
        notfull = Signal(init=1)     # level < depth
        two = Signal()               # level >= 2
        do_write = self.w_en & notfull
        do_read = self.r_en  # only raised while nonempty

        m.d.comb += [
            self.w_rdy.eq(notfull), self.r_rdy.eq(nonempty),
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), self.r_data.eq(r_port.data),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(_next(produce, depth))
        with m.If(do_read):
            m.d.sync += consume.eq(_next(consume, depth))
        with m.If(do_write & ~do_read):
            m.d.sync += [level.eq(level + 1), nonempty.eq(1), notfull.eq(level != depth - 1),
                         two.eq(nonempty)]
        with m.If(do_read & ~do_write):
            m.d.sync += [level.eq(level - 1), notfull.eq(1), nonempty.eq(level != 1),
                         two.eq(level > 2)]

        if self.peek is not None:
            lo, hi = self.peek
            # A copy of the peeked bits, read one entry past the head.
            copy = m.submodules.peek = Memory(shape=hi - lo, depth=depth, init=[])
            cw = copy.write_port()
            cr = copy.read_port(domain="comb")
            after = Signal(range(depth), init=_next_const(0, depth))  # consume + 1
            with m.If(do_read):
                m.d.sync += after.eq(_next(after, depth))
            m.d.comb += [
                cw.addr.eq(produce), cw.data.eq(self.w_data[lo:hi]), cw.en.eq(do_write),
                cr.addr.eq(after),
                self.p_data.eq(cr.data),
                self.p_rdy.eq(two),
            ]
        return m


def _next(ptr, depth):
    """The pointer after ``ptr`` in a ring of ``depth`` entries."""
    if depth == 1:
        return ptr
    if depth & (depth - 1) == 0:
        return (ptr + 1)[:len(ptr)]
    return Mux(ptr == depth - 1, 0, ptr + 1)


def _next_const(ptr: int, depth: int) -> int:
    return (ptr + 1) % depth
