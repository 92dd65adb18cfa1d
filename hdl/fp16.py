"""Exact IEEE 754 binary16 fused multiply-add, pipelined.

:class:`FMA` computes ``round(a*b + c)`` with a single rounding to nearest,
ties to even, exactly as SPEC section 2 for every input pattern: subnormal
inputs and results (no flush to zero), signed zeros as IEEE 754 defines them,
overflow to +-inf, and any NaN result as the canonical quiet NaN ``0x7E00``.
The bit-exact reference is :func:`spikeforge.sim.golden.fp16.fma`.

Datapath (see ``docs/fp16.md``): the product and the addend are placed in one
44-bit fixed-point window whose least significant bit weighs 2**-26, two bits
below the smallest binary16 ulp (2**-24). Product bits below the window are
OR-ed into its lowest bit (round to odd), which keeps the single final
rounding exact. The sum is normalised by a left shift of at most 31 places (the
shift stops at the subnormal boundary, so subnormal results need no special
case) and rounded once. Eight combinational steps (decode, pre-shift, multiply,
align, add, count leading zeros, normalise, round); ``stages`` registers go between
them as :data:`FMA_BOUNDARIES` says. The shifts are split across registers (Yosys'
ABC9 maps a shifter between two registers as one wide multiplexer per bit), and the
multiplier does the low three bits of the product's alignment. On an ECP5 the
product is a ``MULT18X18D`` with its own input and output registers
(:func:`dsp_registers`). A product of magnitude >= 2**17 overflows whatever the
addend is and is flagged early.

Interface and timing:

* ``i``: stream of ``{"a": 16, "b": 16, "c": 16}`` (``a`` in the lowest bits);
  ``o``: stream of the 16-bit result.
* Latency ``stages`` cycles (:attr:`FMA.latency`), one result per cycle while
  ``o.ready`` is high, results in order.
* Back-pressure: the whole pipeline advances on one enable,
  ``en = o.ready | ~o.valid``; ``i.ready = en`` (a combinational path from
  ``o.ready``, so ``o.ready`` must not depend combinationally on ``i.ready``). A stalled output freezes every stage; bubbles in the pipeline
  are squeezed out only while the output is empty. Nothing is dropped or
  duplicated. Only the valid bits are reset; datapath registers are not.

For reuse inside engines, :func:`fma_pipeline` builds the same datapath into any
module with a caller-supplied clock enable, and :func:`fma_comb` builds it with
no registers at all.
"""

from __future__ import annotations

from amaranth import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .checked import ArgumentChecked
from .config import FMA_MAX_STAGES, Implementation

__all__ = [
    "OPERANDS", "DEFAULT_STAGES", "MAX_STAGES", "CANONICAL_NAN",
    "FMA", "fma_pipeline", "fma_comb", "register_boundaries", "pipeline_control",
    "build_steps", "dsp_registers", "FMA_BOUNDARIES", "lzc", "round_pack", "SIX_STEP_BOUNDARIES", "StreamPipeline",
]

#: Operand layout of one FMA: ``a`` in bits 0..15, ``b`` in 16..31, ``c`` in 32..47.
OPERANDS = data.StructLayout({"a": 16, "b": 16, "c": 16})

#: Default number of pipeline registers: the configuration's default ``fma_stages``
#: (meets 100 MHz on ECP5-85F speed 6; docs/fp16.md).
DEFAULT_STAGES = Implementation().fma_stages
#: Largest ``stages`` accepted (the configuration's limit).
MAX_STAGES = FMA_MAX_STAGES

CANONICAL_NAN = 0x7E00
_INF = 0x7C00

# Window: bit j weighs 2**(j - 26); 44 bits hold any non-overflowing |a*b + c|.
_W = 44
_NORM_SHIFT_MAX = 31  # 43 - 12: bit 12 weighs 2**-14, the smallest normal


def _check_stages(stages, lo=1):
    if not isinstance(stages, int) or isinstance(stages, bool) or not lo <= stages <= MAX_STAGES:
        raise ValueError(f"stages must be an integer between {lo} and {MAX_STAGES}, not {stages!r}")


