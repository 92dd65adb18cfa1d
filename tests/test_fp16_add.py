# amaranth: UnusedElaboratable=no
"""The add lane (FPAdd) in amaranth.sim against the integer-exact IEEE addition of
tests/fp16_exact.py, and on Verilator against the golden add over every binary16 pattern."""

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from fp16_exact import add_many
from spikeforge.hdl.fp16_add import ADD_DEFAULT_STAGES, ADD_MAX_STAGES, FPAdd, add_pipeline
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden.vectors import biased_operands, directed_operands

from test_fp16_fma import run_stream


def operands(n_random, seed=0):
    d = directed_operands(grid=False)
    r = biased_operands(np.random.default_rng(seed), n_random)
    a = np.concatenate([d[0], r[0], d[2]])
    c = np.concatenate([d[2], r[2], d[0]])
    return a, c


def hard_pairs():
    """Ties, cancellation, subnormal boundaries, overflow, signed zeros, NaN and inf."""
    vals = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x0401, 0x3C00,
            0xBC00, 0x3C01, 0xBC01, 0x7BFF, 0xFBFF, 0x7BFE, 0x7C00, 0xFC00, 0x7E00, 0x7C01,
            0xFE00, 0x1400, 0x1401, 0x9400, 0x6800, 0x0C00, 0x8C00, 0x3BFF, 0xBBFF, 0x5BFF]
    a, c = np.meshgrid(np.array(vals, np.uint16), np.array(vals, np.uint16))
    return a.reshape(-1), c.reshape(-1)


def test_combinational_datapath_matches_exact_addition():
    m = Module()
    a, c = Signal(16), Signal(16)
    r = add_pipeline(m, a, c, stages=0)
    A0, C0 = hard_pairs()
    A1, C1 = operands(1500, seed=3)
    A, C = np.concatenate([A0, A1]), np.concatenate([C0, C1])
    want = add_many(A, C)
    got = []

    async def bench(ctx):
        for x, z in zip(A.tolist(), C.tolist()):
            ctx.set(a, x), ctx.set(c, z)
            got.append(ctx.get(r))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    bad = [(hex(A[j]), hex(C[j]), hex(got[j]), hex(want[j]))
           for j in range(len(got)) if got[j] != want[j]]
    assert not bad, bad[:10]


def test_golden_add_is_the_exact_addition_on_the_hard_pairs():
    # the Verilator test below compares with the golden add: tie it to the exact reference
    A, C = hard_pairs()
    golden = fp16.to_bits(fp16.add(fp16.from_bits(A), fp16.from_bits(C)))
    assert (golden == add_many(A, C)).all()


@pytest.mark.parametrize("stages,in_stall,out_stall", [
    (ADD_DEFAULT_STAGES, 0.0, 0.0), (ADD_DEFAULT_STAGES, 0.3, 0.5), (1, 0.2, 0.4),
    (2, 0.0, 0.3), (ADD_MAX_STAGES, 0.1, 0.1),
])
def test_add_stream(stages, in_stall, out_stall):
    dut = FPAdd(stages=stages)
    assert dut.latency == stages
    A, C = operands(100, seed=stages)
    inputs = [{"a": x, "c": z} for x, z in zip(A.tolist(), C.tolist())]
    got = run_stream(dut, inputs, in_stall=in_stall, out_stall=out_stall, seed=stages + 3)
    assert got == add_many(A, C).tolist()


@pytest.mark.parametrize("stages", [1, 3, 5])
def test_add_latency_and_throughput(stages):
    n = 40
    dut = FPAdd(stages=stages)
    A, C = operands(n, seed=9)
    A, C = A[-n:], C[-n:]
    want = add_many(A, C).tolist()
    arrivals = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(n + stages + 3):
            if cycle < n:
                ctx.set(dut.i.payload, {"a": int(A[cycle]), "c": int(C[cycle])})
            else:
                ctx.set(dut.i.valid, 0)
            if ctx.get(dut.o.valid):
                arrivals.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [v for _, v in arrivals] == want
    assert [t for t, _ in arrivals] == list(range(stages, stages + n))


def test_parameters_are_checked():
    for bad in (0, ADD_MAX_STAGES + 1, 2.0, True):
        with pytest.raises(ValueError, match="stages must be an integer between 1 and"):
            FPAdd(stages=bad)


@pytest.mark.verilator
def test_add_lane_on_verilator_every_pattern():
    from spikeforge.sim.verilator import harness
    dut = FPAdd()
    # every pattern as a against zeros, the smallest subnormal, the subnormal boundary,
    # 1.0, the largest finite, inf and NaN, both signs where it matters
    sweep = ["0x0000", "0x8000", "0x0001", "0x83FF", "0x0400", "0x3C00", "0xBC00", "0x7BFF",
             "0xFC00", "0x7E00"]
    result = harness.run(dut, name="fp16_add", test_module="spikeforge.sim.verilator.cocotb_tests.fp16_fma",
                         args={"op": "add", "latency": dut.latency, "count": 30_000, "seed": 4,
                               "sweep": sweep, "in_stall": 0.1, "out_stall": 0.2})
    assert (result.tests, result.failed) == (1, 0)
