"""Memories of the integer inference core and the ports the host side writes them through.

* :class:`WeightMemories` -- one memory of 16-bit words per lane (``per_word``
  weights a word), all read at one address: every lane's word for one input event.
* :class:`BiasMemory` -- rows of ``group`` Q-bit biases, one row per neuron group;
  the host writes one bias at a time.
* :class:`SpikeBuffers` -- the two spike bitmap buffers: a layer reads one and
  writes its output spikes, a word per update, into the other; the host loads
  buffer 0 in 16-bit pieces.
* :class:`ResultMemory` -- a row of ``group`` 16-bit results per group of the last
  layer, written by the engine and read by the command unit.

Every read port is synchronous (the data one cycle after the address), every
write takes effect at the clock edge; one read and one write per memory and cycle.
The signatures (:class:`WeightWrite`, :class:`BiasWrite`, :class:`SpikeWrite`,
:class:`ResultRead`, :class:`LayerWrite`) connect the command unit to the engine.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..protocol import INF_SET_LAYER
from .geometry import GeometryChecked, port_range

__all__ = ["WeightWrite", "BiasWrite", "SpikeWrite", "ResultRead", "LayerWrite",
           "BitmapRead", "BitmapWrite", "RowWrite",
           "WeightMemories", "BiasMemory", "SpikeBuffers", "ResultMemory"]


class WeightWrite(wiring.Signature):
    """A 16-bit weight word into lane ``lane`` at ``addr`` (members from the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "lane": Out(port_range(geo.lanes)),
                          "addr": Out(port_range(geo.weight_depth)), "data": Out(16)})


class BiasWrite(wiring.Signature):
    """One bias into slot ``slot`` of row ``row`` (members from the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "row": Out(port_range(geo.bias_rows)),
                          "slot": Out(port_range(geo.group)), "data": Out(signed(geo.Q))})


class SpikeWrite(wiring.Signature):
    """A 16-bit piece ``piece`` of bitmap word ``addr`` of spike buffer 0 (members from
    the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "addr": Out(port_range(geo.spike_depth)),
                          "piece": Out(port_range(geo.pieces)), "data": Out(16)})


class ResultRead(wiring.Signature):
    """A row of the result memory (members from the reader's side; one cycle)."""

    def __init__(self, geo):
        super().__init__({"row": Out(port_range(geo.groups)),
                          "data": In(data.ArrayLayout(16, geo.group))})


class LayerWrite(wiring.Signature):
    """A layer table entry (members from the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "index": Out(port_range(geo.max_layers)),
                          "entry": Out(INF_SET_LAYER)})


class BitmapRead(wiring.Signature):
    """A bitmap word of the buffer a layer reads (members from the reader's side; one
    cycle after ``addr`` when ``en``, else the word holds)."""

    def __init__(self, geo):
        super().__init__({"addr": Out(port_range(geo.spike_depth)), "en": Out(1),
                          "data": In(geo.group)})


class BitmapWrite(wiring.Signature):
    """A whole bitmap word of output spikes (members from the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "addr": Out(port_range(geo.spike_depth)),
                          "data": Out(geo.group)})


class RowWrite(wiring.Signature):
    """A row of ``group`` 16-bit results (members from the writer's side)."""

    def __init__(self, geo):
        super().__init__({"en": Out(1), "row": Out(port_range(geo.groups)),
                          "data": Out(data.ArrayLayout(16, geo.group))})


class WeightMemories(GeometryChecked, wiring.Component):
    """``lanes`` weight memories of ``weight_depth`` words: host writes through
    ``write``; ``words`` is every lane's word at ``addr`` of the cycle before."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({"write": In(WeightWrite(geo)),
                          "addr": In(port_range(geo.weight_depth)),
                          "words": Out(data.ArrayLayout(16, geo.lanes))})

    def elaborate(self, platform):
        m = Module()
        w = self.write
        for lane in range(self.geo.lanes):
            mem = Memory(shape=16, depth=self.geo.weight_depth, init=[])
            m.submodules[f"weights{lane}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(w.addr), wp.data.eq(w.data),
                         wp.en.eq(w.en & (w.lane == lane))]
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(self.addr), self.words[lane].eq(rp.data)]
        return m


class BiasMemory(GeometryChecked, wiring.Component):
    """``bias_rows`` rows of ``group`` signed Q-bit biases: one bias a host write
    (``write``); ``row`` is the biases of ``addr`` of the cycle before."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({"write": In(BiasWrite(geo)), "addr": In(port_range(geo.bias_rows)),
                          "row": Out(data.ArrayLayout(signed(geo.Q), geo.group))})

    def elaborate(self, platform):
        m = Module()
        g, w = self.geo, self.write
        m.submodules.biases = mem = Memory(shape=data.ArrayLayout(signed(g.Q), g.group),
                                           depth=g.bias_rows, init=[])
        wp = mem.write_port(granularity=1)
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(w.row), wp.en.eq(Mux(w.en, 1 << w.slot, 0)),
                     rp.addr.eq(self.addr), self.row.eq(rp.data)]
        for k in range(g.group):
            m.d.comb += wp.data[k].eq(w.data)
        return m


class SpikeBuffers(GeometryChecked, wiring.Component):
    """The two spike buffers of ``spike_depth`` bitmap words: ``read`` from buffer
    ``sel``, ``out`` (output spikes, a whole word) into the other buffer, and the
    host's pieces (``host``) into buffer 0 when no output word is written there."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({"host": In(SpikeWrite(geo)), "sel": In(1),
                          "read": In(BitmapRead(geo)), "out": In(BitmapWrite(geo))})

    def elaborate(self, platform):
        m = Module()
        g, host, out = self.geo, self.host, self.out
        data_rd = []
        for b in range(2):
            mem = Memory(shape=g.group, depth=g.spike_depth, init=[])
            m.submodules[f"spikes{b}"] = mem
            wp = mem.write_port(granularity=16)
            rp = mem.read_port()
            out_here = out.en & (self.sel != b)
            m.d.comb += [wp.addr.eq(Mux(out_here, out.addr, host.addr)),
                         wp.data.eq(Mux(out_here, out.data, Cat(*([host.data] * g.pieces)))),
                         wp.en.eq(Mux(out_here, (1 << g.pieces) - 1,
                                      Mux(host.en & (b == 0), 1 << host.piece, 0))),
                         rp.addr.eq(self.read.addr), rp.en.eq(self.read.en)]
            data_rd.append(rp.data)
        m.d.comb += self.read.data.eq(Mux(self.sel, data_rd[1], data_rd[0]))
        return m


class ResultMemory(GeometryChecked, wiring.Component):
    """``groups`` rows of ``group`` 16-bit results: the engine writes a row
    (``write``), the command unit reads one (``read``)."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({"write": In(RowWrite(geo)), "read": In(ResultRead(geo))})

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        m.submodules.results = mem = Memory(shape=data.ArrayLayout(16, g.group),
                                            depth=g.groups, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(self.write.row), wp.data.eq(self.write.data),
                     wp.en.eq(self.write.en),
                     rp.addr.eq(self.read.row), self.read.data.eq(rp.data)]
        return m