# --- the seven combinational steps ------------------------------------------------------
# Each step takes a dict of Values and returns a dict holding everything later steps need.
# ``w(key, value)`` names an intermediate (a comb Signal) so that it is built once.

def _decode(w, x, n):
    exp = x[10:15]
    frac = x[0:10]
    sub = w(f"{n}_sub", exp == 0)
    return dict(
        sign=x[15],
        sig=w(f"{n}_sig", Cat(frac, ~sub)),      # 11-bit significand with hidden bit
        eff=w(f"{n}_eff", Cat(exp[0] | sub, exp[1:5])),  # max(exp, 1), 1..30 (31: special)
        zero=sub & (frac == 0),
        inf=(exp == 31) & (frac == 0),
        nan=(exp == 31) & (frac != 0),
    )


def _ctz11(w, sig, name):
    """Trailing zeros of an 11-bit significand (any value when it is zero)."""
    _, n = lzc(w, Cat(Const(0b11111, 5), *[sig[i] for i in reversed(range(11))]), name)
    return n


def _step_decode(w, v):
    """Decode, exponent sum, special cases."""
    a, b, c = _decode(w, v["a"], "a"), _decode(w, v["b"], "b"), _decode(w, v["c"], "c")
    sp = w("sp", a["sign"] ^ b["sign"])
    sc = c["sign"]
    pinf = w("pinf", a["inf"] | b["inf"])
    nan = w("nan", a["nan"] | b["nan"] | c["nan"]
            | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"])
            | (pinf & c["inf"] & (sp != sc)))
    return dict(
        sig_a=a["sig"], sig_b=b["sig"],
        es=w("es", a["eff"] + b["eff"]),       # 2..60: product lsb weighs 2**(es-50)
        # trailing zeros of the product (the sum of the operands'): for the sticky bit
        tz=w("tz", _ctz11(w, a["sig"], "tza") + _ctz11(w, b["sig"], "tzb")),
        pnz=~(a["zero"] | b["zero"]),
        sig_c=c["sig"], eff_c=c["eff"], sp=sp, sc=sc, effsub=sp != sc,
        nan=nan, inf=pinf | c["inf"], inf_sign=Mux(pinf, sp, sc))


def _step_preshift(w, v):
    """The first, short part of both alignment shifts: ``sig_b`` is shifted by
    ``es mod 8`` into the multiplier's 18-bit port (the multiplier does that part of the
    product's alignment), the addend by ``eff_c mod 4``."""
    es = v["es"]
    return {**{k: v[k] for k in _PASS + ("sig_a", "es", "tz", "pnz")},
            "sig_b8": w("sig_b8", (v["sig_b"] << es[0:3])[0:18]),
            "c4": w("c4", v["sig_c"] << v["eff_c"][0:2]), "eff_c4": v["eff_c"][2:5]}


_PASS = ("sp", "sc", "effsub", "nan", "inf", "inf_sign")


def _step_multiply(w, v):
    """The significand product (one MULT18X18D) alone on its path; beside it, the addend
    in the window and the product's flags that need only the exponents."""
    es = v["es"]
    # Product bits below the window (below 2**-26, i.e. bit positions below 24 - es) are
    # non-zero iff the product is and its trailing zeros are fewer: tz + es < 24.
    jam = v["pnz"] & ((v["tz"] + es) < 24)
    return {**{k: v[k] for k in _PASS},
            # sig_a * sig_b * 2**(es mod 8), 29 bits: one MULT18X18D (made apart, with
            # its own registers, on an ECP5: fma_pipeline)
            **({"prod8": v["sig_a"] * v["sig_b8"]} if "sig_a" in v else {}),
            "es8": es[3:6], "jam": jam, "es_ge47": es >= 47, "es_eq46": es == 46,
            # addend lsb weighs 2**(eff_c - 25): window position eff_c + 1
            "cw": w("cw", Cat(Const(0, 1), v["c4"] << Cat(Const(0, 2), v["eff_c4"]))[0:_W])}


