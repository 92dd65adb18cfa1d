#!/usr/bin/env python3
"""What one core costs on the iCE40 UP5K (iCEBreaker): logic cells after packing.

    python scripts/core_cost_ice40.py --preset up5k -o runs/up5k-core
    python scripts/core_cost_ice40.py --preset up5k --set max_fan_in=16 -o runs/up5k-f16
    python scripts/core_cost_ice40.py --preset up5k --per-module -o runs/up5k-hier

The whole-design numbers: the ``core`` block between the boundary registers of
``spikeforge build`` (``boards/wrapper.py``, the PLL and the iCEBreaker's pins), the
platform's own Yosys script (``synth_ice40 -dsp``, ABC9, flattened), then
``nextpnr-ice40 --pack-only``: ``ICESTORM_LC`` is what has to fit the 5,280 logic
cells (a cell holds a LUT4, a carry and a flip-flop, so it is less than LUT4 + carry +
FF). Nothing is placed or routed (``spikeforge build`` does that).

``--per-module``: the core alone, not flattened, mapped with the classic ABC (ABC9
stops on an internal assertion without flattening): Yosys' cells per submodule, where
the logic goes. Constants do not cross module boundaries there, so rows compare, the
total does not.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from spikeforge.boards.build import BLOCKS, resolve, tool_env, yosys_cells
from spikeforge.boards.wrapper import BoundaryTop
from spikeforge.hdl.config import ConfigError, preset


def _value(text: str):
    return int(text) if text.lstrip("-").isdigit() else text


def _config(args):
    changes = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, not {item!r}")
        changes[key] = _value(value)
    try:
        return preset(args.preset, **changes)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def _cells(stat_cells: dict) -> dict:
    ffs = sum(v for k, v in stat_cells.items() if k.startswith("SB_DFF"))
    return {"SB_LUT4": stat_cells.get("SB_LUT4", 0), "SB_CARRY": stat_cells.get("SB_CARRY", 0),
            "FF": ffs, "EBR": stat_cells.get("SB_RAM40_4K", 0),
            "DSP": stat_cells.get("SB_MAC16", 0), "SPRAM": stat_cells.get("SB_SPRAM256KA", 0)}


def flat(cfg, out: Path) -> dict:
    req = resolve("icebreaker", "core", out_dir=out, synth_only=True)   # board, PLL
    block = BLOCKS["core"].factory(cfg)
    top = BoundaryTop(block, req.board, req.pll, board_ports=BLOCKS["core"].board_ports)
    out.mkdir(parents=True, exist_ok=True)
    plan = req.board.make_platform().build(
        top, name="top", do_build=False, synth_opts="-dsp",
        script_after_synth="tee -q -o yosys-stat.json stat -json")
    plan.extract(out)
    env = tool_env("ice40")
    subprocess.run(["sh", "-c", '"$YOSYS" -q -l top.rpt top.ys'], cwd=out, env=env, check=True)
    row = _cells(yosys_cells(json.loads((out / "yosys-stat.json").read_text())))
    subprocess.run(["sh", "-c", '"$NEXTPNR_ICE40" --quiet --up5k --package sg48 --json top.json '
                    '--pcf top.pcf --pack-only --log pack.log'], cwd=out, env=env, check=True)
    found = re.findall(r"ICESTORM_LC:\s+(\d+)/\s*(\d+)", (out / "pack.log").read_text())
    row["ICESTORM_LC"] = int(found[-1][0]) if found else None
    return row


def per_module(cfg, out: Path) -> list[dict]:
    from amaranth.back import rtlil

    from spikeforge.hdl.core import Core
    out.mkdir(parents=True, exist_ok=True)
    (out / "core.il").write_text(rtlil.convert(Core(cfg), name="top"))
    script = ("read_rtlil core.il; synth_ice40 -dsp -noflatten -top top -run :map_luts; "
              "techmap -map +/ice40/latches_map.v; ice40_wrapcarry -unwrap; abc -dress -lut 4; "
              "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40; "
              "synth_ice40 -top top -run map_cells:check; tee -q -o hier-stat.json stat -json")
    env = tool_env("ice40")
    subprocess.run([env["YOSYS"], "-q", "-l", "hier.rpt", "-p", script], cwd=out, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    stat = json.loads((out / "hier-stat.json").read_text())
    rows = [{"module": name.lstrip("\\"), **_cells(mod.get("num_cells_by_type", {}))}
            for name, mod in stat.get("modules", {}).items()]
    return sorted(rows, key=lambda r: -r["SB_LUT4"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="up5k")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a configuration field of the preset changed (repeatable)")
    ap.add_argument("--per-module", action="store_true")
    ap.add_argument("-o", "--output", type=Path, required=True, help="work folder")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    cfg = _config(args)
    if args.per_module:
        result = per_module(cfg, args.output)
        print(f"{'module':28s} {'LUT4':>6s} {'CARRY':>6s} {'FF':>6s} {'EBR':>4s} {'DSP':>4s}")
        for r in result:
            print(f"{r['module']:28s} {r['SB_LUT4']:6d} {r['SB_CARRY']:6d} {r['FF']:6d} "
                  f"{r['EBR']:4d} {r['DSP']:4d}")
    else:
        result = flat(cfg, args.output)
        print(", ".join(f"{k} {v}" for k, v in result.items()))
    if args.json:
        args.json.write_text(json.dumps({"config": cfg.to_dict(), "result": result}, indent=2)
                             + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
