"""cocotb throughput measurement of the spike decoder (used by ``scripts/bench_decoder.py``).

Arguments: ``word_width``, ``index_width``, ``width``, ``cases`` (list of
``{"density", "n_bits", "count", "seed"}``) and ``out`` (JSON file to write).
For each case, ``count`` random bitmaps of ``n_bits`` bits at ``density`` go
through back to back without back-pressure; the output is checked against
``np.flatnonzero`` and the cycles from the first word's transfer to the final
beat's transfer are counted. Also measures the latency of a one-word bitmap.
"""

import json

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from spikeforge.sim.verilator.cocotb_tests.spike_decoder import _decode_beat
from spikeforge.sim.verilator.cocotb_util import reset, start_clock
from spikeforge.sim.verilator.harness import cocotb_args


def _words(bits, W):
    n_words = max(1, -(-len(bits) // W))
    padded = np.zeros(n_words * W, dtype=np.uint64)
    padded[:len(bits)] = bits
    weights = np.left_shift(np.uint64(1), np.arange(W, dtype=np.uint64))
    values = (padded.reshape(n_words, W) * weights).sum(axis=1)
    return [(int(v), int(k == n_words - 1)) for k, v in enumerate(values)]


async def _run(dut, words, n_maps, W, IW, N):
    """Returns (beats, first_in_cycle, last_out_cycle)."""
    beats, pos, seen, cycle = [], 0, 0, 0
    first_in = last_out = None
    dut.o__ready.value = 1
    while seen < n_maps:
        offer = pos < len(words)
        if offer:
            word, last = words[pos]
            dut.i__payload.value = word | (last << W)
        dut.i__valid.value = int(offer)
        await ReadOnly()
        if offer and int(dut.i__ready.value):
            if first_in is None:
                first_in = cycle
            pos += 1
        if int(dut.o__valid.value):
            beat = _decode_beat(int(dut.o__payload.value), IW, N)
            beats.append(beat)
            seen += beat[2]
            last_out = cycle
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < 100 * len(words) + 1000, "decoder stalled"
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    return beats, first_in, last_out


@cocotb.test()
async def decoder_throughput(dut):
    args = cocotb_args()
    W, IW, N = args["word_width"], args["index_width"], args["width"]
    start_clock(dut)
    await reset(dut)
    results = []

    # latency: one word with bit 0 set, after an idle period
    beats, first_in, last_out = await _run(dut, [(1, 1)], 1, W, IW, N)
    latency = last_out - first_in
    assert beats == [([0], 1, 1)]

    for case in args["cases"]:
        rng = np.random.default_rng(case["seed"])
        maps = [rng.random(case["n_bits"]) < case["density"] for _ in range(case["count"])]
        words = [w for bits in maps for w in _words(bits, W)]
        beats, first_in, last_out = await _run(dut, words, len(maps), W, IW, N)
        # check against the reference
        k = 0
        for bits in maps:
            got = []
            while True:
                idx, count, last = beats[k]
                k += 1
                got.extend(idx)
                if last:
                    break
            assert got == [int(i) for i in np.flatnonzero(bits)]
        indices = sum(int(b.sum()) for b in maps)
        cycles = last_out - first_in + 1
        # cycles the decoder's structure needs: max(1, ceil(n / width)) per word
        model = sum(max(1, -(-bin(w).count("1") // N)) for w, _ in words)
        results.append({
            "density": case["density"], "n_bits": case["n_bits"], "bitmaps": len(maps),
            "words": len(words), "indices": indices, "beats": len(beats), "cycles": cycles,
            "indices_per_cycle": round(indices / cycles, 4),
            "words_per_cycle": round(len(words) / cycles, 4),
            "model_cycles": model,
            "ideal_cycles": max(len(words), -(-indices // N)),
        })
    with open(args["out"], "w") as fh:
        json.dump({"word_width": W, "index_width": IW, "width": N,
                   "latency_cycles": latency, "cases": results}, fh)
