"""Digest of the weight memories: CRC-32 of ``n`` 16-bit words per cycle (READ_DIGEST).

The digest of a region is the CRC-32 of zlib (``binascii.crc32``: reflected
polynomial 0xEDB88320, register preset to all ones, final complement) of the
region's words as little-endian bytes. :class:`WordDigest` takes a row of ``n``
words per cycle (in a core, :func:`digest_words`: ``n = min(P, 4)`` banks of one
weight address, ascending, so an address of ``P`` banks takes ``P / n`` cycles), so
its update is the CRC register after ``16 * n`` input bits: a linear map over
GF(2) whose matrix :func:`crc32_step_masks` derives from the bitwise definition
(each output bit is the XOR of a fixed set of register and data bits: a log-depth
XOR tree, about ``(32 + 16 * n) / 2`` inputs per bit).

Timing: the words enter with one cycle of latency after ``en`` (the memories' read
latency: ``en`` and ``mask`` come with the read address, ``data`` the cycle after),
then through a register (the masked row) into the CRC register, so no path runs
from a memory's output through the XOR trees. ``busy`` is high while words are in
flight; ``value`` is the digest of every row entered since ``clear``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CRC32_POLY", "DIGEST_WORDS", "digest_words", "crc32_step_masks", "WordDigest"]

#: The CRC-32 polynomial of zlib, bit-reflected (x^32 + x^26 + ... + 1).
CRC32_POLY = 0xEDB88320

#: Words a core's digest takes per cycle at most: a part of a weight address's banks,
#: so neither the XOR trees nor the wires from every bank's block RAM into them grow
#: with the lanes (the digest of all ``16 P`` bits of an address at once was about
#: 1,600 LUTs and a tenth of the placed wire length of the 16-lane core).
DIGEST_WORDS = 4


def digest_words(lanes: int) -> int:
    """Words per cycle into the digest of a core of ``lanes`` lanes (a power of two):
    ``min(lanes, DIGEST_WORDS)``."""
    return min(lanes, DIGEST_WORDS)


def crc32_step_masks(nbits: int) -> list[int]:
    """For each of the 32 register bits after ``nbits`` input bits (least significant
    first, as the reflected CRC shifts them in): the set of variables it is the XOR
    of, as a mask (bit ``i < 32`` the register's bit ``i`` before, bit ``32 + b`` input
    bit ``b``)."""
    if not isinstance(nbits, int) or nbits < 1:
        raise ValueError(f"nbits must be a positive integer, not {nbits!r}")
    reg = [1 << i for i in range(32)]
    for b in range(nbits):
        fb = reg[0] ^ (1 << (32 + b))
        reg = reg[1:] + [0]
        for i in range(32):
            if (CRC32_POLY >> i) & 1:
                reg[i] ^= fb
    return reg


class WordDigest(wiring.Component):
    """CRC-32 of rows of ``words`` 16-bit words (keyword ``words``, at least 1)."""

    def __init__(self, *, words: int):
        if not isinstance(words, int) or isinstance(words, bool) or words < 1:
            raise ValueError(f"words must be a positive integer, not {words!r}")
        self.words = words
        super().__init__({
            "clear": In(1),                             # the register to all ones
            "en": In(1),                                # a row is read this cycle
            "mask": In(words),                          # its words that count (others 0)
            "data": In(data.ArrayLayout(16, words)),    # the row, the cycle after en
            "busy": Out(1),
            "value": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.words
        en1, en2 = Signal(), Signal()
        mask1 = Signal(n)
        row = Signal(16 * n)
        crc = Signal(32, init=0xFFFFFFFF)
        m.d.sync += [en1.eq(self.en & ~self.clear), mask1.eq(self.mask), en2.eq(en1),
                     row.eq(Cat(*[self.data[i] & mask1[i].replicate(16)
                                  for i in range(n)]))]
        state = Cat(crc, row)
        nxt = Cat(*[_xor_of(state, mask) for mask in crc32_step_masks(16 * n)])
        with m.If(self.clear):
            m.d.sync += [crc.eq(0xFFFFFFFF), en2.eq(0)]
        with m.Elif(en2):
            m.d.sync += crc.eq(nxt)
        m.d.comb += [self.busy.eq(en1 | en2), self.value.eq(~crc)]
        return m


def _xor_of(bits, mask: int):
    """XOR of the bits of ``bits`` selected by ``mask`` (0 when none is)."""
    picked = [bits[i] for i in range(len(bits)) if (mask >> i) & 1]
    return Cat(*picked).xor() if picked else Const(0, 1)
