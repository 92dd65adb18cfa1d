"""Training throughput of the accelerator on a board beside PyTorch on this CPU.

One run measures, side by side, on the digits network given (``--hidden``, T):

* the accelerator's cycles per training sample: ``spikeforge train --engine rtl``
  on the Verilator model of the configuration the build was made from (the
  ``config`` of ``--build DIR/report.json``, one core), bit-exact against the
  golden model, for ``--samples`` samples (forward, backward, dW and the update
  per sample at minibatch 1; the host's reads for the checks are not counted:
  they are the core's own cycle counters of its compute commands);
* the placed fmax of the same configuration: ``fmax_mhz`` and ``timing_met``
  of the build's report (``spikeforge build`` of the whole accelerator), and the
  clock the bitstream runs (``target_mhz``);
* PyTorch float32 on the CPU, the same network, at minibatch 1 and its best
  minibatch (``scripts/bench_golden.py``'s implementation), in the same run.

It reports samples per second on the chip (clock / cycles per sample, at the
build's clock and at its placed fmax), the ratio to PyTorch's best, and the
effective GOPS per DSP (useful FMAs per cycle x clock / DSPs of one core of the
build, the build's DSPs over its cores: an FMA counts as two operations) beside the 2.25 GOPS/DSP of the reduced-precision
accelerator on a PYNQ-Z2 that the design card names. Medians of ``--repeats``
PyTorch runs; everything is written to JSON.

Usage: ``python scripts/bench_board_throughput.py --build DIR [--hidden 32] [--T 8]
[--samples 20] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PYNQ_GOPS_PER_DSP = 2.25


def _torch_cases(sizes, T, samples, repeats, batches):
    sys.path.insert(0, str(HERE))
    import bench_golden
    from spikeforge.sim.golden import datasets as D
    from spikeforge.sim.golden import model as golden
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    data = D.load("digits")
    n = min(samples, len(data.x_train))
    spikes = D.encode_batch(data.x_train, np.arange(n), split="train", seed=0, T=T)
    params = golden.Params(T=T)
    w16 = golden.init_weights(sizes, 0)
    cases = {}
    for b in batches:
        res = bench_golden.bench_torch(w16, spikes, data.y_train[:n], params, b, repeats)
        cases[b] = res
        print(f"PyTorch float32 batch {b:4d}: {res['samples_per_s_wall']:10.1f} samples/s "
              f"(wall, median of {repeats})", flush=True)
    return {"version": torch.__version__, "threads": 1, "samples": n,
            "cases": {str(b): c for b, c in cases.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, metavar="DIR",
                        help="folder of a spikeforge build of the whole accelerator")
    parser.add_argument("--hidden", default="32", help="hidden sizes, comma separated")
    parser.add_argument("--T", type=int, default=8)
    parser.add_argument("--samples", type=int, default=20, help="RTL training samples")
    parser.add_argument("--torch-samples", type=int, default=256)
    parser.add_argument("--torch-batches", default="1,8,32,128,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="bench_board_throughput.json")
    args = parser.parse_args(argv)

    from spikeforge.hdl.config import BuildConfig
    from spikeforge.sim import train as TR

    build = json.loads((Path(args.build) / "report.json").read_text())
    if build.get("block") != "accelerator":
        parser.error(f"--build {args.build}: a build of block {build.get('block')!r}, "
                     "not of the whole accelerator")
    config = BuildConfig.from_dict(build["config"])
    one = config.replace(rows=1, cols=1)
    hidden = [int(h) for h in args.hidden.split(",")]
    sizes = [64, *hidden, 10]

    print(f"RTL: {args.samples} samples of {'-'.join(map(str, sizes))} (T={args.T}) on one "
          f"core of the build's configuration ({one.features.lanes} lanes)", flush=True)
    rtl = TR.run(dataset="digits", engine="rtl", hidden=hidden, T=args.T, samples=args.samples,
                 test_samples=1, engine_options={"cores": 1, "preset": build.get("preset"),
                                                 "config": one, "check_traces": False,
                                                 "top": "accelerator"},
                 progress=False, log=lambda *a, **k: None)
    if not rtl.get("bit_exact"):
        print("the RTL run was not bit-exact: no throughput is reported", file=sys.stderr)
        return 1
    cps = rtl["cycles_per_sample"]
    useful_per_sample = rtl["useful_fmas"] / rtl["samples"]
    torch_report = _torch_cases(sizes, args.T, args.torch_samples, args.repeats,
                                [int(b) for b in args.torch_batches.split(",")])

    clock = build["target_mhz"]
    fmax = build["fmax_mhz"]
    # the RTL run trains on one core: its share of the build's DSPs
    dsps = build["dsps"] / max(1, build.get("cores") or 1)
    chip = clock * 1e6 / cps
    chip_fmax = fmax * 1e6 / cps if fmax else None
    gops = 2 * useful_per_sample / cps * clock * 1e6 / 1e9
    report = {
        "sizes": sizes, "T": args.T,
        "build": {k: build.get(k) for k in ("board", "device", "preset", "cores", "lanes",
                                            "luts", "ffs", "dsps", "brams", "fmax_mhz",
                                            "target_mhz", "timing_met")},
        "rtl": {k: rtl.get(k) for k in ("samples", "bit_exact", "cycles_per_sample",
                                        "ideal_cycles_per_sample", "ratio_to_ideal",
                                        "useful_fmas", "pe_utilisation", "weights_sha256")},
        "chip_samples_per_second_at_clock": chip,
        "chip_samples_per_second_at_fmax": chip_fmax,
        "useful_fmas_per_cycle": useful_per_sample / cps,
        "gops_at_clock": gops,
        "dsps_per_core": dsps,
        "gops_per_dsp": gops / dsps if dsps else None,
        "pynq_z2_gops_per_dsp": PYNQ_GOPS_PER_DSP,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "torch": torch_report,
    }
    print(f"chip: {cps:.0f} cycles/sample, {chip:,.0f} samples/s at {clock:g} MHz "
          f"(placed fmax {fmax} MHz, timing {'met' if build.get('timing_met') else 'NOT met'}); "
          f"{report['useful_fmas_per_cycle']:.2f} useful FMAs/cycle, "
          f"{gops:.3f} GOPS, {report['gops_per_dsp'] or 0:.4f} GOPS/DSP "
          f"(PYNQ-Z2 reduced-precision: {PYNQ_GOPS_PER_DSP})")
    if torch_report is not None:
        rates = {int(b): c["samples_per_s_wall"] for b, c in torch_report["cases"].items()}
        best = max(rates, key=rates.get)
        report["torch_batch1_samples_per_second"] = rates.get(1)
        report["torch_best_batch"] = best
        report["torch_best_samples_per_second"] = rates[best]
        report["chip_over_torch_best"] = chip / rates[best]
        report["chip_over_torch_batch1"] = chip / rates[1] if 1 in rates else None
        print(f"PyTorch float32 on this CPU: {rates.get(1, float('nan')):,.0f} samples/s at "
              f"batch 1, {rates[best]:,.0f} at its best batch {best}; the chip is "
              f"{report['chip_over_torch_best']:.2f}x the best")
    else:
        print("PyTorch is not installed: no comparison")
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
