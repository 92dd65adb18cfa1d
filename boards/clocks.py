"""The ``sync`` clock of a board build: the oscillator through a PLL.

:func:`plan_pll` chooses divider settings for the board's family (the same
search as Trellis' ``ecppll`` and IceStorm's ``icepll``) and gives the frequency
the PLL really makes; :class:`PLLDomain` instantiates it and creates the
``sync`` domain, held in reset until the PLL locks. When the target equals the
oscillator no PLL is built. nextpnr derives the PLL output's timing
constraint from the oscillator's and the dividers, so the report's
``target_mhz`` (the frequency the PLL makes) is what timing was checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["PLLPlan", "plan_pll", "pll_range_mhz", "PLLDomain"]

#: output frequency range of each family's PLL (MHz).
_RANGE = {"ecp5": (10.0, 400.0), "ice40": (16.0, 275.0)}


def pll_range_mhz(family: str) -> tuple[float, float]:
    return _RANGE[family]


@dataclass(frozen=True)
class PLLPlan:
    family: str
    in_mhz: float
    out_mhz: float          # what the PLL makes (0 dividers when bypassed)
    params: dict            # divider settings (empty: no PLL, the oscillator directly)

    @property
    def bypass(self) -> bool:
        return not self.params


def _ecp5(fin, fout):
    best = None
    for in_div in range(1, 129):
        fpfd = fin / in_div
        if not 3.125 <= fpfd <= 400:
            continue
        for fb_div in range(1, 81):
            out = fpfd * fb_div
            op_div = -(-400 // out)             # smallest divider with the VCO >= 400 MHz
            if not 1 <= op_div <= 128 or out * op_div > 800:
                continue
            err = abs(out - fout)
            if best is None or err < best[0]:
                best = (err, out, dict(CLKI_DIV=in_div, CLKFB_DIV=fb_div, CLKOP_DIV=int(op_div),
                                       CLKOP_CPHASE=int(op_div) - 1))
    return best


def _ice40(fin, fout):
    best = None
    for divr in range(16):
        fdiv = fin / (divr + 1)
        if not 10 <= fdiv <= 133:
            continue
        for divf in range(128):
            fvco = fdiv * (divf + 1)
            if not 533 <= fvco <= 1066:
                continue
            for divq in range(1, 7):
                out = fvco / 2 ** divq
                err = abs(out - fout)
                if best is None or err < best[0]:
                    rng = 1 + sum(fdiv >= lim for lim in (17, 26, 44, 66, 101))
                    best = (err, out, dict(DIVR=divr, DIVF=divf, DIVQ=divq, FILTER_RANGE=rng))
    return best


def plan_pll(family: str, in_mhz: float, target_mhz: float) -> PLLPlan:
    """Dividers for ``target_mhz`` from ``in_mhz``; raises ValueError outside the PLL's range."""
    if abs(target_mhz - in_mhz) < 1e-9:
        return PLLPlan(family, in_mhz, in_mhz, {})
    lo, hi = _RANGE[family]
    if not lo <= target_mhz <= hi:
        raise ValueError(f"target {target_mhz:g} MHz is outside the {family} PLL's range; "
                         f"allowed: {lo:g} to {hi:g} MHz, or the oscillator's {in_mhz:g} MHz")
    best = {"ecp5": _ecp5, "ice40": _ice40}[family](in_mhz, target_mhz)
    return PLLPlan(family, in_mhz, round(best[1], 6), best[2])


class PLLDomain(Elaboratable):
    """Drives ``self.domain`` (``sync``) from the board oscillator through ``plan``; the
    domain is held in reset until the PLL locks. The parent adds ``self.domain`` to its
    module (domains are defined where they are used)."""

    def __init__(self, plan: PLLPlan):
        self.plan = plan
        self.domain = ClockDomain("sync")
        self.clk = self.domain.clk

    def elaborate(self, platform):
        m = Module()
        clk_io = platform.request(platform.default_clk, dir="-")
        locked = Signal()
        p = self.plan
        if p.family != "ice40" or p.bypass:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_io)
        if p.bypass:
            m.d.comb += [self.clk.eq(clk_buf.i), locked.eq(1)]
        elif p.family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{p.in_mhz:g}",
                a_FREQUENCY_PIN_CLKOP=f"{p.out_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p.params["CLKI_DIV"], p_CLKFB_DIV=p.params["CLKFB_DIV"],
                p_CLKOP_DIV=p.params["CLKOP_DIV"], p_CLKOP_CPHASE=p.params["CLKOP_CPHASE"],
                p_CLKOP_ENABLE="ENABLED", p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i, i_CLKFB=self.clk,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=self.clk, o_LOCK=locked)
        elif p.family == "ice40":
            # The iCE40 PLL sits behind the clock pad: it takes the pin itself.
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=p.params["DIVR"], p_DIVF=p.params["DIVF"], p_DIVQ=p.params["DIVQ"],
                p_FILTER_RANGE=p.params["FILTER_RANGE"],
                i_PACKAGEPIN=clk_io.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=self.clk, o_LOCK=locked)
        else:  # pragma: no cover - registry and plan_pll agree on families
            raise ValueError(f"no PLL for family {p.family!r}")
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
        return m
