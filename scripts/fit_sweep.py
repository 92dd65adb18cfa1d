#!/usr/bin/env python3
"""Which accelerators fit a board, and how fast they run: a sweep over presets, cores and lanes.

    python scripts/fit_sweep.py --presets ulx3s-2x2 --cores 1 2 4 --lanes 2 4 \\
        --cache runs/fit --json docs/fit-sweep-85f.json --plot docs/fit-sweep-85f.png
    python scripts/fit_sweep.py --presets ulx3s-2x2 --cores 4 --lanes 2 --place 90 ...

Every point is the whole accelerator of ``spikeforge build`` (board top, UART, host
port, the cores on their mesh) for ``--board`` (default ``ulx3s-85f``), built by the
same flow (``spikeforge.boards.build``) and cached by configuration in ``--cache DIR``
(a folder per point; an unchanged point is not rebuilt).

* Without ``--place``: Yosys synthesis, then ``nextpnr --pack-only`` on its netlist, so
  the LUT count is the packed logic cells (``TRELLIS_COMB`` / ``ICESTORM_LC``, what
  has to fit), not Yosys' LUT4s. No fmax.
* ``--place M``: also placed and routed (nextpnr stopped after ``M`` minutes: that
  point then says so), with nextpnr's fmax against the board's target clock.

A point that does not fit names each resource over the device's and by how much
("LUTs 93,204 of 83,640, 11.4 % over"). The summary names the largest point (most
lanes in total) that fits and, among placed points, the largest that also meets the
target clock; where none does, it says so. ``--json`` writes every point, ``--plot``
draws the utilisation of each resource and the fmax against the total lanes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.boards.build import BuildError, build, resolve, tool_env
from spikeforge.sim.errors import UsageError
from spikeforge.sim.files import write_json

_RESOURCES = (("luts", "LUTs"), ("brams", "BRAMs"), ("dsps", "DSPs"))


def _nextpnr_args(out: Path) -> list[str]:
    """nextpnr's command line from the build script amaranth wrote (device, package,
    constraints), without the outputs of a full run."""
    for line in (out / "build_top.sh").read_text().splitlines():
        if line.startswith('"$NEXTPNR_'):
            words = shlex.split(line)
            var = words[0][1:]
            args, skip = [], False
            for w in words[1:]:
                if skip:
                    skip = False
                    continue
                if w in ("--textcfg", "--asc", "--log", "--report"):
                    skip = True
                    continue
                if w in ("--quiet", "--timing-allow-fail"):
                    continue
                args.append(w)
            return [var, *args]
    raise BuildError(f"no nextpnr command in {out / 'build_top.sh'}")


def packed(out: Path, board, env) -> dict:
    """Packed cell counts of the synthesised netlist in ``out`` (``nextpnr --pack-only``)."""
    rep = out / "pack-report.json"
    if not rep.exists() or rep.stat().st_mtime < (out / "top.json").stat().st_mtime:
        var, *args = _nextpnr_args(out)
        subprocess.run([env[var], *args, "--pack-only", "--report", rep.name,
                        "--log", "pack.log", "--quiet"], cwd=out, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    util = json.loads(rep.read_text()).get("utilization", {})

    def used(cell):
        return int(util.get(cell, {}).get("used", 0))

    return {"luts": used(board.lut_cell), "dsps": used(board.dsp_cell),
            "brams": used(board.bram_cell),
            "ffs": used("TRELLIS_FF") if board.family == "ecp5" else None}


def fit(row: dict, board) -> list[str]:
    """The resources ``row`` needs beyond the board's, each with the numbers."""
    over = []
    for key, name in _RESOURCES:
        total = getattr(board, f"{key}_total")
        if row[key] > total:
            over.append(f"{name} {row[key]:,} of {total:,}, "
                        f"{100 * (row[key] - total) / total:.1f} % over")
    return over


def sweep(args) -> dict:
    rows = []
    env = None
    for name in args.presets:
        for cores in args.cores:
            for lanes in args.lanes:
                tag = f"{name}-c{cores}-p{lanes}"
                out = args.cache / tag
                try:
                    req = resolve(args.board, None, lanes=lanes, cores=cores, preset_name=name,
                                  target_mhz=args.clock, out_dir=out,
                                  synth_only=args.place is None, pnr_minutes=args.place)
                except UsageError as exc:
                    raise SystemExit(f"fit_sweep.py: error: {tag}: {exc}") from None
                board = req.board
                env = env or tool_env(board.family)
                print(f"== {tag}: {cores} core(s) x {lanes} lane(s)", flush=True)
                t0 = time.monotonic()
                row = {"config": tag, "preset": name, "cores": cores, "lanes": lanes,
                       "total_lanes": cores * lanes, "placed": args.place is not None,
                       "target_mhz": req.pll.out_mhz}
                try:
                    report = build(req)
                except BuildError as exc:
                    row.update(error=str(exc).splitlines()[0],
                               seconds=round(time.monotonic() - t0, 1))
                    rows.append(row)
                    print(f"   failed: {row['error']}", flush=True)
                    continue
                row.update(mapper=report.get("mapper"), seconds=report["seconds"],
                           yosys_luts=report["luts"] if report.get("synth_only") else None,
                           ffs=report["ffs"], fmax_mhz=report["fmax_mhz"],
                           timing_met=report["timing_met"] if not report.get("synth_only")
                           else None,
                           critical_path=report.get("critical_path"))
                if report.get("synth_only"):
                    row.update(packed(out, board, env))
                    if row["ffs"] is None:
                        row["ffs"] = report["ffs"]
                else:
                    row.update(luts=report["luts"], dsps=report["dsps"], brams=report["brams"])
                for key, _ in _RESOURCES:
                    row[f"{key}_pct"] = round(100 * row[key] / getattr(board, f"{key}_total"), 1)
                row["over"] = fit(row, board)
                row["fits"] = not row["over"]
                rows.append(row)
                verdict = "fits" if row["fits"] else "does not fit: " + "; ".join(row["over"])
                clock = (f", fmax {row['fmax_mhz']} MHz "
                         f"({'met' if row['timing_met'] else 'not met'})"
                         if row["placed"] else "")
                print(f"   {row['luts']:,} LUTs ({row['luts_pct']} %), {row['ffs']:,} FFs, "
                      f"{row['dsps']} DSPs, {row['brams']} BRAMs ({row['brams_pct']} %)"
                      f"{clock}: {verdict}", flush=True)
    return {"board": args.board, "rows": rows, **verdict(rows)}


