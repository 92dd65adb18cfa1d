"""The board top: the accelerator behind the board's USB-UART, with clock, reset and LEDs.

:class:`BoardTop` puts the top of a configuration on a board
(:func:`spikeforge.hdl.accelerator.top_for`: the one-core
:class:`~spikeforge.hdl.accelerator.Accelerator`, the multi-core
:class:`~spikeforge.hdl.system.System`, or the integer inference top):

* **UART**: a :class:`~spikeforge.hdl.uart.UARTBridge` (8N1, receive FIFO) on the
  board's USB-UART pins carries the host protocol (docs/host-protocol.md) into
  the accelerator's ``rx``/``tx`` byte streams. The rate is the fastest standard
  rate the board's bridge chip carries that the UART makes within 2 % at the
  clock (:func:`choose_baud`; 3 MBd on every board at its default clock, see
  docs/fpga.md).
* **Idle-line resynchronisation**: the UART's ``idle`` (the line high for
  ``idle_bits`` bit times, 2 ms on a board) drives the host port's ``abort``: a
  request frame that lost a byte on the line is dropped, the host's request
  times out and its next request works.
* **Reset**: the accelerator (and the LED state) is reset while the UART line
  is held low for ``idle_bits`` bit times (a line break: ``SerialTransport.reset``)
  and while the board's reset button is pressed (ULX3S: PWR, iCEBreaker: the
  user button); the bytes waiting in the receive FIFO are dropped with it. The
  UART itself is not reset (it detects the break).
* **LEDs**: heartbeat (toggles at ``heartbeat_hz``: the clock runs), busy (a
  request frame has begun on ``rx`` and its response frame has not left on
  ``tx`` yet), error (the last response's status byte was not ``OK``, or the
  UART saw a framing error since the last reset). Busy and error are derived
  from the byte streams and the response frames' status byte only
  (:class:`LinkMonitor`), never from the core's internals.
* **Clock**: with a platform, the ``sync`` domain comes from the board's
  oscillator through the PLL of :mod:`spikeforge.boards.clocks` to the target
  clock (:func:`board_top` with ``pll=False``: the oscillator directly). Without
  a platform (simulation) ``pll`` must be ``False`` and ``sync`` comes from
  outside (``clk``/``rst``).

The ports (the pins, active high) are ``uart_rx``, ``uart_tx``, ``reset_button``,
``led_heartbeat``, ``led_busy``, ``led_error``; with a platform they are wired to
the board's resources (:data:`BOARD_IO`). Latency over the accelerator's: the
UART (10 bit times per byte each way, the receiver presents a byte 9.5 bit
times plus 3 cycles after its start bit) and one FIFO cycle.

:func:`board_top` gives the top and its amaranth-boards platform for a board,
a configuration and a clock: what ``spikeforge build`` elaborates.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.accelerator import top_class, top_for
from spikeforge.hdl.checked import ArgumentChecked
from spikeforge.hdl.protocol import REQUEST_SYNC, RESPONSE_SYNC, Status
from spikeforge.hdl.uart import MIN_DIVISOR, UARTBridge, divisor_for

from .clocks import PLLDomain, PLLPlan, plan_pll

__all__ = ["BoardIO", "BOARD_IO", "STANDARD_BAUDS", "BREAK_IDLE_S", "choose_baud",
           "LinkMonitor", "BoardTop", "board_top"]

#: standard UART rates, fastest first (the FTDI chips make each exactly: 3 MBd / n or 12 MBd / n)
STANDARD_BAUDS = (12_000_000, 6_000_000, 4_000_000, 3_000_000, 2_000_000, 1_000_000,
                  921_600, 500_000, 460_800, 230_400, 115_200)

#: seconds of idle line that drop a partial request frame and of low line that reset the
#: accelerator (a break); below ``SerialTransport``'s 10 ms break, far above a byte's time
BREAK_IDLE_S = 0.002


@dataclass(frozen=True)
class BoardIO:
    """The pins the board top uses on one board: ``(resource, number)`` pairs."""

    uart: tuple
    #: the USB-UART bridge chip and the fastest standard rate it carries reliably
    uart_chip: str
    max_baud: int
    led_heartbeat: tuple
    led_busy: tuple
    led_error: tuple
    reset_button: tuple | None
    #: name of a list attribute of the platform with resources to add (a break-off PMOD)
    extra_resources: str | None = None


_ULX3S = BoardIO(uart=("uart", 0), uart_chip="FTDI FT231X", max_baud=3_000_000,
                 led_heartbeat=("led", 0), led_busy=("led", 1), led_error=("led", 7),
                 reset_button=("button_pwr", 0))

#: per board name (boards/registry.py)
BOARD_IO = {
    "ulx3s-85f": _ULX3S,
    "ulx3s-45f": _ULX3S,
    # FT2232H channel B: up to 12 MBd, but at the 24 MHz target the UART's 8-cycle
    # minimum bit time allows 3 MBd. The busy LED is on the break-off PMOD (PMOD2).
    "icebreaker": BoardIO(uart=("uart", 0), uart_chip="FTDI FT2232H", max_baud=12_000_000,
                          led_heartbeat=("led_g", 0), led_busy=("led_g", 1),
                          led_error=("led_r", 0), reset_button=("button", 0),
                          extra_resources="break_off_pmod"),
}


def choose_baud(*, clock_hz: float, max_baud: int) -> int:
    """The fastest of :data:`STANDARD_BAUDS` up to ``max_baud`` the UART makes within 2 %
    at ``clock_hz`` (at least 8 clock cycles per bit)."""
    for baud in STANDARD_BAUDS:
        if baud > max_baud:
            continue
        try:
            divisor_for(clk_hz=clock_hz, baud=baud)
        except ValueError:
            continue
        return baud
    raise ValueError(f"no standard UART rate up to {max_baud} baud works at "
                     f"{clock_hz / 1e6:g} MHz; allowed clocks: at least "
                     f"{MIN_DIVISOR * STANDARD_BAUDS[-1] / 1e6:g} MHz")


class LinkMonitor(wiring.Component):
    """Busy and error state from the accelerator's byte streams, for the LEDs.

    It follows the request framing on the ``rx`` transfers exactly as the host port
    does (sync hunting, ``len``, the ``len + 1`` bytes after the header, ``abort``)
    and the response frames on the ``tx`` transfers. ``busy``: requests begun minus
    responses completed is not zero (a request dropped by ``abort`` is not counted;
    one already answered with ``BAD_LENGTH`` is). ``bad_status``: the status byte of
    the last response was not ``OK``. One cycle of latency (registered state).
    """

    def __init__(self, *, max_payload: int):
        self.max_payload = max_payload
        super().__init__({
            "rx_byte": In(8), "rx_fire": In(1), "abort": In(1),
            "tx_byte": In(8), "tx_fire": In(1),
            "busy": Out(1), "bad_status": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        begun = Signal(8)
        answered = Signal(8)
        m.d.comb += self.busy.eq(begun != answered)

        rx_len = Signal(16)
        rx_left = Signal(17)
        early = Signal()            # BAD_LENGTH: answered before its bytes are discarded
        byte = self.rx_byte
        with m.FSM(name="rx"):
            with m.State("HUNT"):
                with m.If(self.rx_fire & (byte == REQUEST_SYNC)):
                    m.d.sync += begun.eq(begun + 1)
                    m.next = "CMD"
            for state, nxt in (("CMD", "LEN0"), ("LEN0", "LEN1"), ("LEN1", "BODY"), ("BODY", None)):
                with m.State(state):
                    with m.If(self.abort & ~self.rx_fire):
                        with m.If(~((state == "BODY") & early)):
                            m.d.sync += begun.eq(begun - 1)
                        m.next = "HUNT"
                    with m.If(self.rx_fire):
                        if state == "LEN0":
                            m.d.sync += rx_len[:8].eq(byte)
                        elif state == "LEN1":
                            full = (byte << 8) | rx_len[:8]
                            m.d.sync += [rx_left.eq(full), early.eq(full > self.max_payload)]
                        if state == "BODY":
                            m.d.sync += rx_left.eq(rx_left - 1)
                            with m.If(rx_left == 0):
                                m.next = "HUNT"
                        else:
                            m.next = nxt

        tx_len = Signal(16)
        tx_left = Signal(16)
        byte = self.tx_byte
        with m.FSM(name="tx"):
            with m.State("SYNC"):
                with m.If(self.tx_fire & (byte == RESPONSE_SYNC)):
                    m.next = "STATUS"
            with m.State("STATUS"):
                with m.If(self.tx_fire):
                    m.d.sync += self.bad_status.eq(byte != Status.OK)
                    m.next = "CMD"
            with m.State("CMD"):
                with m.If(self.tx_fire):
                    m.next = "LEN0"
            with m.State("LEN0"):
                with m.If(self.tx_fire):
                    m.d.sync += tx_len[:8].eq(byte)
                    m.next = "LEN1"
            with m.State("LEN1"):
                with m.If(self.tx_fire):
                    m.d.sync += tx_left.eq((byte << 8) | tx_len[:8])
                    m.next = "BODY"
            with m.State("BODY"):       # payload, then the CRC byte
                with m.If(self.tx_fire):
                    m.d.sync += tx_left.eq(tx_left - 1)
                    with m.If(tx_left == 0):
                        m.d.sync += answered.eq(answered + 1)
                        m.next = "SYNC"
        return m


class BoardTop(ArgumentChecked, wiring.Component):
    """The accelerator of ``config`` behind a UART, with reset and status LEDs.

    Keyword-only parameters: ``divisor`` (clock cycles per UART bit, at least 8), or
    ``clock_hz`` and ``baud`` (then ``divisor = divisor_for(clk_hz=clock_hz, baud=baud)``);
    ``idle_bits`` (bit times of idle line for ``abort``, of low line for a reset;
    default: 2 ms at ``baud``, or 20 with a bare ``divisor``); ``fifo_depth`` (receive
    FIFO bytes, default 16); ``heartbeat_cycles`` (cycles per heartbeat LED toggle;
    default: half a second at ``clock_hz``, else 2**20); ``pins`` (a :class:`BoardIO`:
    the board's pins, used when elaborated with a platform); ``pll`` (a :class:`PLLPlan`, or
    ``False``: without a platform, for simulation; a bypass plan runs from the
    oscillator directly). See the module docstring.
    """

    @staticmethod
    def _settings(config, *, divisor=None, clock_hz=None, baud=None, idle_bits=None,
                  fifo_depth=16, heartbeat_cycles=None, pins=None, pll=False) -> dict:
        """The checked settings (derived defaults filled in); one-sentence ValueError."""
        if divisor is None:
            if clock_hz is None or baud is None:
                raise ValueError("give either divisor, or clock_hz and baud")
            divisor = divisor_for(clk_hz=clock_hz, baud=baud)
        elif not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be an integer of at least {MIN_DIVISOR} clock "
                             f"cycles per bit, not {divisor!r}")
        if idle_bits is None:
            idle_bits = max(20, round(BREAK_IDLE_S * baud)) if baud else 20
        if not isinstance(idle_bits, int) or idle_bits < 12:
            # a break's framing error (after 9.5 bit times) must come before the reset
            raise ValueError(f"idle_bits must be an integer of at least 12, not {idle_bits!r}")
        if heartbeat_cycles is None:
            heartbeat_cycles = round(clock_hz / 2) if clock_hz else 1 << 20
        if not isinstance(heartbeat_cycles, int) or heartbeat_cycles < 1:
            raise ValueError(f"heartbeat_cycles must be a positive integer, "
                             f"not {heartbeat_cycles!r}")
        if pll is not False and not isinstance(pll, PLLPlan):
            raise ValueError(f"pll must be a PLLPlan or False, not {pll!r}")
        if not isinstance(fifo_depth, int) or isinstance(fifo_depth, bool) or fifo_depth < 2:
            raise ValueError(f"fifo_depth must be an integer of at least 2, not {fifo_depth!r}")
        top_class(config).check(config)
        return dict(divisor=divisor, clock_hz=clock_hz, baud=baud, idle_bits=idle_bits,
                    fifo_depth=fifo_depth, heartbeat_cycles=heartbeat_cycles, pins=pins, pll=pll)

    @classmethod
    def check(cls, config, **options):
        cls._settings(config, **options)

    def __init__(self, config, *, divisor: int | None = None, clock_hz: float | None = None,
                 baud: int | None = None, idle_bits: int | None = None, fifo_depth: int = 16,
                 heartbeat_cycles: int | None = None, pins: BoardIO | None = None,
                 pll: PLLPlan | bool = False):
        # checked before the object existed (ArgumentChecked): nothing below raises
        v = self._settings(config, divisor=divisor, clock_hz=clock_hz, baud=baud,
                           idle_bits=idle_bits, fifo_depth=fifo_depth,
                           heartbeat_cycles=heartbeat_cycles, pins=pins, pll=pll)
        divisor, idle_bits, heartbeat_cycles = v["divisor"], v["idle_bits"], v["heartbeat_cycles"]
        self.uart = UARTBridge(divisor=divisor, fifo_depth=fifo_depth, idle_bits=idle_bits)
        self.accelerator = top_for(config)
        self.config = config
        self.divisor = divisor
        self.clock_hz = clock_hz
        self.baud = baud
        self.idle_bits = idle_bits
        self.fifo_depth = fifo_depth
        self.heartbeat_cycles = heartbeat_cycles
        self.pins = pins
        self.pll = pll
        super().__init__({
            "uart_rx": In(1, init=1),
            "uart_tx": Out(1, init=1),
            "reset_button": In(1),
            "led_heartbeat": Out(1),
            "led_busy": Out(1),
            "led_error": Out(1),
        })

    def _pins(self, m, platform):
        """Wire the ports to the board's resources and make the ``sync`` domain."""
        if self.pins is None:
            raise ValueError("BoardTop needs pins= (a BoardIO) to be built for a board")
        if self.pins.extra_resources:
            platform.add_resources(getattr(platform, self.pins.extra_resources))
        if self.pll is False:
            raise ValueError("a BoardTop built for a board needs pll= a PLLPlan (board_top "
                             "makes one; a bypass plan uses the oscillator directly)")
        plan = self.pll
        m.submodules.clock = clock = PLLDomain(plan)
        m.domains.sync = clock.domain

        def buffer(direction, res, sub=None):
            port = platform.request(*res, dir="-")
            if sub is not None:
                port = getattr(port, sub)
            buf = io.Buffer(direction, port)
            m.submodules[f"pin_{res[0]}_{res[1]}{'_' + sub if sub else ''}"] = buf
            return buf

        uart = platform.request(*self.pins.uart, dir="-")
        m.submodules.pin_uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.pin_uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [self.uart_rx.eq(rx.i), tx.o.eq(self.uart_tx)]
        for name in ("led_heartbeat", "led_busy", "led_error"):
            m.d.comb += buffer("o", getattr(self.pins, name)).o.eq(getattr(self, name))
        if self.pins.reset_button is not None:
            m.d.comb += self.reset_button.eq(buffer("i", self.pins.reset_button).i)

    def elaborate(self, platform):
        if platform is None and self.pll is not False:
            raise ValueError("a BoardTop with a PLL needs a platform; use pll=False to simulate")
        m = Module()
        if platform is not None:
            self._pins(m, platform)

        m.submodules.uart = uart = self.uart
        m.d.comb += [uart.rx.eq(self.uart_rx), self.uart_tx.eq(uart.tx)]

        button = Signal()
        m.submodules.button_sync = FFSynchronizer(self.reset_button, button)
        # accelerator and LED state: a line break or the button (registered: it fans out
        # to every flip-flop of the accelerator)
        reset = Signal()
        m.d.sync += reset.eq(uart.line_break | button)

        acc = self.accelerator
        m.submodules.accelerator = ResetInserter(reset)(acc)
        # While in reset the FIFO is drained and nothing leaves.
        m.d.comb += [
            acc.rx.payload.eq(uart.o.payload), acc.rx.valid.eq(uart.o.valid & ~reset),
            uart.o.ready.eq(acc.rx.ready | reset),
            uart.i.payload.eq(acc.tx.payload), uart.i.valid.eq(acc.tx.valid & ~reset),
            acc.tx.ready.eq(uart.i.ready & ~reset),
        ]
        abort = Signal()
        m.d.comb += [abort.eq(uart.idle & ~acc.rx.valid), acc.rx_abort.eq(uart.idle)]

        mon = LinkMonitor(max_payload=acc.max_payload)
        m.submodules.monitor = ResetInserter(reset)(mon)
        m.d.comb += [
            mon.rx_byte.eq(acc.rx.payload), mon.rx_fire.eq(acc.rx.valid & acc.rx.ready),
            mon.abort.eq(abort),
            mon.tx_byte.eq(acc.tx.payload), mon.tx_fire.eq(acc.tx.valid & acc.tx.ready),
        ]

        # Framing errors since the last reset (a break's own framing error is cleared by it).
        fe_base = Signal(16)
        with m.If(reset):
            m.d.sync += fe_base.eq(uart.framing_errors)

        heartbeat = Signal()
        beat = Signal(range(self.heartbeat_cycles))
        with m.If(beat == self.heartbeat_cycles - 1):
            m.d.sync += [beat.eq(0), heartbeat.eq(~heartbeat)]
        with m.Else():
            m.d.sync += beat.eq(beat + 1)

        m.d.comb += [
            self.led_heartbeat.eq(heartbeat),
            self.led_busy.eq(mon.busy),
            self.led_error.eq(mon.bad_status | (uart.framing_errors != fe_base)),
        ]
        return m


