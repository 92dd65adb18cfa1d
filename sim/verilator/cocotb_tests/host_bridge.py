"""cocotb side of :class:`spikeforge.sim.verilator.session.SimTransport`.

Connects to the host process over the Unix domain socket named in
``cocotb_args()["socket"]`` and serves its requests on a top with byte streams
``rx`` (in) and ``tx`` (out):

* ``exchange``: feed bytes into ``rx`` and collect ``tx`` bytes until the given
  number of complete response frames has arrived and every byte was sent;
  answer the response bytes and the cycles taken (or a timeout with the bytes
  received so far);
* ``reset``: hold ``rst`` high for some cycles;
* ``cycles``: the cycles simulated so far;
* ``close``: end the simulation.

While the simulation waits for the host, simulated time stands still.

Two paths move the bytes of an exchange:

* the bulk path (``cocotb_args()["bulk"]`` names the buffer width and depth of a
  :class:`spikeforge.sim.verilator.bulk_top.BulkTop` around the device): the request
  bytes go into the wrapper's RX buffer a wide word per cycle, one pulse starts the
  transfer, and Python sleeps until the wrapper reports every byte sent and the
  response frames complete (or the cycle limit passes), then reads the TX buffer a
  wide word per cycle. Python wakes a few times per transfer, not per byte.
* the byte path (no wrapper, or random stalls asked for, ``tx_stall`` /
  ``rx_stall``): Python drives ``rx`` and takes ``tx`` byte by byte, waking every
  cycle while bytes move; while the device computes it sleeps on ``RisingEdge`` of
  ``tx__valid`` (or ``rx__ready`` when bytes wait to be accepted).

Both check every response frame's sync byte (a device that sends anything else is
broken: :class:`~spikeforge.sim.host.driver.ProtocolError` ends the simulation).

Messages on the socket, both ways: a 4-byte little-endian length, a JSON header
of that length, then ``header["n"]`` raw bytes.
"""

from __future__ import annotations

import json
import random
import socket
import struct

import cocotb
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from spikeforge.sim.verilator.cocotb_util import CLOCK_NS, start_clock
from spikeforge.sim.verilator.harness import cocotb_args
from spikeforge.sim.host.driver import response_frame_length


def send_message(sock, header: dict, data: bytes = b"") -> None:
    header = dict(header, n=len(data))
    text = json.dumps(header).encode()
    sock.sendall(struct.pack("<I", len(text)) + text + bytes(data))


