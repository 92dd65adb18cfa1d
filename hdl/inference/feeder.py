"""Bitmap feeder of the integer inference engine: a layer's input bitmaps into the
spike decoder, once for each of the layer's neuron groups.

On ``load`` (one cycle) the feeder takes the layer's bitmap words per step
(``words``) and neuron groups (``groups``), then reads, from the spike buffer the
layer reads (``read``), the words of steps ``0 .. T-1`` in order and offers each on
``o`` (``last`` on a step's final word), and replays them for every group. It
fetches a word whenever ``o`` is empty or taken, so it delivers one word per
cycle while ``o.ready`` holds; the first word is on ``o`` two cycles after
``load`` (the cycle of the buffer's read).
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..spike_decoder import input_layout
from .geometry import GeometryChecked
from .memories import BitmapRead

__all__ = ["BitmapFeeder"]


class BitmapFeeder(GeometryChecked, wiring.Component):
    """See the module doc; ``o`` has the layout of the spike decoder's input."""

    def __init__(self, geo):
        self.geo = g = geo
        super().__init__({
            "load": In(1), "words": In(range(g.step_words + 1)), "groups": In(range(g.groups + 1)),
            "T": In(range(g.max_T + 1)),
            "read": Out(BitmapRead(g)),
            "o": Out(stream.Signature(input_layout(g.group))),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        wbits = ceil_log2(g.step_words)
        on = Signal()                           # words left to fetch
        t = Signal(range(g.max_T + 1))
        w = Signal(range(g.step_words + 1))
        grp = Signal(range(g.groups + 1))       # the group the input is replayed for
        nw = Signal(range(g.step_words + 1))
        ngroups = Signal(range(g.groups + 1))
        valid, last = Signal(), Signal()
        adv = Signal()
        m.d.comb += [adv.eq(~valid | self.o.ready),
                     self.read.addr.eq(Cat(w[:wbits], t) if wbits else t),
                     self.read.en.eq(adv),
                     self.o.valid.eq(valid), self.o.payload.word.eq(self.read.data),
                     self.o.payload.last.eq(last)]
        with m.If(adv):
            m.d.sync += [valid.eq(on), last.eq(w + 1 == nw)]
            with m.If(on):
                with m.If(w + 1 == nw):
                    m.d.sync += [w.eq(0), t.eq(t + 1)]
                    with m.If(t + 1 == self.T):
                        # the layer's input replays for each group; it stops after the last
                        m.d.sync += [t.eq(0), grp.eq(grp + 1)]
                        with m.If(grp + 1 == ngroups):
                            m.d.sync += on.eq(0)
                with m.Else():
                    m.d.sync += w.eq(w + 1)
        with m.If(self.load):
            m.d.sync += [nw.eq(self.words), ngroups.eq(self.groups), on.eq(1), t.eq(0), w.eq(0),
                         grp.eq(0), valid.eq(0)]
        return m
