"""UART (8N1) between a board's serial pins and byte streams.

:class:`UARTReceiver` turns the ``rx`` line into a stream of bytes;
:class:`UARTTransmitter` sends a stream of bytes on the ``tx`` line;
:class:`UARTBridge` joins both with a receive FIFO, so bytes that arrive while
the consumer is busy are kept (a UART has no flow control).

Line format: idle high, one start bit (0), eight data bits least significant
first, one stop bit (1). ``divisor`` is the number of clock cycles per bit
(``round(clk_hz / baud)``); the receiver tolerates the usual mismatch between
the two clocks (it samples each bit in its middle, re-aligned on every start
bit: about +-4 % for ``divisor >= 16``).

Throughput: one byte per ``10 * divisor`` cycles in each direction.
Latency: the receiver presents a byte ``9.5 * divisor + 3`` cycles after its
start bit's falling edge (two cycles of input synchronisation); the transmitter
starts a byte's start bit in the cycle after the stream transfer.

Line errors: a byte whose stop bit reads 0 is dropped and counted
(``framing_errors``); a start bit that is gone at its middle is a glitch and
ignored. ``idle`` is high while the line has been idle for at least
``idle_bits`` bit times (frame-level resynchronisation uses it);
``line_break`` is high while the line has been low for at least ``idle_bits``
bit times (a break: the board tops reset the accelerator on it).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .checked import ArgumentChecked

__all__ = ["UARTReceiver", "UARTTransmitter", "UARTBridge", "divisor_for", "MIN_DIVISOR"]

#: the smallest clock cycles per bit the receiver samples reliably
MIN_DIVISOR = 8


def divisor_for(*, clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``; the rate error must stay within 2 %."""
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    if clk_hz <= 0:
        raise ValueError(f"clk_hz must be positive, not {clk_hz!r}")
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{baud} baud needs at least {MIN_DIVISOR} clock cycles per bit, "
                         f"a {clk_hz / 1e6:g} MHz clock gives {clk_hz / baud:.2f}")
    error = abs(clk_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"{baud} baud at {clk_hz / 1e6:g} MHz is off by {100 * error:.1f} % "
                         "(at most 2 % is allowed)")
    return divisor


def _check_divisor(divisor):
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} clock cycles "
                         f"per bit, not {divisor!r}")


def _line_status():
    """The receive line's status members, shared by the receiver and the bridge."""
    return {"idle": Out(1), "line_break": Out(1), "framing_errors": Out(16),
            "overruns": Out(16)}


class UARTReceiver(ArgumentChecked, wiring.Component):
    """The ``rx`` line to a byte stream; see the module docstring.

    ``o`` has no back-pressure into the line: a byte that is not taken before the
    next one is complete is overwritten and counted in ``overruns``.
    """

    @classmethod
    def check(cls, *, divisor, idle_bits=20):
        _check_divisor(divisor)
        if not isinstance(idle_bits, int) or idle_bits < 1:
            raise ValueError(f"idle_bits must be a positive integer, not {idle_bits!r}")

    def __init__(self, *, divisor: int, idle_bits: int = 20):
        self.divisor = divisor
        self.idle_bits = idle_bits
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            **_line_status(),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(d * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)

        idle_limit = self.idle_bits * d
        idle_count = Signal(range(idle_limit + 1))
        with m.If(line == 0):
            m.d.sync += idle_count.eq(0)
        with m.Elif(idle_count != idle_limit):
            m.d.sync += idle_count.eq(idle_count + 1)
        m.d.comb += self.idle.eq(idle_count == idle_limit)
        low_count = Signal(range(idle_limit + 1))
        with m.If(line == 1):
            m.d.sync += low_count.eq(0)
        with m.Elif(low_count != idle_limit):
            m.d.sync += low_count.eq(low_count + 1)
        m.d.comb += self.line_break.eq(low_count == idle_limit)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(line == 0):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line == 0):
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
                with m.Else():
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), shift.eq((line << 7) | (shift >> 1)),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line == 1):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overruns.eq(self.overruns + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                # a stop bit read 0: wait for the line to go high before the next start bit
                with m.If(line == 1):
                    m.next = "IDLE"
        return m


class UARTTransmitter(ArgumentChecked, wiring.Component):
    """A byte stream to the ``tx`` line; see the module docstring."""

    @classmethod
    def check(cls, *, divisor):
        _check_divisor(divisor)

    def __init__(self, *, divisor: int):
        self.divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        frame = Signal(10, init=0x3FF)      # stop, data[7:0], start; shifted out LSB first
        bits = Signal(range(11))

        m.d.comb += [self.tx.eq(frame[0]), self.busy.eq(bits != 0),
                     self.i.ready.eq(bits == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq((1 << 9) | (self.i.payload << 1)), bits.eq(10), timer.eq(d - 1)]
        with m.Elif(bits != 0):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [frame.eq((1 << 9) | (frame >> 1)), bits.eq(bits - 1),
                             timer.eq(d - 1)]
        return m


class UARTBridge(ArgumentChecked, wiring.Component):
    """Serial pins to byte streams: ``rx`` pin -> FIFO -> ``o``; ``i`` -> ``tx`` pin.

    ``fifo_depth`` bytes are kept while the consumer of ``o`` is busy (the host
    protocol sends one request at a time, so a request's length is enough).
    """

    @classmethod
    def check(cls, *, divisor, fifo_depth=16, idle_bits=20):
        UARTReceiver.check(divisor=divisor, idle_bits=idle_bits)
        if not isinstance(fifo_depth, int) or fifo_depth < 2:
            raise ValueError(f"fifo_depth must be an integer of at least 2, not {fifo_depth!r}")

    def __init__(self, *, divisor: int, fifo_depth: int = 16, idle_bits: int = 20):
        self.divisor = divisor
        self.fifo_depth = fifo_depth
        self.idle_bits = idle_bits
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o": Out(stream.Signature(8)),
            "i": In(stream.Signature(8)),
            **_line_status(),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = UARTReceiver(divisor=self.divisor,
                                                        idle_bits=self.idle_bits)
        m.submodules.transmitter = transmitter = UARTTransmitter(divisor=self.divisor)
        m.submodules.fifo = rx_fifo = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)

        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx),
                     self.idle.eq(receiver.idle), self.line_break.eq(receiver.line_break),
                     self.framing_errors.eq(receiver.framing_errors)]
        # receiver -> FIFO: a byte the full FIFO cannot take is lost and counted
        m.d.comb += [rx_fifo.w_data.eq(receiver.o.payload),
                     rx_fifo.w_en.eq(receiver.o.valid),
                     receiver.o.ready.eq(1)]
        lost = Signal(16)
        with m.If(receiver.o.valid & ~rx_fifo.w_rdy):
            m.d.sync += lost.eq(lost + 1)
        m.d.comb += self.overruns.eq(lost + receiver.overruns)
        m.d.comb += [self.o.payload.eq(rx_fifo.r_data), self.o.valid.eq(rx_fifo.r_rdy),
                     rx_fifo.r_en.eq(self.o.ready)]
        wiring.connect(m, wiring.flipped(self.i), transmitter.i)
        return m
