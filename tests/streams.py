"""Stream drivers for ``amaranth.sim`` testbenches: one source and one sink for any
``lib.stream`` port, each stalling at random.

* :class:`StreamSource` offers its payloads (whatever ``ctx.set`` takes for the
  port's payload, or a plain integer: its bits) in order; before each one it holds
  ``valid`` low for a random number of cycles (each cycle with probability
  ``stall``). It records the clock edge at which each payload was taken.
* :class:`StreamSink` takes beats; every cycle ``ready`` is low with probability
  ``stall``. It records each beat's payload and clock edge, until ``done(beats)``
  is true (or forever, as a background testbench). :meth:`StreamSink.expect_idle`
  then checks that nothing more comes out.

Pass ``source.run`` / ``sink.run`` to ``sim.add_testbench``. Clock edges are
counted from the start of the simulation (1 = the first edge), the
same in every testbench, so a source's and a sink's edges can be subtracted.
"""

from __future__ import annotations

import random

__all__ = ["StreamSource", "StreamSink"]


def _bits_target(target, payload):
    # a plain integer goes into a layout-shaped payload as its bits
    if isinstance(payload, int) and hasattr(target, "as_value"):
        return target.as_value()
    return target


class StreamSource:
    def __init__(self, port, payloads, *, stall=0.0, seed=0):
        self.port, self.payloads, self.stall = port, list(payloads), stall
        self.rng = random.Random(seed)
        self.accepted: list[int] = []     # clock edge at which each payload was taken

    async def run(self, ctx):
        port, edge = self.port, 0
        for payload in self.payloads:
            while self.stall and self.rng.random() < self.stall:
                ctx.set(port.valid, 0)
                await ctx.tick()
                edge += 1
            ctx.set(_bits_target(port.payload, payload), payload)
            ctx.set(port.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                edge += 1
                if ready:
                    break
            self.accepted.append(edge)
        ctx.set(port.valid, 0)


class StreamSink:
    def __init__(self, port, *, stall=0.0, seed=1, done=None, max_cycles=None):
        self.port, self.stall, self.done, self.max_cycles = port, stall, done, max_cycles
        self.rng = random.Random(seed)
        self.beats: list = []             # payloads taken, in order
        self.edges: list[int] = []        # clock edge at which each was taken

    async def run(self, ctx):
        port, edge = self.port, 0
        while self.done is None or not self.done(self.beats):
            ready = int(not (self.stall and self.rng.random() < self.stall))
            ctx.set(port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
            edge += 1
            if self.max_cycles is not None and edge > self.max_cycles:
                raise AssertionError(f"the stream stopped: {len(self.beats)} beats in "
                                     f"{self.max_cycles} cycles")
            if ready and valid:
                self.beats.append(payload)
                self.edges.append(edge)

    async def expect_idle(self, ctx, cycles, what="a beat nobody asked for"):
        """With ``ready`` high, ``valid`` stays low for ``cycles`` cycles."""
        ctx.set(self.port.ready, 1)
        for _ in range(cycles):
            await ctx.tick()
            assert not ctx.get(self.port.valid), what
