"""The multi-core top (``hdl/system.py``): addressing, broadcast, ordered responses and
address errors, in ``amaranth.sim`` with small tagged test cores and on Verilator
with two real tiny cores."""

import random

import pytest
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import BEAT_LAYOUT, AddressMode, Command, Status
from spikeforge.hdl.system import System
from spikeforge.sim.host.driver import encode_request, split_responses

from streams import StreamSink, StreamSource

TAG = 0x01      # test core command: answer OK with (core, cmd, payload length, payload sum)
EMIT = 0x02     # test core command: answer OK with n (1 byte) bytes k, k+1, ...


class TaggedCore(wiring.Component):
    """A test stand-in for a core: takes a whole request, then answers from it and
    its own number ``k``. Unknown commands get ``UNKNOWN_COMMAND``."""
    req: In(stream.Signature(BEAT_LAYOUT))
    rsp: Out(stream.Signature(BEAT_LAYOUT))

    def __init__(self, k):
        self.k = k
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        req, rsp = self.req, self.rsp
        cmd, n, total, arg = Signal(8), Signal(16), Signal(8), Signal(8)
        i = Signal(8)
        out = Signal(32)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    m.d.sync += [cmd.eq(req.payload.data), n.eq(0), total.eq(0), arg.eq(0)]
                    m.next = "TAKE"
                    with m.If(req.payload.last):
                        m.next = "RESPOND"
            with m.State("TAKE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    m.d.sync += [n.eq(n + 1), total.eq(total + req.payload.data)]
                    with m.If(n == 0):
                        m.d.sync += arg.eq(req.payload.data)
                    with m.If(req.payload.last):
                        m.next = "RESPOND"
            with m.State("RESPOND"):
                known = (cmd == TAG) | (cmd == EMIT)
                length = Signal(8)
                m.d.comb += length.eq(Mux(cmd == TAG, 4, arg))
                m.d.comb += [rsp.valid.eq(1), rsp.payload.first.eq(1),
                             rsp.payload.data.eq(Mux(known, Status.OK, Status.UNKNOWN_COMMAND)),
                             rsp.payload.last.eq(~known | (length == 0))]
                m.d.sync += [i.eq(0), out.eq(Cat(Signal(8, init=self.k), cmd, n[:8], total))]
                with m.If(rsp.ready):
                    m.next = "IDLE"
                    with m.If(known & (length != 0)):
                        m.next = "DATA"
            with m.State("DATA"):
                length = Mux(cmd == TAG, 4, arg)
                data = Mux(cmd == TAG, out.word_select(i[:2], 8), self.k + i)
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(data),
                             rsp.payload.last.eq(i == length - 1)]
                with m.If(rsp.ready):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == length - 1):
                        m.next = "IDLE"
        return m


def expected(k, cmd, payload):
    if cmd == TAG:
        return Status.OK, bytes([k, cmd, len(payload) & 0xFF, sum(payload) & 0xFF])
    if cmd == EMIT:
        n = payload[0] if payload else 0
        return Status.OK, bytes((k + i) & 0xFF for i in range(n))
    return Status.UNKNOWN_COMMAND, b""


def route(mode, first=0, count=0):
    return proto.pack(proto.ADDRESS, {"mode": mode, "first": first, "count": count})


def records(cores, cmd, payload):
    out = b""
    for k in cores:
        status, data = expected(k, cmd, payload)
        out += proto.pack(proto.ROUTE_RECORD, {"status": status, "len": len(data)}) + data
    return Status.OK, out


