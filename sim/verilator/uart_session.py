"""The whole UART path without a board: a board top in Verilator behind a pseudo-terminal.

:class:`UartSession` builds a :class:`spikeforge.boards.top.BoardTop` (made with
``pll=False``) with the harness (cached per configuration, only the ports
public), runs it with the cocotb module
:mod:`spikeforge.sim.verilator.cocotb_tests.uart_bridge` in a background thread
and opens the pty that module serves with the real
:class:`~spikeforge.sim.host.serial_transport.SerialTransport`, so the host
driver's bytes go through exactly the UART transport's framing code and then
bit by bit through the board top's UART.

A pty carries no line break (``tcsendbreak`` on a pty does nothing), so the
transport's pyserial port reports its breaks (``send_break``, ``break_condition``)
to the model over the
session's Unix-socket side channel; the model holds ``uart_rx`` low while it
is on (at least ``break_bits`` bit times). The side channel also arms line
faults (:meth:`fault`: a byte dropped or a bit flipped on the line) and reads
the LED pins (:meth:`pins`).

Cycles: a UART host cannot see device cycles (``SerialTransport.cycles`` is
``None``); :meth:`cycles` gives the simulated cycles. Wall-clock limits: the
transport's ``timeout_s`` plus ``timeout_cycles / clock_hz``, so ``clock_hz`` is
set to a slow simulation's cycles per second.
"""

from __future__ import annotations

import contextlib
import select
import time

from spikeforge.sim.host.driver import HostLink, TransportError, TransportTimeout
from spikeforge.sim.host.serial_transport import SerialTransport
from spikeforge.sim.verilator import harness, ports_only
from spikeforge.sim.verilator.background import BackgroundSimulation
from spikeforge.sim.verilator.cocotb_tests.host_bridge import recv_message, send_message

__all__ = ["UartSession", "MODEL_MODULE"]

MODEL_MODULE = "spikeforge.sim.verilator.cocotb_tests.uart_bridge"


class UartSession(BackgroundSimulation):
    """``top`` (a BoardTop with ``pll=False``) in Verilator, reached over a pty.

    Keyword-only options: ``name`` (Verilog top name and build cache key),
    ``timeout_s`` (the serial transport's wall-clock allowance per exchange),
    ``clock_hz`` (simulated cycles per wall-clock second assumed for
    ``timeout_cycles``), ``break_bits`` (least bit times of a break on the line),
    ``connect_timeout_s``. ``link`` is a :class:`HostLink` over ``transport``, a
    :class:`SerialTransport` on the pty.
    """

    def __init__(self, top, *, name: str = "board_top", timeout_s: float = 3.0,
                 clock_hz: float = 100_000.0, break_bits: int | None = None,
                 connect_timeout_s: float = 120.0, poll_bits: int = 100):
        super().__init__(name, prefix="sf-uart-")
        self._closed = False
        self.transport = None
        break_bits = break_bits if break_bits is not None else 2 * top.idle_bits
        try:
            verilog = ports_only.elaborate(top, name=name)
            self.build_dir = harness.build(None, name=name, verilog_text=verilog,
                                           extra_args=ports_only.BUILD_ARGS)
            args = {"socket": self._path, "divisor": top.divisor, "break_bits": break_bits,
                    "poll_bits": poll_bits}
            self._start(verilog=verilog, test_module=MODEL_MODULE, args=args,
                        build_args=ports_only.BUILD_ARGS, connect_timeout_s=connect_timeout_s)
            hello = self._recv(connect_timeout_s, "hello")
            self.pty = hello["pty"]
            self.transport = SerialTransport(self.pty, baud=9600, clock_hz=clock_hz,
                                             timeout_s=timeout_s)
            self._hook_break(self.transport)
            self.link = HostLink(self.transport)
        except BaseException:
            self._shutdown(force=True)
            raise

    # ---- the side channel's messages ----
    def _recv(self, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while not select.select([self._sock], [], [], 0.25)[0]:
            if not self._thread.is_alive():
                raise self._died()
            if time.monotonic() > deadline:
                raise TransportTimeout(f"the simulation of {self.name} gave no answer "
                                       f"to {what} within {timeout_s:.0f} s")
        self._sock.settimeout(30)           # a whole message follows at once
        try:
            message = recv_message(self._sock)
        except OSError:
            message = None
        if message is None:
            self._thread.join(timeout=30)
            raise self._died()
        return message[0]

    def _call(self, header, timeout_s=60.0):
        if self._closed:
            raise TransportError("the UART session is closed")
        send_message(self._sock, header)
        reply = self._recv(timeout_s, header["op"])
        if not reply.get("ok"):
            raise TransportError(reply.get("message", f"model error {reply!r}"))
        return reply

    def _hook_break(self, transport):
        """Report the pyserial port's breaks to the model: ``send_break`` (POSIX pyserial
        calls ``tcsendbreak``, which a pty ignores) and the ``break_condition`` state."""
        port = transport._serial
        update, send_break = port._update_break_state, port.send_break

        def update_and_report():
            update()                             # the ioctl: accepted by a pty, no effect
            self._call({"op": "break", "on": bool(port._break_state)})

        def send_break_and_report(duration=0.25):
            self._call({"op": "break", "on": True})
            try:
                send_break(duration)
            finally:
                self._call({"op": "break", "on": False})

        port._update_break_state = update_and_report
        port.send_break = send_break_and_report

    # ---- side channel ----
    def fault(self, kind: str, index: int, bit: int = 0) -> None:
        """Drop (``"drop"``), flip bit ``bit`` of (``"flip"``) or send with a 0 stop bit
        (``"stop"``: a framing error) the byte ``index`` (from 0) of the bytes the host
        sends next."""
        if kind not in ("drop", "flip", "stop"):
            raise ValueError(f"fault kind must be 'drop', 'flip' or 'stop', not {kind!r}")
        self._call({"op": "fault", "kind": kind, "index": int(index), "bit": int(bit)})

    def pins(self) -> dict:
        """The LED outputs now: ``heartbeat``, ``busy``, ``error`` (0 or 1)."""
        reply = self._call({"op": "pins"})
        return {k: reply[k] for k in ("heartbeat", "busy", "error")}

    def cycles(self) -> int:
        return self._call({"op": "cycles"})["total"]

    # ---- end ----
    def close(self) -> None:
        if not self._closed:
            self._shutdown(force=False)
            if self._error is not None:
                raise TransportError(f"the simulation of {self.name} failed: {self._error}")

    def _shutdown(self, *, force: bool) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
        if self._sock is not None:
            if not force:
                with contextlib.suppress(Exception):
                    self._call({"op": "close"}, timeout_s=10)
            self._closed = True
            with contextlib.suppress(OSError):
                self._sock.close()
        self._closed = True
        self._end_thread(force=force)
