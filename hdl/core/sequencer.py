"""Sequencer of a run: which engine works on which layer, one phase at a time.

A run (``run.start`` with ``run.kind``) walks the steps of :data:`STEPS`: the
forward pass (accumulate, LIF) layer by layer upwards; for training the loss
(gradient, broadcast) and, layer by layer downwards, the backward terms, ``du``,
the input gradient (not for layer 0) and the weight gradient; an update is the
single ``WG_UPD`` step. Each step starts its engine (``start`` one cycle, with its
phase), then waits until the engine is no longer busy and the lane pipeline has
drained (``lanes_idle``) before the next step. ``run.done`` rises when the run is
over (until the next start).

A run of kind ``PHASE`` (RUN_PHASE, the split-layer schedule of
``docs/multicore.md``) runs the steps of one :class:`~spikeforge.hdl.protocol.Phase`
on the layer-table entry ``run.entry`` only (:data:`PHASE_STEPS`); its input-gradient
step starts from the accumulators as loaded when ``run.cont`` is set, from +0.0
otherwise.

``layer`` reads the layer table at the current layer. ``activity`` tells the
counters what the core is doing this cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..protocol import Phase
from .bp_engine import BPPhase
from .defs import CoreGeometry
from .engine import EngineControl
from .fp_engine import FPPhase
from .layer_table import TableRead
from .loss import LossPhase
from .wg_engine import WGPhase

__all__ = ["Sequencer", "Step", "RunKind", "RunPhase", "EngineGroup", "RunControl", "STEPS",
           "activity_layout", "PHASE_STEPS"]


class RunKind(enum.Enum, shape=2):
    FORWARD = 0     # RUN, forward only
    TRAIN = 1       # RUN with a label: forward and backward
    UPDATE = 2      # UPDATE: W = fma(neg_lr, dW, W)
    PHASE = 3       # RUN_PHASE: the steps of one phase on one layer-table entry


class Step(enum.Enum, shape=4):
    IDLE = 0
    FP_ACC = 1
    FP_LIF = 2
    LOSS_G = 3
    LOSS_B = 4
    BP_TERM = 5
    BP_DU = 6
    BP_GIN = 7
    WG_GRAD = 8
    WG_UPD = 9


class RunPhase(enum.Enum, shape=2):
    """The part of a run a step belongs to (the cycle counters)."""
    IDLE = 0
    FORWARD = 1
    BACKWARD = 2
    UPDATE = 3


class EngineGroup(enum.Enum, shape=2):
    """The engine counters a step is charged to (the loss unit counts as backward)."""
    FP = 0
    BP = 1
    WG = 2


@dataclass(frozen=True)
class StepInfo:
    engine: str             # the sequencer's control port of the engine
    phase: enum.Enum        # the engine's phase
    run_phase: RunPhase
    group: EngineGroup


#: What every step runs.
STEPS = {
    Step.FP_ACC: StepInfo("fp", FPPhase.ACCUMULATE, RunPhase.FORWARD, EngineGroup.FP),
    Step.FP_LIF: StepInfo("fp", FPPhase.LIF, RunPhase.FORWARD, EngineGroup.FP),
    Step.LOSS_G: StepInfo("loss", LossPhase.GRADIENT, RunPhase.BACKWARD, EngineGroup.BP),
    Step.LOSS_B: StepInfo("loss", LossPhase.BROADCAST, RunPhase.BACKWARD, EngineGroup.BP),
    Step.BP_TERM: StepInfo("bp", BPPhase.TERM, RunPhase.BACKWARD, EngineGroup.BP),
    Step.BP_DU: StepInfo("bp", BPPhase.DU, RunPhase.BACKWARD, EngineGroup.BP),
    Step.BP_GIN: StepInfo("bp", BPPhase.INPUT_GRAD, RunPhase.BACKWARD, EngineGroup.BP),
    Step.WG_GRAD: StepInfo("wg", WGPhase.GRADIENT, RunPhase.BACKWARD, EngineGroup.WG),
    Step.WG_UPD: StepInfo("wg", WGPhase.UPDATE, RunPhase.UPDATE, EngineGroup.WG),
}

#: Steps that start with every accumulator reading +0.
_ACC_RESET_STEPS = (Step.FP_ACC, Step.BP_GIN)

#: The steps of each phase of RUN_PHASE (first, ..., last).
PHASE_STEPS = {
    Phase.FORWARD: (Step.FP_ACC, Step.FP_LIF),
    Phase.LOSS: (Step.LOSS_G, Step.LOSS_B),
    Phase.BACKWARD: (Step.BP_TERM, Step.BP_DU),
    Phase.INPUT_GRAD: (Step.BP_GIN,),
    Phase.WEIGHT_GRAD: (Step.WG_GRAD,),
}


class RunControl(wiring.Signature):
    """Start of a run and its end (members from the starter's side)."""

    def __init__(self):
        super().__init__({"start": Out(1), "kind": Out(RunKind), "done": In(1),
                          # kind PHASE: which phase, on which entry, continuing acc or not
                          "phase": Out(Phase), "entry": Out(8), "cont": Out(1)})


def activity_layout(geo: CoreGeometry) -> data.StructLayout:
    """What the core does in a cycle, for the counters."""
    return data.StructLayout({
        "phase": RunPhase, "group": EngineGroup,
        "busy": 1,                      # an engine is busy
        "fanout": geo.neuron_bits,      # operations per scanned event of the step
    })


class Sequencer(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        self.geo = g = geometry
        super().__init__({
            "run": In(RunControl()),
            "layers": In(bits_for(g.max_layers)),
            "layer": Out(TableRead(g)),
            "fp": Out(EngineControl(FPPhase)),
            "bp": Out(EngineControl(BPPhase)),
            "wg": Out(EngineControl(WGPhase)),
            "loss": Out(EngineControl(LossPhase)),
            "lanes_idle": In(1),
            "acc_reset": Out(1),
            "activity": Out(activity_layout(g)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        step = Signal(Step)
        cur = Signal(range(g.max_layers))   # layer of the step
        running, train, wait, start = Signal(), Signal(), Signal(), Signal()
        single, cont = Signal(), Signal()     # a PHASE run; its input gradient continues
        last_layer = Signal(range(g.max_layers))
        lay = self.layer.entry
        controls = {"fp": self.fp, "bp": self.bp, "wg": self.wg, "loss": self.loss}
        busy = Signal()
        m.d.comb += [self.layer.index.eq(cur), last_layer.eq(self.layers - 1),
                     busy.eq(Cat(*[c.busy for c in controls.values()]).any())]

        with m.Switch(step):
            for st, info in STEPS.items():
                with m.Case(st):
                    ctl = controls[info.engine]
                    m.d.comb += [ctl.start.eq(start), ctl.phase.eq(info.phase),
                                 self.activity.phase.eq(info.run_phase),
                                 self.activity.group.eq(info.group)]
        m.d.comb += [
            self.acc_reset.eq(start & Cat(*[step == st for st in _ACC_RESET_STEPS]).any() &
                              ~(cont & (step == Step.BP_GIN))),
            self.activity.busy.eq(busy),
            self.activity.fanout.eq(Mux(step == Step.BP_GIN, lay.n_in, lay.n_out)),
        ]

        def go(st, layer=None):
            m.d.sync += step.eq(st)
            if layer is not None:
                m.d.sync += cur.eq(layer)

        def finish():
            m.d.sync += [running.eq(0), step.eq(Step.IDLE), self.run.done.eq(1)]

        with m.If(running):
            with m.If(~wait):
                m.d.comb += start.eq(1)
                m.d.sync += wait.eq(1)
            with m.Elif(~busy & self.lanes_idle & single &
                        Cat(*[step == steps[-1] for steps in PHASE_STEPS.values()]).any()):
                finish()
            with m.Elif(~busy & self.lanes_idle):
                m.d.sync += wait.eq(0)
                with m.Switch(step):
                    with m.Case(Step.FP_ACC):
                        go(Step.FP_LIF)
                    with m.Case(Step.FP_LIF):
                        with m.If(cur != last_layer):
                            go(Step.FP_ACC, cur + 1)
                        with m.Elif(train):
                            go(Step.LOSS_G)
                        with m.Else():
                            finish()
                    with m.Case(Step.LOSS_G):
                        go(Step.LOSS_B)
                    with m.Case(Step.LOSS_B):
                        go(Step.BP_TERM)
                    with m.Case(Step.BP_TERM):
                        go(Step.BP_DU)
                    with m.Case(Step.BP_DU):
                        go(Mux(cur != 0, Step.BP_GIN, Step.WG_GRAD))
                    with m.Case(Step.BP_GIN):
                        go(Step.WG_GRAD)
                    with m.Case(Step.WG_GRAD):
                        with m.If(cur != 0):
                            go(Step.BP_TERM, cur - 1)
                        with m.Else():
                            finish()
                    with m.Case(Step.WG_UPD):
                        finish()
        with m.If(self.run.start):
            update = self.run.kind == RunKind.UPDATE
            m.d.sync += [running.eq(1), wait.eq(0), cur.eq(0), self.run.done.eq(0),
                         train.eq(self.run.kind == RunKind.TRAIN), single.eq(0), cont.eq(0),
                         step.eq(Mux(update, Step.WG_UPD, Step.FP_ACC))]
            with m.If(self.run.kind == RunKind.PHASE):
                m.d.sync += [single.eq(1), cont.eq(self.run.cont),
                             cur.eq(self.run.entry[:len(cur)])]
                with m.Switch(self.run.phase):
                    for ph, steps in PHASE_STEPS.items():
                        with m.Case(ph):
                            m.d.sync += step.eq(steps[0])
        return m