def cases(ncores):
    """(request cmd, request payload, expected (status, payload)) for a system of
    ``ncores`` tagged cores, from the addressing rules of docs/host-protocol.md."""
    rng = random.Random(3)
    out = []
    # not routed: core 0, unchanged
    out.append((TAG, b"\x05\x06", expected(0, TAG, b"\x05\x06")))
    out.append((0x77, b"", expected(0, 0x77, b"")))
    for k in range(ncores):
        p = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        out.append((Command.ROUTE, route(AddressMode.CORE, k) + bytes([TAG]) + p,
                    expected(k, TAG, p)))
    out.append((Command.ROUTE, route(AddressMode.CORE, ncores - 1) + bytes([EMIT, 9]),
                expected(ncores - 1, EMIT, b"\x09")))
    out.append((Command.ROUTE, route(AddressMode.ALL) + bytes([TAG, 1, 2, 3]),
                records(range(ncores), TAG, b"\x01\x02\x03")))
    out.append((Command.ROUTE, route(AddressMode.ALL) + bytes([EMIT, 0]),
                records(range(ncores), EMIT, b"\x00")))
    if ncores > 1:
        out.append((Command.ROUTE, route(AddressMode.RANGE, 1, ncores - 1) + bytes([EMIT, 3]),
                    records(range(1, ncores), EMIT, b"\x03")))
    out.append((Command.ROUTE, route(AddressMode.ALL) + bytes([0x55]),
                records(range(ncores), 0x55, b"")))
    # bad addresses: no core is reached, BAD_ARGUMENT
    bad = Status.BAD_ARGUMENT, b""
    out.append((Command.ROUTE, route(AddressMode.CORE, ncores) + bytes([TAG]), bad))
    out.append((Command.ROUTE, route(AddressMode.CORE, 0xFFFF) + bytes([TAG, 1]), bad))
    out.append((Command.ROUTE, route(AddressMode.RANGE, 1, ncores) + bytes([TAG]), bad))
    out.append((Command.ROUTE, route(AddressMode.RANGE, 0, 0) + bytes([TAG]), bad))
    out.append((Command.ROUTE, bytes([7, 0, 0, 0, 0, TAG]), bad))          # unknown mode
    out.append((Command.ROUTE, route(AddressMode.CORE, 0), bad))          # no command
    out.append((Command.ROUTE, b"\x00\x00", bad))                          # short address
    out.append((Command.ROUTE, b"", bad))
    # still working afterwards
    last = ncores - 1
    out.append((Command.ROUTE, route(AddressMode.CORE, last) + bytes([TAG, 9]),
                expected(last, TAG, b"\x09")))
    return out


def run_amaranth(rows, cols, *, stall=0.0):
    cfg = preset("tiny", rows=rows, cols=cols, max_payload=512)
    top = System(cfg, core_factory=TaggedCore)
    todo = cases(rows * cols)
    stream_in = b"".join(encode_request(c, p) for c, p, _ in todo)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    src = StreamSource(top.rx, list(stream_in), stall=stall)
    got = []

    def done(beats):
        frames, _ = split_responses(bytes(beats))
        return len(frames) >= len(todo)
    sink = StreamSink(top.tx, stall=stall, done=done, max_cycles=400_000)
    sim.add_testbench(src.run, background=True)
    sim.add_testbench(sink.run)
    sim.run()
    frames, rest = split_responses(bytes(sink.beats))
    assert rest == b""
    assert len(frames) == len(todo)
    for (cmd, payload, (status, data)), frame in zip(todo, frames):
        assert frame.cmd == cmd
        assert (frame.status, frame.payload) == (status, data), (cmd, payload[:8])


@pytest.mark.parametrize("rows,cols", [(1, 1), (1, 2), (2, 2), (2, 3)])
def test_addressing_broadcast_order_and_errors(rows, cols):
    run_amaranth(rows, cols)


def test_back_pressure_everywhere():
    run_amaranth(2, 2, stall=0.3)


# --- Verilator: two real tiny cores ----------------------------------------------------------

def _system_session(cfg):
    import hashlib
    from spikeforge.sim.verilator.session import rtl_session
    name = "system_" + hashlib.sha256(cfg.to_json().encode()).hexdigest()[:8]
    return rtl_session(System(cfg), name=name, ports_only=True, wall_timeout_s=600.0)


@pytest.mark.verilator
def test_two_tiny_cores_on_verilator():
    import numpy as np
    from spikeforge.sim.golden import model as golden
    from spikeforge.sim.host.device import DeviceInfo, SystemDevice, plans
    from spikeforge.sim.host.driver import DeviceError

    cfg = preset("tiny", rows=1, cols=2)
    with _system_session(cfg) as link:
        sysdev = SystemDevice(link, 2)
        info = DeviceInfo.from_config(cfg)
        assert [d.info for d in sysdev.core] == [info, info]
        # the not-routed INFO goes to core 0 and answers as the one-core top does
        assert DeviceInfo.parse(link.transact(Command.INFO)) == info

        # a different network on each core: a command reaches only its core
        rng = np.random.default_rng(5)
        params = golden.Params(T=6, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                               loss_scale=8.0, reset_grad="detach")
        nets = []
        for k, sizes in enumerate([(12, 9, 4), (20, 7, 3)]):
            weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
                       for i, o in zip(sizes[:-1], sizes[1:])]
            spikes = rng.random((params.T, sizes[0])) < 0.4
            sysdev.core[k].load_network(sizes, params, weights)
            sysdev.core[k].load_spikes(spikes)
            nets.append((sizes, weights, spikes, int(rng.integers(sizes[-1]))))
        for k, (sizes, weights, spikes, label) in enumerate(nets):
            assert sysdev.core[k].read_weights("W")[0].tobytes() == weights[0].tobytes()

        # a broadcast RUN: both cores run in parallel, results in core order
        labels = [n[3] for n in nets]
        results = sysdev.broadcast(lambda: plans.run(labels[0]))
        for k, ((sizes, weights, spikes, _), res) in enumerate(zip(nets, results)):
            traces = golden.forward(weights, spikes, params)
            assert list(res.counts) == list(golden.spike_counts(traces[-1].s)), f"core {k}"
            grads = golden.backward(weights, traces, spikes, labels[0], params,
                                    [np.zeros_like(W) for W in weights])
            got = sysdev.core[k].read_weights("dW")
            for l in range(len(weights)):
                assert got[l].tobytes() == grads[l].dW.astype(np.float16).tobytes(), (k, l)
        counters = sysdev.broadcast(lambda: plans.read_counters())
        assert [c["runs"] for c in counters] == [1, 1]

        # a bad core address: BAD_ARGUMENT, no core touched, the system keeps working
        with pytest.raises(DeviceError) as err:
            link.transact(Command.ROUTE, route(AddressMode.CORE, 2) + bytes([Command.INFO]))
        assert err.value.status == Status.BAD_ARGUMENT
        with pytest.raises(DeviceError) as err:
            link.transact(Command.ROUTE, route(AddressMode.RANGE, 1, 2) + bytes([Command.UPDATE]))
        assert err.value.status == Status.BAD_ARGUMENT
        assert [c["runs"] for c in sysdev.broadcast(lambda: plans.read_counters())] == [1, 1]
        assert sysdev.core[1].info == info


