"""cocotb checks of the harness itself, run on a small stream FIFO."""

import random

import cocotb

from spikeforge.sim.verilator.cocotb_util import StreamSink, StreamSource, reset, start_clock
from spikeforge.sim.verilator.harness import cocotb_args


@cocotb.test()
async def fifo_passes_stream_in_order(dut):
    args = cocotb_args()
    rng = random.Random(args.get("seed", 0))
    start_clock(dut)
    await reset(dut)
    items = [rng.randrange(1 << 16) for _ in range(args.get("count", 1000))]
    source = StreamSource(dut, "i", stall=args.get("in_stall", 0.0), rng=random.Random(3))
    sink = StreamSink(dut, "o", stall=args.get("out_stall", 0.0), rng=random.Random(4))
    cocotb.start_soon(source.send(items))
    got = await sink.receive(len(items), timeout_cycles=100 * len(items) + 100)
    if args.get("corrupt_expectation"):
        # Used by the harness's own test: a wrong expectation must fail the run.
        items = items[1:] + items[:1]
    assert got == items, "stream FIFO reordered, dropped or duplicated data"
