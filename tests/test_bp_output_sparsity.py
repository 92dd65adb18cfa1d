"""Output sparsity of the input gradient: the GIN loop issues only the input groups
with a window bit at the event's step, and the core counts the FMAs it skips.

The reference for the loop is written from SPEC section 3 (``g_in[t]_j`` is needed
only where the layer below has ``m[t]_j`` set) and the row layout of the skewed
weight memory (docs/core.md), not from the loop's code.
"""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.config import preset
from spikeforge.hdl.core.bp_engine import GinLoop
from spikeforge.hdl.core.defs import CoreGeometry, OpKind
from spikeforge.sim.golden import fp16, model as golden

from streams import StreamSink, StreamSource


def _reference(geo, lay, win, pairs):
    """(kind, t, g, hg, waddr, nvalid, oskip) of every operation, in order."""
    P, TM = geo.lanes, geo.max_time_steps
    ops = []
    for j, t in pairs:
        groups = [h for h in range(lay["g_in"]) if win[(lay["in_hg"] + h) * TM + t]]
        if not groups:
            ops.append((OpKind.NOP.value, t, None, None, None, 0, lay["n_in"]))
            continue
        used = 0
        for n, h in enumerate(groups):
            nv = min(P, lay["n_in"] - h * P)
            used += nv
            last = n == len(groups) - 1
            ops.append((OpKind.GIN.value, t, h, lay["in_hg"] + h,
                        lay["wbase"] + (j // P) * lay["n_in"] + h * P, nv,
                        lay["n_in"] - used if last else 0))
    return ops


@pytest.mark.parametrize("seed,density", [(1, 0.0), (2, 0.15), (3, 0.5), (4, 1.0)])
def test_gin_loop_issues_only_groups_with_a_window_bit(seed, density):
    geo = CoreGeometry(preset("tiny"))          # 4 lanes, 8 steps
    P, TM = geo.lanes, geo.max_time_steps
    rng = random.Random(seed)
    n_in = rng.randint(5, geo.max_fan_in)
    lay = {"n_in": n_in, "n_out": 7, "g_in": -(-n_in // P), "g_out": 2, "wbase": 37,
           "in_hg": 1, "out_hg": 1 + -(-n_in // P), "in_dg": 0, "out_dg": 3}
    win = [int(rng.random() < density) for _ in range(geo.hist_groups * TM)]
    pairs = sorted({(rng.randrange(7), rng.randrange(TM)) for _ in range(12)})
    want = _reference(geo, lay, win, pairs)

    dut = GinLoop(geo)
    src = StreamSource(dut.pairs, [{"j": j, "t": t} for j, t in pairs], stall=0.3, seed=seed)
    sink = StreamSink(dut.op, stall=0.3, seed=seed + 10, done=lambda b: len(b) >= len(want),
                      max_cycles=2000)

    async def control(ctx):
        ctx.set(dut.layer, lay)
        ctx.set(dut.win, sum(b << i for i, b in enumerate(win)))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while len(src.accepted) < len(pairs):
            await ctx.tick()
        ctx.set(dut.pairs_done, 1)
        # busy until the last operation was taken (the loop holds events it prepared)
        while len(sink.beats) < len(want):
            assert ctx.get(dut.busy)
            await ctx.tick()
        for _ in range(4):
            await ctx.tick()
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(control)
    sim.add_testbench(src.run)
    sim.add_testbench(sink.run)
    sim.run_until(5e-3)
    got = []
    for o in sink.beats:
        kind = o.kind.value
        if kind == OpKind.NOP.value:
            got.append((kind, int(o.t), None, None, None, int(o.nvalid), int(o.oskip)))
        else:
            got.append((kind, int(o.t), int(o.g), int(o.hg), int(o.waddr), int(o.nvalid),
                        int(o.oskip)))
    assert got == want
    # every input of every event is either computed or counted as skipped
    assert sum(o[5] + o[6] for o in got) == n_in * len(pairs)


@pytest.mark.verilator
def test_core_counts_the_input_gradient_fmas_it_skips():
    """On the 4-lane core: per training sample, ``bp_skipped_out`` equals the (non-zero
    ``du``, input without window bit) pairs of the golden model's traces, and the
    layer below's ``du`` (which reads ``g_in``) stays bit-exact."""
    from spikeforge.hdl.accelerator import Accelerator
    from spikeforge.sim.engines.compare import first_difference
    from spikeforge.sim.engines.rtl import session_name
    from spikeforge.sim.host.device import Device
    from spikeforge.sim.verilator.session import rtl_session

    cfg = preset("tiny")
    rng = np.random.default_rng(11)
    sizes = [30, 20, 6]
    params = golden.Params(T=8, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                           loss_scale=8.0, reset_grad="detach")
    weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
               for i, o in zip(sizes[:-1], sizes[1:])]
    with rtl_session(Accelerator(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=300.0) as link:
        acc = Device(link)
        acc.load_network(sizes, params, weights)
        dWs = golden.zero_grads(weights)
        total_skipped = 0
        for density in (0.3, 0.6):
            spikes = rng.random((params.T, sizes[0])) < density
            label = int(rng.integers(0, sizes[-1]))
            acc.counters(clear=True)
            acc.run(spikes, label)
            c = acc.counters(clear=True)
            traces = golden.forward(weights, spikes, params)
            grads = golden.backward(weights, traces, spikes, label, params, dWs)
            dWs = [g.dW for g in grads]
            want = 0
            for l in range(1, len(weights)):
                nz = fp16.ne(grads[l].du, np.float16(0))
                m_below = traces[l - 1].m
                want += sum(int(nz[t].sum()) * int((~m_below[t]).sum())
                            for t in range(params.T))
            assert c["bp_skipped_out"] == want
            total_skipped += want
            for l in range(len(weights)):
                first_difference(f"layer {l} du", acc.du(l), grads[l].du, kind="trace")
        assert total_skipped > 0