def _step_align(w, v):
    """Place the product in the window: its lsb at position es - 24."""
    prod8 = v["prod8"]                       # the product shifted by es mod 8
    pw = (prod8 << Cat(Const(0, 3), v["es8"]))[24:24 + _W]
    # |a*b| >= 2**17 (both operands normal here) overflows whatever c is:
    # prod*2**(es-50) >= 2**17  <=>  es >= 47, or es == 46 and prod >= 2**21 (bit 27 of
    # prod8 then). Such a product becomes some value in [2**17, 1.5 * 2**17) (bit 43 set,
    # bit 42 clear): with |c| < 2**16 the sum stays in 44 bits, above 2**16, with the
    # product's sign, and rounds to inf.
    ovf = v["es_ge47"] | (v["es_eq46"] & prod8[27])
    # Round to odd at 2**-26: the jammed bits are OR-ed into the lowest bit.
    pw = w("pw", Cat(pw[0] | v["jam"], pw[1:_W - 2], pw[_W - 2] & ~ovf, pw[_W - 1] | ovf))
    # the addend, complemented for an effective subtraction
    return {**{k: v[k] for k in _PASS}, "pw": pw,
            "cwx": w("cwx", v["cw"] ^ v["effsub"].replicate(_W))}


def _step_add(w, v):
    """Signed sum as sign and magnitude."""
    pw, cwx, effsub = v["pw"], v["cwx"], v["effsub"]
    # Adding: pw + cw. Subtracting: t = pw - cw (mod 2**44), and u = pw + ~cw, whose
    # complement is cw - pw. Two carry chains side by side.
    # (the carry-in effsub enters through an extra low bit: one chain)
    t = w("p_pm_c", (Cat(effsub, pw) + Cat(effsub, cwx))[1:_W + 1])
    u = w("p_nc", pw + cwx)       # bit 44: pw > cw (subtracting); equal gives 0 either way
    c_wins = effsub & ~u[_W]
    mag = Mux(c_wins, ~u[0:_W], t)
    return {**{k: v[k] for k in _PASS}, "mag": mag, "sign": Mux(c_wins, v["sc"], v["sp"])}


def lzc(w, x, name):
    """``(all_zero, count)`` of leading zeros of ``x`` (width a power of two); an all-zero
    ``x`` counts ``len(x) - 1``."""
    if len(x) == 2:
        return x == 0, ~x[1]
    half = len(x) // 2
    zl, cl = lzc(w, x[:half], name + "l")
    zh, ch = lzc(w, x[half:], name + "h")
    return w(f"{name}_z", zh & zl), w(f"{name}_n", Cat(Mux(zh, cl, ch), zh))


def _step_count(w, v):
    """Leading zeros of the sum above the subnormal boundary (at most 31), and the first
    part of the normalising shift, by a multiple of 8."""
    mag = v["mag"]
    top_zero, lz = lzc(w, mag[_W - 32:_W], "lzc")   # 31 when the top 32 bits are zero
    zero = top_zero & (mag[:_W - 32] == 0)
    h = lz[3:5]
    y = w("norm8", (mag << Cat(Const(0, 3), h))[0:_W])
    # The bits of y below 25 end below the guard bit whatever the fine shift is.
    low = Array([mag[0:25] != 0, mag[0:17] != 0, mag[0:9] != 0, mag[0]])[h]
    # Exact zero sum: -0 only when both the product and the addend are -0 (RNE).
    return dict(nan=v["nan"], inf=v["inf"], inf_sign=v["inf_sign"],
                y=y[25:_W], low=low, lz=lz,
                sign=Mux(zero, v["sp"] & v["sc"], v["sign"]))


def _step_normalise(w, v):
    """The rest of the shift (by lz mod 8), the sticky bit, the exponent field."""
    y, lz = v["y"], v["lz"]                  # y: bits 25..43 of mag << (lz - lz mod 8)
    f = lz[0:3]
    x = w("norm", (y << f)[0:len(y)])        # bits 25..43 of mag << lz
    # bits 25..31 of y end below the guard bit (32) when i + f < 32
    tail = Cat(y[i] & (f <= 6 - i) for i in range(7))
    # Biased exponent: 32 - lz when the leading one reaches bit 43 (lz < 31), otherwise
    # (a subnormal or zero result, lz = 31) its hidden bit (bit 36 of y).
    ef = w("ef", Mux(lz == 31, y[36 - 25], (32 - lz)[0:6]))
    return dict(nan=v["nan"], inf=v["inf"], inf_sign=v["inf_sign"], sign=v["sign"],
                frac=x[-11:-1], guard=x[-12], sticky=v["low"] | (tail != 0),
                ef=ef, ovf=ef >= 31)


