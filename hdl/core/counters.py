"""The core's counter file: the 32-bit counters of READ_COUNTERS
(:data:`~spikeforge.hdl.protocol.COUNTERS`), counted from the events of a cycle.

``events`` (:func:`events_layout`): the sequencer's activity (run phase, engine
group, busy, fan-out of a scanned event), the lanes' counts (stalled, issued,
masked, weight words read and written), the empty slots the history scanner
just loaded and ``run`` (a RUN started). Per cycle: ``cycles_<phase>`` counts
the cycles of a run's forward / backward / update part; the counters of the
step's engine group count busy and stalled cycles, FMAs and skipped FMAs
(``zeros * fanout`` events without a spike plus masked lanes); ``w_reads`` /
``w_writes`` the weight words; ``runs`` the runs; ``bp_skipped_out`` the input-gradient
FMAs skipped for output sparsity (inputs whose window bit in the layer below is 0). ``read`` (:class:`CounterRead`)
reads one counter combinationally; ``read.clear`` zeroes them all.

Latency: an event is counted one cycle after it happened (the events are
registered on their way in); a clear takes effect in the next cycle.
"""

from __future__ import annotations

from amaranth import Array, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..protocol import COUNTERS
from .defs import CoreGeometry
from .lane_datapath import stats_layout
from .sequencer import EngineGroup, RunPhase, activity_layout

__all__ = ["CounterFile", "CounterRead", "events_layout"]


class CounterRead(wiring.Signature):
    """Read and clear of the counters (members from the reader's side)."""

    def __init__(self):
        super().__init__({"index": Out(range(len(COUNTERS))), "value": In(32), "clear": Out(1)})


def events_layout(geo: CoreGeometry) -> data.StructLayout:
    return data.StructLayout({
        "activity": activity_layout(geo),
        "lanes": stats_layout(geo),
        "zeros": bits_for(geo.lanes * geo.max_time_steps),
        "run": 1,
    })


_GROUPS = {EngineGroup.FP: "fp", EngineGroup.BP: "bp", EngineGroup.WG: "wg"}
_PHASES = {RunPhase.FORWARD: "cycles_forward", RunPhase.BACKWARD: "cycles_backward",
           RunPhase.UPDATE: "cycles_update"}


class CounterFile(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        self.geo = geometry
        super().__init__({"events": In(events_layout(geometry)), "read": In(CounterRead())})

    def elaborate(self, platform):
        m = Module()
        # The events are registered first: the counters lag the core by one cycle (nothing
        # reads them while it runs), and no path runs from the scanner or the lanes through
        # the 32-bit additions.
        ev = Signal(events_layout(self.geo))
        m.d.sync += ev.eq(self.events)
        act, lanes = ev.activity, ev.lanes
        counters = {n: Signal(32, name=f"ctr_{n}") for n in COUNTERS}
        inc = {n: Signal(32, name=f"inc_{n}") for n in COUNTERS}
        skipped = Signal(32)
        m.d.comb += skipped.eq(ev.zeros * act.fanout)
        m.d.comb += [inc["w_reads"].eq(lanes.w_reads), inc["w_writes"].eq(lanes.w_writes),
                     inc["runs"].eq(ev.run)]
        for phase, name in _PHASES.items():
            m.d.comb += inc[name].eq(act.phase == phase)
        for group, pre in _GROUPS.items():
            with m.If((act.phase != RunPhase.IDLE) & (act.group == group)):
                m.d.comb += [inc[f"{pre}_busy"].eq(act.busy),
                             inc[f"{pre}_stalled"].eq(lanes.stalled),
                             inc[f"{pre}_fmas"].eq(lanes.issued),
                             inc[f"{pre}_skipped"].eq(skipped + lanes.masked)]
                if group == EngineGroup.BP:
                    m.d.comb += inc["bp_skipped_out"].eq(lanes.out_skipped)
        for n, c in counters.items():
            with m.If(self.read.clear):
                m.d.sync += c.eq(0)
            with m.Else():
                m.d.sync += c.eq(c + inc[n])
        m.d.comb += self.read.value.eq(Array(counters.values())[self.read.index])
        return m
