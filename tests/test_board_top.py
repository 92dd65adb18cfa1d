# amaranth: UnusedElaboratable=no
"""The board top without a board or a simulator of the whole design.

UART rates against rates worked out by hand from the chips' limits and the 2 %
rule; the pins each board's constraint file gets (from the boards' schematics
as amaranth-boards names them); argument errors; the link monitor behind the
busy and error LEDs on byte streams built from docs/host-protocol.md's
framing. The LEDs, the reset on a break and ``abort`` on the whole design run
in tests/test_uart_path.py (Verilator).
"""

import pytest
from amaranth.sim import Simulator

from spikeforge.boards.top import BOARD_IO, BoardTop, LinkMonitor, board_top, choose_baud
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import Status
from spikeforge.sim.host.driver import encode_request, encode_response


def _unbuilt(top):
    """A top made by ``board_top`` only to look at: the warning that it was never
    elaborated is silenced for it and its parts (Amaranth's per-object switch)."""
    for obj in (top, top.uart, top.accelerator, top.accelerator.core):
        obj._MustUse__silence = True
    return top


@pytest.mark.parametrize("clock_hz,max_baud,want", [
    (100e6, 3_000_000, 3_000_000),      # ULX3S: 33 cycles per bit, 3.03 MBd (1.0 % fast)
    (24e6, 12_000_000, 3_000_000),      # iCEBreaker: 8 cycles per bit exactly; 4 MBd needs 6
    (12e6, 12_000_000, 1_000_000),      # 12 MHz: 3 MBd needs 4, 2 MBd 6, 1 MBd 12 cycles
    # 25 MHz: 3 MBd -> 8 cycles, 3.125 MBd (4.2 % fast); 2 MBd -> 12 (12.5 rounded to
    # even), 2.083 MBd (4.2 % fast); 1 MBd -> 25 cycles exactly
    (25e6, 3_000_000, 1_000_000),
])
def test_choose_baud(clock_hz, max_baud, want):
    assert choose_baud(clock_hz=clock_hz, max_baud=max_baud) == want


def test_choose_baud_too_slow_a_clock():
    with pytest.raises(ValueError,
                       match="no standard UART rate up to 3000000 baud works at 0.5 MHz"):
        choose_baud(clock_hz=0.5e6, max_baud=3_000_000)


@pytest.mark.parametrize("board,mhz,baud,divisor,pins", [
    ("ulx3s-85f", 100.0, 3_000_000, 33,
     ['"uart_0__rx__io" SITE "M1"', '"uart_0__tx__io" SITE "L4"', '"led_0__io" SITE "B2"',
      '"led_1__io" SITE "C2"', '"led_7__io" SITE "H3"', '"button_pwr_0__io" SITE "D6"',
      '"clk25_0__io" SITE "G2"']),
    ("icebreaker", 24.0, 3_000_000, 8,
     ["set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9", "set_io led_g_0__io 37",
      "set_io led_r_0__io 11", "set_io led_g_1__io 27", "set_io button_0__io 10",
      "set_io clk12_0__io 35"]),
])
def test_board_top_pins_and_rates(board, mhz, baud, divisor, pins):
    top, platform = board_top(board, preset("tiny"))
    assert (top.plan.out_mhz, top.baud, top.divisor) == (mhz, baud, divisor)
    assert top.idle_bits == 6000                    # 2 ms at 3 MBd
    plan = platform.build(top, name="top", do_build=False)
    constraints = next(text for name, text in plan.files.items()
                       if name.endswith((".lpf", ".pcf")))
    for pin in pins:
        assert pin in constraints
    rtlil = plan.files["top.il"]
    assert ("EHXPLLL" if board.startswith("ulx3s") else "SB_PLL40_PAD") in rtlil


def test_board_top_ulx3s_45f_uses_its_platform():
    top, platform = board_top("ulx3s-45f", preset("tiny"), clock_mhz=50.0)
    _unbuilt(top)
    assert type(platform).__name__ == "ULX3S_45F_Platform"
    assert (top.plan.out_mhz, top.baud, top.divisor) == (50.0, 3_000_000, 17)
    assert BOARD_IO["ulx3s-45f"] == BOARD_IO["ulx3s-85f"]


def test_board_top_without_pll_runs_from_the_oscillator():
    top = _unbuilt(board_top("icebreaker", preset("tiny"), pll=False)[0])
    assert top.plan.bypass and top.clock_hz == 12e6 and top.baud == 1_000_000


