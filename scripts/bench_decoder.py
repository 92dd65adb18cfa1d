"""Benchmark of the spike decoder on Verilator: indices per cycle against spike density.

For each decoder width, random bitmaps at several densities stream through the
decoder back to back with no back-pressure (checked against ``np.flatnonzero``);
the JSON lists, per width and density, cycles, indices per cycle, words per
cycle, the cycles the structure needs (``model_cycles``: one cycle per zero
word, ``ceil(n / width)`` per word with ``n`` active bits) and the ideal
``max(words, ceil(indices / width))``, plus the first-beat latency.

Usage: ``python scripts/bench_decoder.py [--json FILE] [--widths 1,2,4,8]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from spikeforge.hdl.spike_decoder import SpikeDecoder
from spikeforge.sim.verilator import harness

DENSITIES = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench_decoder.json", help="output JSON file")
    parser.add_argument("--widths", default="1,2,4,8", help="decoder widths, comma-separated")
    parser.add_argument("--word-width", type=int, default=32)
    parser.add_argument("--bits", type=int, default=256, help="bits per bitmap (default 256)")
    parser.add_argument("--count", type=int, default=64, help="bitmaps per density (default 64)")
    args = parser.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths must be integers separated by commas, not {args.widths!r}")

    report = {"word_width": args.word_width, "bits_per_bitmap": args.bits,
              "bitmaps_per_case": args.count, "widths": []}
    for width in widths:
        dut = SpikeDecoder(word_width=args.word_width, index_width=16, width=width)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cases = [{"density": d, "n_bits": args.bits, "count": args.count, "seed": 100 + k}
                     for k, d in enumerate(DENSITIES)]
            harness.run(dut, name=f"spike_decoder_w{width}",
                        test_module="spikeforge.sim.verilator.cocotb_tests.spike_decoder_bench",
                        args={"word_width": args.word_width, "index_width": 16, "width": width,
                              "cases": cases, "out": str(out)})
            result = json.loads(out.read_text())
        report["widths"].append(result)
        print(f"width {width}: latency {result['latency_cycles']} cycles")
        for c in result["cases"]:
            print(f"  density {c['density']:5.2f}: {c['indices_per_cycle']:6.3f} indices/cycle, "
                  f"{c['words_per_cycle']:5.3f} words/cycle, cycles {c['cycles']} "
                  f"(structure {c['model_cycles']}, ideal {c['ideal_cycles']})")
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
