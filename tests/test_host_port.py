"""Host port behind a test command handler: amaranth.sim and Verilator.

Expected responses come from the framing rules and the test handler's command
descriptions (``host_echo.expected_response``); frames are built with the
driver's ``encode_request`` and checked with its ``decode_response``, whose
own tests check them against hand-made frames.
"""

import random

import pytest
from amaranth.sim import Simulator

from host_echo import DELAY, ECHO, EMIT, INVERT, EchoTop, expected_response
from streams import StreamSink, StreamSource
from spikeforge.hdl.host_port import HostPort
from spikeforge.hdl.protocol import CRC8_POLY, REQUEST_SYNC, Status
from spikeforge.sim.verilator import harness
from spikeforge.sim.verilator import ports_only
from spikeforge.sim.host.driver import encode_request, split_responses


def scenario(seed, max_payload):
    """(request bytes, expected [(status, cmd, payload)]) covering the framing cases."""
    rng = random.Random(seed)
    stream, expected = bytearray(), []

    def good(cmd, payload):
        stream.extend(encode_request(cmd, payload))
        status, rsp = expected_response(cmd, payload, max_payload=max_payload)
        expected.append((status, cmd, rsp))

    def rand_bytes(n):
        return bytes(rng.randrange(256) for _ in range(n))

    good(ECHO, b"hello")
    stream.extend(b"\x00\x13\xff\x5a")              # garbage between frames
    good(ECHO, b"")
    good(INVERT, rand_bytes(max_payload // 2 + 3))
    bad = bytearray(encode_request(ECHO, b"abc"))  # corrupt CRC
    bad[-1] ^= 0x40
    stream.extend(bad)
    expected.append((Status.BAD_CRC, ECHO, b""))
    bad = bytearray(encode_request(INVERT, rand_bytes(7)))  # corrupt payload byte
    bad[6] ^= 0x01
    stream.extend(bad)
    expected.append((Status.BAD_CRC, INVERT, b""))
    # too long: len = max_payload + 1; the discarded bytes hold sync bytes and a
    # complete-looking frame that must not be parsed
    n = max_payload + 1
    inner = encode_request(ECHO, b"zz")
    junk = (inner + bytes([REQUEST_SYNC]) * 3 + rand_bytes(n + 1))[:n + 1]
    stream.extend(bytes([REQUEST_SYNC, EMIT]) + n.to_bytes(2, "little") + junk)
    expected.append((Status.BAD_LENGTH, EMIT, b""))
    good(0x77, rand_bytes(5))                       # unknown command
    good(0xE0, b"")                                 # unknown command, no payload
    good(DELAY, (37).to_bytes(4, "little"))
    good(DELAY, b"\x01")                            # bad argument from the handler
    good(EMIT, max_payload.to_bytes(2, "little"))   # longest response
    good(EMIT, (max_payload + 1).to_bytes(2, "little"))  # response too long for the port
    good(ECHO, rand_bytes(max_payload))             # longest request
    good(ECHO, rand_bytes(1))
    return bytes(stream), expected


def check_responses(data, expected):
    responses, rest = split_responses(data)
    assert rest == b"", "stray bytes after the last response"
    got = [(r.status, r.cmd, r.payload) for r in responses]
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"response {k}: got {g[:2]} {g[2][:16]!r}.., expected {e[:2]} {e[2][:16]!r}.."


def run_amaranth(top, data, n_frames, *, rx_stall, tx_stall, seed=0):
    def complete(beats):
        frames, rest = split_responses(bytes(beats))
        return len(frames) == n_frames and not rest

    source = StreamSource(top.rx, data, stall=rx_stall, seed=seed)
    sink = StreamSink(top.tx, stall=tx_stall, seed=seed + 1, done=complete,
                      max_cycles=20 * len(data) + 5000)

    async def drain(ctx):
        await sink.run(ctx)
        await sink.expect_idle(ctx, 30, "a response nobody asked for")

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run, background=True)
    sim.add_testbench(drain)
    sim.run()
    return bytes(sink.beats)


@pytest.mark.parametrize("rx_stall,tx_stall", [(0.0, 0.0), (0.3, 0.5)])
def test_host_port_amaranth(rx_stall, tx_stall):
    max_payload = 40
    data, expected = scenario(1, max_payload)
    out = run_amaranth(EchoTop(max_payload=max_payload), data, len(expected),
                       rx_stall=rx_stall, tx_stall=tx_stall)
    check_responses(out, expected)


def test_host_port_streams_a_byte_per_cycle():
    """An echo of 32 bytes leaves on tx without bubbles once it starts."""
    top = EchoTop(max_payload=64)
    data = encode_request(ECHO, bytes(range(32)))
    sink = StreamSink(top.tx, done=lambda beats: len(beats) == 5 + 32 + 1)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(StreamSource(top.rx, data).run, background=True)
    sim.add_testbench(sink.run)
    sim.run()
    times = sink.edges
    assert times[-1] - times[0] == len(times) - 1


def test_host_port_crc_matches_reference():
    """The port's CRC against a bitwise CRC-8 written here (poly 0x07, check 0xF4)."""
    def ref_crc(data):
        crc = 0
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = ((crc << 1) ^ CRC8_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        return crc
    assert ref_crc(b"123456789") == 0xF4
    payload = b"123456789"
    body = bytes([ECHO]) + len(payload).to_bytes(2, "little") + payload
    frame = bytes([REQUEST_SYNC]) + body + bytes([ref_crc(body)])
    out = run_amaranth(EchoTop(max_payload=16), frame, 1, rx_stall=0, tx_stall=0)
    assert out[:5] == bytes([0x5A, Status.OK, ECHO, 9, 0])
    assert out[5:-1] == payload
    assert out[-1] == ref_crc(out[1:-1])


def test_host_port_parameters_checked():
    with pytest.raises(ValueError, match="max_payload must be an integer from 1 to 65535, not 0"):
        HostPort(max_payload=0)


@pytest.mark.verilator
def test_host_port_verilator():
    max_payload = 64
    data, expected = scenario(2, max_payload)
    # built as SimTransport builds it (only the ports public): one build for both tests
    harness.run(None, verilog_text=ports_only.elaborate(EchoTop(max_payload=max_payload),
                                                        name="host_echo"),
                extra_build_args=ports_only.BUILD_ARGS, name="host_echo",
                test_module="spikeforge.sim.verilator.cocotb_tests.host_port",
                args={"data": data.hex(), "expected": [[s, c, p.hex()] for s, c, p in expected],
                      "rx_stall": 0.2, "tx_stall": 0.4})


# ---- abort: a partial request frame is dropped (the board tops drive it from the UART's idle)

from amaranth import Module  # noqa: E402  (this section's own imports)
from amaranth.lib import stream, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from host_echo import EchoHandler  # noqa: E402


class AbortTop(wiring.Component):
    """HostPort + EchoHandler with the port's ``abort`` input as a port."""

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    abort: In(1)

    def __init__(self, *, max_payload=1024):
        self.max_payload = max_payload
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.port = port = HostPort(max_payload=self.max_payload)
        m.submodules.handler = handler = EchoHandler()
        wiring.connect(m, port.req, handler.req)
        wiring.connect(m, handler.rsp, port.rsp)
        wiring.connect(m, wiring.flipped(self.rx), port.rx)
        wiring.connect(m, port.tx, wiring.flipped(self.tx))
        m.d.comb += port.abort.eq(self.abort)
        return m


def run_with_abort(top, pieces, n_frames):
    """``pieces``: byte strings sent back to back, or ``("abort", n)``: hold ``abort``
    high for ``n`` cycles with nothing offered, or ``("abort-while-sending", data)``:
    ``abort`` high while ``data`` streams in a byte per cycle."""
    out = bytearray()

    async def source(ctx):
        for piece in pieces:
            if isinstance(piece, tuple) and piece[0] == "abort":
                ctx.set(top.abort, 1)
                await ctx.tick().repeat(piece[1])
                ctx.set(top.abort, 0)
                continue
            if isinstance(piece, tuple):
                ctx.set(top.abort, 1)
                piece = piece[1]
            for byte in piece:
                ctx.set(top.rx.payload, byte)
                ctx.set(top.rx.valid, 1)
                await ctx.tick().until(top.rx.ready)
            ctx.set(top.rx.valid, 0)
            ctx.set(top.abort, 0)
            await ctx.tick().repeat(5)

    async def sink(ctx):
        ctx.set(top.tx.ready, 1)
        cycles = 0
        while len(split_responses(out)[0]) < n_frames:
            _, _, valid, payload = await ctx.tick().sample(top.tx.valid, top.tx.payload)
            cycles += 1
            assert cycles < 5000, "port stopped answering"
            if valid:
                out.append(payload)
        for _ in range(200):
            await ctx.tick()
            assert not ctx.get(top.tx.valid), "a response nobody asked for"

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return bytes(out)


def test_host_port_abort_drops_a_partial_frame():
    top = AbortTop(max_payload=16)
    good = encode_request(ECHO, b"\x11\x22\x33")
    lost = encode_request(ECHO, b"\x44\x55\x66\x77")
    too_long = encode_request(ECHO, bytes(20))
    pieces = [
        lost[:3], ("abort", 3),                 # cut in the header
        lost[:6] + lost[7:], ("abort", 1),      # a payload byte lost (the CRC byte is there)
        lost[:-1], ("abort", 2),                # the CRC byte lost
        good,
        too_long[:10], ("abort", 2),            # cut while the BAD_LENGTH discard runs
        ("abort-while-sending", good),          # abort high but bytes keep coming: kept
        encode_request(DELAY, (300).to_bytes(4, "little")), ("abort", 50),  # outstanding: kept
        good,
    ]
    out = run_with_abort(top, pieces, 5)
    check_responses(out, [(Status.OK, ECHO, b"\x11\x22\x33"), (Status.BAD_LENGTH, ECHO, b""),
                          (Status.OK, ECHO, b"\x11\x22\x33"), (Status.OK, DELAY, b""),
                          (Status.OK, ECHO, b"\x11\x22\x33")])


def test_host_port_without_abort_waits_for_the_rest():
    """Without ``abort`` the lost byte is made up by the next frame's first byte (the old
    behaviour the abort input exists for): the bad CRC, and the good frame is eaten."""
    top = AbortTop(max_payload=16)
    lost = encode_request(ECHO, b"\x44\x55\x66\x77")
    good = encode_request(ECHO, b"\x11\x22\x33")
    out = run_with_abort(top, [lost[:6] + lost[7:], good, good], 2)
    responses, _ = split_responses(out)
    assert responses[0].status == Status.BAD_CRC
    assert (responses[1].status, responses[1].payload) == (Status.OK, b"\x11\x22\x33")
