"""One router in ``amaranth.sim``: routing, every turn, contention, back-pressure, wormhole."""

import random

import pytest
from amaranth.sim import Simulator

from streams import StreamSink, StreamSource
from spikeforge.hdl.config import ConfigError
from spikeforge.hdl.noc.packet import PacketFormat
from spikeforge.hdl.noc.router import Router
from spikeforge.hdl.noc.routing import (
    ALLOWED_TURNS, EAST, LOCAL, NORTH, PORT_NAMES, SOUTH, STEP, WEST, xy_route)

FMT = PacketFormat(3, 3, 32)
CENTRE = (1, 1)
#: Cycles from a header entering an input buffer to it leaving the router, at zero load,
#: when its output must be granted to its input first.
GRANT_CYCLES = 2


def _bits(value):
    return value.as_value().value if hasattr(value, "as_value") else int(value)


def _dst_for(out, x=1, y=1):
    """A destination that leaves router (x, y) through ``out``."""
    if out == LOCAL:
        return (x, y)
    dx, dy = STEP[out]
    return (x + dx, y + dy)


def _packet(fmt, dst, tag, length):
    """Flits (data, last) of a packet whose payload words are tagged for checking."""
    words = fmt.packet(dst=dst, payload=[(tag << 8) | k for k in range(length)], aux=tag)
    return [(w, i == len(words) - 1) for i, w in enumerate(words)]


class Bench:
    """Drivers on the inputs and monitors on the outputs of one router."""

    def __init__(self, router, *, seed=0, in_stall=0.0, out_stall=0.0, max_cycles=20000):
        self.router, self.fmt = router, router.fmt
        self.rng = random.Random(seed)
        self.in_stall, self.out_stall = in_stall, out_stall
        self.max_cycles = max_cycles
        self.sends = {p: [] for p in range(5)}     # port -> list of packets (flit lists)
        self.received = {q: [] for q in range(5)}  # port -> [(cycle, data, last)]
        self.accepted = {p: [] for p in range(5)}  # port -> [cycle of each accepted flit]
        self.expect_flits = 0

    def send(self, port, packet):
        self.sends[port].append(packet)
        self.expect_flits += len(packet)

    def run(self, extra=None):
        sim = Simulator(self.router)
        sim.add_clock(1e-6)
        sources = [StreamSource(self.router.i[p],
                                [self.fmt.pack_flit(data, last)
                                 for packet in self.sends[p] for data, last in packet],
                                stall=self.in_stall, seed=self.rng.random()) for p in range(5)]
        sinks = [StreamSink(self.router.o[q], stall=self.out_stall, seed=self.rng.random())
                 for q in range(5)]

        async def main(ctx):
            for _ in range(self.max_cycles):
                await ctx.tick()
                if sum(len(s.beats) for s in sinks) >= self.expect_flits:
                    break
            await ctx.tick().repeat(5)  # nothing more may come out

        for p in range(5):
            sim.add_testbench(sources[p].run, background=True)
            sim.add_testbench(sinks[p].run, background=True)
        if extra:
            sim.add_testbench(extra, background=True)
        sim.add_testbench(main)
        sim.run()
        for p, source in enumerate(sources):
            self.accepted[p] = source.accepted
        for q, sink in enumerate(sinks):
            views = [self.fmt.flit.from_bits(_bits(payload)) for payload in sink.beats]
            self.received[q] = [(edge, int(v.data), bool(v.last))
                                for edge, v in zip(sink.edges, views)]
        return self

    def packets(self, q):
        """Packets that left output ``q`` as lists of data words (checks contiguity by tag)."""
        out, cur = [], []
        for _, data, last in self.received[q]:
            cur.append(data)
            if last:
                out.append(cur)
                cur = []
        assert not cur, f"output {PORT_NAMES[q]} ended inside a packet"
        return out


@pytest.mark.parametrize("rows,cols", [(3, 4), (1, 5), (4, 1)])
def test_route_logic_matches_routing_function(rows, cols):
    """The router's XY logic equals :func:`xy_route` for every position and destination."""
    fmt = PacketFormat(rows, cols, 32)
    for y in range(rows):
        for x in range(cols):
            router = Router(fmt, x, y)
            bench = Bench(router)
            dests = [(dx, dy) for dy in range(1 << fmt.y_bits) for dx in range(1 << fmt.x_bits)]
            for k, dst in enumerate(dests):
                bench.send(LOCAL, _packet(fmt, dst, k, 0))
            bench.run()
            for q in range(5):
                for (_, data, _) in bench.received[q]:
                    h = fmt.unpack_header(data)
                    assert q == xy_route(x, y, h.dst_x, h.dst_y, rows, cols), (x, y, h)
            assert sum(len(v) for v in bench.received.values()) == len(dests)


