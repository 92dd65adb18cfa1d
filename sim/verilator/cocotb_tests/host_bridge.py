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

While the simulation waits for the host, simulated time stands still. While
the device computes, Python sleeps on ``RisingEdge`` of ``tx__valid`` (or
``rx__ready`` when bytes wait to be accepted) and the clock runs in the
simulator; Python wakes every cycle only while bytes move.

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


async def pulse_reset(dut, cycles: int) -> None:
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
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
    dut.rx__valid.value = 0
    dut.tx__ready.value = 0
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
                try:
                    out, cycles = await pump(
                        dut, data, int(header["frames"]), int(header["timeout_cycles"]),
                        rx_stall=float(header.get("rx_stall", rx_stall)),
                        tx_stall=float(header.get("tx_stall", tx_stall)), rng=rng)
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
