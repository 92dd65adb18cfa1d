"""cocotb side of :class:`spikeforge.sim.verilator.uart_session.UartSession`: a bit-level
UART on the pins of a :class:`spikeforge.boards.top.BoardTop`, served on a pseudo-terminal.

The model opens a pty (``os.openpty``) and connects to the host process over the
Unix domain socket named in ``cocotb_args()["socket"]``, telling it the pty's
slave path; the host opens that path with the real
:class:`~spikeforge.sim.host.serial_transport.SerialTransport`. Bytes the host
writes are sent on ``uart_rx`` as 8N1 frames of ``divisor`` clock cycles per
bit (start bit, eight data bits LSB first, stop bit, back to back); frames on
``uart_tx`` are decoded (sampled in the middle of each bit) and written to the
pty. Python wakes once per bit through ``Timer`` waits, never every clock.

Side channel (the socket; messages as in ``host_bridge``: 4-byte length, JSON
header, ``n`` raw bytes), each answered once done:

* ``break`` (``on``): a pty carries no line break, so the host's
  ``SerialTransport.reset`` reports its break here: ``on`` holds ``uart_rx`` low
  for at least ``break_bits`` bit times before answering, off releases it (and
  waits ``4`` bit times);
* ``fault`` (``kind``: ``drop``, ``flip`` or ``stop``, ``index``, ``bit``): the
  byte ``index`` (counted from 0 among the bytes sent after this message) is
  left out, sent with data bit ``bit`` inverted, or sent with a 0 stop bit (a
  framing error) followed by one bit time of idle line;
* ``pins``: the LED outputs; ``cycles``: cycles simulated; ``close``: end.

Simulated time stands still while the host has nothing to say and the device
is quiet (``led_busy`` low, ``uart_tx`` idle for two frame times, nothing to
send); otherwise the clock runs and the model looks at the pty and the socket
every ``poll_bits`` bit times.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import tty

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from spikeforge.sim.verilator.cocotb_tests.host_bridge import now_cycles, recv_message, send_message
from spikeforge.sim.verilator.cocotb_util import CLOCK_NS, start_clock
from spikeforge.sim.verilator.harness import cocotb_args


class LineDecoder:
    """Bytes from ``uart_tx``: one frame at a time, sampled mid-bit."""

    def __init__(self, dut, bit_ns: int):
        self.dut = dut
        self.bit_ns = bit_ns
        self.out = bytearray()
        self.framing_errors = 0
        self.active = False
        self.last_end = 0

    async def run(self):
        dut, bit = self.dut, self.bit_ns
        while True:
            await FallingEdge(dut.uart_tx)
            self.active = True
            await Timer(bit + bit // 2, unit="ns")
            byte = 0
            for i in range(8):
                byte |= int(dut.uart_tx.value) << i
                await Timer(bit, unit="ns")
            if int(dut.uart_tx.value) == 1:
                self.out.append(byte)
            else:
                self.framing_errors += 1
                while int(dut.uart_tx.value) == 0:
                    await RisingEdge(dut.uart_tx)
            self.active = False
            self.last_end = now_cycles()


async def send_byte(dut, byte: int, bit_ns: int, *, stop: int = 1):
    """One 8N1 frame on ``uart_rx`` (``stop=0``: a framing error, then one bit time idle)."""
    for level in (0, *((byte >> i) & 1 for i in range(8)), stop, *(() if stop else (1,))):
        dut.uart_rx.value = level
        await Timer(bit_ns, unit="ns")


def _read_available(fd) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        except OSError as exc:
            if exc.errno == errno.EIO:      # no one has the slave open
                break
            raise
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@cocotb.test()
async def uart_bridge(dut):
    args = cocotb_args()
    divisor = int(args["divisor"])
    bit_ns = divisor * CLOCK_NS
    break_bits = int(args.get("break_bits", 40))
    poll_bits = int(args.get("poll_bits", 100))
    frame_cycles = 10 * divisor

    dut.uart_rx.value = 1
    dut.reset_button.value = 0
    dut.rst.value = 1
    start_clock(dut)
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    decoder = LineDecoder(dut, bit_ns)
    cocotb.start_soon(decoder.run())

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args["socket"])
    send_message(sock, {"op": "hello", "pty": os.ttyname(slave)})

    to_device = bytearray()
    to_host = bytearray()
    faults = {}                 # index among the bytes sent -> (kind, bit)
    sent = 0
    try:
        while True:
            # device -> host
            if decoder.out:
                to_host += decoder.out
                decoder.out.clear()
            if to_host:
                try:
                    done = os.write(master, bytes(to_host))
                    del to_host[:done]
                except BlockingIOError:
                    pass
            quiet = (not to_device and not to_host and not decoder.active
                     and int(dut.led_busy.value) == 0
                     and now_cycles() - decoder.last_end >= 2 * frame_cycles)
            ready, _, _ = select.select([master, sock], [], [], 0.05 if quiet else 0)
            if master in ready:
                to_device += _read_available(master)
            if sock in ready:
                message = recv_message(sock)
                if message is None:
                    return                  # the host went away
                header, _ = message
                op = header.get("op")
                if op == "break":
                    if header["on"]:
                        dut.uart_rx.value = 0
                        await Timer(break_bits * bit_ns, unit="ns")
                    else:
                        dut.uart_rx.value = 1
                        await Timer(4 * bit_ns, unit="ns")
                    send_message(sock, {"ok": True, "total": now_cycles()})
                elif op == "fault":
                    faults[sent + int(header["index"])] = (header["kind"],
                                                           int(header.get("bit", 0)))
                    send_message(sock, {"ok": True})
                elif op == "pins":
                    send_message(sock, {"ok": True, "heartbeat": int(dut.led_heartbeat.value),
                                        "busy": int(dut.led_busy.value),
                                        "error": int(dut.led_error.value),
                                        "total": now_cycles()})
                elif op == "cycles":
                    send_message(sock, {"ok": True, "total": now_cycles()})
                elif op == "close":
                    send_message(sock, {"ok": True, "total": now_cycles()})
                    return
                else:
                    send_message(sock, {"ok": False, "message": f"unknown operation {op!r}"})
                continue
            if to_device:
                byte = to_device.pop(0)
                kind, bit = faults.pop(sent, (None, 0))
                sent += 1
                if kind == "drop":
                    continue
                if kind == "flip":
                    byte ^= 1 << bit
                await send_byte(dut, byte, bit_ns, stop=int(kind != "stop"))
            elif not quiet:
                await Timer(poll_bits * bit_ns, unit="ns")
    finally:
        sock.close()
        os.close(master)
        os.close(slave)