def verdict(rows: list[dict]) -> dict:
    """The largest point that fits (most lanes in total, then fewest LUTs) and the
    largest that also meets its target clock, with a sentence saying so."""
    ok = [r for r in rows if r.get("fits")]
    timed = [r for r in ok if r.get("timing_met")]
    best_fit = max(ok, key=lambda r: (r["total_lanes"], -r["luts"]), default=None)
    best_timed = max(timed, key=lambda r: (r["total_lanes"], -r["luts"]), default=None)
    target = rows[0]["target_mhz"] if rows else None
    if best_timed:
        text = (f"largest that fits and meets {target:g} MHz: {best_timed['config']} "
                f"({best_timed['total_lanes']} lanes, {best_timed['fmax_mhz']} MHz)")
    elif any(r.get("placed") for r in ok):
        text = f"no placed point meets {target:g} MHz"
    else:
        text = "no point placed: fmax not measured (--place M)"
    if best_fit:
        text += (f"; largest that fits by area: {best_fit['config']} "
                 f"({best_fit['total_lanes']} lanes, {best_fit['luts_pct']} % of the LUTs)")
    else:
        text += "; no point fits by area"
    return {"verdict": text, "largest_fit": best_fit and best_fit["config"],
            "largest_fit_at_target": best_timed and best_timed["config"]}


def table(result: dict) -> str:
    lines = ["| preset | cores x lanes | lanes | LUTs | FFs | DSPs | BRAMs | fmax (MHz) | fits |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['cores']} x {r['lanes']} | {r['total_lanes']} "
                         f"| | | | | | failed: {r['error']} |")
            continue
        fmax = r["fmax_mhz"] if r["fmax_mhz"] is not None else "-"
        lines.append(f"| {r['preset']} | {r['cores']} x {r['lanes']} | {r['total_lanes']} | "
                     f"{r['luts']:,} ({r['luts_pct']} %) | {r['ffs']:,} | {r['dsps']} | "
                     f"{r['brams']} ({r['brams_pct']} %) | {fmax} | "
                     f"{'yes' if r['fits'] else 'no: ' + '; '.join(r['over'])} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in result["rows"] if "error" not in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, name in _RESOURCES:
        pts = sorted((r["total_lanes"], r[f"{key}_pct"], r["config"]) for r in rows)
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], "o", label=name)
    for r in rows:
        ax1.annotate(f"{r['cores']}x{r['lanes']}", (r["total_lanes"], r["luts_pct"]),
                     textcoords="offset points", xytext=(4, 2), fontsize=7)
    ax1.axhline(100, color="k", lw=0.8, ls="--")
    ax1.set_xlabel("fp16 lanes in total (labels: cores x lanes)")
    ax1.set_ylabel(f"% of the {result['board']}")
    ax1.set_title("utilisation (packed)")
    ax1.legend()
    placed = [r for r in rows if r["fmax_mhz"] is not None]
    if placed:
        ax2.plot([r["total_lanes"] for r in placed], [r["fmax_mhz"] for r in placed], "o")
        ax2.axhline(placed[0]["target_mhz"], color="k", lw=0.8, ls="--", label="target")
        ax2.legend()
    else:
        ax2.text(0.5, 0.5, "no point placed", ha="center", va="center",
                 transform=ax2.transAxes)
    ax2.set_xlabel("fp16 lanes in total")
    ax2.set_ylabel("fmax (MHz, routed)")
    ax2.set_title("clock")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--presets", nargs="+", default=["ulx3s-2x2"])
    ap.add_argument("--cores", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--lanes", nargs="+", type=int, default=[2, 4])
    ap.add_argument("--clock", type=float, metavar="MHZ", help="target clock (default: the board's)")
    ap.add_argument("--place", type=float, metavar="M",
                    help="also place and route, nextpnr stopped after M minutes")
    ap.add_argument("--cache", type=Path, default=Path("runs/fit"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)
    result = sweep(args)
    result["table"] = table(result)
    print(result["table"])
    print(result["verdict"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
