"""The boards and blocks ``spikeforge build`` knows.

A :class:`Board` names an amaranth-boards platform, the device's resource
totals (for the report), the clock the build is checked against, and two pins
the boundary wrapper uses (a stimulus input and an observation output).

A :class:`Block` is anything that can be built: a factory that takes the parsed
:class:`~spikeforge.hdl.config.BuildConfig` and returns an Amaranth
``wiring.Component``. Owners of later blocks register them with one call::

    register_block("router", lambda config: Router(config),
                   "one NoC router", options=("cores",))

The factories import their modules lazily, so this registry imports (and the
command's argument errors work) even while a block's module does not exist yet.
Ports a block wants on real pins (a UART, say) are listed in
``Block.board_ports``; every other port goes through the boundary registers of
:mod:`spikeforge.boards.wrapper`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

__all__ = [
    "Board", "Block", "BOARDS", "BLOCKS", "register_board", "register_block",
]


@dataclass(frozen=True)
class Board:
    """An FPGA board: its platform, totals and clocking."""

    name: str
    #: ``"module:Class"`` of the amaranth-boards platform (imported when building).
    platform: str
    family: str                      # "ecp5" or "ice40": selects the PLL and report names
    device: str
    description: str
    osc_hz: float                    # the board oscillator (``default_clk``)
    target_mhz: float                # default clock target of a build
    luts_total: int
    dsps_total: int
    brams_total: int
    #: nextpnr ``--report`` utilisation names of the counted resources.
    lut_cell: str
    dsp_cell: str
    bram_cell: str
    #: where flip-flops are counted: ("nextpnr", cell) or ("yosys", cell-name prefix).
    ff_source: tuple[str, str]
    #: extra Yosys ``synth_<family>`` options.
    synth_opts: str = ""
    #: the wrapper's stimulus input pin and observation output pin: (resource, number).
    stim_pin: tuple[str, int] = ("button", 0)
    observe_pin: tuple[str, int] = ("led", 0)

    def make_platform(self):
        import importlib
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)()


@dataclass(frozen=True)
class Block:
    """A buildable unit: ``factory(config) -> wiring.Component``."""

    name: str
    factory: Callable[..., object]
    description: str
    #: the command-line options that change this block (shown in the summary).
    options: tuple[str, ...] = ()
    #: top-level port name -> (resource, number, subsignal or None) wired to board pins.
    board_ports: Mapping[str, tuple] = field(default_factory=dict)


BOARDS: dict[str, Board] = {}
BLOCKS: dict[str, Block] = {}


def register_board(board: Board) -> Board:
    if board.name in BOARDS:
        raise ValueError(f"board {board.name!r} is registered twice")
    BOARDS[board.name] = board
    return board


def register_block(name: str, factory, description: str, *, options=(), board_ports=None) -> Block:
    """Register a block under ``name`` (one entry per block)."""
    if name in BLOCKS:
        raise ValueError(f"block {name!r} is registered twice")
    block = Block(name, factory, description, tuple(options), dict(board_ports or {}))
    BLOCKS[name] = block
    return block


# ---------------------------------------------------------------------------- boards

register_board(Board(
    name="ulx3s-85f",
    platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
    family="ecp5", device="LFE5U-85F",
    description="Radiona ULX3S with a Lattice ECP5 LFE5U-85F, 25 MHz oscillator",
    osc_hz=25e6, target_mhz=100.0,
    luts_total=83_640, dsps_total=156, brams_total=208,
    lut_cell="TRELLIS_COMB", dsp_cell="MULT18X18D", bram_cell="DP16KD",
    ff_source=("nextpnr", "TRELLIS_FF"),
    # ABC9 maps with the LUT delays: on the fp16 FMA (6 stages) 24 % fewer LUTs and a
    # slightly higher fmax than the default ABC mapping.
    synth_opts="-abc9",
))

register_board(Board(
    name="ulx3s-45f",
    platform="amaranth_boards.ulx3s:ULX3S_45F_Platform",
    family="ecp5", device="LFE5U-45F",
    description="Radiona ULX3S with a Lattice ECP5 LFE5U-45F, 25 MHz oscillator",
    osc_hz=25e6, target_mhz=100.0,
    luts_total=43_848, dsps_total=72, brams_total=108,
    lut_cell="TRELLIS_COMB", dsp_cell="MULT18X18D", bram_cell="DP16KD",
    ff_source=("nextpnr", "TRELLIS_FF"),
    synth_opts="-abc9",
))

register_board(Board(
    name="icebreaker",
    platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
    family="ice40", device="iCE40UP5K",
    description="1BitSquared iCEBreaker with a Lattice iCE40 UP5K, 12 MHz oscillator",
    osc_hz=12e6, target_mhz=24.0,
    luts_total=5_280, dsps_total=8, brams_total=30,
    lut_cell="ICESTORM_LC", dsp_cell="ICESTORM_DSP", bram_cell="ICESTORM_RAM",
    ff_source=("yosys", "SB_DFF"),
    synth_opts="-dsp",
))


# ---------------------------------------------------------------------------- blocks

def _fma(config):
    from spikeforge.hdl.fp16 import FMA
    return FMA(stages=config.implementation.fma_stages)


def _pe_array(config):
    from spikeforge.hdl.pe_array import PEArray
    return PEArray(lanes=config.features.lanes, stages=config.implementation.fma_stages)


register_block("fma", _fma, "one fp16 fused multiply-add lane", options=("stages",))
def _fp16_add(config):
    from spikeforge.hdl.fp16_add import FPAdd
    return FPAdd(stages=config.implementation.fma_stages)


register_block("fp16-add", _fp16_add, "one fp16 add lane (exact addition, no multiplier)",
               options=("stages",))
register_block("pe-array", _pe_array, "the array of fp16 FMA lanes the engines drive",
               options=("lanes", "stages"))


def _router(config):
    # The centre router of (at least) a 3x3 mesh, so all five ports are live.
    from spikeforge.hdl.noc.packet import PacketFormat
    from spikeforge.hdl.noc.router import Router
    feat, impl = config.features, config.implementation
    fmt = PacketFormat(max(3, feat.rows), max(3, feat.cols), impl.flit_width)
    return Router(fmt, 1, 1, depth=impl.router_buffer_depth)


register_block("router", _router, "one five-port NoC router (XY, wormhole, round-robin)",
               options=("cores",))
register_block("core", lambda config: __import__("spikeforge.hdl.core", fromlist=["Core"]).Core(config), "one core: memories, FP / BP / WG engines, loss unit, command decoder", options=("lanes", "stages"))
def _lane_datapath(config):
    from spikeforge.hdl.core.defs import CoreGeometry
    from spikeforge.hdl.core.lane_datapath import LaneDatapath
    return LaneDatapath(CoreGeometry(config))


register_block("lane-datapath", _lane_datapath, "a core's lane datapath alone: its memories, "
               "operand selection, rotator, lanes and write-back", options=("lanes", "stages"))
register_block("inference-core", lambda config: __import__("spikeforge.hdl.inference", fromlist=["InferenceCore"]).InferenceCore(config), "one integer inference core (SPEC section 8): accumulate-only lanes, packed weights, command unit", options=("lanes",))
