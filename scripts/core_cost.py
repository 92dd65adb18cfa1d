#!/usr/bin/env python3
"""What one core costs on the ECP5-85F, and what cheaper lanes would buy.

    python scripts/core_cost.py synth --presets digits --lanes 4 8 16 --json runs/core_synth.json
    python scripts/core_cost.py synth --presets digits --lanes 16 --per-module --json ...
    python scripts/core_cost.py lanes --train runs/digits.json --synth runs/core_synth.json \\
        --json runs/core_lanes.json

``synth``: one ``spikeforge build --block core --synth-only`` per (preset, lanes)
(Yosys ``synth_ecp5 -abc9``, the flow's classic-ABC fallback should ABC9 fail),
cached by configuration in ``--cache DIR`` (a folder per configuration holding the
build's ``report.json``); ``--per-module`` also synthesises the same netlist without
flattening and reports the cells of every submodule of the core (where the LUTs
go; with the classic ABC: ``-abc9 -noflatten`` stops on an internal Yosys
assertion); ``--place M`` places and routes each configuration too, nextpnr stopped
after ``M`` minutes. Rows: LUT4, CCU2C, PFUMX/L6MUX21, TRELLIS_DPR16X4, FFs, MULT18X18D,
DP16KD, and ``luts`` = LUT4 + 2 CCU2C (the logic LUT4s; nextpnr's TRELLIS_COMB also
counts the distributed-RAM cells' LUTs).

``lanes``: training throughput per LUT, ``useful FMAs per cycle x fmax / LUTs``, of
today's shared array of ``P`` FMA lanes against designs with ``A`` add-only lanes
(forward sums and weight-gradient sums: ``fma(a, 1, c)`` is an exact addition,
SPEC section 2) beside ``B`` FMA lanes (LIF, loss, backward, update). The cycles of a
design come from the measured run (``spikeforge train --engine rtl --json``: its
per-phase counters) with each phase's lane-bound cycles scaled by ``P / lanes of the
array it runs on`` (phases run one after the other, so the two arrays never work at
the same time); the LUTs are the synthesised core's less ``P`` FMA lanes plus the
lanes of the design (lane costs from ``docs/fp16.md``: placed, 6 stages). A model,
not a build: the recommendation says which design to build.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.boards.build import BuildError, build, resolve, tool_env, yosys_cells
from spikeforge.hdl.config import preset

#: placed costs of one lane on the LFE5U-85F at 6 stages (docs/fp16.md, docs/boards.md)
FMA_LANE = {"luts": 934, "ffs": 376, "dsps": 1, "fmax_mhz": 120.4}
ADD_LANE = {"luts": 388, "ffs": None, "dsps": 0, "fmax_mhz": 132.0}

_CELLS = ("LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_DPR16X4", "TRELLIS_FF",
          "MULT18X18D", "DP16KD")


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def _per_module(out_dir: Path, env) -> list[dict]:
    """Synthesise ``out_dir/top.il`` without flattening; cells per module."""
    hier = out_dir / "yosys-hier.json"
    if not hier.exists():
        script = ("read_rtlil top.il; synth_ecp5 -noflatten -top top -run :map_luts; "
                  "techmap -map +/lattice/latches_map.v; abc -dress -lut 4:7; clean; "
                  "synth_ecp5 -noflatten -top top -run map_cells:; "
                  "tee -q -o yosys-hier.json stat -json")
        subprocess.run([env["YOSYS"], "-q", "-l", "hier.rpt", "-p", script], cwd=out_dir,
                       env=env, check=True, stdout=subprocess.DEVNULL)
    stat = json.loads(hier.read_text())
    rows = []
    for name, mod in stat.get("modules", {}).items():
        cells = mod.get("num_cells_by_type", {})
        row = {"module": name.lstrip("\\"), **{c: int(cells.get(c, 0)) for c in _CELLS}}
        row["luts"] = row["LUT4"] + 2 * row["CCU2C"]
        rows.append(row)
    rows.sort(key=lambda r: -r["luts"])
    return rows


def synth(args) -> dict:
    rows = []
    env = tool_env("ecp5")
    for name in args.presets:
        for lanes in args.lanes:
            cfg = preset(name, lanes=lanes)
            tag = f"{name}-p{lanes}"
            out = args.cache / tag
            rep_path = out / "report.json"
            report = None
            if rep_path.exists():
                old = json.loads(rep_path.read_text())
                if old.get("config") == json.loads(json.dumps(cfg.to_dict())) and (
                        args.place is None) == old.get("synth_only", True):
                    report = old
            if report is None:
                print(f"== {tag}: building", flush=True)
                req = resolve("ulx3s-85f", "core", lanes=lanes, preset_name=name, out_dir=out,
                              synth_only=args.place is None, pnr_minutes=args.place)
                t0 = time.monotonic()
                try:
                    report = build(req)
                except BuildError as exc:
                    rows.append({"config": tag, "preset": name, "lanes": lanes,
                                 "error": str(exc).splitlines()[0],
                                 "seconds": round(time.monotonic() - t0, 1)})
                    print(f"   failed: {rows[-1]['error']}", flush=True)
                    continue
            cells = report.get("yosys_cells") or {}
            row = {"config": tag, "preset": name, "lanes": lanes, "mapper": report.get("mapper"),
                   "mapper_note": report.get("mapper_note"),
                   "luts": report["luts"], "ffs": report["ffs"], "dsps": report["dsps"],
                   "brams": report["brams"], "fmax_mhz": report["fmax_mhz"],
                   "placed": not report.get("synth_only", False),
                   "seconds": report["seconds"],
                   "yosys_cells": {c: cells.get(c, 0) for c in _CELLS}}
            if args.per_module:
                row["modules"] = _per_module(out, env)
            rows.append(row)
            print(f"   {tag}: {row['luts']:,} LUTs, {row['ffs']:,} FFs, {row['dsps']} DSPs, "
                  f"{row['brams']} DP16KD, {cells.get('TRELLIS_DPR16X4', 0)} DPR16X4", flush=True)
    table = ["| preset | lanes | mapper | LUT4 + 2 CCU2C | FFs | MULT18X18D | DP16KD | "
             "TRELLIS_DPR16X4 | fmax (MHz) |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['preset']} | {r['lanes']} | failed: {r['error']} | | | | | | |")
            continue
        table.append(f"| {r['preset']} | {r['lanes']} | {r['mapper']} | {r['luts']:,} | "
                     f"{r['ffs']:,} | {r['dsps']} | {r['brams']} | "
                     f"{r['yosys_cells']['TRELLIS_DPR16X4']:,} | "
                     f"{r['fmax_mhz'] if r['fmax_mhz'] else '-'} |")
    return {"rows": rows, "table": "\n".join(table)}


# ---------------------------------------------------------------------------- lanes

def lanes(args) -> dict:
    train = json.loads(args.train.read_text())
    syn = json.loads(args.synth.read_text())
    P = train["lanes"]
    core = next(r for r in syn["rows"] if r.get("lanes") == P and "error" not in r)
    core_luts = core["luts"]
    c = train["counters_per_sample"]
    cycles = train["cycles_per_sample"]
    useful = train["useful_fmas"] / train["samples"]
    # one clock for every design: the core's (placed, else the board's target), never
    # above what its lanes reach
    clock = core["fmax_mhz"] or args.clock_mhz
    # the add-able work: forward accumulation (FP busy less the LIF passes) and the
    # weight-gradient sums (WG busy less the update pass); LIF/update counts by ops
    lif = args.lif_cycles
    upd = train["cycles_per_phase_per_sample"]["update"]
    fp_add = max(0.0, c["fp_busy"] - lif)
    wg_add = max(0.0, c["wg_busy"] - upd)
    fma_bound = cycles - fp_add - wg_add          # cycles that need multiplies (and idle)
    designs = []
    for A, B in args.designs:
        if not (1 <= A <= P and 1 <= B <= P):
            raise SystemExit(f"core_cost.py: error: a design of {A} add and {B} FMA lanes does "
                             f"not fit the measured core's {P} memory banks; allowed: 1..{P}")
    for A, B in [(P, P)] + [tuple(x) for x in args.designs]:
        shared = (A, B) == (P, P)
        if shared:
            cyc, luts = cycles, core_luts
            fmax = min(clock, FMA_LANE["fmax_mhz"])
            name = f"today: {P} shared FMA lanes"
        else:
            cyc = (fp_add + wg_add) * P / A + fma_bound * P / B
            luts = core_luts - P * FMA_LANE["luts"] + A * ADD_LANE["luts"] + B * FMA_LANE["luts"]
            fmax = min(clock, ADD_LANE["fmax_mhz"], FMA_LANE["fmax_mhz"])
            name = f"{A} add + {B} FMA lanes"
        tput = useful / cyc * fmax * 1e6           # useful FMAs per second
        designs.append({"design": name, "add_lanes": 0 if shared else A, "fma_lanes": B,
                        "cycles_per_sample": round(cyc, 1), "luts": int(luts),
                        "fmax_mhz": fmax, "useful_fmas_per_cycle": round(useful / cyc, 2),
                        "throughput_per_lut": round(tput / luts, 1)})
    base = designs[0]["throughput_per_lut"]
    for d in designs:
        d["vs_today"] = round(d["throughput_per_lut"] / base, 3)
    table = ["| design | cycles / sample | LUTs | fmax (MHz) | useful FMAs / cycle | "
             "useful FMAs / s / LUT | vs today |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in designs:
        table.append(f"| {d['design']} | {d['cycles_per_sample']:,} | {d['luts']:,} | "
                     f"{d['fmax_mhz']:g} | {d['useful_fmas_per_cycle']} | "
                     f"{d['throughput_per_lut']:,} | {d['vs_today']:.2f} |")
    return {"inputs": {"train": str(args.train), "synth_config": core["config"],
                       "core_luts": core_luts, "fma_lane": FMA_LANE, "add_lane": ADD_LANE,
                       "fp_add_cycles": fp_add, "wg_add_cycles": wg_add,
                       "fma_bound_cycles": fma_bound},
            "designs": designs, "table": "\n".join(table)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="synthesise cores over presets x lanes")
    s.add_argument("--presets", nargs="+", default=["digits"])
    s.add_argument("--lanes", nargs="+", type=int, default=[16])
    s.add_argument("--per-module", action="store_true")
    s.add_argument("--place", type=float, metavar="M", help="also place and route (M minutes)")
    s.add_argument("--cache", type=Path, default=Path("runs/core_cost"))
    s.add_argument("--json", type=Path)
    s2 = sub.add_parser("lanes", help="throughput per LUT of add-lane designs")
    s2.add_argument("--train", type=Path, required=True, help="train --engine rtl --json output")
    s2.add_argument("--synth", type=Path, required=True, help="the synth subcommand's JSON")
    s2.add_argument("--lif-cycles", type=float, required=True,
                    help="LIF cycles per sample: FP busy less these is the forward "
                    "accumulation (bench_core_density.py's forward cycles at density 0)")
    s2.add_argument("--designs", nargs=2, type=int, action="append", metavar=("A", "B"),
                    default=[], help="A add lanes beside B FMA lanes (repeatable)")
    s2.add_argument("--clock-mhz", type=float, default=100.0,
                    help="the clock of every design when the core has no placed fmax")
    s2.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    out = synth(args) if args.cmd == "synth" else lanes(args)
    print(out["table"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        _write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