def _fuzz_frames(ncores, rng, n):
    """``n`` random requests (good and bad addresses, random commands and payloads),
    with garbage between frames and some frames with a wrong CRC; returns the byte
    stream and the expected (cmd, status, payload) of every response."""
    from spikeforge.hdl.protocol import crc8
    stream_bytes, want = b"", []
    for _ in range(n):
        if rng.random() < 0.3:    # garbage outside frames (never the request sync byte)
            stream_bytes += bytes(rng.choice([b for b in range(256) if b != 0xA5])
                                  for _ in range(rng.randrange(1, 6)))
        kind = rng.random()
        inner = rng.choice([TAG, EMIT, 0x66])
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        if inner == EMIT:
            body = bytes([rng.randrange(0, 30)])
        if kind < 0.15:
            cmd, payload, exp = inner, body, expected(0, inner, body)
        else:
            mode = rng.choice([AddressMode.CORE, AddressMode.ALL, AddressMode.RANGE, 9])
            first, count = rng.randrange(0, ncores + 2), rng.randrange(0, ncores + 2)
            payload = route(mode, first, count) if mode != 9 else bytes([9, first, 0, count, 0])
            short = rng.random() < 0.1
            if short:
                payload = payload[:rng.randrange(0, len(payload) + 1)]
            else:
                payload += bytes([inner]) + body
            cmd = Command.ROUTE
            if short or mode == 9:
                exp = (Status.BAD_ARGUMENT, b"")
            elif mode == AddressMode.CORE:
                exp = expected(first, inner, body) if first < ncores else (Status.BAD_ARGUMENT, b"")
            elif mode == AddressMode.ALL:
                exp = records(range(ncores), inner, body)
            else:
                ok = count >= 1 and first + count <= ncores
                exp = records(range(first, first + count), inner, body) if ok else \
                    (Status.BAD_ARGUMENT, b"")
        frame = bytearray(encode_request(cmd, payload))
        if rng.random() < 0.1:    # a wrong CRC: BAD_CRC from the host port, not executed
            frame[-1] ^= 1 << rng.randrange(8)
            exp = (Status.BAD_CRC, b"")
        assert crc8(bytes(frame[1:-1])) == frame[-1] or exp[0] == Status.BAD_CRC
        stream_bytes += bytes(frame)
        want.append((cmd, *exp))
    return stream_bytes, want


@pytest.mark.parametrize("seed", [11])
def test_fuzz_frames_are_all_answered(seed):
    """Random frames against a 2x2 system of tagged cores: every frame is answered as
    docs/host-protocol.md says (the seed is in the test id, to replay a failure)."""
    rng = random.Random(seed)
    cfg = preset("tiny", rows=2, cols=2, max_payload=256)
    top = System(cfg, core_factory=TaggedCore)
    data, want = _fuzz_frames(4, rng, 60)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    src = StreamSource(top.rx, list(data), stall=0.1, seed=seed)

    def done(beats):
        return len(split_responses(bytes(beats))[0]) >= len(want)
    sink = StreamSink(top.tx, stall=0.1, seed=seed + 1, done=done, max_cycles=600_000)
    sim.add_testbench(src.run, background=True)
    sim.add_testbench(sink.run)
    sim.run()
    frames, rest = split_responses(bytes(sink.beats))
    assert rest == b"" and len(frames) == len(want)
    for i, ((cmd, status, payload), frame) in enumerate(zip(want, frames)):
        assert (frame.cmd, frame.status, frame.payload) == (cmd, status, payload), \
            f"seed {seed}, frame {i}"
