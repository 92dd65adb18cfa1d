"""The core's counter file: the 32-bit counters of READ_COUNTERS
(:data:`~spikeforge.hdl.protocol.COUNTERS`), counted from the events of a cycle.

``events`` (:func:`events_layout`): the sequencer's activity (run phase, engine
group, busy, fan-out of a scanned event), the lanes' counts (stalled, issued,
masked, weight words read and written), the empty slots the history scanner
just loaded and ``run`` (a RUN started). Per cycle: ``cycles_<phase>`` counts
the cycles of a run's forward / backward / update part; the counters of the
step's engine group count busy and stalled cycles, FMAs and skipped FMAs
(``zeros * fanout`` events without a spike plus masked lanes); ``w_reads`` /
``w_writes`` the weight words; ``runs`` the RUN commands (not RUN_PHASE); ``bp_skipped_out`` the input-gradient
FMAs skipped for output sparsity (inputs whose window bit in the layer below is 0);
``noc_flits_in`` / ``noc_flits_out`` the flits of the core's network interface
(``events.noc``, driven by the system's node; 0 behind the one-core top). ``read`` (:class:`CounterRead`)
reads one counter; ``read.clear`` zeroes them all.

Two stores (``Implementation.counters``):

* ``registers``: 32 registers per counter.
* ``bram``: per counter its low bits in registers (added to every cycle; as many as
  it needs to carry at most once between two visits, from the largest increment of
  its events: 5 for a cycle counter, 14 for a skipped-FMA counter of the ``up5k``
  core, at most 16) and a carry bit; the high bits of all counters in a block RAM,
  where one counter a cycle, round robin, takes its carry (so a counter is visited
  every ``N`` cycles, ``N`` = 21 counters; the configuration is refused when a
  counter would need more than 16 register bits). A flag per counter says whether its high half was written since
  the last clear (a clear is one cycle, as for registers). Same values as
  ``registers``.

In both, ``read.value`` is the counter at the ``read.index`` of the cycle before (the
index is registered; the command unit's serialiser gives an element's index a cycle
before it registers the value), so a new counter can be read every cycle.

Latency: an event is counted two cycles after it happened (the events are
registered on their way in, and so are the increments formed from them); a clear
takes effect in the next cycle.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..protocol import COUNTERS
from .defs import CoreGeometry
from .lane_datapath import stats_layout
from .sequencer import EngineGroup, RunPhase, activity_layout

__all__ = ["CounterFile", "CounterRead", "events_layout", "NOC_EVENTS"]


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
        "noc": NOC_EVENTS,
    })


#: Flits a core's network interface moved in a cycle (``Core.noc``).
NOC_EVENTS = data.StructLayout({"flits_in": 1, "flits_out": 1})


_GROUPS = {EngineGroup.FP: "fp", EngineGroup.BP: "bp", EngineGroup.WG: "wg"}
_PHASES = {RunPhase.FORWARD: "cycles_forward", RunPhase.BACKWARD: "cycles_backward",
           RunPhase.UPDATE: "cycles_update"}


class CounterFile(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        self.geo = geometry
        super().__init__({"events": In(events_layout(geometry)), "read": In(CounterRead())})

    def elaborate(self, platform):
        m = Module()
        # The events are registered first: the counters lag the core by two cycles (nothing
        # reads them while it runs), and no path runs from the scanner or the lanes through
        # the 32-bit additions.
        ev = Signal(events_layout(self.geo))
        m.d.sync += ev.eq(self.events)
        act, lanes = ev.activity, ev.lanes
        inc = {n: Signal(32, name=f"inc_{n}") for n in COUNTERS}
        skipped = Signal(32)
        m.d.comb += skipped.eq(ev.zeros * act.fanout)
        m.d.comb += [inc["w_reads"].eq(lanes.w_reads), inc["w_writes"].eq(lanes.w_writes),
                     inc["runs"].eq(ev.run), inc["noc_flits_in"].eq(ev.noc.flits_in),
                     inc["noc_flits_out"].eq(ev.noc.flits_out)]
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
        # the increments registered too: no path from the event registers through the
        # skipped-FMA product into the counters' additions
        inc_r = {n: Signal(32, name=f"inc_r_{n}") for n in COUNTERS}
        m.d.sync += [inc_r[n].eq(inc[n]) for n in COUNTERS]
        idx = Signal.like(self.read.index)                # the index of the cycle before
        m.d.sync += idx.eq(self.read.index)
        if self.geo.counter_store == "bram":
            self._split(m, inc_r, idx)
        else:
            self._registers(m, inc_r, idx)
        return m

    def _registers(self, m, inc, idx):
        counters = {n: Signal(32, name=f"ctr_{n}") for n in COUNTERS}
        for n, c in counters.items():
            with m.If(self.read.clear):
                m.d.sync += c.eq(0)
            with m.Else():
                m.d.sync += c.eq(c + inc[n])
        m.d.comb += self.read.value.eq(Array(counters.values())[idx])

    def _split(self, m, inc, idx):
        N = len(COUNTERS)
        bits = self.geo.counter_low_bits                  # register bits per counter
        HW = 32 - min(bits.values())                      # block RAM word: the widest high part
        clear = self.read.clear
        low = [Signal(bits[n], name=f"low_{n}") for n in COUNTERS]
        carry = [Signal(name=f"carry_{n}") for n in COUNTERS]   # high part owes one
        fresh = [Signal(name=f"fresh_{n}") for n in COUNTERS]   # high part written since clear
        high = Memory(shape=HW, depth=N, init=[], attrs={"ram_style": "block"})
        m.submodules.high = high
        wp = high.write_port()
        rd_carry = high.read_port()                       # the visited counter, a cycle ahead
        rd_host = high.read_port(transparent_for=(wp,))  # read.index, a cycle before
        ptr = Signal(range(N))                            # the counter visited this cycle
        nxt = Signal(range(N))
        m.d.comb += [nxt.eq(Mux(ptr == N - 1, 0, ptr + 1)), rd_carry.addr.eq(nxt)]
        m.d.sync += ptr.eq(nxt)
        carry_a, fresh_a = Array(carry), Array(fresh)
        m.d.comb += [wp.addr.eq(ptr), wp.en.eq(1),
                     wp.data.eq(Mux(fresh_a[ptr], rd_carry.data, 0) + carry_a[ptr])]
        for i, n in enumerate(COUNTERS):
            L = bits[n]
            total = Signal(L + 1, name=f"sum_{n}")
            m.d.comb += total.eq(low[i] + inc[n])
            with m.If(clear):
                m.d.sync += [low[i].eq(0), carry[i].eq(0), fresh[i].eq(0)]
            with m.Else():
                m.d.sync += [low[i].eq(total[:L]),
                             carry[i].eq((carry[i] & (ptr != i)) | total[L])]
                with m.If(ptr == i):
                    m.d.sync += fresh[i].eq(1)
        # the value: the register bits of the counter, then its high part above them
        widths = sorted(set(bits.values()))
        low_r = Signal(max(widths))
        high_r = Signal(HW)
        cls = Signal(range(len(widths)))
        m.d.comb += [rd_host.addr.eq(self.read.index), low_r.eq(Array(low)[idx]),
                     high_r.eq(Mux(fresh_a[idx], rd_host.data, 0) + carry_a[idx])]
        with m.Switch(idx):
            for i, n in enumerate(COUNTERS):
                with m.Case(i):
                    m.d.comb += cls.eq(widths.index(bits[n]))
        m.d.comb += self.read.value.eq(
            Array(Cat(low_r[:w], high_r[:32 - w]) for w in widths)[cls])
