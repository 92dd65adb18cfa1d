#!/usr/bin/env python3
"""Benchmark: place and route the PE array on a board and record what it costs.

    python scripts/build_pe_array.py                      # 16 lanes, default stages, ULX3S-85F
    python scripts/build_pe_array.py --stages 3 4 6       # one build per stages value

Each build goes through ``spikeforge build`` (the same flow and report); the
JSON written to ``--json`` holds one row per build with LUTs, FFs, DSPs, fmax
and the two issue-2 targets: fmax >= the board's target clock (100 MHz on the
ULX3S-85F) and at most one MULT18X18D per lane.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spikeforge.boards.build import BuildError, build, resolve, summary
from spikeforge.sim.cli import UsageError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="ulx3s-85f")
    p.add_argument("--block", default="pe-array")
    p.add_argument("--lanes", type=int, default=16)
    p.add_argument("--stages", type=int, nargs="*", default=[None],
                   help="FMA stages values to build (default: the configuration's)")
    p.add_argument("--target-mhz", type=float)
    p.add_argument("-o", "--output", default="runs/build_pe_array", help="build folders go here")
    p.add_argument("--json", default="runs/build_pe_array.json", help="where the results go")
    args = p.parse_args(argv)

    rows = []
    for stages in args.stages:
        out = Path(args.output) / f"{args.block}-l{args.lanes}-s{stages if stages else 'default'}"
        try:
            req = resolve(args.board, args.block, lanes=args.lanes, stages=stages,
                          target_mhz=args.target_mhz, out_dir=out)
            report = build(req)
        except (UsageError, BuildError) as exc:
            print(f"build_pe_array: error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, UsageError) else 1
        print(summary(report, out), flush=True)
        lanes = report.get("lanes", args.lanes)
        row = {k: report[k] for k in ("board", "device", "block", "luts", "ffs", "dsps",
                                      "brams", "fmax_mhz", "target_mhz", "timing_met",
                                      "seconds")}
        row.update(lanes=lanes, stages=report.get("stages"),
                   luts_per_lane=round(report["luts"] / lanes, 1),
                   dsps_per_lane=round(report["dsps"] / lanes, 3),
                   boundary_bits=report["boundary_bits"],
                   critical_path=report["critical_path"],
                   targets={"fmax": report["fmax_mhz"] >= report["target_mhz"],
                            "one_dsp_per_lane": report["dsps"] <= lanes})
        rows.append(row)
        print(f"  targets   fmax >= {report['target_mhz']:g} MHz: "
              f"{'yes' if row['targets']['fmax'] else 'NO'}; "
              f"<= 1 DSP per lane: {'yes' if row['targets']['one_dsp_per_lane'] else 'NO'}\n")

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "builds": rows},
                               indent=2) + "\n")
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
