"""One spikeforge core: the lane datapath, the history scanner, the FP / BP / WG
engines and the loss unit, run by the sequencer, counted by the counter file and
commanded over the host protocol by the command unit.

``req`` / ``rsp`` are the internal request and response beat streams of
:mod:`spikeforge.hdl.protocol` (the host port checks framing and CRC). Every
request gets exactly one response (:mod:`.command`). A run executes one phase at
a time (an engine's whole loop over one layer, :mod:`.sequencer`), waiting for
the lane pipeline to drain between phases. Register slices (:mod:`..stream_slice`)
cut the handshakes between the engines and the lanes and between the scanner and
the engines' loops, so no combinational path runs from one block through another.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checked import ArgumentChecked
from ..config import BuildConfig
from ..protocol import BEAT_LAYOUT
from ..stream_slice import RegisterSlice
from .bp_engine import BPEngine
from .command import CommandUnit
from .counters import NOC_EVENTS, CounterFile
from .defs import CoreGeometry
from .fp_engine import FPEngine
from .history_scanner import HistoryScanner, connect_requests
from .lane_datapath import LaneDatapath
from .layer_table import LayerTable
from .loss import LossUnit
from .sequencer import RunKind, Sequencer
from .wg_engine import WGEngine

__all__ = ["Core"]


class Core(ArgumentChecked, wiring.Component):
    @classmethod
    def check(cls, config):
        CoreGeometry(config)        # raises on a configuration this core cannot build

    def __init__(self, config: BuildConfig):
        self.geo = CoreGeometry(config)
        self.config = config
        self.max_payload = config.implementation.max_payload
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            # flits of the core's network interface this cycle (the counters); 0 alone
            "noc": In(NOC_EVENTS),
            # the core's position in the system (its node; 0 alone): the chain position of
            # its blocks in a staged input gradient (RUN_PHASE)
            "index": In(16),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        m.submodules.cmd = cmd = CommandUnit(g)
        m.submodules.seq = seq = Sequencer(g)
        m.submodules.table = table = LayerTable(g, reads=2)
        m.submodules.counters = ctr = CounterFile(g)
        m.submodules.dp = dp = LaneDatapath(g)
        m.submodules.scan = scan = HistoryScanner(g)
        m.submodules.fp = fp = FPEngine(g)
        m.submodules.bp = bp = BPEngine(g)
        m.submodules.wg = wg = WGEngine(g)
        m.submodules.loss = loss = LossUnit(g)
        engines = [fp, bp, wg, loss]

        # command unit: host protocol, settings, layer table, runs, host access, counters
        wiring.connect(m, wiring.flipped(self.req), cmd.req)
        wiring.connect(m, cmd.rsp, wiring.flipped(self.rsp))
        wiring.connect(m, cmd.table_write, table.write)
        wiring.connect(m, cmd.table_read, table.read[1])
        wiring.connect(m, cmd.run, seq.run)
        wiring.connect(m, cmd.host, dp.host)
        wiring.connect(m, cmd.counters, ctr.read)
        s = cmd.settings
        m.d.comb += [dp.T.eq(s.T), dp.through.eq(s.through), dp.label.eq(s.label),
                     dp.constants.eq(s.constants), dp.clear_flags.eq(cmd.clear_flags),
                     cmd.nonfinite.eq(dp.nonfinite), seq.layers.eq(s.layers), scan.T.eq(s.T),
                     cmd.index.eq(self.index), bp.t_lo.eq(s.t_lo), bp.t_hi.eq(s.t_hi)]

        # sequencer: the engines' phases on the current layer
        wiring.connect(m, seq.layer, table.read[0])
        for e, port in ((fp, seq.fp), (bp, seq.bp), (wg, seq.wg), (loss, seq.loss)):
            wiring.connect(m, port, e.control)
            m.d.comb += [e.layer.eq(seq.layer.entry), e.T.eq(s.T), e.through.eq(s.through),
                         e.wcount.eq(s.wcount)]
        # lanes: operations of the busy engine, through a register slice (the lanes'
        # hazard check, which decides dp.op.ready, starts at its flip-flops, and the
        # engines see a registered ready); the pipeline has drained when neither the
        # slice nor the lanes hold an operation
        m.submodules.ops = ops = RegisterSlice(shape=g.op_layout)
        m.d.comb += [seq.lanes_idle.eq(dp.idle & ~ops.o.valid), dp.acc_reset.eq(seq.acc_reset)]
        m.d.comb += ops.i.valid.eq(0)
        for e in engines:
            with m.If(e.control.busy):
                m.d.comb += [ops.i.valid.eq(e.op.valid), ops.i.payload.eq(e.op.payload),
                             e.op.ready.eq(ops.i.ready)]
        wiring.connect(m, ops.o, dp.op)

        # the scanner: requests of the starting engine
        connect_requests(m, scan, [e.scan for e in engines if e.uses_scanner])
        wiring.connect(m, scan.rd, dp.scan)

        # counters
        ev = ctr.events
        m.d.comb += [ev.activity.eq(seq.activity), ev.lanes.eq(dp.stats), ev.zeros.eq(scan.zeros),
                     ev.noc.eq(self.noc),
                     # RUNs only (a RUN_PHASE is a part of a sample: the host counts those)
                     ev.run.eq(cmd.run.start & ((cmd.run.kind == RunKind.FORWARD) |
                                                (cmd.run.kind == RunKind.TRAIN)))]
        return m
