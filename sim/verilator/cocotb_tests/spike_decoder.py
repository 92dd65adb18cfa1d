"""cocotb check of the spike decoder: random bitmaps, random stalls on both sides.

Arguments (``harness.cocotb_args()``): ``word_width``, ``index_width``, ``width``,
``words`` (list of ``[word, last]``), ``expected`` (the active indices of each
bitmap, computed by the caller with ``np.flatnonzero``), ``in_stall`` and
``out_stall`` (probabilities of holding ``valid`` / ``ready`` low in a cycle).

Handshakes are evaluated in the ``ReadOnly`` phase before each rising edge, so a
transfer is counted exactly when ``valid`` and ``ready`` are both 1 at the edge.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from spikeforge.sim.verilator.cocotb_util import reset, start_clock
from spikeforge.sim.verilator.harness import cocotb_args


def _decode_beat(value, index_width, width):
    count_bits = width.bit_length()
    indices = [(value >> (k * index_width)) & ((1 << index_width) - 1) for k in range(width)]
    count = (value >> (width * index_width)) & ((1 << count_bits) - 1)
    last = (value >> (width * index_width + count_bits)) & 1
    return indices[:count], count, last


@cocotb.test()
async def decoder_matches_flatnonzero(dut):
    args = cocotb_args()
    W, IW, N = args["word_width"], args["index_width"], args["width"]
    words = args["words"]
    expected = args["expected"]
    rng = random.Random(args.get("seed", 5))
    in_stall, out_stall = args.get("in_stall", 0.0), args.get("out_stall", 0.0)

    start_clock(dut)
    await reset(dut)

    beats = []
    pos = 0
    seen_last = 0
    cycles = 0
    limit = 50 * len(words) + 1000
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    while seen_last < len(expected):
        # drive for the coming edge
        in_valid = pos < len(words) and rng.random() >= in_stall
        if in_valid:
            word, last = words[pos]
            dut.i__payload.value = word | (last << W)
        dut.i__valid.value = int(in_valid)
        out_ready = rng.random() >= out_stall
        dut.o__ready.value = int(out_ready)
        await ReadOnly()
        if in_valid and int(dut.i__ready.value):
            pos += 1
        if out_ready and int(dut.o__valid.value):
            beat = _decode_beat(int(dut.o__payload.value), IW, N)
            beats.append(beat)
            seen_last += beat[2]
        await RisingEdge(dut.clk)
        cycles += 1
        assert cycles < limit, f"decoder stalled: {seen_last} of {len(expected)} bitmaps done"
    assert pos == len(words), "decoder finished before consuming every word"

    # split per bitmap and compare
    k = 0
    for n, ref in enumerate(expected):
        got, counts = [], []
        while True:
            idx, count, last = beats[k]
            k += 1
            got.extend(idx)
            counts.append(count)
            if last:
                break
        if ref:
            assert all(1 <= c <= N for c in counts), f"bitmap {n}: bad counts {counts}"
        else:
            assert counts == [0], f"empty bitmap {n}: expected one empty beat, got {counts}"
        assert got == ref, f"bitmap {n}: got {got}, expected {ref}"
    assert k == len(beats)
