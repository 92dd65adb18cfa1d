"""``spikeforge bench noc``: throughput and latency of the mesh against offered load.

For every offered load (flits per injecting node per cycle) the RTL traffic
rig (:mod:`spikeforge.sim.noc.traffic`) runs on Verilator: warm-up, a
measurement window, a cool-down with injection still on (so the measured
packets see the same load until they arrive), then injection stops and the
network must drain. Accepted throughput is what the checkers received during
the window; latency runs from a packet's creation (source queueing included)
to its tail leaving the destination's network interface.

Reported: ``saturation_throughput`` (the highest accepted throughput of the
sweep), ``ideal_throughput`` (cut bound of the pattern capped by the ports,
:func:`~spikeforge.sim.noc.run.ideal_throughput`), ``zero_load_latency_per_hop``
(slope of mean latency against hop count at the lowest load), average and
99th-percentile latency per load, and the delivery verdicts summed over every
run, including a back-pressure stress run of ``--stress-flits`` flits
(random lengths, every local port not ready 30 % of the cycles).
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

from spikeforge.hdl.config import ConfigError, Features, Implementation
from spikeforge.sim.errors import UsageError
from spikeforge.sim.options import add_config_arguments, config_from_options

__all__ = ["add_arguments", "main", "parse_mesh", "DEFAULT_RATES"]

PATTERN_CHOICES = ("uniform", "transpose", "hotspot")
DEFAULT_RATES = (0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def add_arguments(parser):
    parser.add_argument("--mesh", default="4x4", help="mesh shape ROWSxCOLS (default 4x4)")
    parser.add_argument("--pattern", default="uniform",
                        help=f"traffic pattern: {', '.join(PATTERN_CHOICES)} (default uniform)")
    parser.add_argument("--rates", nargs="+", default=None,
                        help="offered loads in flits/node/cycle, in (0, 1] "
                             f"(default {' '.join(map(str, DEFAULT_RATES))})")
    parser.add_argument("--packets", type=int, default=8000,
                        help="packets created per load point in its measurement window "
                             "(window clamped to 2,000..40,000 cycles; default 8000)")
    parser.add_argument("--payload", type=int, default=3,
                        help="payload flits per packet, >= 2 (packets are 1 + this; default 3)")
    parser.add_argument("--stress-flits", type=int, default=1_000_000,
                        help="flits of the back-pressure stress run (0 skips it; default 10^6)")
    add_config_arguments(parser, ("flit_width", "buffer_depth"),
                         defaults={"flit_width": Implementation().flit_width,
                                   "buffer_depth": Implementation().router_buffer_depth})
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", required=True, metavar="FILE", help="where to write the results")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="latency/throughput plot (default: FILE with .png)")


def parse_mesh(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"--mesh {text!r} is not of the form ROWSxCOLS (for example 4x4)")
    rows, cols = int(m.group(1)), int(m.group(2))
    try:
        Features(rows=rows, cols=cols)
    except ConfigError as exc:
        raise UsageError(f"--mesh {text!r}: {exc}") from None
    if rows * cols < 2:
        raise UsageError(f"--mesh {text!r} has one node; a network needs at least two (e.g. 1x2)")
    return rows, cols


def _parse_rates(values) -> list[float]:
    if values is None:
        return list(DEFAULT_RATES)
    rates = []
    for v in values:
        for part in str(v).split(","):
            if not part.strip():
                continue
            try:
                r = float(part)
            except ValueError:
                raise UsageError(f"--rates value {part!r} is not a number; give loads in (0, 1]") from None
            if not 0 < r <= 1:
                raise UsageError(f"--rates value {r} is outside (0, 1] flits/node/cycle")
            rates.append(r)
    if not rates:
        raise UsageError("--rates names no load; give loads in (0, 1]")
    return sorted(set(rates))


def _check_args(args):
    rows, cols = parse_mesh(args.mesh)
    if args.pattern not in PATTERN_CHOICES:
        raise UsageError(f"--pattern {args.pattern!r} is unknown; allowed: {', '.join(PATTERN_CHOICES)}")
    rates = _parse_rates(args.rates)
    if args.packets < 100:
        raise UsageError(f"--packets {args.packets} is too few; give at least 100")
    if not 2 <= args.payload <= 200:
        raise UsageError(f"--payload {args.payload} is outside 2..200 flits")
    if args.stress_flits < 0:
        raise UsageError(f"--stress-flits {args.stress_flits} is negative")
    impl = config_from_options(flit_width=args.flit_width,
                               buffer_depth=args.buffer_depth).implementation
    try:
        from spikeforge.hdl.noc.packet import PacketFormat
        PacketFormat(rows, cols, impl.flit_width)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return rows, cols, rates, impl


def _per_hop(by_hops: dict) -> float | None:
    """Least-squares slope of mean latency against hops."""
    pts = [(h, l) for h, l in by_hops.items()]
    if len(pts) < 2:
        return None
    mh = sum(h for h, _ in pts) / len(pts)
    ml = sum(l for _, l in pts) / len(pts)
    den = sum((h - mh) ** 2 for h, _ in pts)
    return sum((h - mh) * (l - ml) for h, l in pts) / den if den else None


def main(args) -> int:
    rows, cols, rates, impl = _check_args(args)
    out = Path(args.json)
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    from spikeforge.sim.noc.run import Run, ideal_throughput, run_traffic, traffic_matrix

    start = time.monotonic()
    active = sum(1 for row in traffic_matrix(args.pattern, rows, cols) if any(row))
    ideal = ideal_throughput(args.pattern, rows, cols)
    mean_flits = 1 + args.payload
    print(f"bench noc: {rows}x{cols} mesh, {args.pattern} traffic, {mean_flits}-flit packets, "
          f"ideal {ideal:.3f} flits/node/cycle; elaborating and building (cached after the "
          "first time)...", flush=True)
    points = []
    for i, load in enumerate(rates):
        window = args.packets * mean_flits / (active * load)
        window = int(min(40_000, max(2_000, window)))
        run = Run(pattern=args.pattern, load=load, len_min=args.payload, warm=2000, cycles=window,
                  cool=2000, seed=args.seed + i)
        t0 = time.monotonic()
        (res,) = run_traffic(rows, cols, [run], implementation=impl)
        points.append(res)
        print(f"  [{i + 1}/{len(rates)}] offered {load:.2f}: accepted {res.accepted:.3f}, "
              f"latency avg {_fmt(res.latency_avg)} p99 {_fmt(res.latency_p99)} cycles, "
              f"{res.packets_delivered} packets, {'ok' if res.ok else 'FAILED'} "
              f"({time.monotonic() - t0:.1f} s)", flush=True)
    stress = None
    if args.stress_flits:
        cycles = math.ceil(args.stress_flits / (active * 0.2))
        run = Run(pattern=args.pattern, load=1.0, len_min=2, len_mask=3, stall=0.3, warm=0,
                  cycles=cycles, seed=args.seed + 1000)
        print(f"  stress: {args.stress_flits} flits, random lengths, local ports stalled 30 % "
              f"({cycles} cycles)...", flush=True)
        t0 = time.monotonic()
        (stress,) = run_traffic(rows, cols, [run], implementation=impl)
        print(f"  stress: {stress.flits_injected} flits in {stress.packets_injected} packets, "
              f"lost {stress.lost}, duplicated {stress.duplicated}, reordered {stress.reordered}, "
              f"corrupt {stress.corrupt}, drained in {stress.drain_cycles} cycles "
              f"(bound {stress.drain_bound}) ({time.monotonic() - t0:.1f} s)", flush=True)

    runs = points + ([stress] if stress else [])
    saturation = max(p.accepted for p in points)
    zero = min(points, key=lambda p: p.run.load)
    result = {
        "mesh": f"{rows}x{cols}", "pattern": args.pattern,
        "flit_width": impl.flit_width, "router_buffer_depth": impl.router_buffer_depth,
        "packet_flits": mean_flits, "active_nodes": active,
        "packets_injected": sum(r.packets_injected for r in runs),
        "packets_delivered": sum(r.packets_delivered for r in runs),
        "flits_injected": sum(r.flits_injected for r in runs),
        "lost": sum(r.lost for r in runs),
        "duplicated": sum(r.duplicated for r in runs),
        "reordered": sum(r.reordered for r in runs),
        "corrupt": sum(r.corrupt for r in runs),
        "all_drained": all(r.drained for r in runs),
        "saturation_throughput": saturation,
        "ideal_throughput": ideal,
        "saturation_fraction_of_ideal": saturation / ideal if ideal else None,
        "zero_load_latency_per_hop": _per_hop(zero.latency_by_hops),
        "zero_load_latency_by_hops": {str(h): v for h, v in sorted(zero.latency_by_hops.items())},
        "zero_load_offered": zero.run.load,
        "units": {"throughput": "flits per injecting node per cycle", "latency": "cycles"},
        "points": [{
            "offered": p.run.load, "offered_measured": p.offered, "accepted": p.accepted,
            "latency_avg": p.latency_avg, "latency_p99": p.latency_p99,
            "latency_p99_at_least": p.latency_p99_clipped,
            "latency_max": p.latency_max, "packets_measured": p.packets_measured,
            "packets_injected": p.packets_injected, "packets_delivered": p.packets_delivered,
            "refused_at_source": p.refused, "drain_cycles": p.drain_cycles, "ok": p.ok,
        } for p in points],
        "stress": stress.to_dict() if stress else None,
        "plot": str(plot),
        "seconds": round(time.monotonic() - start, 1),
    }
    _plot(points, ideal, plot, f"{rows}x{cols} mesh, {args.pattern}, {mean_flits}-flit packets")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    ok = all(r.ok for r in runs)
    print(f"bench noc: saturation {saturation:.3f} of ideal {ideal:.3f} flits/node/cycle "
          f"({100 * saturation / ideal:.0f} %), zero-load "
          f"{_fmt(result['zero_load_latency_per_hop'], 2)} cycles/hop; "
          f"lost {result['lost']}, duplicated {result['duplicated']}, reordered "
          f"{result['reordered']}; wrote {out} and {plot}", flush=True)
    return 0 if ok else 1


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def _plot(points, ideal, path: Path, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p.run.load for p in points]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(x, [p.latency_avg for p in points], "o-", label="average")
    a.plot(x, [p.latency_p99 for p in points], "s--", label="99th percentile")
    a.set_xlabel("offered load (flits/node/cycle)")
    a.set_ylabel("packet latency (cycles)")
    a.set_yscale("log")
    a.axvline(ideal, color="grey", linestyle=":", label="ideal throughput")
    a.legend()
    a.grid(True, which="both", alpha=0.3)
    b.plot(x, [p.accepted for p in points], "o-", label="accepted")
    b.plot([0, 1], [0, 1], color="lightgrey", linestyle="--", label="accepted = offered")
    b.axhline(ideal, color="grey", linestyle=":", label="ideal")
    b.set_xlabel("offered load (flits/node/cycle)")
    b.set_ylabel("accepted throughput (flits/node/cycle)")
    b.set_xlim(0, 1.02)
    b.set_ylim(0, 1.02)
    b.legend()
    b.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    from spikeforge.sim.cli import main as cli_main
    sys.exit(cli_main(["bench", "noc", *sys.argv[1:]]))