def _recv_exact(sock, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_message(sock):
    """(header, data), or ``None`` when the peer closed the connection."""
    raw = _recv_exact(sock, 4)
    if raw is None:
        return None
    (size,) = struct.unpack("<I", raw)
    header = _recv_exact(sock, size)
    if header is None:
        return None
    header = json.loads(header)
    data = _recv_exact(sock, header.get("n", 0)) if header.get("n", 0) else b""
    if data is None:
        return None
    return header, data


def now_cycles() -> int:
    return int(get_sim_time(unit="ns")) // CLOCK_NS


class PumpTimeout(Exception):
    def __init__(self, received: bytes, cycles: int):
        super().__init__(f"no complete answer within {cycles} cycles")
        self.received = received
        self.cycles = cycles


async def pump(dut, data: bytes, frames: int, timeout_cycles: int, *,
               rx_stall: float = 0.0, tx_stall: float = 0.0,
               rng: random.Random | None = None) -> tuple[bytes, int]:
    """Send ``data`` on ``rx`` and receive ``tx`` until ``frames`` complete response
    frames have arrived and all of ``data`` was accepted. Must be called in a
    writable phase (after a clock edge); returns after a clock edge.

    Returns (received bytes, cycles taken); raises :class:`PumpTimeout`.
    """
    rng = rng or random.Random(0)
    if hasattr(dut, "bypass"):
        dut.bypass.value = 1
    start = now_cycles()
    deadline = start + timeout_cycles
    out = bytearray()
    got_frames = 0
    frame_start, frame_total = 0, None  # the frame being received: start, end
    pos = 0
    while True:
        if pos >= len(data) and got_frames >= frames:
            break
        if now_cycles() >= deadline:
            dut.rx__valid.value = 0
            dut.tx__ready.value = 0
            raise PumpTimeout(bytes(out), now_cycles() - start)
        offer = pos < len(data) and not (rx_stall and rng.random() < rx_stall)
        if offer:
            dut.rx__payload.value = data[pos]
        dut.rx__valid.value = int(offer)
        take = not (tx_stall and rng.random() < tx_stall)
        dut.tx__ready.value = int(take)
        await ReadOnly()
        rx_ready = int(dut.rx__ready.value)
        tx_valid = int(dut.tx__valid.value)
        moved = False
        if offer and rx_ready:
            pos += 1
            moved = True
        if take and tx_valid:
            out.append(int(dut.tx__payload.value))
            moved = True
            if frame_total is None:
                frame_total = response_frame_length(out[frame_start:])
                if frame_total is not None:
                    frame_total += frame_start
            if frame_total is not None and len(out) == frame_total:
                got_frames += 1
                frame_start, frame_total = frame_total, None
        if not moved and not tx_valid and (pos >= len(data) or (offer and not rx_ready)):
            # Nothing moves until the device offers a byte or takes one: let the
            # clock run without waking Python.
            remaining = deadline - now_cycles()
            if remaining > 1:
                triggers = [RisingEdge(dut.tx__valid)]
                if pos < len(data):
                    triggers.append(RisingEdge(dut.rx__ready))
                timer = Timer(remaining * CLOCK_NS, unit="ns")
                fired = await First(*triggers, timer)
                if fired is not timer:
                    # right after the clock edge that raised the signal: writable
                    continue
        await RisingEdge(dut.clk)
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
    return bytes(out), now_cycles() - start


def _check_frames(out: bytes) -> None:
    """Raise ProtocolError unless ``out`` is a sequence of response frames (the last
    one may be incomplete)."""
    pos = 0
    while pos < len(out):
        total = response_frame_length(out[pos:])
        if total is None:
            return
        pos += total


async def _read_buffer(dut, n: int, width: int) -> bytes:
    """The first ``n`` bytes of the TX buffer; called and returns in a writable phase."""
    words = []
    for w in range((n + width - 1) // width):
        dut.bulk_raddr.value = w
        await ReadOnly()
        words.append(dut.bulk_rdata.value.to_unsigned().to_bytes(width, "little"))
        await RisingEdge(dut.clk)
    return b"".join(words)[:n]


async def _take_buffer(dut, width: int, then=None) -> bytes:
    """From a read-only phase: the bytes the TX buffer holds (``bulk_rcount``), then one
    cycle of the control ``then`` (``bulk_drain``: it starts again; ``bulk_abort``)."""
    n = int(dut.bulk_rcount.value)
    await RisingEdge(dut.clk)
    data = await _read_buffer(dut, n, width)
    if then is not None:
        getattr(dut, then).value = 1
        await RisingEdge(dut.clk)
        getattr(dut, then).value = 0
    return data


def _bulk_idle(dut) -> None:
    dut.bulk_we.value = 0
    dut.bulk_go.value = 0
    dut.bulk_first.value = 0
    dut.bulk_drain.value = 0
    dut.bulk_abort.value = 0


async def bulk_pump(dut, data: bytes, frames: int, timeout_cycles: int, *,
                    width: int, depth: int) -> tuple[bytes, int]:
    """:func:`pump` through the wrapper's buffers (the bulk path of the module docstring).

    Must be called in a writable phase; returns after a clock edge. Returns (received
    bytes, device cycles of the transfer: from the first byte offered to the last frame
    received); raises :class:`PumpTimeout`.
    """
    dut.bypass.value = 0
    deadline = now_cycles() + timeout_cycles
    out = bytearray()
    cycles = 0
    pieces = [data[i:i + depth] for i in range(0, len(data), depth)] or [b""]
    for k, piece in enumerate(pieces):
        for w in range(0, len(piece), width):
            dut.bulk_waddr.value = w // width
            dut.bulk_wdata.value = int.from_bytes(piece[w:w + width], "little")
            dut.bulk_we.value = 1
            await RisingEdge(dut.clk)
        dut.bulk_we.value = 0
        dut.bulk_len.value = len(piece)
        dut.bulk_frames.value = frames if k == len(pieces) - 1 else 0
        dut.bulk_first.value = int(k == 0)
        dut.bulk_go.value = 1
        await RisingEdge(dut.clk)
        dut.bulk_go.value = 0
        dut.bulk_first.value = 0
        begin = now_cycles()
        while True:
            await ReadOnly()
            if int(dut.bulk_done.value):
                break
            if int(dut.bulk_full.value):
                out += await _take_buffer(dut, width, "bulk_drain")
                continue
            remaining = deadline - now_cycles()
            if remaining <= 0:
                out += await _take_buffer(dut, width, "bulk_abort")
                _check_frames(bytes(out))
                raise PumpTimeout(bytes(out), cycles + now_cycles() - begin)
            await First(RisingEdge(dut.bulk_done), RisingEdge(dut.bulk_full),
                        Timer(remaining * CLOCK_NS, unit="ns"))
        cycles += now_cycles() - begin
        # a next piece continues the exchange: the TX buffer starts again
        out += await _take_buffer(dut, width, "bulk_drain" if k != len(pieces) - 1 else None)
    _check_frames(bytes(out))
    return bytes(out), cycles


async def pulse_reset(dut, cycles: int) -> None:
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
    if hasattr(dut, "bulk_go"):
        _bulk_idle(dut)
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def host_bridge(dut):
    args = cocotb_args()
    rng = random.Random(args.get("seed", 0))
    tx_stall = float(args.get("tx_stall", 0.0))
    rx_stall = float(args.get("rx_stall", 0.0))
    bulk = args.get("bulk")
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
    if bulk:
        _bulk_idle(dut)
        dut.bypass.value = 0
        dut.bulk_raddr.value = 0
    start_clock(dut)
    await pulse_reset(dut, int(args.get("reset_cycles", 4)))

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args["socket"])
    try:
        while True:
            message = recv_message(sock)
            if message is None:
                return  # the host went away
            header, data = message
            op = header.get("op")
            if op == "exchange":
                stalls = (float(header.get("rx_stall", rx_stall)),
                          float(header.get("tx_stall", tx_stall)))
                try:
                    if bulk and not any(stalls):
                        out, cycles = await bulk_pump(
                            dut, data, int(header["frames"]), int(header["timeout_cycles"]),
                            width=int(bulk["width"]), depth=int(bulk["depth"]))
                    else:
                        out, cycles = await pump(
                            dut, data, int(header["frames"]), int(header["timeout_cycles"]),
                            rx_stall=stalls[0], tx_stall=stalls[1], rng=rng)
                except PumpTimeout as exc:
                    await RisingEdge(dut.clk)
                    send_message(sock, {"ok": False, "error": "timeout", "cycles": exc.cycles,
                                        "total": now_cycles()}, exc.received)
                    continue
                send_message(sock, {"ok": True, "cycles": cycles, "total": now_cycles()}, out)
            elif op == "reset":
                start = now_cycles()
                await pulse_reset(dut, int(header.get("cycles", 2)))
                send_message(sock, {"ok": True, "cycles": now_cycles() - start,
                                    "total": now_cycles()})
            elif op == "cycles":
                send_message(sock, {"ok": True, "cycles": 0, "total": now_cycles()})
            elif op == "close":
                send_message(sock, {"ok": True, "cycles": 0, "total": now_cycles()})
                return
            else:
                send_message(sock, {"ok": False, "error": "unknown-op",
                                    "message": f"unknown bridge operation {op!r}"})
    finally:
        sock.close()
