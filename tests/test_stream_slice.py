"""The stream register slice (``hdl/stream_slice.py``): under random stalls on both
sides its output is the input beats in order (against a reference queue, checked every
cycle), with one cycle of latency; with neither side stalling it passes one beat per
cycle; nothing combinational crosses it (``o.valid`` does not follow ``i.valid`` in
the same cycle, nor ``i.ready`` ``o.ready``)."""

import random
from collections import deque

import pytest
from amaranth import Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from spikeforge.hdl.stream_slice import RegisterSlice

from streams import StreamSink, StreamSource

LAYOUT = data.StructLayout({"a": 5, "b": 11})


def test_rejects_a_non_shape():
    with pytest.raises(TypeError, match="shape"):
        RegisterSlice(shape="wide")


@pytest.mark.parametrize("shape", [8, LAYOUT])
@pytest.mark.parametrize("stall_in,stall_out,seed", [
    (0.0, 0.0, 1), (0.5, 0.0, 2), (0.0, 0.5, 3), (0.3, 0.3, 4), (0.7, 0.6, 5), (0.1, 0.9, 6)])
def test_beats_in_order_under_stalls(shape, stall_in, stall_out, seed):
    dut = RegisterSlice(shape=shape)
    rng = random.Random(seed)
    n = 200
    beats = [rng.getrandbits(16) & 0xFF if shape == 8 else rng.getrandbits(16)
             for _ in range(n)]
    src = StreamSource(dut.i, beats, stall=stall_in, seed=seed)
    sink = StreamSink(dut.o, stall=stall_out, seed=seed + 100, done=lambda b: len(b) == n,
                      max_cycles=20 * n + 50)
    ref = deque()
    errors = []

    async def reference(ctx):
        # every cycle: the beat on o is the oldest one taken on i and not yet taken on o
        async for _, _, iv, ir, ip, ov, orr, op in ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.i.payload, dut.o.valid, dut.o.ready,
                dut.o.payload):
            if ov:
                if not ref:
                    errors.append("o.valid with no beat taken")
                elif _bits(op) != ref[0]:
                    errors.append(f"o.payload {_bits(op):#x}, expected {ref[0]:#x}")
            if ov and orr:
                ref.popleft()
            if iv and ir:
                ref.append(_bits(ip))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(src.run)
    sim.add_testbench(sink.run)
    sim.add_process(reference)
    sim.run_until(1e-6 * (20 * n + 60))
    assert not errors, errors[:5]
    assert [_bits(b) for b in sink.beats] == beats
    # a beat leaves at the earliest one edge after it was taken
    assert all(o > i for i, o in zip(src.accepted, sink.edges))
    if stall_in == 0 and stall_out == 0:
        # full throughput: one beat per edge, one edge of latency
        assert sink.edges == [e + 1 for e in src.accepted]
        assert src.accepted == list(range(src.accepted[0], src.accepted[0] + n))


def test_no_combinational_path():
    dut = RegisterSlice(shape=LAYOUT)
    seen = {}

    async def bench(ctx):
        # empty slice: raising i.valid does not raise o.valid in the same cycle
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"a": 3, "b": 7})
        seen["o_valid_same_cycle"] = ctx.get(dut.o.valid)
        await ctx.tick()
        seen["o_valid_next"] = ctx.get(dut.o.valid)
        # output stalled: the next beat goes to the skid register, i.ready drops only
        # after the edge; toggling o.ready does not move i.ready within the cycle
        ctx.set(dut.i.payload, {"a": 4, "b": 8})
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        r0 = ctx.get(dut.i.ready)
        ctx.set(dut.o.ready, 1)
        r1 = ctx.get(dut.i.ready)
        seen["i_ready"] = (r0, r1)
        await ctx.tick()
        seen["after_take"] = (ctx.get(dut.o.valid), ctx.get(dut.o.payload.a), ctx.get(dut.i.ready))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["o_valid_same_cycle"] == 0
    assert seen["o_valid_next"] == 1
    assert seen["i_ready"] == (0, 0)
    assert seen["after_take"] == (1, 4, 1)


def _bits(v):
    if isinstance(v, int):
        return v
    return v.as_value().value if hasattr(v, "as_value") else int(v)