def board_top(board, config, *, clock_mhz: float | None = None, pll: PLLPlan | bool = True,
              baud: int | None = None):
    """``(top, platform)``: the :class:`BoardTop` of ``config`` for ``board`` (a
    :class:`~spikeforge.boards.registry.Board` or its name) and its amaranth-boards
    platform, for ``platform.build(top, ...)``.

    ``clock_mhz``: the target clock (default: the board's); ``pll``: ``True`` (a PLL from
    the oscillator to the target), a :class:`PLLPlan` already made for it, or ``False``
    (the oscillator directly); ``baud``: default :func:`choose_baud` at the clock the PLL
    makes. The top carries ``plan`` (the PLLPlan), ``clock_hz``, ``baud`` and ``divisor``.
    Raises ``ValueError`` with one sentence for an unknown board, a clock the PLL cannot
    make or a rate the UART cannot make.
    """
    from .registry import BOARDS
    if isinstance(board, str):
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}; allowed: {sorted(BOARDS)}")
        board = BOARDS[board]
    if board.name not in BOARD_IO:
        raise ValueError(f"board {board.name!r} has no board top pins; "
                         f"allowed: {sorted(BOARD_IO)}")
    pins = BOARD_IO[board.name]
    osc = board.osc_hz / 1e6
    if isinstance(pll, PLLPlan):
        plan = pll
    elif pll:
        plan = plan_pll(board.family, osc, board.target_mhz if clock_mhz is None else clock_mhz)
    else:
        if clock_mhz is not None and abs(clock_mhz - osc) > 1e-9:
            raise ValueError(f"without a PLL the clock is the oscillator's {osc:g} MHz, "
                             f"not {clock_mhz:g} MHz")
        plan = plan_pll(board.family, osc, osc)
    clock_hz = plan.out_mhz * 1e6
    if baud is None:
        baud = choose_baud(clock_hz=clock_hz, max_baud=pins.max_baud)
    elif baud > pins.max_baud:
        raise ValueError(f"{baud} baud is more than the {pins.uart_chip} of {board.name} "
                         f"carries; allowed: up to {pins.max_baud}")
    top = BoardTop(config, clock_hz=clock_hz, baud=baud, pins=pins, pll=plan)
    top.plan = plan
    top.board = board
    return top, board.make_platform()
