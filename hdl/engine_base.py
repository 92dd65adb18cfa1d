"""Common interface of the core's engines (forward, backward, weight gradient, loss).

An engine turns one phase of one layer into lane operations: ``start`` (one
cycle) with ``phase`` and the ``layer`` parameters begins it, ``busy`` stays high
until its last operation was accepted by the lane datapath, ``op`` carries the
operations. Engines that walk spike or gradient history drive the core's shared
:class:`~spikeforge.hdl.history_scanner.HistoryScanner` through ``scan_*`` and
consume its events on ``pairs``.
"""

from __future__ import annotations

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .core_defs import CoreGeometry, bits_for
from .op_loops import layer_layout, pair_layout

__all__ = ["Engine"]


class Engine(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        if not isinstance(geometry, CoreGeometry):
            raise TypeError(f"geometry must be a CoreGeometry, not {type(geometry).__name__}")
        self.geo = g = geometry
        super().__init__({
            "start": In(1),
            "phase": In(3),
            "layer": In(layer_layout(g)),
            "T": In(bits_for(g.TMAX)),
            "through": In(1),
            "wcount": In(g.WAB),
            "busy": Out(1),
            "op": Out(stream.Signature(g.op_layout)),
            "scan_start": Out(1),
            "scan_base": Out(g.HGB),
            "scan_n": Out(g.NB),
            "scan_desc": Out(1),
            "scan_nz": Out(1),
            "scan_time_major": Out(1),
            "pairs": In(stream.Signature(pair_layout(g))),
            "pairs_done": In(1),
        })

    @staticmethod
    def mux_ops(m, out, loops):
        """Drive ``out`` from whichever of ``loops`` is busy (at most one is)."""
        m.d.comb += out.valid.eq(0)
        for loop in loops:
            with m.If(loop.busy):
                m.d.comb += [out.valid.eq(loop.op.valid), out.payload.eq(loop.op.payload),
                             loop.op.ready.eq(out.ready)]
