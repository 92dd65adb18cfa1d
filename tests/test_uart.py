"""UART receiver, transmitter and bridge against a bit-level line model written here.

The model drives the ``rx`` line cycle by cycle with a bit period that may differ
from the receiver's (baud mismatch) and decodes the ``tx`` line by sampling each
bit in its middle, from the start bit's falling edge.
"""

import random

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.uart import UARTBridge, UARTReceiver, UARTTransmitter, divisor_for


def line_levels(data, period, *, gap_bits=0.0, bad_stop=()):
    """Line level per cycle for bytes ``data`` (8N1) at ``period`` cycles per bit.

    ``bad_stop``: indices of bytes whose stop bit is sent as 0."""
    bits = []
    for n, byte in enumerate(data):
        bits.append(0)
        bits.extend((byte >> k) & 1 for k in range(8))
        bits.append(0 if n in bad_stop else 1)
        if gap_bits:
            bits.append(("gap", gap_bits))
    levels, t = [], 0.0
    for b in bits:
        if isinstance(b, tuple):
            length, level = b[1], 1
        else:
            length, level = 1, b
        end = t + length * period
        levels.extend([level] * (round(end) - round(t)))
        t = end
    return levels + [1] * int(3 * period)


def decode_line(levels, period):
    """Bytes decoded from a sampled ``tx`` line (8N1), and framing errors."""
    out, errors, i = [], 0, 0
    while i < len(levels):
        if levels[i] == 1:
            i += 1
            continue
        mid = lambda k: i + int((k + 0.5) * period)
        if mid(9) >= len(levels):
            break
        byte = sum(levels[mid(1 + k)] << k for k in range(8))
        if levels[mid(9)] != 1:
            errors += 1
        out.append(byte)
        i = mid(9) + 1
    return out, errors


def run_receiver(levels, *, divisor):
    """Drive ``levels`` into a receiver (always ready); return ``[(cycle, byte)]`` transfers."""
    dut = UARTReceiver(divisor=divisor)
    arrivals = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def watch(ctx):
        cycle = 0
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                arrivals.append((cycle, payload))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    return arrivals, dut


@pytest.mark.parametrize("mismatch", [0.0, 0.03, -0.03])
def test_receiver_decodes_bytes_at_mismatched_rates(mismatch):
    divisor = 16
    rng = random.Random(7)
    data = [rng.randrange(256) for _ in range(40)] + [0x00, 0xFF, 0x55, 0xAA]
    levels = line_levels(data, divisor * (1 + mismatch))
    arrivals, _ = run_receiver(levels, divisor=divisor)
    assert [b for _, b in arrivals] == data


def test_receiver_latency_and_throughput():
    divisor = 12
    data = [0xA5, 0x5A, 0x00]
    levels = [1] * 5 + line_levels(data, divisor)
    arrivals, _ = run_receiver(levels, divisor=divisor)
    assert [b for _, b in arrivals] == data
    first_edge = 5
    # the stop bit is sampled in its middle (9.5 bit times after the start edge),
    # after two synchroniser cycles; the byte is valid one cycle later
    lat = arrivals[0][0] - first_edge
    assert 9.5 * divisor <= lat <= 9.5 * divisor + 4, lat
    # back to back bytes arrive exactly one frame (10 bits) apart
    assert arrivals[1][0] - arrivals[0][0] == 10 * divisor
    assert arrivals[2][0] - arrivals[1][0] == 10 * divisor


