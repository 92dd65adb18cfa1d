"""Helpers for cocotb testbenches of spikeforge components.

Python should wake at transaction boundaries, not every cycle: :func:`wait_high`
sleeps on an edge of a done/valid signal, and :class:`StreamSource` /
:class:`StreamSink` drive and collect ``lib.stream`` ports
(``<name>__payload``, ``__valid``, ``__ready``) with optional random stalls.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer, with_timeout

__all__ = ["start_clock", "reset", "wait_high", "StreamSource", "StreamSink", "port"]

CLOCK_NS = 10


def port(dut, name):
    """The handle of port ``name`` on ``dut`` (``a.b`` → ``a__b``)."""
    return getattr(dut, name.replace(".", "__"))


def start_clock(dut, period_ns: int = CLOCK_NS):
    """Start the ``clk`` of ``dut``."""
    return cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())


async def reset(dut, cycles: int = 2):
    """Hold the synchronous ``rst`` high for ``cycles`` rising edges."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def wait_high(signal, *, timeout_cycles: int, period_ns: int = CLOCK_NS):
    """Sleep until ``signal`` is 1 at a rising clock edge (without waking every cycle)."""
    async def _wait():
        while True:
            if int(signal.value) == 1:
                return
            await RisingEdge(signal)
    await with_timeout(_wait(), timeout_cycles * period_ns, "ns")


class StreamSource:
    """Drive ``<prefix>__payload/__valid`` honouring ``__ready``.

    ``stall`` is the probability that ``valid`` is held low in a cycle.
    """

    def __init__(self, dut, prefix: str, *, stall: float = 0.0, rng: random.Random | None = None):
        self.clk = dut.clk
        self.payload = port(dut, f"{prefix}.payload")
        self.valid = port(dut, f"{prefix}.valid")
        self.ready = port(dut, f"{prefix}.ready")
        self.stall = stall
        self.rng = rng or random.Random(1)
        self.valid.value = 0

    async def send(self, items):
        """Send every payload of ``items`` (integers), one transfer each."""
        for item in items:
            while self.stall and self.rng.random() < self.stall:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = int(item)
            self.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if int(self.ready.value):
                    break
        self.valid.value = 0


class StreamSink:
    """Collect ``<prefix>__payload`` transfers, driving ``__ready``.

    ``stall`` is the probability that ``ready`` is held low in a cycle.
    """

    def __init__(self, dut, prefix: str, *, stall: float = 0.0, rng: random.Random | None = None):
        self.clk = dut.clk
        self.payload = port(dut, f"{prefix}.payload")
        self.valid = port(dut, f"{prefix}.valid")
        self.ready = port(dut, f"{prefix}.ready")
        self.stall = stall
        self.rng = rng or random.Random(2)
        self.items: list[int] = []
        self.ready.value = 0

    async def receive(self, count: int, *, timeout_cycles: int | None = None):
        """Collect ``count`` transfers; returns the list of payload integers."""
        start = len(self.items)
        cycles = 0
        while len(self.items) - start < count:
            ready = 0 if (self.stall and self.rng.random() < self.stall) else 1
            self.ready.value = ready
            await RisingEdge(self.clk)
            cycles += 1
            if ready and int(self.valid.value):
                self.items.append(int(self.payload.value))
            if timeout_cycles is not None and cycles > timeout_cycles:
                raise TimeoutError(f"{count - (len(self.items) - start)} of {count} "
                                   f"transfers missing after {cycles} cycles")
        self.ready.value = 0
        return self.items[start:]
