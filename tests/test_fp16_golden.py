"""The golden fp16 operations (:mod:`spikeforge.sim.golden.fp16`) against an exact integer reference."""

import bisect
import time
from fractions import Fraction

import numpy as np
import pytest

from fp16_exact import (CANONICAL_NAN, add_bits, add_many, compare_many, decode, fma_bits,
                        fma_many, mul_many, round_to_bits)
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden.vectors import SPECIALS, biased_operands, directed_operands


def golden_fma(a, b, c):
    return fp16.to_bits(fp16.fma(fp16.from_bits(a), fp16.from_bits(b), fp16.from_bits(c)))


def _mismatches(a, b, c, got, want):
    bad = np.nonzero(got != want)[0]
    return [f"fma({a[j]:#06x}, {b[j]:#06x}, {c[j]:#06x}) = {got[j]:#06x}, exact {want[j]:#06x}"
            for j in bad[:10]], bad.size


def _value(bits):
    kind, s, m, x = decode(int(bits))
    assert kind == "finite"
    return (-1) ** s * Fraction(m) * Fraction(2) ** x


# --- the reference itself ------------------------------------------------------------------

def test_reference_rounding_against_brute_force():
    """round_to_bits picks the nearest binary16 value (ties to even) found by search."""
    finite = list(range(0x7C00))                             # +0 .. max finite, ascending
    values = [_value(p) for p in finite] + [Fraction(1 << 16)]   # 0x7C00 stands for inf
    limit = Fraction(65520)                                  # halfway to 2**16: rounds to inf
    rng = np.random.default_rng(7)
    cases = []
    for k in rng.integers(0, len(finite) - 1, 3000).tolist():
        lo, hi = values[k], values[k + 1]
        mid = (lo + hi) / 2
        tiny = (hi - lo) / 64
        cases += [lo, hi, mid, mid - tiny, mid + tiny]
    cases += [limit, limit - Fraction(1, 1 << 20), Fraction(1, 1 << 25), Fraction(3, 1 << 26)]
    for x in cases:
        n = x * (1 << 48)
        assert n.denominator == 1
        got = round_to_bits(0, int(n), 48)
        if x >= limit:
            assert got == 0x7C00, x
            continue
        j = bisect.bisect_left(values, x)
        if values[j] == x:
            want = j
        else:
            lo, hi = values[j - 1], values[j]
            if x - lo < hi - x or (x - lo == hi - x and (j - 1) % 2 == 0):
                want = j - 1
            else:
                want = j
        assert got == want, (x, hex(got), hex(want))


def test_reference_round_trips_every_finite_value():
    for p in range(0x10000):
        kind, s, m, x = decode(p)
        if kind == "finite":
            assert round_to_bits(s, m << (x + 24), 24) == p, hex(p)


def test_reference_special_rules():
    assert fma_bits(0x7C00, 0x0000, 0x3C00) == CANONICAL_NAN            # inf * 0
    assert fma_bits(0x7C00, 0x3C00, 0xFC00) == CANONICAL_NAN            # inf - inf
    assert fma_bits(0x3C00, 0x3C00, 0xBC00) == 0x0000                   # x - x = +0
    assert fma_bits(0x8000, 0x3C00, 0x8000) == 0x8000                   # -0 + -0 = -0
    assert fma_bits(0x8001, 0x0001, 0x0000) == 0x8000                   # -2**-48 rounds to -0
    assert fma_bits(0x8001, 0x0001, 0x8000) == 0x8000
    assert fma_bits(0x7BFF, 0x3C00, 0x4C00) == 0x7C00                   # 65504 + 16 = 65520 -> inf
    assert fma_bits(0x7BFF, 0x3C00, 0x4BFF) == 0x7BFF


# --- the golden model against it ---------------------------------------------------------

def test_fma_directed():
    a, b, c = directed_operands()
    got, want = golden_fma(a, b, c), fma_many(a, b, c)
    rows, count = _mismatches(a, b, c, got, want)
    assert not count, f"{count} mismatches:\n" + "\n".join(rows)


def test_fma_million_random_vectors():
    start = time.monotonic()
    rng = np.random.default_rng(20261122)
    n = 1_000_000
    a, b, c = biased_operands(rng, n)
    got, want = golden_fma(a, b, c), fma_many(a, b, c)
    rows, count = _mismatches(a, b, c, got, want)
    assert not count, f"{count} mismatches:\n" + "\n".join(rows)
    # The vectors really stress the hard cases.
    exact = fp16.from_bits(want)
    assert np.mean((want & 0x7C00) == 0) > 0.1, "too few subnormal or zero results"
    assert np.mean(want == 0) > 0.01, "too few exact cancellations"
    assert np.mean(np.isinf(exact)) > 0.01
    assert time.monotonic() - start < 120


@pytest.mark.parametrize("op", ["add", "mul"])
def test_add_and_mul(op):
    rng = np.random.default_rng(3)
    a, b, c = biased_operands(rng, 200_000)
    x = np.concatenate([a, np.repeat(SPECIALS, SPECIALS.size)])
    y = np.concatenate([c if op == "add" else b, np.tile(SPECIALS, SPECIALS.size)])
    if op == "add":
        got = fp16.to_bits(fp16.add(fp16.from_bits(x), fp16.from_bits(y)))
        want = add_many(x, y)
        via_fma = fma_many(x, np.full_like(x, 0x3C00), y)
    else:
        got = fp16.to_bits(fp16.mul(fp16.from_bits(x), fp16.from_bits(y)))
        want = mul_many(x, y)
        via_fma = fma_many(x, y, np.full_like(x, 0x8000))
    assert np.array_equal(via_fma, want), f"{op} is not fma-identical in the exact reference"
    bad = np.nonzero(got != want)[0]
    assert not bad.size, [(hex(x[j]), hex(y[j]), hex(got[j]), hex(want[j])) for j in bad[:10]]


def test_add_signed_zero_rules():
    assert add_bits(0x8000, 0x8000) == 0x8000
    assert add_bits(0x8000, 0x0000) == 0x0000
    assert add_bits(0x3C00, 0xBC00) == 0x0000


@pytest.mark.parametrize("name,want", [
    ("ge", lambda r: (r == 1) | (r == 0)), ("gt", lambda r: r == 1), ("lt", lambda r: r == -1),
    ("le", lambda r: (r == -1) | (r == 0)), ("eq", lambda r: r == 0), ("ne", lambda r: r != 0),
])
def test_comparisons(name, want):
    rng = np.random.default_rng(11)
    n = 100_000
    x = rng.integers(0, 1 << 16, n).astype(np.uint16)
    # half the pairs are equal or neighbours (including +0/-0), so every outcome is common
    y = np.where(rng.random(n) < 0.5, x ^ rng.choice(np.array([0, 1, 0x8000], np.uint16), n),
                 rng.integers(0, 1 << 16, n)).astype(np.uint16)
    x = np.concatenate([x, np.repeat(SPECIALS, SPECIALS.size)])
    y = np.concatenate([y, np.tile(SPECIALS, SPECIALS.size)])
    got = getattr(fp16, name)(fp16.from_bits(x), fp16.from_bits(y))
    assert np.array_equal(got, want(compare_many(x, y)))


def test_nan_results_are_canonical():
    a, b, c = directed_operands()
    got = golden_fma(a, b, c)
    isnan = (got & 0x7C00) == 0x7C00
    isnan &= (got & 0x3FF) != 0
    assert isnan.any()
    assert np.all(got[isnan] == CANONICAL_NAN)