def test_receiver_drops_bad_stop_bit_and_recovers():
    divisor = 16
    data = [0x12, 0x34, 0x56, 0x78]
    levels = line_levels(data, divisor, bad_stop={1}, gap_bits=2)
    dut = UARTReceiver(divisor=divisor)
    arrivals, errors = [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                arrivals.append(ctx.get(dut.o.payload))
        errors.append(ctx.get(dut.framing_errors))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert arrivals == [0x12, 0x56, 0x78]
    assert errors == [1]


def test_receiver_ignores_glitch():
    divisor = 16
    levels = [1] * 10 + [0] * 3 + [1] * 40 + line_levels([0x3C], divisor)
    arrivals, _ = run_receiver(levels, divisor=divisor)
    assert [b for _, b in arrivals] == [0x3C]


def test_transmitter_line_matches_model():
    divisor = 10
    rng = random.Random(3)
    data = [rng.randrange(256) for _ in range(30)]
    dut = UARTTransmitter(divisor=divisor)
    levels = []

    async def source(ctx):
        for byte in data:
            # random pauses between bytes
            for _ in range(rng.choice([0, 0, 3, 25])):
                await ctx.tick()
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
        for _ in range(15 * divisor):
            await ctx.tick()

    async def line(ctx):
        async for _, _, level in ctx.tick().sample(dut.tx):
            levels.append(level)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_process(line)
    sim.run()
    decoded, errors = decode_line(levels, divisor)
    assert decoded == data
    assert errors == 0


def test_bridge_loopback_keeps_bytes_while_consumer_stalls():
    divisor = 8
    rng = random.Random(11)
    data = [rng.randrange(256) for _ in range(12)]
    dut = UARTBridge(divisor=divisor, fifo_depth=16)
    received, tx_levels = [], []
    levels = line_levels(data, divisor)

    async def drive(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()
        # consumer wakes up only after every byte arrived, then echoes them back
        ctx.set(dut.o.ready, 1)
        for _ in range(4 * len(data)):
            if ctx.get(dut.o.valid):
                received.append(ctx.get(dut.o.payload))
            await ctx.tick()
        ctx.set(dut.o.ready, 0)
        for byte in received:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        for _ in range(12 * divisor):
            await ctx.tick()

    async def line(ctx):
        async for _, _, level in ctx.tick().sample(dut.tx):
            tx_levels.append(level)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive)
    sim.add_process(line)
    sim.run()
    assert received == data
    assert decode_line(tx_levels, divisor) == (data, 0)


def test_bridge_counts_bytes_lost_to_a_full_fifo():
    divisor = 8
    data = list(range(10))
    dut = UARTBridge(divisor=divisor, fifo_depth=4)
    result = {}

    async def drive(ctx):
        for level in line_levels(data, divisor):
            ctx.set(dut.rx, level)
            await ctx.tick()
        result["overruns"] = ctx.get(dut.overruns)
        got = []
        ctx.set(dut.o.ready, 1)
        for _ in range(20):
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()
        result["got"] = got

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive)
    sim.run()
    assert result["got"] == data[:len(result["got"])]
    assert len(result["got"]) + result["overruns"] == len(data)
    assert result["overruns"] > 0


def test_idle_after_silence():
    divisor = 8
    dut = UARTReceiver(divisor=divisor, idle_bits=3)
    seen = []

    async def bench(ctx):
        for level in [1] * 40 + [0] * 4 + [1] * 30:
            ctx.set(dut.rx, level)
            await ctx.tick()
            seen.append(ctx.get(dut.idle))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # idle rises after 3 bit times of high line, falls when the line goes low
    assert seen[24 + 2] == 1 and seen[20] == 0
    assert seen[44] == 0
    assert seen[-1] == 1


def test_line_break_after_long_low():
    divisor = 8
    dut = UARTReceiver(divisor=divisor, idle_bits=12)
    seen = []

    async def bench(ctx):
        # a 0x00 byte (9 low bit times) is not a break; 15 low bit times are
        for level in [1] * 30 + line_levels([0x00], divisor) + [0] * 120 + [1] * 30:
            ctx.set(dut.rx, level)
            await ctx.tick()
            seen.append(ctx.get(dut.line_break))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    byte_end = 30 + len(line_levels([0x00], divisor))
    assert not any(seen[:byte_end])
    assert not any(seen[:byte_end + 12 * divisor - 1])
    assert all(seen[byte_end + 12 * divisor + 3:byte_end + 120])
    assert seen[-1] == 0


def test_divisor_for_and_bad_parameters():
    assert divisor_for(clk_hz=48e6, baud=3_000_000) == 16
    assert divisor_for(clk_hz=25e6, baud=115_200) == 217
    with pytest.raises(ValueError, match="off by"):
        divisor_for(clk_hz=12e6, baud=1_300_000)
    with pytest.raises(ValueError, match="at least 8 clock cycles"):
        divisor_for(clk_hz=12e6, baud=3_000_000)
    with pytest.raises(ValueError, match="divisor must be"):
        UARTReceiver(divisor=4)
    with pytest.raises(ValueError, match="fifo_depth"):
        UARTBridge(divisor=16, fifo_depth=1)
