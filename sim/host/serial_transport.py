"""UART transport of the host driver: the host protocol over a serial port (pyserial).

:class:`SerialTransport` gives :class:`~spikeforge.sim.host.driver.HostLink` the
same ``exchange`` / ``reset`` / ``cycles`` / ``close`` interface as the
simulation transport, so a board answers exactly the requests the Verilator
model answers. ``port`` is a device path (``/dev/ttyUSB0``) or any pyserial URL.

* ``exchange(data, frames, timeout_cycles)`` writes ``data`` and reads until
  ``frames`` complete response frames have arrived. A board's cycles are not
  visible from the host: the wall-clock limit is ``timeout_s`` plus
  ``timeout_cycles / clock_hz`` plus the time the bytes need on the line, and
  the cycles returned are ``None`` (the device's own counters measure cycles).
* ``reset()`` sends a line break (the line held low for ``break_s``): the board
  top resets the accelerator on a break (see ``boards/``), then the receive
  buffer is flushed.

Errors: a port that cannot be opened raises :class:`TransportError` with one
sentence naming it; no complete answer in time raises :class:`TransportTimeout`
(with the bytes received so far in ``received``).
"""

from __future__ import annotations

import time

from spikeforge.sim.host.driver import TransportError, TransportTimeout, response_frame_length

__all__ = ["SerialTransport", "DEFAULT_BAUD"]

#: the rate the board tops use unless told otherwise (see docs/fpga.md)
DEFAULT_BAUD = 3_000_000


class SerialTransport:
    """The host protocol over a serial port; see the module docstring."""

    def __init__(self, port: str, *, baud: int = DEFAULT_BAUD, clock_hz: float = 25e6,
                 timeout_s: float = 5.0, break_s: float = 0.01):
        if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
            raise ValueError(f"baud must be a positive integer, not {baud!r}")
        if not clock_hz > 0:
            raise ValueError(f"clock_hz must be positive, not {clock_hz!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        import serial

        self.port = port
        self.baud = baud
        self.clock_hz = float(clock_hz)
        self.timeout_s = float(timeout_s)
        self.break_s = float(break_s)
        try:
            self._serial = serial.serial_for_url(port, baudrate=baud, timeout=0.05,
                                                 write_timeout=timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise TransportError(f"serial port {port} cannot be opened: {reason}") from None
        self._serial.reset_input_buffer()
        self._closed = False

    def _line_seconds(self, nbytes: int) -> float:
        return nbytes * 10 / self.baud

    def exchange(self, data: bytes, frames: int, timeout_cycles: int):
        """Write ``data``; return (the bytes of the next ``frames`` response frames, ``None``)."""
        if not isinstance(frames, int) or frames < 0:
            raise ValueError(f"frames must be a non-negative integer, not {frames!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be a positive integer, not {timeout_cycles!r}")
        if self._closed:
            raise TransportError(f"serial port {self.port} is closed")
        data = bytes(data)
        try:
            self._serial.write(data)
            self._serial.flush()
        except Exception as exc:                      # pyserial raises several types
            raise TransportError(f"writing to serial port {self.port} failed: {exc}") from None
        deadline = (time.monotonic() + self.timeout_s + timeout_cycles / self.clock_hz
                    + self._line_seconds(len(data)))
        buffer = bytearray()
        done = 0                                      # bytes of complete frames in buffer
        for _ in range(frames):
            while True:
                total = response_frame_length(bytes(buffer[done:]))
                if total is not None and len(buffer) - done >= total:
                    done += total
                    break
                need = (total if total is not None else 5) - (len(buffer) - done)
                if time.monotonic() > deadline:
                    err = TransportTimeout(
                        f"no complete response on serial port {self.port} in time "
                        f"({len(buffer)} byte(s) received)")
                    err.received = bytes(buffer)
                    err.cycles = None
                    raise err
                try:
                    chunk = self._serial.read(max(1, need))
                except Exception as exc:
                    raise TransportError(f"reading serial port {self.port} failed: {exc}") from None
                if chunk:
                    buffer += chunk
                    # more bytes are on their way: allow for their time on the line
                    deadline = max(deadline, time.monotonic() + self._line_seconds(need) + 0.5)
        return bytes(buffer), None

    def reset(self, cycles: int = 2) -> None:
        """Reset the device with a line break, then drop whatever it had sent."""
        if self._closed:
            raise TransportError(f"serial port {self.port} is closed")
        try:
            self._serial.send_break(self.break_s)
            time.sleep(self.break_s)
            self._serial.reset_input_buffer()
        except Exception as exc:
            raise TransportError(f"resetting the device on serial port {self.port} failed: "
                                 f"{exc}") from None

    @property
    def cycles(self):
        """A board's cycles are not visible to the host: ``None``."""
        return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._serial.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
