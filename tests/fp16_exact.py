"""Exact reference for binary16 arithmetic, written with Python integers only.

Not a test file: the tests import it. It is written apart from
:mod:`spikeforge.sim.golden.fp16` (no floating point anywhere) so that it can judge it.

Every finite binary16 value is an integer multiple of 2**-24, and every product of two
is an integer multiple of 2**-48; :func:`fma_bits` computes ``a*b + c`` exactly as an
integer count of 2**-48, then rounds it once to binary16, to nearest with ties to even,
with subnormal results, overflow to +-inf, IEEE 754 signed zeros and the canonical NaN.

:func:`fma_many` runs it on arrays (vectorised over numpy ``object`` arrays of Python
integers, so the arithmetic stays exact while the loop runs in C).
"""

from __future__ import annotations

import numpy as np

CANONICAL_NAN = 0x7E00
INF = 0x7C00
SIGN = 0x8000

_FRAC_BITS = 10
_UNIT = 48                 # the exact sum is an integer number of 2**-48
_MIN_ULP = _UNIT - 24      # log2 of the smallest binary16 ulp (2**-24) in those units


def decode(bits: int):
    """``(kind, sign, significand, exponent)`` with value ``(-1)**sign * significand *
    2**exponent``; ``kind`` is ``"finite"``, ``"inf"`` or ``"nan"``."""
    sign = bits >> 15 & 1
    e = bits >> 10 & 0x1F
    f = bits & 0x3FF
    if e == 0x1F:
        return ("nan" if f else "inf"), sign, 0, 0
    if e == 0:
        return "finite", sign, f, -24                       # subnormal: f * 2**-24
    return "finite", sign, f | 0x400, e - 25                # (1024 + f) * 2**(e - 25)


def round_to_bits(sign: int, n: int, scale: int) -> int:
    """binary16 pattern of ``(-1)**sign * n * 2**-scale`` (n >= 0 an integer), rounded to
    nearest, ties to even; ``n == 0`` gives a zero of the given sign."""
    if n == 0:
        return sign << 15
    # Result ulp 2**(q - scale): 11 significant bits, but never below 2**-24.
    q = max(n.bit_length() - 11, scale - 24)
    if q > 0:
        kept, rest = n >> q, n & ((1 << q) - 1)
        half = 1 << (q - 1)
        if rest > half or (rest == half and kept & 1):
            kept += 1
    else:
        kept = n << -q        # exact (only when n has few bits at a coarse scale)
    if kept == 1 << 11:       # rounding carried into a new binade
        kept >>= 1
        q += 1
    exponent = q - scale + 25  # biased exponent of kept * 2**(q - scale) with kept in [1024, 2048)
    if kept < 1 << 10:        # subnormal (only possible at the smallest ulp)
        assert q - scale == -24
        return sign << 15 | kept
    if exponent >= 31:
        return sign << 15 | INF
    return sign << 15 | exponent << 10 | (kept - (1 << 10))


def fma_bits(a: int, b: int, c: int) -> int:
    """``round(a*b + c)`` on binary16 bit patterns (Python ints), exactly."""
    ka, sa, ma, xa = decode(a)
    kb, sb, mb, xb = decode(b)
    kc, sc, mc, xc = decode(c)
    if "nan" in (ka, kb, kc):
        return CANONICAL_NAN
    sp = sa ^ sb
    if ka == "inf" or kb == "inf":
        if (ka == "finite" and ma == 0) or (kb == "finite" and mb == 0):
            return CANONICAL_NAN                             # inf * 0
        if kc == "inf" and sc != sp:
            return CANONICAL_NAN                             # inf - inf
        return sp << 15 | INF
    if kc == "inf":
        return sc << 15 | INF
    p = ma * mb << (xa + xb + _UNIT)                          # |a*b| in units of 2**-48
    q = mc << (xc + _UNIT)                                   # |c| in the same units
    total = (-p if sp else p) + (-q if sc else q)
    if total == 0:
        # IEEE 754 6.3: an exact zero sum is +0 in round-to-nearest, except that
        # (-0) + (-0) is -0; here the product's zero carries the sign sa ^ sb.
        if p == 0 and q == 0:
            return (sp & sc) << 15
        return 0
    return round_to_bits(1 if total < 0 else 0, abs(total), _UNIT)


def add_bits(a: int, c: int) -> int:
    """``a + c`` rounded once (IEEE 754 addition)."""
    ka, sa, ma, xa = decode(a)
    kc, sc, mc, xc = decode(c)
    if "nan" in (ka, kc) or (ka == kc == "inf" and sa != sc):
        return CANONICAL_NAN
    if ka == "inf":
        return sa << 15 | INF
    if kc == "inf":
        return sc << 15 | INF
    total = (-1) ** sa * (ma << (xa + 24)) + (-1) ** sc * (mc << (xc + 24))
    if total == 0:
        return (sa & sc) << 15 if ma == 0 and mc == 0 else 0
    return round_to_bits(1 if total < 0 else 0, abs(total), 24)


def mul_bits(a: int, b: int) -> int:
    """``a * b`` rounded once (IEEE 754 multiplication)."""
    ka, sa, ma, xa = decode(a)
    kb, sb, mb, xb = decode(b)
    s = sa ^ sb
    if "nan" in (ka, kb):
        return CANONICAL_NAN
    if "inf" in (ka, kb):
        if (ka == "finite" and ma == 0) or (kb == "finite" and mb == 0):
            return CANONICAL_NAN
        return s << 15 | INF
    return round_to_bits(s, ma * mb << (xa + xb + _UNIT), _UNIT)


def compare(a: int, b: int):
    """-1, 0 or 1 for a < b, a == b, a > b; ``None`` when unordered (a NaN)."""
    def value(bits):
        kind, s, m, x = decode(bits)
        if kind == "nan":
            return None
        mag = (1 << 60) if kind == "inf" else m << (x + 24)   # integer count of 2**-24
        return -mag if s else mag
    va, vb = value(a), value(b)
    if va is None or vb is None:
        return None
    return (va > vb) - (va < vb)


def _vectorise(fn, nin):
    vec = np.frompyfunc(fn, nin, 1)

    def run(*arrays):
        return vec(*(np.asarray(x).astype(np.int64).astype(object) for x in arrays))
    return run


def fma_many(a, b, c) -> np.ndarray:
    """:func:`fma_bits` element-wise on arrays of 16-bit patterns; returns ``uint16``."""
    return _vectorise(fma_bits, 3)(a, b, c).astype(np.uint16)


def add_many(a, c) -> np.ndarray:
    return _vectorise(add_bits, 2)(a, c).astype(np.uint16)


def mul_many(a, b) -> np.ndarray:
    return _vectorise(mul_bits, 2)(a, b).astype(np.uint16)


def compare_many(a, b) -> np.ndarray:
    """Element-wise :func:`compare` as int8: -1, 0, 1, or 2 for unordered."""
    out = _vectorise(compare, 2)(a, b)
    return np.array([2 if r is None else r for r in out], dtype=np.int8)
