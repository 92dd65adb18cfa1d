"""Test vectors for binary16 fused multiply-add: directed corner cases and biased randoms.

Used by the exact-reference tests of :mod:`spikeforge.sim.golden.fp16` and by the RTL
testbenches of the FMA and the PE array. All values are 16-bit patterns
(``numpy.uint16``), three arrays ``a``, ``b``, ``c`` for ``fma(a, b, c)``.

Uniform bit patterns rarely hit the hard cases, so :func:`biased_operands`
mixes several families: uniform patterns, products whose exponent is close to
the addend's with opposite signs (massive cancellation, exact zero sums),
subnormal operands and products landing in the subnormal range, sums near the
overflow threshold, round-to-nearest ties, special values, and ``add``/``mul``
shapes (``b = 1.0``, ``c = -0.0``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["directed_operands", "biased_operands", "pack", "SPECIALS"]

#: Interesting single values: zeros, min/max subnormal, min normal, one, max finite,
#: infinities, NaNs (quiet, signalling, negative), values next to 1 and 2048.
SPECIALS = np.array([
    0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x0401,
    0x3C00, 0xBC00, 0x3C01, 0x3BFF, 0x4000, 0xC000, 0x3800, 0x3555, 0x6800, 0x67FF,
    0x7BFF, 0xFBFF, 0x7BFE, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D00, 0xFFFF,
    0x0200, 0x1400, 0x1000, 0x2400, 0x5BFF, 0x5C00, 0x2001,
], dtype=np.uint16)


def _bits(sign, exp, frac):
    return ((np.asarray(sign, np.uint32) & 1) << 15 | (np.asarray(exp, np.uint32) & 0x1F) << 10
            | (np.asarray(frac, np.uint32) & 0x3FF)).astype(np.uint16)


def directed_operands(*, grid: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand-picked cases: ties, subnormals, overflow, cancellation, signed zeros, inf, NaN,
    inf*0; with ``grid``, also every pair of :data:`SPECIALS` for ``a`` and ``b`` with
    eight addends (about 10,000 cases in all)."""
    rows = [
        # signed zeros
        (0x0000, 0x0000, 0x0000), (0x8000, 0x0000, 0x0000), (0x8000, 0x0000, 0x8000),
        (0x0000, 0x0000, 0x8000), (0x8000, 0x8000, 0x8000), (0x3C00, 0x8000, 0x8000),
        (0x3C00, 0x3C00, 0xBC00), (0xBC00, 0x3C00, 0x3C00), (0x0001, 0x0001, 0x8000),
        (0x8001, 0x0001, 0x0000), (0x8001, 0x0001, 0x8000), (0x0001, 0x3800, 0x8000),
        (0x8001, 0x3800, 0x0000), (0x0001, 0x3800, 0x0000),
        # exact cancellation of a product with the addend
        (0x4200, 0x4500, 0xCB80), (0x3555, 0x3C00, 0xB555), (0x7BFF, 0x3C00, 0xFBFF),
        (0x0401, 0x3C00, 0x8401),
        # ties to even: 1 + 2**-11 (tie, stays 1), 1 + 3*2**-11 (tie, rounds up)
        (0x3C00, 0x3C00, 0x1000), (0x3C01, 0x3C00, 0x1000), (0x3C00, 0x3C00, 0x9000),
        (0x3C01, 0x3C01, 0x0000), (0x3C01, 0x3C01, 0x8000), (0x3E00, 0x3E00, 0x0000),
        (0x3C01, 0x3BFF, 0x0000), (0x3C01, 0x3BFF, 0xBC00),
        # subnormal results and the subnormal/normal boundary
        (0x0400, 0x3800, 0x0000), (0x0401, 0x3800, 0x0000), (0x0403, 0x3800, 0x0000),
        (0x03FF, 0x4000, 0x0000), (0x03FF, 0x3C00, 0x0001), (0x0001, 0x3800, 0x0001),
        (0x0001, 0x3A00, 0x0000), (0x0001, 0x3600, 0x0000), (0x1400, 0x1400, 0x0000),
        (0x1400, 0x1000, 0x0000), (0x1400, 0x0C00, 0x0001), (0x0200, 0x0200, 0x0001),
        (0x0200, 0x0200, 0x8001), (0x2001, 0x1C00, 0x0000), (0x8400, 0x3BFF, 0x0400),
        # overflow to inf and its threshold (65520 rounds to inf, 65519 does not)
        (0x7BFF, 0x3C00, 0x5000), (0x7BFF, 0x3C00, 0x4FFF), (0x7BFF, 0x3C00, 0x4C00),
        (0x7BFF, 0x4000, 0xFBFF), (0x7BFF, 0x7BFF, 0xFBFF), (0xFBFF, 0x7BFF, 0x7BFF),
        (0x5C00, 0x5C00, 0x0000), (0x5BFF, 0x5C00, 0x0000), (0x5BFF, 0x5BFF, 0xFBFF),
        (0x7BFF, 0x7BFF, 0xFC00), (0x7BFF, 0x7BFF, 0x7C00),
        # infinities and NaN
        (0x7C00, 0x0000, 0x0000), (0x0000, 0xFC00, 0x3C00), (0x7C00, 0x3C00, 0xFC00),
        (0x7C00, 0xBC00, 0xFC00), (0xFC00, 0xFC00, 0xFC00), (0x7C00, 0x0001, 0x7BFF),
        (0x3C00, 0x3C00, 0x7C00), (0x7E00, 0x3C00, 0x3C00), (0x3C00, 0x7C01, 0x3C00),
        (0x3C00, 0x3C00, 0xFFFF), (0x7C00, 0x0000, 0x7E00), (0x0000, 0x0000, 0x7D00),
        (0x7C00, 0x0000, 0x7C00), (0x7C00, 0x7C00, 0xFC00),
    ]
    base = np.array(rows, dtype=np.uint16)
    if not grid:
        return base[:, 0].copy(), base[:, 1].copy(), base[:, 2].copy()
    s = SPECIALS
    aa, bb = np.meshgrid(s, s, indexing="ij")
    cs = np.array([0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x7BFF, 0xFC00, 0x7E00], np.uint16)
    grid = np.stack([np.repeat(aa.ravel(), cs.size), np.repeat(bb.ravel(), cs.size),
                     np.tile(cs, aa.size)], axis=1)
    allv = np.concatenate([base, grid])
    return allv[:, 0].copy(), allv[:, 1].copy(), allv[:, 2].copy()


