"""Exact IEEE 754 binary16 addition, pipelined: the add-only lane.

:class:`FPAdd` computes ``round(a + c)`` with one rounding to nearest, ties to
even, subnormals kept, signed zeros as IEEE 754 defines them (``-0`` only for
``-0 + -0``), overflow to +-inf and any NaN result as ``0x7E00``. SPEC section 2
makes the add ``fma(a, 1.0, c)`` and bit-identical to the IEEE addition, so this
lane gives exactly the bits of :func:`spikeforge.sim.golden.fp16.add`; the forward
sums and the weight-gradient sums of SPEC section 3 need nothing else, and it
costs no multiplier.

Datapath: the operand of larger magnitude ``x`` and the other ``y`` are
swapped in front (binary16 patterns order magnitudes); ``y``'s significand is
shifted right by the exponent difference into a window with three extra bits
below ``x``'s ulp (guard, round, and a sticky bit OR-ing everything shifted out);
the effective sum or difference is normalised (a carry shifts right by one, a
cancellation shifts left by its leading zeros, stopping at the subnormal
boundary) and rounded once. Six combinational steps (swap, shift, add, count
leading zeros, normalise, round); ``stages`` registers go between them as
:func:`register_boundaries` says (the FMA's table).

Interface and timing, as :class:`~spikeforge.hdl.fp16.FMA`:

* ``i``: stream of ``{"a": 16, "c": 16}``; ``o``: stream of the 16-bit result.
* Latency ``stages`` cycles, one result per cycle while ``o.ready`` is high.
* Back-pressure on one pipeline enable ``en = o.ready | ~o.valid``
  (:func:`~spikeforge.hdl.fp16.pipeline_control`).

:func:`add_pipeline` builds the same datapath into any module with a
caller-supplied clock enable.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux
from amaranth.lib import data

from .fp16 import (CANONICAL_NAN, SIX_STEP_BOUNDARIES, StreamPipeline, build_steps, lzc,
                   round_pack)

__all__ = ["ADD_OPERANDS", "ADD_DEFAULT_STAGES", "ADD_MAX_STAGES", "FPAdd", "add_pipeline",
           "register_boundaries"]

#: Operand layout of one addition: ``a`` in bits 0..15, ``c`` in 16..31.
ADD_OPERANDS = data.StructLayout({"a": 16, "c": 16})

#: Default number of pipeline registers (docs/fp16.md has the cost per value).
ADD_DEFAULT_STAGES = 6
#: Largest ``stages`` accepted.
ADD_MAX_STAGES = 8

_INF = 0x7C00
_WIN = 14          # significand (11 bits, hidden bit at 13) and guard, round, sticky


def _check_stages(stages, lo=1):
    if (not isinstance(stages, int) or isinstance(stages, bool)
            or not lo <= stages <= ADD_MAX_STAGES):
        raise ValueError(f"stages must be an integer between {lo} and {ADD_MAX_STAGES}, "
                         f"not {stages!r}")


def _fields(w, v, n):
    exp, frac = v[10:15], v[0:10]
    sub = exp == 0
    return dict(sig=w(f"{n}_sig", Cat(frac, ~sub)), eff=w(f"{n}_eff", Mux(sub, 1, exp)),
                zero=sub & (frac == 0), special=exp == 31, nan=(exp == 31) & (frac != 0))


def _step_swap(w, v):
    """Decode, order by magnitude, special cases, exponent difference."""
    a, c = v["a"], v["c"]
    a_big = w("a_big", a[0:15] >= c[0:15])
    fa, fc = _fields(w, a, "a"), _fields(w, c, "c")
    x = {k: Mux(a_big, fa[k], fc[k]) for k in fa}
    y = {k: Mux(a_big, fc[k], fa[k]) for k in fa}
    sx, sy = Mux(a_big, a[15], c[15]), Mux(a_big, c[15], a[15])
    # NaN: a NaN operand, or inf + -inf (both special with zero fractions, signs differ)
    nan = x["nan"] | y["nan"] | (x["special"] & y["special"] & (sx != sy))
    # both differences at once, chosen by the comparison: 0..29
    d = Mux(a_big, (fa["eff"] - fc["eff"])[0:5], (fc["eff"] - fa["eff"])[0:5])
    return dict(xsig=x["sig"], ysig=y["sig"], d=d, ex=x["eff"], exm1=(x["eff"] - 1)[0:5],
                sign=sx, effsub=sx != sy, both_neg_zero=x["zero"] & y["zero"] & sx & sy,
                is_special=x["special"],
                special=Mux(nan, CANONICAL_NAN, Cat(Const(_INF, 15), sx)))


_KEEP = ("ex", "exm1", "sign", "both_neg_zero", "is_special", "special")


def _step_shift(w, v):
    """Shift the smaller significand right into the window; what falls out is sticky."""
    ywide = Cat(Const(0, 3), v["ysig"])                    # 14 bits: sig << 3
    shifted = w("y_shifted", ywide >> v["d"])
    lost = (ywide & ~(Const((1 << _WIN) - 1, _WIN) << v["d"])[0:_WIN]) != 0
    return {**{k: v[k] for k in _KEEP}, "effsub": v["effsub"],
            "xw": Cat(Const(0, 3), v["xsig"]), "yw": Cat(shifted[0] | lost, shifted[1:])}


def _step_add(w, v):
    """The effective sum (15 bits: a carry in bit 14) or difference (never negative)."""
    s = w("sum", Mux(v["effsub"], v["xw"] - v["yw"], v["xw"] + v["yw"])[0:_WIN + 1])
    return {**{k: v[k] for k in _KEEP}, "s": s}


def _step_count(w, v):
    """Leading zeros of the sum, limited to the subnormal boundary (exponent 1)."""
    s = v["s"]
    # leading zeros of s[0:14]: counted on 16 bits with two zeros appended below
    _, lz = lzc(w, Cat(Const(0, 2), s[0:_WIN]), "add_lzc")
    shift = w("add_shift", Mux(lz < v["ex"], lz, v["exm1"])[0:4])
    return {**{k: v[k] for k in _KEEP}, "s": s, "shift": shift, "zero": s == 0}


def _step_normalise(w, v):
    """A carry shifts right by one; otherwise shift left by the count."""
    s, shift = v["s"], v["shift"]
    carry = s[_WIN]
    left = w("add_left", (s[0:_WIN] << shift)[0:_WIN])
    e1 = Mux(carry, v["ex"], (v["exm1"] - shift)[0:5])     # biased exponent - 1
    return dict(sig=Mux(carry, s[4:15], left[3:14]),
                guard=Mux(carry, s[3], left[2]),
                sticky=Mux(carry, s[0:3] != 0, left[0:2] != 0),
                e1=Mux(v["zero"], 0, e1),
                sign=Mux(v["zero"], v["both_neg_zero"], v["sign"]),
                is_special=v["is_special"], special=v["special"])


def _step_round(w, v):
    """Round to nearest even, pack, overflow to inf, special values."""
    return round_pack(w, v, "add_")


_STEPS = (_step_swap, _step_shift, _step_add, _step_count, _step_normalise, _step_round)


def register_boundaries(stages: int) -> tuple[int, ...]:
    """The step boundaries that hold a register for ``stages``."""
    _check_stages(stages, lo=0)
    return SIX_STEP_BOUNDARIES[min(stages, 7)]


def add_pipeline(m: Module, a, c, *, stages: int = ADD_DEFAULT_STAGES, en=None,
                 domain: str = "sync", name: str = "fadd"):
    """Build ``round(a + c)`` into ``m`` with ``stages`` registers enabled by ``en``;
    returns the 16-bit result, valid ``stages`` enabled cycles after its operands."""
    _check_stages(stages, lo=0)
    return build_steps(m, _STEPS, register_boundaries(stages), {"a": a, "c": c},
                       extra=max(0, stages - 7), en=en, domain=domain, name=name)["result"]


class FPAdd(StreamPipeline):
    """Pipelined binary16 addition ``o = round(i.a + i.c)``; see the module docstring."""

    OPERANDS = ADD_OPERANDS
    STAGES = (1, ADD_MAX_STAGES)
    DEFAULT = ADD_DEFAULT_STAGES

    def datapath(self, m, p, *, stages, en):
        return add_pipeline(m, p.a, p.c, stages=stages, en=en)
