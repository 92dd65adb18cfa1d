"""The core's response serialiser (``hdl/core/response.py``) on its own: the beats of a
response descriptor, against the byte sequence its contract gives (status; if OK the
fixed bytes, the elements little-endian, the tail), under a stalling sink, with a
model of the command unit on the element port (a memory addressed by ``index`` on
``addr``, its word registered on ``latch`` the cycle after and given on ``value`` the
cycle after that; ``addr`` must come once per element, in order). With
the sink always ready, elements of two or more bytes leave at one byte per cycle."""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.core.response import ResponseSerialiser
from spikeforge.hdl.protocol import Status

from streams import StreamSink

FIXED, TAIL = 4, 3


def expected(status, fixed, elems, ebytes, tail):
    out = [status]
    if status == Status.OK:
        out += list(fixed)
        for v in elems:
            out += [(v >> (8 * k)) & 0xFF for k in range(ebytes)]
        out += list(tail)
    return out


def run(status, fixed, elems, ebytes, tail, *, stall, seed):
    dut = ResponseSerialiser(fixed_bytes=FIXED, tail_bytes=TAIL)
    want = expected(status, fixed, elems, ebytes, tail)
    sink = StreamSink(dut.rsp, stall=stall, seed=seed, done=lambda b: len(b) == len(want),
                      max_cycles=20 * len(want) + 50)
    seen = {"addr": [], "start_edge": None, "done": 0}

    async def bench(ctx):
        ctx.set(dut.status, status)
        ctx.set(dut.nfix, len(fixed))
        ctx.set(dut.fixed, list(fixed) + [0] * (FIXED - len(fixed)))
        ctx.set(dut.nelem, len(elems))
        ctx.set(dut.ebytes, ebytes)
        ctx.set(dut.ntail, len(tail))
        ctx.set(dut.tail, list(tail) + [0] * (TAIL - len(tail)))
        await ctx.tick()
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)

    async def memory(ctx):
        # the command unit: element `index` addressed on addr, its word registered on
        # latch (the cycle after), on value the cycle after that
        addressed = None
        async for _, _, addr, latch, index, last in ctx.tick().sample(
                dut.elem.addr, dut.elem.latch, dut.elem.index, dut.elem.last):
            assert bool(latch) == (addressed is not None), "latch must follow addr by one cycle"
            if addr:
                seen["addr"].append((index, last))
            # the word latched in this cycle is the value of the next one (a register);
            # in any other cycle the value is garbage
            ctx.set(dut.elem.value, elems[addressed] if latch else 0xDEADBEEF)
            addressed = index if addr else None

    async def done(ctx):
        async for _, _, d in ctx.tick().sample(dut.done):
            seen["done"] += d

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(memory)
    sim.add_process(done)
    sim.add_testbench(sink.run)
    sim.run_until(1e-6 * (20 * len(want) + 80))
    got = [int(b.data) for b in sink.beats]
    assert got == want
    firsts = [int(b.first) for b in sink.beats]
    lasts = [int(b.last) for b in sink.beats]
    assert firsts == [1] + [0] * (len(want) - 1)
    assert lasts == [0] * (len(want) - 1) + [1]
    n = len(elems) if status == Status.OK else 0
    assert seen["addr"] == [(k, k == n - 1) for k in range(n)]
    assert seen["done"] == 1
    return sink


@pytest.mark.parametrize("ebytes", [1, 2, 4])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_random_responses_give_the_contract_bytes(ebytes, stall):
    rng = random.Random(ebytes * 10 + int(stall * 10))
    for case in range(6):
        n = rng.choice([0, 1, 2, 3, 7])
        elems = [rng.getrandbits(8 * ebytes) for _ in range(n)]
        fixed = [rng.getrandbits(8) for _ in range(rng.randint(0, FIXED))]
        tail = [rng.getrandbits(8) for _ in range(rng.randint(0, TAIL))]
        run(Status.OK, fixed, elems, ebytes, tail, stall=stall, seed=case)


def test_an_error_status_is_one_beat_and_fetches_nothing():
    run(Status.BAD_STATE, [1, 2], [5, 6, 7], 2, [9], stall=0.3, seed=4)


@pytest.mark.parametrize("ebytes,cycles_per_element", [(2, 2), (4, 4), (1, 2)])
def test_elements_leave_at_one_byte_per_cycle(ebytes, cycles_per_element):
    """The fetch of the next element overlaps the bytes of this one: from the first
    element byte to the last, ``cycles_per_element`` clock edges per element."""
    elems = list(range(1, 41))
    sink = run(Status.OK, [], elems, ebytes, [], stall=0.0, seed=0)
    first_elem = 1                      # after the status beat
    span = sink.edges[-1] - sink.edges[first_elem + ebytes - 1]
    if ebytes > 1:
        assert span == cycles_per_element * (len(elems) - 1)
    else:       # one-byte elements: at least one per two cycles (some follow at once)
        assert span <= cycles_per_element * (len(elems) - 1)
