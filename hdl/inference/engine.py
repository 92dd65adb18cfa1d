"""Integer inference engine: the event-driven forward pass of SPEC section 8.

Work follows the input events. For each layer, each group of ``group`` neurons
(``lanes`` processing elements, ``per_word`` neurons each) and each step ``t``,
the step's input bitmap (words of ``group`` bits from a spike buffer) goes through
the :class:`~spikeforge.hdl.spike_decoder.SpikeDecoder`, whose ascending index
stream addresses the weight memories: for active input ``j`` every lane reads
one 16-bit word at ``gbase + j`` (its ``per_word`` B-bit weights for input ``j``)
and adds each weight into its neuron's accumulator (integer adds only, no
multiplier). With the beat that ends the step's bitmap the ``group`` neurons are
updated in the same cycle: ``l = v`` (integrate-and-fire) or ``v - (v >> k)``,
``v' = sat_Q(l + x + b)`` with the run-time ``Q``, spike ``v' >= theta``, reset
by ``subtract`` or to ``zero``; the group's spikes are written as one word of
the other spike buffer (the next layer's input), and the accumulators clear.
Potentials and spike counts of a group live in registers for its ``T`` steps
(time runs inside the group loop), so no potential memory is needed; after the
last step the last layer's group writes its results (spike counts, or final
potentials in ``potential`` readout, where the last layer never fires nor
resets) as one row of the result memory.

Throughput: one input event per cycle, i.e. ``group`` SOPs per cycle (of which
``min(group, n_out - g * group)`` are useful in a layer's last group); the
steps of a group stream back to back through the decoder (a step takes at least
one cycle per bitmap word), the layer's input replays for each group without a
gap (the next group's first beats wait in the decoder while the group before
ends with its last update, about two cycles per group change), and a layer
change costs about five cycles (the next layer's first bitmap through the
decoder). Latency of a RUN: the sum of those.

Layer table: ``max_layers`` entries of :data:`~spikeforge.hdl.protocol.INF_SET_LAYER`
(written through ``table_*``); layer ``l`` reads spike buffer ``l % 2`` and writes
buffer ``(l + 1) % 2``; the host loads buffer 0.
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..protocol import INF_SET_LAYER
from ..spike_decoder import SpikeDecoder
from .feeder import BitmapFeeder
from .geometry import GeometryChecked, port_range
from .memories import (BiasMemory, BiasWrite, LayerWrite, ResultMemory, ResultRead,
                       SpikeBuffers, SpikeWrite, WeightMemories, WeightWrite)
from .neurons import NeuronGroup

__all__ = ["InferenceEngine"]


class InferenceEngine(GeometryChecked, wiring.Component):
    """The datapath and its loop control (see the module doc); ``geo`` is an
    :class:`InferenceGeometry`. The host side writes the layer table (``table``) and
    the memories (``weights``, ``biases``, ``spikes``: buffer 0) and reads the
    results (``results``); the memories are :mod:`.memories`, the feeder of the
    decoder :class:`~.feeder.BitmapFeeder`, the neurons :class:`~.neurons.NeuronGroup`."""

    def __init__(self, geo):
        self.geo = g = geo
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1),
            "T": In(range(g.max_T + 1)),
            "layers": In(range(g.max_layers + 1)),
            "Q": In(range(g.Q + 1)),
            "potential": In(1),                     # readout: 1 potential, 0 spikes
            "table": In(LayerWrite(g)),
            "weights": In(WeightWrite(g)), "biases": In(BiasWrite(g)),
            "spikes": In(SpikeWrite(g)), "results": In(ResultRead(g)),
            "sops": Out(range(g.group + 1)), "beat": Out(1), "update": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        G = g.group
        wbits = ceil_log2(g.step_words)

        # ---- layer table and memories --------------------------------------------------
        table = Array(Signal(INF_SET_LAYER, name=f"layer{i}") for i in range(g.max_layers))
        with m.If(self.table.en):
            m.d.sync += table[self.table.index].eq(self.table.entry)
        m.submodules.weights = wmem = WeightMemories(g)
        m.submodules.biases = bmem = BiasMemory(g)
        m.submodules.spikes = bufs = SpikeBuffers(g)
        m.submodules.results = rmem = ResultMemory(g)
        wiring.connect(m, wiring.flipped(self.weights), wmem.write)
        wiring.connect(m, wiring.flipped(self.biases), bmem.write)
        wiring.connect(m, wiring.flipped(self.spikes), bufs.host)
        wiring.connect(m, wiring.flipped(self.results), rmem.read)

        # ---- loop state ----------------------------------------------------------------
        layer = Signal(port_range(g.max_layers))
        cur = Signal(INF_SET_LAYER)
        grp = Signal(range(max(2, g.groups)))
        gbase = Signal(range(g.weight_depth + g.max_fan_in + 1))
        brow = Signal(range(g.bias_rows + g.groups + 1))
        nleft = Signal(range(g.max_neurons + 1))     # neurons of this group and later ones
        nvalid = Signal(range(G + 1))
        t = Signal(range(g.max_T + 1))
        last_layer = Signal()
        m.d.comb += [last_layer.eq(layer + 1 == self.layers),
                     nvalid.eq(Mux(nleft >= G, G, nleft)),
                     bmem.addr.eq(brow), bufs.sel.eq(layer[0])]

        # ---- feeder: bitmap words of steps 0 .. T-1 into the decoder ----------------------
        m.submodules.feeder = feeder = BitmapFeeder(g)
        m.submodules.dec = dec = SpikeDecoder(word_width=G, width=1,
                                              index_width=max(1, ceil_log2(G * g.step_words)))
        wiring.connect(m, feeder.read, bufs.read)
        wiring.connect(m, feeder.o, dec.i)
        m.d.comb += feeder.T.eq(self.T)

        # ---- stage A: an index addresses the weights; stage B: add / update ----------------
        streaming = Signal()
        a_steps = Signal(range(g.max_T + 1))    # bitmaps of this group through stage A
        take = Signal()
        m.d.comb += [take.eq(streaming & (a_steps != self.T)), dec.o.ready.eq(take)]
        beat = dec.o.valid & take
        with m.If(beat & dec.o.payload.last):
            m.d.sync += a_steps.eq(a_steps + 1)
        m.d.comb += wmem.addr.eq(gbase + dec.o.payload.index[0])
        b_add = Signal()
        b_end = Signal()
        m.d.sync += [b_add.eq(beat & (dec.o.payload.count != 0)),
                     b_end.eq(beat & dec.o.payload.last)]
        m.submodules.neurons = neurons = NeuronGroup(g)
        clear_group = Signal()
        m.d.comb += [neurons.add.eq(b_add), neurons.end.eq(b_end), neurons.clear.eq(clear_group),
                     neurons.weights.eq(wmem.words), neurons.bias.eq(bmem.row),
                     neurons.layer.eq(cur), neurons.Q.eq(self.Q),
                     neurons.fire.eq(~(last_layer & self.potential)),
                     neurons.nvalid.eq(nvalid), neurons.potential.eq(self.potential)]

        # output spikes: one word of the other buffer per update, word grp of step t at
        # t * step_words + grp, as the feeder reads it (grp has ceil_log2(groups) bits,
        # fewer than wbits when max_fan_in > max_neurons); the last layer's group writes
        # its results with its final update
        m.d.comb += [bufs.out.en.eq(streaming & b_end), bufs.out.addr.eq((t << wbits) + grp),
                     bufs.out.data.eq(neurons.spikes),
                     rmem.write.row.eq(grp), rmem.write.data.eq(neurons.result)]

        m.d.comb += [self.sops.eq(Mux(streaming & b_add, nvalid, 0)),
                     self.beat.eq(streaming & b_add), self.update.eq(streaming & b_end)]

        # ---- loop control ----------------------------------------------------------------
        entry = table[layer]
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += layer.eq(0)
                    m.next = "LAYER"
            with m.State("LAYER"):
                m.d.comb += [self.busy.eq(1), clear_group.eq(1), feeder.load.eq(1),
                             feeder.groups.eq((entry.n_out + G - 1) >> ceil_log2(G)),
                             feeder.words.eq((entry.n_in + G - 1) >> ceil_log2(G))]
                m.d.sync += [cur.eq(entry), grp.eq(0), gbase.eq(entry.wbase),
                             brow.eq(entry.bbase), nleft.eq(entry.n_out),
                             t.eq(0), a_steps.eq(0)]
                m.next = "STREAM"
            with m.State("STREAM"):
                m.d.comb += [self.busy.eq(1), streaming.eq(1)]
                with m.If(b_end):
                    m.d.sync += t.eq(t + 1)
                    with m.If(t + 1 == self.T):
                        # the group ends with its last update: results, next group (whose
                        # first bitmap may already wait in the decoder) or next layer
                        m.d.comb += [rmem.write.en.eq(last_layer), clear_group.eq(1)]
                        m.d.sync += [grp.eq(grp + 1), gbase.eq(gbase + cur.n_in),
                                     brow.eq(brow + 1), nleft.eq(nleft - nvalid), t.eq(0),
                                     a_steps.eq(0)]
                        with m.If(nleft <= G):
                            with m.If(last_layer):
                                m.next = "DONE"
                            with m.Else():
                                m.d.sync += layer.eq(layer + 1)
                                m.next = "LAYER"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
