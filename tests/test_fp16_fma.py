# amaranth: UnusedElaboratable=no
"""Quick amaranth.sim checks of the FMA and the PE array against the golden fma."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from streams import StreamSink, StreamSource
from spikeforge.hdl.fp16 import DEFAULT_STAGES, FMA, fma_comb
from spikeforge.hdl.pe_array import PEArray
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden.vectors import biased_operands, directed_operands


def golden(a, b, c):
    return fp16.to_bits(fp16.fma(fp16.from_bits(a), fp16.from_bits(b), fp16.from_bits(c)))


def operands(n_random, seed=0):
    d = directed_operands(grid=False)
    r = biased_operands(np.random.default_rng(seed), n_random)
    return tuple(np.concatenate([x, y]) for x, y in zip(d, r))


def run_stream(dut, inputs, *, in_stall=0.0, out_stall=0.0, seed=1):
    """Push ``inputs`` (payload values) through ``dut`` with random stalls; return
    the outputs."""
    source = StreamSource(dut.i, inputs, stall=in_stall, seed=seed)
    sink = StreamSink(dut.o, stall=out_stall, seed=seed + 1,
                      done=lambda beats: len(beats) == len(inputs),
                      max_cycles=20 * len(inputs) + 100 + dut.latency)

    async def drain(ctx):
        await sink.run(ctx)
        await sink.expect_idle(ctx, dut.latency + 2, "more results than inputs")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source.run, background=True)
    sim.add_testbench(drain)
    sim.run()
    return sink.beats


def test_combinational_datapath_matches_golden():
    from amaranth import Module, Signal
    m = Module()
    a, b, c = Signal(16), Signal(16), Signal(16)
    r = fma_comb(m, a, b, c)
    A, B, C = operands(400, seed=5)
    want = golden(A, B, C)
    got = []

    async def bench(ctx):
        for x, y, z in zip(A.tolist(), B.tolist(), C.tolist()):
            ctx.set(a, x), ctx.set(b, y), ctx.set(c, z)
            got.append(ctx.get(r))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    bad = [(hex(A[j]), hex(B[j]), hex(C[j]), hex(got[j]), hex(want[j]))
           for j in range(len(got)) if got[j] != want[j]]
    assert not bad, bad[:10]


@pytest.mark.parametrize("stages,in_stall,out_stall", [
    (DEFAULT_STAGES, 0.0, 0.0), (DEFAULT_STAGES, 0.3, 0.5), (1, 0.2, 0.4), (5, 0.0, 0.3),
    (2, 0.3, 0.3), (8, 0.1, 0.1),
])
def test_fma_stream(stages, in_stall, out_stall):
    dut = FMA(stages=stages)
    assert dut.latency == stages
    A, B, C = operands(150, seed=stages)
    inputs = [{"a": x, "b": y, "c": z} for x, y, z in zip(A.tolist(), B.tolist(), C.tolist())]
    got = run_stream(dut, inputs, in_stall=in_stall, out_stall=out_stall, seed=stages + 7)
    want = golden(A, B, C).tolist()
    bad = [(hex(A[j]), hex(B[j]), hex(C[j]), hex(got[j]), hex(want[j]))
           for j in range(len(got)) if got[j] != want[j]]
    assert not bad, bad[:10]


@pytest.mark.parametrize("stages", [1, 3, 5])
def test_fma_latency_and_throughput(stages):
    """One result per cycle with the output always ready; the first after ``stages`` cycles."""
    dut = FMA(stages=stages)
    n = 20
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for k in range(n + stages + 2):
            if k < n:
                ctx.set(dut.i.payload, {"a": 0x3C00 + k, "b": 0x3C00, "c": 0})
                ctx.set(dut.i.valid, 1)
            else:
                ctx.set(dut.i.valid, 0)
            assert ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                seen.append((k, ctx.get(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [k for k, _ in seen] == list(range(stages, stages + n))
    assert [p for _, p in seen] == [0x3C00 + k for k in range(n)]


def test_stalled_output_holds_result():
    """While o.ready is low the presented result and o.valid stay put and input is refused."""
    dut = FMA(stages=2)

    async def bench(ctx):
        ctx.set(dut.i.payload, {"a": 0x4000, "b": 0x4200, "c": 0x3C00})   # 2*3+1 = 7
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.payload, {"a": 0x4000, "b": 0x4000, "c": 0x0000})   # 4
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(5):
            assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x4700
            assert not ctx.get(dut.i.ready)
            await ctx.tick()
        ctx.set(dut.o.ready, 1)
        assert ctx.get(dut.o.payload) == 0x4700
        await ctx.tick()
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x4400
        await ctx.tick()
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("lanes,stages", [(3, DEFAULT_STAGES), (1, 1), (2, 4)])
def test_pe_array_stream(lanes, stages):
    dut = PEArray(lanes=lanes, stages=stages)
    assert dut.latency == stages and dut.lanes == lanes
    A, B, C = operands(60 * lanes, seed=lanes)
    pad = (-A.size) % lanes
    A, B, C = (np.concatenate([x, np.zeros(pad, np.uint16)]) for x in (A, B, C))
    ops = list(zip(A.tolist(), B.tolist(), C.tolist()))
    inputs = [[{"a": x, "b": y, "c": z} for x, y, z in ops[k:k + lanes]]
              for k in range(0, len(ops), lanes)]
    got = run_stream(dut, inputs, in_stall=0.2, out_stall=0.3, seed=lanes)
    flat = [v for row in got for v in row]
    want = golden(A, B, C).tolist()
    bad = [(hex(A[j]), hex(B[j]), hex(C[j]), hex(flat[j]), hex(want[j]))
           for j in range(len(flat)) if flat[j] != want[j]]
    assert not bad, bad[:10]


@pytest.mark.parametrize("kwargs,word", [
    ({"lanes": 0}, "lanes must be an integer >= 1, not 0"),
    ({"lanes": -2}, "lanes"), ({"lanes": 2.0}, "lanes"), ({"lanes": True}, "lanes"),
    ({"lanes": 2, "stages": 9}, "stages must be an integer between 1 and 8, not 9"),
    ({"lanes": 2, "stages": 0}, "stages"),
])
def test_pe_array_parameters_are_checked(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PEArray(**kwargs)


def test_fma_parameters_are_checked():
    with pytest.raises(ValueError, match="stages"):
        FMA(stages=9)
    with pytest.raises(ValueError, match="stages"):
        FMA(stages="3")
    assert FMA().latency == DEFAULT_STAGES


def test_build_configuration_defaults_to_the_fma_default():
    from spikeforge.hdl.config import Implementation
    assert Implementation().fma_stages == DEFAULT_STAGES


def test_operand_layout_puts_a_lowest():
    dut = FMA()
    assert dut.i.payload.shape().size == 48
    assert dut.i.payload.shape()["a"].offset == 0
    assert dut.i.payload.shape()["b"].offset == 16
    assert dut.i.payload.shape()["c"].offset == 32
