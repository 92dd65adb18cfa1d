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
case) and rounded once. Six combinational steps (multiply, align, add, count
leading zeros, normalise, round); ``stages`` registers go between them as
:func:`register_boundaries` says. A product of magnitude >= 2**17 overflows whatever the
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

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .checked import ArgumentChecked
from .config import FMA_MAX_STAGES, Implementation

__all__ = [
    "OPERANDS", "DEFAULT_STAGES", "MAX_STAGES", "CANONICAL_NAN",
    "FMA", "fma_pipeline", "fma_comb", "register_boundaries", "pipeline_control",
    "build_steps", "lzc", "round_pack", "SIX_STEP_BOUNDARIES", "StreamPipeline",
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


# --- the six combinational steps --------------------------------------------------------
# Each step takes a dict of Values and returns a dict holding everything later steps need.
# ``w(key, value)`` names an intermediate (a comb Signal) so that it is built once.

def _decode(w, x, n):
    exp = x[10:15]
    frac = x[0:10]
    sub = w(f"{n}_sub", exp == 0)
    return dict(
        sign=x[15],
        sig=w(f"{n}_sig", Cat(frac, ~sub)),      # 11-bit significand with hidden bit
        eff=w(f"{n}_eff", Mux(sub, 1, exp)),     # effective biased exponent, 1..30 (31: special)
        zero=sub & (frac == 0),
        inf=(exp == 31) & (frac == 0),
        nan=(exp == 31) & (frac != 0),
    )


def _step_multiply(w, v):
    """Decode, 11x11 significand product (one DSP), special cases."""
    a, b, c = _decode(w, v["a"], "a"), _decode(w, v["b"], "b"), _decode(w, v["c"], "c")
    sp = w("sp", a["sign"] ^ b["sign"])
    sc = c["sign"]
    pinf = w("pinf", a["inf"] | b["inf"])
    nan = w("nan", a["nan"] | b["nan"] | c["nan"]
            | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"])
            | (pinf & c["inf"] & (sp != sc)))
    return dict(
        prod=a["sig"] * b["sig"],                    # 22 bits: maps to one MULT18X18D
        es=a["eff"] + b["eff"],                      # 2..60: product lsb weighs 2**(es-50)
        sig_c=c["sig"], eff_c=c["eff"], sp=sp, sc=sc,
        is_special=nan | pinf | c["inf"],
        special=Mux(nan, CANONICAL_NAN, Cat(Const(_INF, 15), Mux(pinf, sp, sc))))


_PASS = ("sp", "sc", "is_special", "special")


def _step_align(w, v):
    """Place product and addend in the window."""
    prod, es = v["prod"], v["es"]
    # In units of 2**-48 the product is prod << (es - 2); its bits below 2**-26 (positions
    # below 22 - sh of prod) only matter as a sticky bit.
    sh = w("sh", (es - 2)[0:6])
    pw = (prod << sh)[22:22 + _W]
    jam = (prod & (Const((1 << 22) - 1, 22) >> sh)) != 0
    # |a*b| >= 2**17 (both operands normal here) overflows whatever c is:
    # prod*2**(es-50) >= 2**17  <=>  es >= 47, or es == 46 and prod >= 2**21.
    ovf = (es >= 47) | ((es == 46) & prod[21])
    cw = (v["sig_c"] << (v["eff_c"] + 1))[0:_W]     # addend lsb weighs 2**(eff_c - 25)
    return {**{k: v[k] for k in _PASS}, "pw": pw, "jam": jam, "ovf": ovf, "cw": cw}


def _step_add(w, v):
    """Signed sum as sign and magnitude."""
    # The jammed product bits are OR-ed into the lowest bit (round to odd). An overflowing
    # product gets bit 43 (2**17) and a zero addend: the sum keeps the product's sign and
    # rounds to inf in the last step.
    ovf = v["ovf"]
    pw = w("pw", Cat(v["pw"][0] | v["jam"], v["pw"][1:_W - 1], v["pw"][_W - 1] | ovf))
    cw = w("cw", Mux(ovf, 0, v["cw"]))
    p_minus_c = w("p_minus_c", pw - cw)       # 45 bits; bit 44 set when cw > pw
    c_wins = p_minus_c[_W]
    effsub = v["sp"] != v["sc"]
    mag = Mux(effsub, Mux(c_wins, (cw - pw)[0:_W], p_minus_c[0:_W]), (pw + cw)[0:_W])
    sign = Mux(effsub & c_wins, v["sc"], v["sp"])
    return {**{k: v[k] for k in _PASS}, "mag": mag, "sign": sign}


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
    """Leading zeros of the sum above the subnormal boundary (at most 31)."""
    mag = v["mag"]
    top_zero, lz = lzc(w, mag[_W - 32:_W], "lzc")   # 31 when the top 32 bits are zero
    zero = top_zero & (mag[:_W - 32] == 0)
    # Exact zero sum: -0 only when both the product and the addend are -0 (RNE).
    return dict(is_special=v["is_special"], special=v["special"], mag=mag, lz=lz,
                sign=Mux(zero, v["sp"] & v["sc"], v["sign"]))


def _step_normalise(w, v):
    """Shift left by the count; the bits below the guard bit give the sticky bit."""
    mag, lz = v["mag"], v["lz"]
    x = w("norm", (mag << lz)[0:_W])
    # After the shift, bits 0..31 come from mag bits below 32 - lz.
    sticky = (mag[0:32] & (Const((1 << 32) - 1, 32) >> lz)) != 0
    return dict(is_special=v["is_special"], special=v["special"], sign=v["sign"],
                sig=x[_W - 11:_W], guard=x[_W - 12], sticky=sticky,
                e1=(_NORM_SHIFT_MAX - lz)[0:5])


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
    return round_pack(w, v)


_STEPS = (_step_multiply, _step_align, _step_add, _step_count, _step_normalise, _step_round)

#: Which step boundaries of a six-step datapath carry a register for each ``stages``
#: value: boundary k (1..6) is after step k (6 is the output), 0 is the input. Extra
#: stages delay the output. The FMA and the add lane share it.
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


def register_boundaries(stages: int) -> tuple[int, ...]:
    """The step boundaries that hold a register for ``stages`` (extra registers beyond 7
    delay the output)."""
    _check_stages(stages, lo=0)
    return SIX_STEP_BOUNDARIES[min(stages, 7)]


def _register(m, values, en, domain, name):
    out = {}
    for key, value in values.items():
        reg = Signal(value.shape(), name=f"{name}_{key}", reset_less=True)
        m.d[domain] += reg.eq(Mux(en, value, reg))
        out[key] = reg
    return out


def fma_pipeline(m: Module, a, b, c, *, stages: int = DEFAULT_STAGES, en=None,
                 domain: str = "sync", name: str = "fma"):
    """Build ``round(a*b + c)`` into ``m`` with ``stages`` registers, all enabled by ``en``.

    ``a``, ``b``, ``c`` are 16-bit values (binary16 patterns). Returns the 16-bit result,
    valid ``stages`` enabled cycles after its operands. With ``stages=0`` the datapath is
    combinational. ``en`` (default: always) is the pipeline clock enable; the caller keeps
    the valid bits.
    """
    _check_stages(stages, lo=0)
    return build_steps(m, _STEPS, register_boundaries(stages), {"a": a, "b": b, "c": c},
                       extra=max(0, stages - 7), en=en, domain=domain, name=name)["result"]


def build_steps(m: Module, steps, where, values: dict, *, extra: int = 0, en=None,
                domain: str = "sync", name: str):
    """Chain the combinational ``steps`` (functions ``step(w, values) -> values``) on
    ``values``, with a register of every value at each boundary in ``where`` (0: the
    input, k: after step k) and ``extra`` more registers at the output; every register
    is enabled by ``en`` (default: always). ``w(key, value)`` names an intermediate.
    Returns the last step's values."""
    en = Const(1) if en is None else en

    def w(key, value):
        sig = Signal(value.shape(), name=f"{name}_{key}")
        m.d.comb += sig.eq(value)
        return sig

    v = dict(values)
    if 0 in where:
        v = _register(m, v, en, domain, f"{name}_s0")
    for k, step in enumerate(steps, start=1):
        v = step(w, v)
        if k in where:
            v = _register(m, v, en, domain, f"{name}_s{k}")
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

    def datapath(self, m, p, *, stages, en):
        return fma_pipeline(m, p.a, p.b, p.c, stages=stages, en=en)
