"""The router's input buffer against a Python queue: flags, head, the entry after the head."""

import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.config import ConfigError
from spikeforge.hdl.noc.buffer import InputBuffer


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 16])
def test_buffer_matches_a_queue(depth):
    width = 12
    dut = InputBuffer(width=width, depth=depth, peek=(4, 9))
    rng = random.Random(depth)
    queue = deque()
    checked = [0]

    async def tb(ctx):
        for cycle in range(1500):
            w_en = rng.random() < 0.6
            w_data = rng.randrange(1 << width)
            # Readers drain faster or slower in phases, so the level sweeps 0..depth.
            r_want = rng.random() < (0.3 if (cycle // 200) % 2 else 0.8)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_data, w_data)
            r_rdy = ctx.get(dut.r_rdy)
            assert r_rdy == (len(queue) > 0), cycle
            assert ctx.get(dut.w_rdy) == (len(queue) < depth), cycle
            r_en = r_want and r_rdy
            ctx.set(dut.r_en, r_en)
            if queue:
                assert ctx.get(dut.r_data) == queue[0], cycle
            wrote = w_en and len(queue) < depth
            after = queue[1] if len(queue) >= 2 else None
            assert ctx.get(dut.p_rdy) == (after is not None), cycle
            if after is not None:
                assert ctx.get(dut.p_data) == (after >> 4) & 0x1F, cycle
                checked[0] += 1
            await ctx.tick()
            if r_en:
                queue.popleft()
            if wrote:
                queue.append(w_data)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    if depth > 1:
        assert checked[0] > 100
    else:  # a full buffer of one takes nothing, so no entry ever follows its head
        assert checked[0] == 0


def test_buffer_parameters_checked():
    with pytest.raises(ConfigError, match="at least 1"):
        InputBuffer(width=8, depth=0)
    with pytest.raises(ConfigError, match="bit range"):
        InputBuffer(width=8, depth=4, peek=(6, 9))