def biased_operands(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random operand triples, most from families that stress rounding and alignment."""
    fam = rng.integers(0, 8, n)
    sa, sb, sc = (rng.integers(0, 2, n) for _ in range(3))
    ea, eb = rng.integers(0, 31, n), rng.integers(0, 31, n)
    fa, fb, fc = (rng.integers(0, 1024, n) for _ in range(3))
    # Exponent of the product (biased), clipped to the finite range, and the addend's near it.
    ep = ea.astype(np.int64) + eb - 15
    ec = np.clip(ep + rng.integers(-3, 4, n), 0, 30)
    a = _bits(sa, ea, fa)
    b = _bits(sb, eb, fb)
    c = _bits(sc, rng.integers(0, 31, n), fc)
    # 0: uniform bit patterns (including inf/NaN encodings)
    m = fam == 0
    a[m], b[m], c[m] = (rng.integers(0, 1 << 16, int(m.sum())).astype(np.uint16) for _ in range(3))
    # 1: addend exponent close to the product's, opposite sign (cancellation)
    m = fam == 1
    c[m] = _bits(sa[m] ^ sb[m] ^ 1, ec[m], fc[m])
    # 2: the addend is the product rounded (or perturbed by a few ulps), negated: exact
    #    or near-exact cancellation
    m = fam == 2
    k = int(m.sum())
    short = rng.random(k) < 0.5       # short significands: the product is often exact
    a[m] = np.where(short, a[m] & 0xFFE0, a[m])
    b[m] = np.where(short, b[m] & 0xFFC0, b[m])
    with np.errstate(all="ignore"):
        p = (a[m].view(np.float16).astype(np.float32) * b[m].view(np.float16).astype(np.float32))
        pb = (-p).astype(np.float16).view(np.uint16).astype(np.int64)
    pb = pb + rng.choice([-2, -1, 0, 0, 0, 0, 1, 2], k)
    fin = (pb & 0x7C00) != 0x7C00
    c[m] = np.where(fin, pb & 0xFFFF, c[m]).astype(np.uint16)
    # 3: subnormal operands, products near or below the subnormal range
    m = fam == 3
    k = int(m.sum())
    a[m] = _bits(sa[m], rng.integers(0, 3, k), fa[m])
    b[m] = _bits(sb[m], rng.integers(0, 17, k), fb[m])
    c[m] = _bits(sc[m], rng.integers(0, 3, k), fc[m] >> rng.integers(0, 10, k))
    # 4: sums near the overflow threshold
    m = fam == 4
    k = int(m.sum())
    a[m] = _bits(sa[m], rng.integers(14, 31, k), fa[m])
    b[m] = _bits(sb[m], 45 - (a[m].astype(np.int64) >> 10 & 0x1F) + rng.integers(-1, 3, k), fb[m])
    c[m] = _bits(sc[m], rng.integers(20, 31, k), fc[m])
    # 5: ties: a*b exact with few bits and an addend half an ulp away (short fractions)
    m = fam == 5
    k = int(m.sum())
    a[m] = _bits(sa[m], ea[m], fa[m] & rng.choice([0x3FF, 0x3F0, 0x300, 0x201], k))
    b[m] = _bits(sb[m], eb[m], fb[m] & rng.choice([0x3FF, 0x3C0, 0x200, 0x001], k))
    c[m] = _bits(sc[m], np.clip(ep[m] - 11 + rng.integers(-1, 2, k), 0, 30),
                 fc[m] & rng.choice([0x000, 0x200, 0x100, 0x3FF], k))
    # 6: specials mixed with anything
    m = fam == 6
    k = int(m.sum())
    which = rng.integers(0, 3, k)
    pick = SPECIALS[rng.integers(0, SPECIALS.size, k)]
    for j, arr in enumerate((a, b, c)):
        sub = arr[m]
        sub[which == j] = pick[which == j]
        arr[m] = sub
    # 7: add (b = 1.0) and mul (c = -0.0) shapes, exponent-close addends
    m = fam == 7
    k = int(m.sum())
    is_add = rng.integers(0, 2, k).astype(bool)
    bm, cm = b[m], c[m]
    bm[is_add] = 0x3C00
    cm[is_add] = _bits(rng.integers(0, 2, k), np.clip(ea[m] + rng.integers(-2, 3, k), 0, 30),
                       fc[m])[is_add]
    cm[~is_add] = 0x8000
    b[m], c[m] = bm, cm
    return a, b, c


def pack(a, b, c) -> list[int]:
    """Stream payloads ``a | b << 16 | c << 32`` of the FMA operand layout, as Python ints."""
    a, b, c = (np.asarray(x, dtype=np.uint64) for x in (a, b, c))
    return (a | b << np.uint64(16) | c << np.uint64(32)).tolist()
