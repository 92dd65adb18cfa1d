"""Golden fp16 arithmetic: IEEE 754 binary16, exactly as SPEC section 2.

Every function takes numpy arrays (or scalars) of ``float16`` and returns
``float16`` (or ``bool`` for comparisons), element-wise and broadcast.

* :func:`fma` computes ``round(a*b + c)`` with one rounding, to nearest, ties to
  even: the product of two binary16 values is exact in float64, and so is its
  sum with a binary16 addend whenever the result is finite in binary16 or the
  two are too far apart for the float64 rounding to matter; the float64 result
  is then rounded once to binary16 (numpy converts float64 to float16 directly).
* :func:`add` is ``fma(a, 1.0, c)``, :func:`mul` is ``fma(a, b, -0.0)``.
* Any NaN result is the canonical quiet NaN ``0x7E00``.
* Comparisons are IEEE ordered: any NaN compares false.

The test-suite checks these against an exact integer reference.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CANONICAL_NAN", "ONE", "NEG_ZERO", "POS_ZERO",
    "fma", "add", "mul", "neg", "ge", "gt", "lt", "le", "eq", "ne",
    "from_bits", "to_bits", "from_int", "canonicalize",
]

CANONICAL_NAN = 0x7E00
ONE = np.float16(1.0)
POS_ZERO = np.float16(0.0)
NEG_ZERO = np.float16(-0.0)


def _f16(x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.float16:
        raise TypeError(f"fp16 operations take float16 values, not {arr.dtype}")
    return arr


def canonicalize(x) -> np.ndarray:
    """``x`` with every NaN replaced by the canonical quiet NaN 0x7E00."""
    arr = np.array(x, dtype=np.float16, copy=True)
    bits = arr.view(np.uint16)
    bits[np.isnan(arr)] = CANONICAL_NAN
    return arr if arr.ndim else arr[()]


def fma(a, b, c) -> np.ndarray:
    """``round(a*b + c)`` rounded once to binary16 (round to nearest, ties to even)."""
    a, b, c = _f16(a), _f16(b), _f16(c)
    with np.errstate(all="ignore"):
        exact = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
        out = exact.astype(np.float16)
    return canonicalize(out)


def add(a, c) -> np.ndarray:
    """``a + c``, as ``fma(a, 1.0, c)``."""
    a = _f16(a)
    return fma(a, np.full_like(a, ONE), c)


def mul(a, b) -> np.ndarray:
    """``a * b``, as ``fma(a, b, -0.0)``."""
    a = _f16(a)
    return fma(a, b, np.full_like(a, NEG_ZERO))


def neg(a) -> np.ndarray:
    """Sign flip (exact; a NaN stays canonical)."""
    return canonicalize(-_f16(a))


def ge(a, b) -> np.ndarray:
    return np.greater_equal(_f16(a), _f16(b))


def gt(a, b) -> np.ndarray:
    return np.greater(_f16(a), _f16(b))


def lt(a, b) -> np.ndarray:
    return np.less(_f16(a), _f16(b))


def le(a, b) -> np.ndarray:
    return np.less_equal(_f16(a), _f16(b))


def eq(a, b) -> np.ndarray:
    return np.equal(_f16(a), _f16(b))


def ne(a, b) -> np.ndarray:
    """IEEE ``!=`` (true when either is NaN, as the unordered-or-unequal predicate)."""
    return np.not_equal(_f16(a), _f16(b))


def from_bits(bits) -> np.ndarray:
    """float16 values from their 16-bit patterns."""
    return np.asarray(bits, dtype=np.uint16).view(np.float16)


def to_bits(x) -> np.ndarray:
    """The 16-bit patterns of float16 values."""
    return np.asarray(_f16(x)).view(np.uint16)


def from_int(n) -> np.ndarray:
    """Exact conversion of integer counts (|n| < 2048) to float16."""
    arr = np.asarray(n)
    if arr.size and int(np.max(np.abs(arr))) >= 2048:
        raise ValueError(f"integer {int(np.max(np.abs(arr)))} does not convert exactly to fp16 (limit 2047)")
    return arr.astype(np.float16)