def round_pack(w, v, prefix: str = ""):
    """The last step of a binary16 datapath: round to nearest even, pack, overflow to
    inf, special values. ``v`` holds ``e1`` (biased exponent - 1), ``sig`` (11 bits with
    the hidden bit), ``guard``, ``sticky`` (everything below the guard bit), ``sign``,
    ``is_special`` and ``special``; returns ``{"result": 16-bit pattern}``."""
    sig = v["sig"]
    base = (v["e1"] << 10) + sig      # (E - 1) * 2**10 + significand-with-hidden-bit
    rounded = w(f"{prefix}rounded", (base + (v["guard"] & (v["sticky"] | sig[0])))[0:16])
    mag = Mux(rounded >= _INF, _INF, rounded[0:15])
    return dict(result=w(f"{prefix}result",
                         Mux(v["is_special"], v["special"], Cat(mag, v["sign"]))))


def _step_round(w, v):
    """Round to nearest even, pack, overflow to inf, special values."""
    frac = v["frac"]
    base = Cat(frac, v["ef"][0:5])                # (E-1)*2**10 + significand, 15 bits
    up = w("base_up", (base + 1)[0:15])           # 0x7BFF + 1 = 0x7C00 is inf already
    inc = v["guard"] & (v["sticky"] | frac[0])
    normal = Cat(Mux(v["ovf"], _INF, Mux(inc, up, base)), v["sign"])
    special = Mux(v["nan"], CANONICAL_NAN, Cat(Const(_INF, 15), v["inf_sign"]))
    return dict(result=w("result", Mux(v["nan"] | v["inf"], special, normal)))


_STEPS = (_step_decode, _step_preshift, _step_multiply, _step_align, _step_add,
          _step_count, _step_normalise, _step_round)
STEP_NAMES = "DPMASCNR"
_MUL = 3      # the multiplier is step 3 (P-M between boundaries 2 and 3)

#: Which step boundaries of a six-step datapath carry a register for each ``stages``
#: value: boundary k (1..6) is after step k (6 is the output), 0 is the input. Extra
#: stages delay the output. The add lane uses it.
SIX_STEP_BOUNDARIES = {
    0: (),
    1: (6,),
    2: (3, 6),
    3: (2, 4, 6),
    4: (1, 3, 5, 6),
    5: (1, 2, 3, 5, 6),
    6: (1, 2, 3, 4, 5, 6),
    7: (0, 1, 2, 3, 4, 5, 6),
}

#: The FMA's retiming table: the step boundaries (k: after step k of
#: ``D P M A S C N R``; 8 is the output, 0 the input) that hold a register for each
#: ``stages`` value. The multiplier (step M) has a register on both sides from 3 stages on.
FMA_BOUNDARIES = {
    0: (),
    1: (8,),
    2: (4, 8),
    3: (2, 3, 8),
    4: (2, 3, 5, 8),
    5: (2, 3, 5, 7, 8),
    6: (2, 3, 4, 5, 6, 8),
    7: (1, 2, 3, 4, 5, 6, 8),
    8: (1, 2, 3, 4, 5, 6, 7, 8),
}


def register_boundaries(stages: int) -> tuple[int, ...]:
    """The step boundaries of the FMA that hold a register for ``stages``
    (:data:`FMA_BOUNDARIES`)."""
    _check_stages(stages, lo=0)
    return FMA_BOUNDARIES[stages]


def _register(m, values, en, domain, name):
    out = {}
    for key, value in values.items():
        reg = Signal(value.shape(), name=f"{name}_{key}", reset_less=True)
        m.d[domain] += reg.eq(Mux(en, value, reg))
        out[key] = reg
    return out


