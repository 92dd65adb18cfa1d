"""Amaranth-simulation driver of the integer inference core: request generators of
:mod:`spikeforge.sim.host.inference_device` over the core's ``req`` / ``rsp`` beats."""

from __future__ import annotations

from amaranth.sim import Simulator

from spikeforge.hdl.protocol import Status
from spikeforge.sim.host import inference_device as D


class SimDeviceError(Exception):
    def __init__(self, status, cmd):
        super().__init__(f"command 0x{cmd:02X} answered status 0x{status:02X}")
        self.status = status


async def transact(ctx, core, cmd: int, payload: bytes = b"", *, timeout: int = 20_000):
    """One request through the beat streams; returns ``(status, payload)``."""
    req, rsp = core.req, core.rsp
    beats = [(int(cmd), 1, not payload)] + [(b, 0, i == len(payload) - 1)
                                             for i, b in enumerate(payload)]
    ctx.set(rsp.ready, 1)
    out = []
    for data, first, last in beats:
        ctx.set(req.payload.data, data)
        ctx.set(req.payload.first, first)
        ctx.set(req.payload.last, int(last))
        ctx.set(req.valid, 1)
        while not ctx.get(req.ready):
            await ctx.tick()
        await ctx.tick()
    ctx.set(req.valid, 0)
    for _ in range(timeout):
        if ctx.get(rsp.valid):
            out.append(ctx.get(rsp.payload.data))
            if ctx.get(rsp.payload.last):
                await ctx.tick()
                return out[0], bytes(out[1:])
        await ctx.tick()
    raise TimeoutError(f"no response to command 0x{int(cmd):02X} within {timeout} cycles")


async def drive(ctx, core, gen):
    """Run a request generator; a non-OK status raises :class:`SimDeviceError`."""
    try:
        cmd, payload, _ = next(gen)
        while True:
            status, p = await transact(ctx, core, cmd, payload)
            if status != Status.OK:
                raise SimDeviceError(status, int(cmd))
            cmd, payload, _ = gen.send(p)
    except StopIteration as stop:
        return stop.value


def simulate(core, bench):
    """Run ``bench(ctx)`` (async) against ``core`` and return what it returns."""
    sim = Simulator(core)
    sim.add_clock(1e-6)
    box = {}

    async def tb(ctx):
        box["value"] = await bench(ctx)
    sim.add_testbench(tb)
    sim.run()
    return box.get("value")
