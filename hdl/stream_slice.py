"""Register slice of a ``lib.stream``: the same beats, in order, one cycle later, with
nothing combinational between its two sides.

:class:`RegisterSlice` is a two-entry skid buffer. ``o.valid`` and ``o.payload`` are
flip-flops, and so is ``i.ready`` (high while the second entry, the skid register,
is empty). ``o.ready`` only enables those flip-flops, so a chain
``source -> slice -> sink`` has no combinational path from the source to the sink
(valid / payload) or from the sink to the source (ready): inserted between two
blocks, it cuts a timing path through their handshake in both directions.

Latency: a beat taken on ``i`` at clock edge ``e`` is on ``o`` from edge ``e`` on
(one cycle later than it was offered). Throughput: one beat per cycle, also while
``o.ready`` toggles (the skid register takes the beat that arrives in a cycle the
output is stalled). The slice holds a beat exactly while ``o.valid`` is high (a
beat in the skid register implies one in the output register), so logic that waits
for a stream to drain looks at ``o.valid``.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .checked import ArgumentChecked

__all__ = ["RegisterSlice"]


class RegisterSlice(ArgumentChecked, wiring.Component):
    """A register slice for beats of ``shape`` (keyword-only: any shape-like, as for
    :class:`amaranth.lib.stream.Signature`)."""

    @classmethod
    def check(cls, *, shape):
        if not isinstance(shape, ShapeLike):
            raise TypeError(f"shape must be a shape-like object, not {shape!r}")

    def __init__(self, *, shape):
        self.shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        skid = Signal(self.shape)
        skid_valid = Signal()
        m.d.comb += i.ready.eq(~skid_valid)
        with m.If(o.ready | ~o.valid):
            # the output register is free this cycle: it takes the oldest beat waiting
            m.d.sync += [o.valid.eq(skid_valid | i.valid), skid_valid.eq(0)]
            with m.If(skid_valid):
                m.d.sync += o.payload.eq(skid)
            with m.Else():
                m.d.sync += o.payload.eq(i.payload)
        with m.Elif(i.valid & ~skid_valid):
            # the output is stalled: the arriving beat waits in the skid register
            m.d.sync += [skid.eq(i.payload), skid_valid.eq(1)]
        return m
