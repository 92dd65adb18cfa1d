"""Common interface of the core's engines (forward, backward, weight gradient, loss).

An engine turns one phase of one layer into lane operations. Its ``control``
port (:class:`EngineControl`, driven by the sequencer): ``start`` (one cycle)
with ``phase`` (the engine's own :mod:`amaranth.lib.enum` of phases) begins it,
``busy`` stays high until its last operation was accepted by the lane datapath.
``layer`` holds the layer's parameters, ``op`` carries the operations. Engines
that walk spike or gradient history (``uses_scanner``) drive the core's shared
:class:`~spikeforge.hdl.core.history_scanner.HistoryScanner` through ``scan``
(:class:`~spikeforge.hdl.core.history_scanner.ScanRequest`).
"""

from __future__ import annotations

import operator
from functools import reduce

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..stream_slice import RegisterSlice
from .defs import CoreGeometry
from .history_scanner import ScanRequest

__all__ = ["Engine", "EngineControl"]


class EngineControl(wiring.Signature):
    """Start / phase / busy of one engine (members from the sequencer's side)."""

    def __init__(self, phase):
        super().__init__({"start": Out(1), "phase": Out(phase), "busy": In(1)})


class Engine(wiring.Component):
    #: The engine's phases (an ``amaranth.lib.enum.Enum`` with a shape); set by subclasses.
    Phase = None
    #: Whether the engine walks history through the scanner.
    uses_scanner = True

    def __init__(self, geometry: CoreGeometry):
        if not isinstance(geometry, CoreGeometry):
            raise TypeError(f"geometry must be a CoreGeometry, not {type(geometry).__name__}")
        self.geo = g = geometry
        members = {
            "control": In(EngineControl(self.Phase)),
            "layer": In(g.layer_layout),
            "T": In(bits_for(g.max_time_steps)),
            "through": In(1),
            "wcount": In(g.waddr_bits),
            "op": Out(stream.Signature(g.op_layout)),
        }
        if self.uses_scanner:
            members["scan"] = Out(ScanRequest(g))
        super().__init__({**members, **self.extra_members(g)})

    @staticmethod
    def extra_members(g) -> dict:
        """Members an engine adds to the common ones (none by default)."""
        return {}

    def elaborate(self, platform):
        m = Module()
        loops = self.build(m, self.layer, self.control)
        m.d.comb += self.control.busy.eq(reduce(operator.or_, [loop.busy for loop in loops]))
        self.mux_ops(m, self.op, loops)
        return m

    def build(self, m, layer, control) -> list:
        """Build the engine's loops into ``m`` for ``layer`` and its ``control``; return
        the loops (the engine is busy while one is, and issues its operations)."""
        raise NotImplementedError

    @staticmethod
    def mux_ops(m, out, loops):
        """Drive ``out`` from whichever of ``loops`` is busy (at most one is)."""
        m.d.comb += out.valid.eq(0)
        for loop in loops:
            with m.If(loop.busy):
                m.d.comb += [out.valid.eq(loop.op.valid), out.payload.eq(loop.op.payload),
                             loop.op.ready.eq(out.ready)]

    def scan_with(self, m, loop, *, start, base, n, descending=0, time_major=0, nz=0):
        """Start a scan with ``start`` and feed its events to the pair ``loop``, through a
        register slice (nothing combinational between the scanner and the loop; one cycle
        more from an event to its first operation; one scan per engine). The scanner's events go to every
        engine that uses it: the slice takes them only while ``loop`` runs. The loop
        ends on ``~pairs.valid & pairs_done``, and the slice holds a beat exactly while
        its ``o.valid`` is high, so the events it still holds are not lost."""
        s = self.scan
        m.d.comb += [s.start.eq(start), s.base.eq(base), s.n.eq(n), s.descending.eq(descending),
                     s.time_major.eq(time_major), s.nz.eq(nz), loop.pairs_done.eq(s.done)]
        m.submodules.pairs = pairs = RegisterSlice(shape=s.events.payload.shape())
        m.d.comb += [pairs.i.valid.eq(s.events.valid & loop.busy),
                     pairs.i.payload.eq(s.events.payload),
                     s.events.ready.eq(pairs.i.ready & loop.busy)]
        wiring.connect(m, pairs.o, loop.pairs)
