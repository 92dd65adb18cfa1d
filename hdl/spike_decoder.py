"""Spike decoder: a spike bitmap in, the ascending stream of its active indices out.

Input ``i``: the words of a bitmap in ascending order, one per beat (bit ``b`` of
word ``w`` is index ``w * word_width + b``); ``last`` marks the final word of the
bitmap and indices restart at 0 after it.

Output ``o``: the active indices in ascending order, up to ``width`` per beat in
slots ``0 .. count-1``; ``last`` is 1 on the final beat of a bitmap. Every beat
carries at least one index, except for a bitmap without any active index, which
yields exactly one beat with ``count = 0`` and ``last = 1``.

Structure: a word register holds the bits of the current word not yet emitted;
each cycle the lowest ``width`` of them are extracted (``x & (x - 1)`` clears
the lowest set bit, ``width`` times in a row) into a beat register. A beat that
ends its word (and whose word is not the bitmap's last) is held in the beat
register until the decoder knows whether more indices follow: it leaves with
``last = 0`` as soon as the next non-zero word reaches the word register, or with
``last = 1`` when the bitmap's final word turns out to be zero (so the stream
never carries an empty beat for a non-empty bitmap).

Throughput (no back-pressure): one beat per cycle, i.e. ``width`` indices per
cycle while a word holds at least ``width`` more active bits; a word with ``n``
active bits takes ``max(1, ceil(n / width))`` cycles (a zero word one cycle),
and beats never mix two words. Zero words are skipped at one word per cycle,
the rate at which ``i`` delivers them, overlapped with the output of earlier
beats. Latency: the first beat of a word is valid on ``o`` two cycles after the
word's transfer on ``i`` (word register, then beat register), unless it waits
for the next non-zero word or the final word as described above.

``i.ready`` depends combinationally on ``o.ready`` (one-cycle turnaround, no
skid buffer); ``o.valid`` depends only on registers.

The bitmap primitives :func:`lowest_set_bit` (a priority encoder) and
:func:`popcount` are log-depth trees; the decoder and the core's history
scanner (:mod:`spikeforge.hdl.core.history_scanner`) both use them.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from .checked import ArgumentChecked

__all__ = ["SpikeDecoder", "input_layout", "output_layout", "below", "lowest_set_bit",
           "at_most_one_set", "popcount"]


def lowest_set_bit(bits) -> tuple[Value, Value]:
    """``(index, any)``: the position of the lowest set bit of ``bits`` (0 when none is
    set; at least one bit wide) and whether any bit is set, as a tree of depth
    ``ceil(log2(len(bits)))``: each node picks its lower half's index when that half
    has a set bit, else its upper half's, and adds one index bit."""
    bits = Value.cast(bits)
    if len(bits) == 0:
        return Const(0, 1), Const(0, 1)
    width = max(1, ceil_log2(len(bits)))

    def bit(i):
        return bits[i] if i < len(bits) else Const(0, 1)

    def node(lo, n):
        # index (log2(n) bits, n a power of two >= 2) and any-bit of bits[lo:lo + n]
        if n == 2:
            return ~bit(lo), bit(lo) | bit(lo + 1)
        i_lo, a_lo = node(lo, n // 2)
        if lo + n // 2 >= len(bits):        # the upper half is padding
            return Cat(i_lo, Const(0, 1)), a_lo
        i_hi, a_hi = node(lo + n // 2, n // 2)
        return Cat(Mux(a_lo, i_lo, i_hi), ~a_lo), a_lo | a_hi

    index, any_ = node(0, 1 << width)
    return Mux(any_, index, 0)[:width], any_


def at_most_one_set(bits) -> Value:
    """Whether at most one bit of ``bits`` is set (``bits & (bits - 1) == 0`` without
    the subtraction's carry chain), as a tree of depth ``ceil(log2(len(bits)))``: each
    node has "any set" and "two or more set" of its halves."""
    bits = Value.cast(bits)

    def node(lo, n):
        if n == 1:
            return bits[lo], Const(0, 1)
        h = n // 2
        a_lo, m_lo = node(lo, h)
        a_hi, m_hi = node(lo + h, n - h)
        return a_lo | a_hi, m_lo | m_hi | (a_lo & a_hi)

    if len(bits) == 0:
        return Const(1, 1)
    return ~node(0, len(bits))[1]


def below(x, n: int) -> Value:
    """``n`` bits, bit ``i`` set when ``i < x`` (a thermometer code of ``x``): per
    bit of ``x`` one level of AND / OR gates, no comparator per output bit."""
    x = Value.cast(x)
    bits = [Const(0, 1)]                    # no bit of x: position 0 is not below 0
    for b in range(len(x)):                 # 2 ** b positions -> 2 ** (b + 1)
        bits = [x[b] | v for v in bits] + [x[b] & v for v in bits]
    bits = bits[:n] + [Const(0, 1)] * max(0, n - len(bits))
    return Cat(*bits)


def popcount(bits) -> Value:
    """The number of set bits of ``bits``, as a balanced tree of adders
    (``bits_for(len(bits))`` bits wide)."""
    bits = Value.cast(bits)
    terms = [bits[i] for i in range(len(bits))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0][:bits_for(len(bits))]


def _check(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")


def input_layout(word_width: int) -> data.StructLayout:
    """Payload layout of the decoder's input stream."""
    return data.StructLayout({"word": word_width, "last": 1})


def output_layout(index_width: int, width: int) -> data.StructLayout:
    """Payload layout of the decoder's output stream."""
    return data.StructLayout({
        "index": data.ArrayLayout(index_width, width),
        "count": range(width + 1),
        "last": 1,
    })


class SpikeDecoder(ArgumentChecked, wiring.Component):
    """Turn bitmap words into ascending active indices, ``width`` per beat.

    Parameters (keyword-only): ``word_width`` (bits per input word, 1..1024),
    ``index_width`` (bits of an index, enough for ``word_width - 1``; bitmaps
    longer than ``2**index_width`` wrap), ``width`` (indices per output beat,
    1..``word_width``).
    """

    @classmethod
    def check(cls, *, word_width: int = 32, index_width: int = 16, width: int = 4):
        _check("word_width", word_width, 1, 1024)
        _check("width", width, 1, word_width)
        _check("index_width", index_width, max(1, ceil_log2(word_width)), 32)

    def __init__(self, *, word_width: int = 32, index_width: int = 16, width: int = 4):
        self.word_width = word_width
        self.index_width = index_width
        self.width = width
        super().__init__({
            "i": In(stream.Signature(input_layout(word_width))),
            "o": Out(stream.Signature(output_layout(index_width, width))),
        })

    def elaborate(self, platform):
        m = Module()
        W, N, IW = self.word_width, self.width, self.index_width

        # Word register: bits of the current word not yet emitted.
        cur_valid = Signal()
        cur_bits = Signal(W)
        cur_base = Signal(IW)
        cur_last = Signal()
        next_base = Signal(IW)  # base index of the next word to arrive

        # Beat register.
        pend_valid = Signal()
        pend_index = Signal(data.ArrayLayout(IW, N))
        pend_count = Signal(range(N + 1))
        pend_last = Signal()
        pend_open = Signal()  # ends its word, word not final: last still unknown

        # Extraction of the lowest N set bits of cur_bits.
        rest = [cur_bits]
        slot_index = []
        slot_valid = []
        for k in range(N):
            x = rest[-1]
            cleared = Signal(W, name=f"rest{k + 1}")
            m.d.comb += cleared.eq(x & (x - 1)[:W])
            pos = Signal(range(W), name=f"pos{k}")
            m.d.comb += pos.eq(lowest_set_bit(x)[0])
            slot_index.append(pos)
            slot_valid.append(x.any())
            rest.append(cleared)

        count = Signal(range(N + 1))
        m.d.comb += count.eq(popcount(Cat(*slot_valid)))
        word_done = ~rest[-1].any()

        avail = cur_valid & cur_bits.any()             # a beat can be extracted
        zero_last = cur_valid & ~cur_bits.any() & cur_last
        zero_mid = cur_valid & ~cur_bits.any() & ~cur_last

        # Output.
        m.d.comb += [
            self.o.valid.eq(pend_valid & (~pend_open | avail | zero_last)),
            self.o.payload.index.eq(pend_index),
            self.o.payload.count.eq(pend_count),
            self.o.payload.last.eq(pend_last | (pend_open & zero_last)),
        ]
        load_ok = ~pend_valid | self.o.ready & self.o.valid

        cur_free = Signal()
        with m.If(load_ok):
            with m.If(pend_valid):
                m.d.sync += pend_valid.eq(0)
            with m.If(avail):
                m.d.sync += [
                    pend_valid.eq(1),
                    pend_count.eq(count),
                    pend_last.eq(word_done & cur_last),
                    pend_open.eq(word_done & ~cur_last),
                    cur_bits.eq(rest[-1]),
                ]
                for k in range(N):
                    if W & (W - 1) == 0:
                        # bases are multiples of a power of two: the low bits are free
                        index = cur_base | slot_index[k]
                    else:
                        index = (cur_base + slot_index[k])[:IW]
                    m.d.sync += pend_index[k].eq(index)
                m.d.comb += cur_free.eq(word_done)
            with m.Elif(zero_last):
                # A zero final word ends the bitmap: either it closes the beat now
                # leaving (pend_open), or the bitmap had no index at all.
                with m.If(~(pend_valid & pend_open)):
                    m.d.sync += [
                        pend_valid.eq(1),
                        pend_count.eq(0),
                        pend_last.eq(1),
                        pend_open.eq(0),
                    ]
                m.d.comb += cur_free.eq(1)
        with m.If(zero_mid):
            m.d.comb += cur_free.eq(1)

        m.d.comb += self.i.ready.eq(~cur_valid | cur_free)
        with m.If(cur_free):
            m.d.sync += cur_valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                cur_valid.eq(1),
                cur_bits.eq(self.i.payload.word),
                cur_last.eq(self.i.payload.last),
                cur_base.eq(next_base),
            ]
            with m.If(self.i.payload.last):
                m.d.sync += next_base.eq(0)
            with m.Else():
                m.d.sync += next_base.eq(next_base + W)
        return m