def fma_pipeline(m: Module, a, b, c, *, stages: int = DEFAULT_STAGES, en=None,
                 domain: str = "sync", name: str = "fma", platform=None):
    """Build ``round(a*b + c)`` into ``m`` with ``stages`` registers, all enabled by ``en``.

    ``a``, ``b``, ``c`` are 16-bit values (binary16 patterns). Returns the 16-bit result,
    valid ``stages`` enabled cycles after its operands. With ``stages=0`` the datapath is
    combinational. ``en`` (default: always) is the pipeline clock enable; the caller keeps
    the valid bits. ``platform`` (the one ``elaborate`` gets): on an ECP5, with registers
    on both sides of the multiplier (3 stages or more), the product is an explicit
    ``MULT18X18D`` whose own input and output registers are those two registers
    (:func:`dsp_registers`); elsewhere, and in simulation, a plain ``*`` between fabric
    registers. Both give the same bits at the same cycles.
    """
    _check_stages(stages, lo=0)
    where = register_boundaries(stages)
    values = {"a": a, "b": b, "c": c}
    if not dsp_registers(platform, stages):
        return build_steps(m, _STEPS, where, values, en=en, domain=domain,
                           name=name)["result"]
    en = Const(1) if en is None else en
    kw = dict(en=en, domain=domain, name=name)
    before = _MUL - 1
    v = build_steps(m, _STEPS[:before], tuple(k for k in where if k < before), values, **kw)
    prod = _ecp5_multiply(m, v.pop("sig_a"), v.pop("sig_b8"), **kw)
    # the registers on both sides of the multiplier
    v = build_steps(m, _STEPS[before:_MUL], (0, 1), v, first=_MUL, **kw)
    v["prod8"] = prod
    return build_steps(m, _STEPS[_MUL:], tuple(k - _MUL for k in where if k > _MUL), v,
                       first=_MUL + 1, **kw)["result"]


def dsp_registers(platform, stages: int) -> bool:
    """Whether :func:`fma_pipeline` puts the multiplier's two registers inside the ECP5's
    ``MULT18X18D`` for this platform (Yosys 0.70 packs no register into it: its
    ``MULT18X18D`` is always combinational, about 3.9 ns at speed 6)."""
    where = register_boundaries(stages)
    return getattr(platform, "family", None) == "ecp5" and {_MUL - 1, _MUL} <= set(where)


def _ecp5_multiply(m, x, y, *, en, domain, name):
    """``x * y`` (unsigned, at most 18 bits each) in a ``MULT18X18D`` with its A and B
    input registers and its output register, all clocked by ``domain`` and enabled by
    ``en``: the product of the operands of two enabled cycles before."""
    p = Signal(36, name=f"{name}_dsp_p")
    xa, yb = Cat(x, Const(0, 18 - len(x))), Cat(y, Const(0, 18 - len(y)))
    ports = {f"i_{port}{i}": val[i] for port, val in (("A", xa), ("B", yb)) for i in range(18)}
    ports.update({f"i_C{i}": Const(0) for i in range(18)})
    ports.update({f"o_P{i}": p[i] for i in range(36)})
    regs = {f"p_REG_{r}_{k}": v for r in ("INPUTA", "INPUTB", "OUTPUT")
            for k, v in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))}
    m.submodules[f"{name}_mult"] = Instance(
        "MULT18X18D", **regs,
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE", p_GSR="DISABLED",
        p_RESETMODE="SYNC", p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE",
        p_SOURCEB_MODE="B_SHIFT", p_HIGHSPEED_CLK="NONE",
        i_SIGNEDA=Const(0), i_SIGNEDB=Const(0), i_SOURCEA=Const(0), i_SOURCEB=Const(0),
        i_CLK0=ClockSignal(domain), i_CE0=en, i_RST0=Const(0), **ports)
    return p[0:len(x) + len(y)]


