"""The counter file against the counting rules of its docstring, written again here
as a Python model, for both stores (``registers``; ``bram``: low halves in registers,
high halves in a block RAM taking one carry a cycle), on random events at rates high
enough for the low halves to carry many times, with clears and reads in between."""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.config import ConfigError, preset
from spikeforge.hdl.core.counters import CounterFile
from spikeforge.hdl.core.defs import CoreGeometry
from spikeforge.hdl.core.sequencer import EngineGroup, RunPhase
from spikeforge.hdl.protocol import COUNTERS

_PHASE = {RunPhase.FORWARD: "cycles_forward", RunPhase.BACKWARD: "cycles_backward",
          RunPhase.UPDATE: "cycles_update"}
_GROUP = {EngineGroup.FP: "fp", EngineGroup.BP: "bp", EngineGroup.WG: "wg"}


def _increments(ev):
    inc = dict.fromkeys(COUNTERS, 0)
    phase, group = ev["phase"], ev["group"]
    if phase in _PHASE:
        inc[_PHASE[phase]] = 1
    if phase != RunPhase.IDLE and group in _GROUP:
        pre = _GROUP[group]
        inc[f"{pre}_busy"] = ev["busy"]
        inc[f"{pre}_stalled"] = ev["stalled"]
        inc[f"{pre}_fmas"] = ev["issued"]
        inc[f"{pre}_skipped"] = ev["zeros"] * ev["fanout"] + ev["masked"]
        if group == EngineGroup.BP:
            inc["bp_skipped_out"] = ev["out_skipped"]
    inc["w_reads"], inc["w_writes"], inc["runs"] = ev["w_reads"], ev["w_writes"], ev["run"]
    inc["noc_flits_in"], inc["noc_flits_out"] = ev["flits_in"], ev["flits_out"]
    return inc


_FLITS = random.Random(7)


def _random_event(rng, geo, busy_run):
    P, TM = geo.lanes, geo.max_time_steps
    hot = busy_run and rng.random() < 0.9
    return {
        "phase": rng.choice(list(RunPhase)) if hot else RunPhase.IDLE,
        "group": rng.choice(list(EngineGroup)),
        "busy": rng.randrange(2), "stalled": rng.randrange(2),
        # mostly the largest values, so the skipped counters carry every ~130 cycles
        "fanout": (1 << geo.neuron_bits) - 1 if rng.random() < 0.7
        else rng.randrange(1 << geo.neuron_bits),
        "zeros": P * TM if rng.random() < 0.7 else rng.randrange(P * TM + 1),
        "issued": rng.randrange(P + 1), "masked": rng.randrange(P + 1),
        "w_reads": rng.randrange(2 * P + 1), "w_writes": rng.randrange(2 * P + 1),
        "out_skipped": rng.randrange(1 << (geo.neuron_bits + 2)),
        "run": int(rng.random() < 0.05),
        # the network interface's flits from their own generator (the stream above is
        # tuned so the low halves carry many times)
        "flits_in": _FLITS.randrange(2), "flits_out": _FLITS.randrange(2),
    }


@pytest.mark.parametrize("store", ["registers", "bram"])
def test_counters_count_by_the_rules_and_read_back(store):
    cfg = preset("up5k", counters=store)
    geo = CoreGeometry(cfg)
    dut = CounterFile(geo)
    rng = random.Random(3)
    model = dict.fromkeys(COUNTERS, 0)
    checked = {"reads": 0, "big": 0}

    async def bench(ctx):
        nonlocal model
        ev_port, rd = dut.events, dut.read
        index, held = 0, 0
        # the increments of the two events in flight: older first
        pending = [dict.fromkeys(COUNTERS, 0), dict.fromkeys(COUNTERS, 0)]
        for cycle in range(4000):
            busy_run = (cycle // 700) % 2 == 0          # runs, and idle stretches
            ev = _random_event(rng, geo, busy_run)
            ctx.set(ev_port.activity.phase, ev["phase"])
            ctx.set(ev_port.activity.group, ev["group"])
            ctx.set(ev_port.activity.busy, ev["busy"])
            ctx.set(ev_port.activity.fanout, ev["fanout"])
            for f in ("stalled", "issued", "masked", "w_reads", "w_writes", "out_skipped"):
                ctx.set(getattr(ev_port.lanes, f), ev[f])
            ctx.set(ev_port.zeros, ev["zeros"])
            ctx.set(ev_port.run, ev["run"])
            ctx.set(ev_port.noc.flits_in, ev["flits_in"])
            ctx.set(ev_port.noc.flits_out, ev["flits_out"])
            # a new index every few cycles; the value is checked once it was held a cycle
            if held >= 2 and rng.random() < 0.5:
                index, held = rng.randrange(len(COUNTERS)), 0
            ctx.set(rd.index, index)
            clear = int(rng.random() < 0.001)
            ctx.set(rd.clear, clear)
            if held >= 1:
                got = ctx.get(rd.value)
                want = model[COUNTERS[index]] % (1 << 32)
                assert got == want, f"cycle {cycle}: {COUNTERS[index]} = {got}, want {want}"
                checked["reads"] += 1
                checked["big"] += want >= 1 << 16
            held += 1
            await ctx.tick()
            # an event is counted two cycles after it happened (the events are registered
            # on their way in, then their increments); a clear zeroes the counters, and
            # the increment due at that edge is lost with them
            if clear:
                model = dict.fromkeys(COUNTERS, 0)
            else:
                for n, v in pending[0].items():
                    model[n] += v
            pending = [pending[1], _increments(ev)]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # the reads saw counters past their low halves, so the carries were checked too
    assert checked["reads"] > 1000 and checked["big"] > 100


def test_bram_counters_refuse_a_core_they_cannot_keep_up_with():
    with pytest.raises(ConfigError, match="counters='bram' cannot keep up"):
        CoreGeometry(preset("tiny", counters="bram"))
    with pytest.raises(ConfigError, match="counters must be one of"):
        preset("up5k", counters="flash")