@pytest.mark.parametrize("inp,out", [(p, q) for q, ps in ALLOWED_TURNS.items() for p in sorted(ps)])
def test_every_turn_at_one_cycle_per_hop(inp, out):
    router = Router(FMT, *CENTRE)
    bench = Bench(router)
    packets = [_packet(FMT, _dst_for(out), tag, length) for tag, length in enumerate([0, 3, 1, 5])]
    for packet in packets:
        bench.send(inp, packet)
    bench.run()
    assert bench.packets(out) == [[d for d, _ in p] for p in packets]
    # A header written into the input buffer at edge t leaves in cycle t when its output is
    # idle and was last used by the same input (at reset: the output's first source), else
    # it is granted at edge t + 1 and leaves in the cycle after.
    first_in = bench.accepted[inp][0]
    first_out = bench.received[out][0][0]
    expected = 1 if inp == min(ALLOWED_TURNS[out]) else GRANT_CYCLES
    assert first_out - first_in == expected, "zero-load latency through one router"
    # Back to back: one flit per cycle through an uncontended turn.
    cycles = [c for c, _, _ in bench.received[out]]
    assert cycles[-1] - cycles[0] == len(cycles) - 1


def test_contention_round_robin_is_fair_and_wormhole():
    """Five inputs to the local output: packets stay whole and inputs take turns."""
    router = Router(FMT, *CENTRE)
    bench = Bench(router, seed=3)
    per_input = 12
    for p in range(5):
        for k in range(per_input):
            bench.send(p, _packet(FMT, CENTRE, p * 100 + k, 1 + (k % 4)))
    bench.run()
    got = bench.packets(LOCAL)
    assert len(got) == 5 * per_input
    sources = []
    for pkt in got:
        tag = FMT.unpack_header(pkt[0]).aux
        src, k = divmod(tag, 100)
        assert pkt[1:] == [(tag << 8) | j for j in range(1 + (k % 4))], "packet interleaved"
        sources.append(src)
    # While everyone has traffic, grants rotate: every window of 5 packets has all 5 inputs.
    for start in range(0, 5 * (per_input - 2), 5):
        assert sorted(sources[start:start + 5]) == [0, 1, 2, 3, 4], sources
    # In order per input.
    for p in range(5):
        ks = [t % 100 for t in (FMT.unpack_header(pk[0]).aux for pk in got) if t // 100 == p]
        assert ks == list(range(per_input))


def test_contention_two_outputs_full_rate():
    """Two disjoint flows cross the router in parallel, each at one flit per cycle."""
    router = Router(FMT, *CENTRE)
    bench = Bench(router)
    for k in range(10):
        bench.send(WEST, _packet(FMT, _dst_for(EAST), k, 3))
        bench.send(NORTH, _packet(FMT, _dst_for(SOUTH), 50 + k, 3))
    bench.run()
    for q in (EAST, SOUTH):
        cycles = [c for c, _, _ in bench.received[q]]
        assert len(cycles) == 40 and cycles[-1] - cycles[0] == 39


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_back_pressure_loses_nothing(depth):
    """Random stalls on every input and output: all flits arrive, in order, whole."""
    router = Router(FMT, *CENTRE, depth=depth)
    bench = Bench(router, seed=depth, in_stall=0.3, out_stall=0.6)
    rng = random.Random(7)
    expected = {q: [] for q in range(5)}
    for p in range(5):
        for k in range(15):
            q = rng.choice([q for q, ps in ALLOWED_TURNS.items() if p in ps])
            pkt = _packet(FMT, _dst_for(q), p * 100 + k, rng.randrange(0, 5))
            bench.send(p, pkt)
            expected[q].append([d for d, _ in pkt])
    bench.run()
    for q in range(5):
        got = bench.packets(q)
        assert sorted(map(tuple, got)) == sorted(map(tuple, expected[q]))
        for p in range(5):  # per input, in order
            mine = [g for g in got if FMT.unpack_header(g[0]).aux // 100 == p]
            assert mine == [e for e in expected[q] if FMT.unpack_header(e[0]).aux // 100 == p]


def test_blocked_output_fills_buffer_and_stops_input():
    """With the output held not ready, an input takes exactly ``depth`` flits, then waits."""
    depth = 4
    router = Router(FMT, *CENTRE, depth=depth)
    accepted = []

    async def tb(ctx):
        ctx.set(router.o[EAST].ready, 0)
        port = router.i[WEST]
        ctx.set(port.payload.as_value(), FMT.pack_flit(FMT.pack_header(dst_x=2, dst_y=1, length=9), False))
        ctx.set(port.valid, 1)
        for _ in range(10):
            _, _, ready = await ctx.tick().sample(port.ready)
            accepted.append(ready)
            ctx.set(port.payload.as_value(), FMT.pack_flit(7, False))
        # The output offers the header all along, and keeps offering the same one.
        assert ctx.get(router.o[EAST].valid)
        assert FMT.unpack_header(FMT.flit.from_bits(_bits(ctx.get(router.o[EAST].payload))).data).length == 9

    sim = Simulator(router)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert sum(accepted) == depth and accepted[:depth] == [1] * depth


def test_wormhole_holds_output_through_bubbles():
    """A packet whose sender stalls mid-packet keeps the output; others wait for its tail."""
    router = Router(FMT, *CENTRE)
    bench = Bench(router, seed=5, in_stall=0.7)
    for k in range(6):
        bench.send(WEST, _packet(FMT, _dst_for(LOCAL), k, 6))
        bench.send(NORTH, _packet(FMT, _dst_for(LOCAL), 10 + k, 6))
        bench.send(SOUTH, _packet(FMT, _dst_for(LOCAL), 20 + k, 6))
    bench.run()
    got = bench.packets(LOCAL)
    assert len(got) == 18
    for pkt in got:
        tag = FMT.unpack_header(pkt[0]).aux
        assert pkt[1:] == [(tag << 8) | j for j in range(6)]


def test_router_position_checked():
    with pytest.raises(ConfigError, match="outside"):
        Router(FMT, 3, 0)


def _reference_port(x, y, dst_x, dst_y, rows, cols):
    """XY routing written apart from routing.py: clamp the destination into the mesh, X first."""
    tx, ty = min(dst_x, cols - 1), min(dst_y, rows - 1)
    if tx != x:
        return EAST if tx > x else WEST
    if ty != y:
        return SOUTH if ty > y else NORTH
    return LOCAL


@pytest.mark.parametrize("rows,cols", [(3, 4), (4, 4), (1, 5), (5, 3)])
def test_stored_route_port_matches_reference(rows, cols):
    """The port number stored with every buffered flit, for every position and encodable destination."""
    from amaranth.hdl import Module, Signal

    fmt = PacketFormat(rows, cols, 32)
    dests = [(dx, dy) for dy in range(1 << fmt.y_bits) for dx in range(1 << fmt.x_bits)]
    for y in range(rows):
        for x in range(cols):
            router = Router(fmt, x, y)
            word = Signal(fmt.flit_width)
            port = Signal(3)
            m = Module()
            m.d.comb += port.eq(router.route_port(word))
            router._MustUse__silence = True  # only its route logic is used here

            async def tb(ctx):
                for dst in dests:
                    ctx.set(word, fmt.pack_header(dst_x=dst[0], dst_y=dst[1], length=3, aux=5))
                    assert ctx.get(port) == _reference_port(x, y, *dst, rows, cols), (x, y, dst)

            sim = Simulator(m)
            sim.add_testbench(tb)
            sim.run()


def test_idle_output_serves_its_last_owner_at_once():
    """An idle output sends a header of the input it served last without a grant cycle;
    a header from any other input waits one cycle for its (registered) grant."""
    router = Router(FMT, *CENTRE)
    waits = []

    async def tb(ctx):
        out = router.o[EAST]
        ctx.set(out.ready, 1)
        # EAST's first source (WEST) owns it at reset.
        for src in (WEST, LOCAL, LOCAL, WEST, WEST):
            port = router.i[src]
            header = FMT.pack_header(dst_x=2, dst_y=1, length=0, aux=src)
            ctx.set(port.payload.as_value(), FMT.pack_flit(header, True))
            ctx.set(port.valid, 1)
            await ctx.tick()  # written into the empty input buffer at this edge
            ctx.set(port.valid, 0)
            wait = 0
            while not ctx.get(out.valid):
                await ctx.tick()
                wait += 1
            got = FMT.flit.from_bits(_bits(ctx.get(out.payload)))
            assert FMT.unpack_header(int(got.data)).aux == src
            waits.append(wait)
            await ctx.tick().repeat(4)
            assert not ctx.get(out.valid)

    sim = Simulator(router)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert waits == [0, 1, 0, 1, 0]