@pytest.mark.parametrize("call,message", [
    (lambda: board_top("de10-nano", preset("tiny")), "unknown board 'de10-nano'; allowed: ["),
    (lambda: board_top("ulx3s-85f", preset("tiny"), baud=12_000_000),
     "12000000 baud is more than the FTDI FT231X of ulx3s-85f carries; allowed: up to 3000000"),
    (lambda: board_top("ulx3s-85f", preset("tiny"), pll=False, clock_mhz=50),
     "without a PLL the clock is the oscillator's 25 MHz, not 50 MHz"),
    (lambda: board_top("icebreaker", preset("tiny"), clock_mhz=500),
     "outside the ice40 PLL's range"),
    (lambda: BoardTop(preset("tiny")), "give either divisor, or clock_hz and baud"),
    (lambda: BoardTop(preset("tiny"), divisor=4), "divisor must be an integer of at least 8"),
    (lambda: BoardTop(preset("tiny"), divisor=8, idle_bits=5),
     "idle_bits must be an integer of at least 12"),
    (lambda: BoardTop(preset("tiny"), clock_hz=24e6, baud=4_000_000),
     "4000000 baud needs at least 8"),
    (lambda: BoardTop(preset("tiny"), divisor=8, fifo_depth=1),
     "fifo_depth must be an integer of at least 2"),
])
def test_board_top_argument_errors(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_board_top_with_pll_needs_a_platform():
    top = _unbuilt(board_top("ulx3s-85f", preset("tiny"))[0])
    with pytest.raises(ValueError, match="needs a platform; use pll=False"):
        top.elaborate(None)


# ---- the link monitor (busy and error LEDs)

def _monitor_run(events, max_payload=16):
    """``events``: ("rx", bytes) / ("tx", bytes) transfers a byte per cycle, ("abort", n)
    cycles of abort, ("check", busy, bad_status) the outputs now."""
    dut = LinkMonitor(max_payload=max_payload)
    checked = []

    async def bench(ctx):
        for k, ev in enumerate(events):
            if ev[0] in ("rx", "tx"):
                for byte in ev[1]:
                    ctx.set(getattr(dut, f"{ev[0]}_byte"), byte)
                    ctx.set(getattr(dut, f"{ev[0]}_fire"), 1)
                    await ctx.tick()
                ctx.set(getattr(dut, f"{ev[0]}_fire"), 0)
            elif ev[0] == "abort":
                ctx.set(dut.abort, 1)
                await ctx.tick().repeat(ev[1])
                ctx.set(dut.abort, 0)
            else:
                await ctx.tick()
                got = (ctx.get(dut.busy), ctx.get(dut.bad_status))
                assert got == ev[1:], f"event {k}: busy, bad_status = {got}, want {ev[1:]}"
                checked.append(k)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return checked


def test_link_monitor_busy_and_error():
    req = encode_request(0x20, b"\x01\x02\x03")
    ok = encode_response(Status.OK, 0x20, b"\xA5\x5A\x00")          # sync bytes in a payload
    bad = encode_response(Status.BAD_CRC, 0x20, b"")
    too_long = encode_request(0x20, bytes(20))                      # max_payload 16
    events = [
        ("check", 0, 0),
        ("rx", b"\x00\x5A\x13"), ("check", 0, 0),                   # garbage: ignored
        ("rx", req[:2]), ("check", 1, 0),                           # a request has begun
        ("rx", req[2:]), ("check", 1, 0),                           # complete, outstanding
        ("tx", ok[:-1]), ("check", 1, 0),
        ("tx", ok[-1:]), ("check", 0, 0),                           # answered
        ("rx", req), ("tx", bad), ("check", 0, 1),                  # BAD_CRC: error lit
        ("rx", req[:5]), ("abort", 2), ("check", 0, 1),             # dropped by abort
        ("rx", req), ("check", 1, 1), ("tx", ok), ("check", 0, 0),  # error clears on OK
        ("rx", too_long[:8]), ("tx", encode_response(Status.BAD_LENGTH, 0x20, b"")),
        ("check", 0, 1),                                            # answered early
        ("abort", 1), ("check", 0, 1),                              # discard cut: not counted
        ("rx", req), ("tx", ok), ("check", 0, 0),
        ("rx", too_long), ("tx", encode_response(Status.BAD_LENGTH, 0x20, b"")),
        ("rx", req), ("check", 1, 1), ("tx", ok), ("check", 0, 0),  # discard ran to its end
    ]
    assert len(_monitor_run(events)) == sum(ev[0] == "check" for ev in events)