def build_steps(m: Module, steps, where, values: dict, *, extra: int = 0, en=None,
                domain: str = "sync", name: str, first: int = 1):
    """Chain the combinational ``steps`` (functions ``step(w, values) -> values``) on
    ``values``, with a register of every value at each boundary in ``where`` (0: the
    input, k: after step k) and ``extra`` more registers at the output; every register
    is enabled by ``en`` (default: always). ``w(key, value)`` names an intermediate.
    ``first`` numbers the steps (for the registers' names). Returns the last step's
    values."""
    en = Const(1) if en is None else en

    def w(key, value):
        sig = Signal(value.shape(), name=f"{name}_{key}")
        m.d.comb += sig.eq(value)
        return sig

    v = dict(values)
    if 0 in where:
        v = _register(m, v, en, domain, f"{name}_s{first - 1}")
    for k, step in enumerate(steps, start=1):
        v = step(w, v)
        if k in where:
            v = _register(m, v, en, domain, f"{name}_s{first + k - 1}")
    for n in range(extra):
        v = _register(m, v, en, domain, f"{name}_x{n}")
    return v


def fma_comb(m: Module, a, b, c):
    """The combinational ``round(a*b + c)`` (no registers), built into ``m``."""
    return fma_pipeline(m, a, b, c, stages=0)


def pipeline_control(m: Module, i, o, stages: int, *, domain: str = "sync"):
    """Valid bits and the shared clock enable of a ``stages``-deep stalling pipeline.

    ``i``/``o`` are the stream interfaces (payloads are the caller's). Returns ``en``:
    the pipeline advances when the output is taken or empty. ``i.ready = en``.
    """
    en = Signal(name="pipe_en")
    valid = Signal(stages, name="pipe_valid")
    m.d.comb += [
        en.eq(o.ready | ~valid[-1]),
        i.ready.eq(en),
        o.valid.eq(valid[-1]),
    ]
    with m.If(en):
        m.d[domain] += valid.eq(Cat(i.valid, valid[:-1]))
    return en


class StreamPipeline(ArgumentChecked, wiring.Component):
    """A binary16 datapath behind ``i`` / ``o`` streams, ``stages`` registers deep.

    Subclasses give ``OPERANDS`` (the ``i`` payload layout), ``RESULT`` (the ``o``
    payload shape, 16 bits by default), ``STAGES`` (the allowed range), ``DEFAULT`` and
    ``datapath(m, payload, *, stages, en)`` (the ``o`` payload's value).
    Latency ``stages`` cycles; one result per cycle while ``o.ready``; back-pressure on
    one enable (:func:`pipeline_control`)."""

    @classmethod
    def check(cls, *, stages=None):
        lo, hi = cls.STAGES
        stages = cls.DEFAULT if stages is None else stages
        if not isinstance(stages, int) or isinstance(stages, bool) or not lo <= stages <= hi:
            raise ValueError(f"stages must be an integer between {lo} and {hi}, not {stages!r}")

    def __init__(self, *, stages: int | None = None):
        self._stages = self.DEFAULT if stages is None else stages
        super().__init__({
            "i": In(stream.Signature(self.OPERANDS)),
            "o": Out(stream.Signature(self.RESULT)),
        })

    RESULT = 16

    @property
    def stages(self) -> int:
        return self._stages

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its result at ``o`` (with ``o.ready`` high)."""
        return self._stages

    def elaborate(self, platform):
        m = Module()
        en = pipeline_control(m, self.i, self.o, self._stages)
        m.d.comb += self.o.payload.eq(self.datapath(m, self.i.payload, stages=self._stages,
                                                    en=en))
        return m


class FMA(StreamPipeline):
    """Pipelined binary16 fused multiply-add ``o = round(i.a * i.b + i.c)``.

    ``stages`` pipeline registers (1..8, default :data:`DEFAULT_STAGES`); latency
    ``stages`` cycles; one result per cycle while ``o.ready``.
    """

    OPERANDS = OPERANDS
    STAGES = (1, MAX_STAGES)
    DEFAULT = DEFAULT_STAGES

    def elaborate(self, platform):
        self._platform = platform
        return super().elaborate(platform)

    def datapath(self, m, p, *, stages, en):
        return fma_pipeline(m, p.a, p.b, p.c, stages=stages, en=en, platform=self._platform)
