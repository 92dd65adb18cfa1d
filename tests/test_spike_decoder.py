"""Spike decoder against np.flatnonzero: amaranth.sim and Verilator, with back-pressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from streams import StreamSink, StreamSource
from spikeforge.hdl.spike_decoder import SpikeDecoder, input_layout
from spikeforge.sim.verilator import harness


def random_bitmap(rng, n_bits, density):
    """Bits of one bitmap (numpy bool array) with the given density."""
    return rng.random(n_bits) < density


def words_of(bits, word_width):
    """The bitmap as (word, last) pairs; bit b of word w is index w*word_width + b."""
    n_words = max(1, -(-len(bits) // word_width))
    padded = np.zeros(n_words * word_width, dtype=bool)
    padded[:len(bits)] = bits
    words = []
    for w in range(n_words):
        value = 0
        for b in range(word_width):
            if padded[w * word_width + b]:
                value |= 1 << b
        words.append((value, int(w == n_words - 1)))
    return words


def expected_beats_ok(beats, bits, width):
    """Check the beats of one bitmap against the reference; return the indices."""
    ref = [int(i) for i in np.flatnonzero(bits)]
    assert beats, "no beat for a bitmap"
    assert [b[2] for b in beats] == [0] * (len(beats) - 1) + [1], "last flag misplaced"
    if not ref:
        assert beats == [([], 0, 1)], f"empty bitmap must give one empty last beat, got {beats}"
        return ref
    got = []
    for idx, count, _last in beats:
        assert 1 <= count <= width, f"count {count} out of 1..{width} on a non-empty bitmap"
        got.extend(idx)
    assert got == ref
    return ref


def make_bitmaps(seed, n, word_width):
    rng = np.random.default_rng(seed)
    maps = []
    densities = [0.0, 1.0, 0.02, 0.1, 0.3, 0.5, 0.8]
    for k in range(n):
        density = densities[k % len(densities)]
        n_bits = int(rng.integers(1, 5 * word_width))
        maps.append(random_bitmap(rng, n_bits, density))
    # a non-empty bitmap whose trailing words are zero, and a single-index one
    tail = np.zeros(4 * word_width, dtype=bool)
    tail[3] = True
    maps.append(tail)
    single = np.zeros(word_width, dtype=bool)
    single[word_width - 1] = True
    maps.append(single)
    return maps


def run_amaranth(dut, bitmaps, *, in_stall, out_stall, seed=0):
    words = [w for bits in bitmaps for w in words_of(bits, dut.word_width)]
    lay = input_layout(dut.word_width)
    source = StreamSource(dut.i, [lay.const({"word": word, "last": last}) for word, last in words],
                          stall=in_stall, seed=seed)
    sink = StreamSink(dut.o, stall=out_stall, seed=seed + 1,
                      done=lambda beats: sum(int(b.last) for b in beats) == len(bitmaps),
                      max_cycles=100 * len(words) + 1000)

    async def drain(ctx):
        await sink.run(ctx)
        await sink.expect_idle(ctx, 20, "a beat after the final last")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run, background=True)
    sim.add_testbench(drain)
    sim.run()
    return [([int(p.index[k]) for k in range(int(p.count))], int(p.count), int(p.last))
            for p in sink.beats]


def split_bitmaps(beats):
    out, cur = [], []
    for beat in beats:
        cur.append(beat)
        if beat[2]:
            out.append(cur)
            cur = []
    assert not cur
    return out


@pytest.mark.parametrize("word_width,width,in_stall,out_stall", [
    (32, 4, 0.0, 0.0),
    (32, 4, 0.3, 0.5),
    (16, 1, 0.2, 0.2),
    (8, 8, 0.5, 0.0),
    (32, 3, 0.0, 0.6),
])
def test_decoder_amaranth(word_width, width, in_stall, out_stall):
    dut = SpikeDecoder(word_width=word_width, index_width=12, width=width)
    bitmaps = make_bitmaps(word_width * 10 + width, 28, word_width)
    beats = run_amaranth(dut, bitmaps, in_stall=in_stall, out_stall=out_stall)
    per_map = split_bitmaps(beats)
    assert len(per_map) == len(bitmaps)
    for bits, map_beats in zip(bitmaps, per_map):
        expected_beats_ok(map_beats, bits, width)


def test_decoder_dense_throughput_amaranth():
    """Without back-pressure a dense bitmap leaves at width indices per cycle."""
    dut = SpikeDecoder(word_width=32, width=4)
    lay = input_layout(32)
    words = [lay.const({"word": 0xFFFF_FFFF, "last": int(k == 7)}) for k in range(8)]
    sink = StreamSink(dut.o, done=lambda beats: bool(beats) and beats[-1].last)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(StreamSource(dut.i, words).run, background=True)
    sim.add_testbench(sink.run)
    sim.run()
    times = [(edge, int(p.count)) for edge, p in zip(sink.edges, sink.beats)]
    assert sum(c for _, c in times) == 256
    assert all(c == 4 for _, c in times)
    first, last = times[0][0], times[-1][0]
    assert last - first == len(times) - 1, "bubbles in a dense stream"


def test_decoder_parameters_checked():
    with pytest.raises(ValueError, match="width must be an integer from 1 to 32, not 33"):
        SpikeDecoder(word_width=32, width=33)
    with pytest.raises(ValueError, match="index_width"):
        SpikeDecoder(word_width=64, index_width=5)
    with pytest.raises(ValueError, match="word_width"):
        SpikeDecoder(word_width=0)


@pytest.mark.verilator
@pytest.mark.parametrize("word_width,width,in_stall,out_stall", [
    (32, 4, 0.0, 0.0),
    (32, 4, 0.3, 0.4),
    (16, 2, 0.1, 0.5),
])
def test_decoder_verilator(word_width, width, in_stall, out_stall):
    bitmaps = make_bitmaps(word_width + width, 60, word_width)
    words = [list(w) for bits in bitmaps for w in words_of(bits, word_width)]
    expected = [[int(i) for i in np.flatnonzero(bits)] for bits in bitmaps]
    dut = SpikeDecoder(word_width=word_width, index_width=16, width=width)
    harness.run(dut, name="spike_decoder", test_module="spikeforge.sim.verilator.cocotb_tests.spike_decoder",
                args={"word_width": word_width, "index_width": 16, "width": width,
                      "words": words, "expected": expected,
                      "in_stall": in_stall, "out_stall": out_stall})


@pytest.mark.parametrize("width", [1, 2, 3, 5, 16, 37, 256])
def test_bitmap_primitives_match_python(width):
    """lowest_set_bit, at_most_one_set and popcount (the trees the decoder, the history
    scanner and the input-gradient loop use) against Python's integer operations on
    random and edge-case vectors."""
    import random

    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    from spikeforge.hdl.spike_decoder import at_most_one_set, lowest_set_bit, popcount
    m = Module()
    x, idx, any_, pc, one = Signal(width), Signal(9), Signal(), Signal(9), Signal()
    i, a = lowest_set_bit(x)
    m.d.comb += [idx.eq(i), any_.eq(a), pc.eq(popcount(x)), one.eq(at_most_one_set(x))]
    rng = random.Random(width)
    values = [0, 1, (1 << width) - 1, 1 << (width - 1)] + \
        [rng.getrandbits(width) & rng.getrandbits(width) for _ in range(100)] + \
        [1 << rng.randrange(width) for _ in range(20)] + \
        [(1 << rng.randrange(width)) | (1 << rng.randrange(width)) for _ in range(20)]

    async def bench(ctx):
        for v in values:
            ctx.set(x, v)
            assert ctx.get(idx) == ((v & -v).bit_length() - 1 if v else 0), v
            assert ctx.get(any_) == (v != 0), v
            assert ctx.get(pc) == bin(v).count("1"), v
            assert ctx.get(one) == (v & (v - 1) == 0), v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("xbits,n", [(1, 1), (1, 2), (3, 5), (5, 17), (6, 49), (4, 40)])
def test_below_matches_python(xbits, n):
    """below(x, n): bit i set exactly when i < x, for every x of its width."""
    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    from spikeforge.hdl.spike_decoder import below
    m = Module()
    x, out = Signal(xbits), Signal(n)
    m.d.comb += out.eq(below(x, n))

    async def bench(ctx):
        for v in range(1 << xbits):
            ctx.set(x, v)
            assert ctx.get(out) == sum(1 << i for i in range(n) if i < v), v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
