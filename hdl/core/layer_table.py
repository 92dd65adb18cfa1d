"""The core's layer table: one :attr:`~.defs.CoreGeometry.layer_layout` entry per layer.

Written by the command unit (SET_LAYER) through ``write`` (one entry per cycle,
registered); read combinationally through ``read[i]`` (the sequencer's current
layer, the command unit's addressed and last layers).
"""

from __future__ import annotations

from amaranth import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .defs import CoreGeometry

__all__ = ["LayerTable", "TableRead", "TableWrite"]


class TableRead(wiring.Signature):
    """A read port of the table (members from the reader's side)."""

    def __init__(self, geo: CoreGeometry):
        super().__init__({"index": Out(range(geo.max_layers)), "entry": In(geo.layer_layout)})


class TableWrite(wiring.Signature):
    """The write port of the table (members from the writer's side)."""

    def __init__(self, geo: CoreGeometry):
        super().__init__({"en": Out(1), "index": Out(range(geo.max_layers)),
                          "entry": Out(geo.layer_layout)})


class LayerTable(wiring.Component):
    def __init__(self, geometry: CoreGeometry, *, reads: int):
        self.geo = geometry
        super().__init__({"write": In(TableWrite(geometry)),
                          "read": In(TableRead(geometry)).array(reads)})

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        entries = Array(Signal(g.layer_layout, name=f"layer{l}") for l in range(g.max_layers))
        for port in self.read:
            m.d.comb += port.entry.eq(entries[port.index])
        with m.If(self.write.en):
            m.d.sync += entries[self.write.index].eq(self.write.entry)
        return m
