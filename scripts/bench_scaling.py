"""Scaling of training over cores: digits samples through the split-layer schedule on
1, 2, 4 and 8 cores of the same core, for the default network and a wider one.

For each network and core count the script trains ``--samples`` digits samples with
``spikeforge train``'s loop on the Verilator model of the system (``--engine rtl``,
checked bit for bit against the golden model after every sample) and records: cycles
per sample (the device cycles of the schedule's phases, the cores in parallel where
the schedule broadcasts), the ideal (the busiest core's useful FMAs / lanes plus a
pipeline fill per phase), their ratio, the speed-up over one core and the parallel
efficiency, the cycles the host spent moving data between the phases, per-core busy
cycles and utilisation, and ``weights_sha256`` (equal at every core count). Writes JSON (``--json``) and a PNG
(``--plot``) and prints a table.

The core is one build for every count (``--lanes``, default 4; neurons, fan-in and
layers large enough for the wider network on one core), so the one-core point is the
same core holding the whole network.

    python scripts/bench_scaling.py --json docs/scaling.json --plot docs/scaling.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time

NETWORKS = {"64-128-10": (128,), "64-256-256-10": (256, 256)}


def config_for(cores: int, lanes: int):
    from spikeforge.sim.options import config_from_options
    return config_from_options("digits", cores=cores, lanes=lanes, neurons=528, fan_in=256,
                               layers=3, time_steps=16)


def measure(hidden, cores: int, lanes: int, samples: int, log=print) -> dict:
    from spikeforge.sim.train import run
    cfg = config_for(cores, lanes)
    t0 = time.monotonic()
    report = run(dataset="digits", engine="rtl", hidden=hidden, samples=samples, batch=1,
                 test_samples=0, engine_options={"config": cfg, "preset": "scaling",
                                                 "cores": cores},
                 log=lambda *a, **k: None, progress=False)
    wall = time.monotonic() - t0
    out = {k: report.get(k) for k in (
        "bit_exact", "weights_sha256", "cycles_per_sample", "ideal_cycles_per_sample",
        "ratio_to_ideal", "pe_utilisation", "transfer_cycles_per_sample", "per_core",
        "schedule_ideal_cycles_per_sample", "schedule_cycles_per_phase_per_sample",
        "noc_flits_per_sample", "simulated_cycles_per_second")}
    out.update(cores=cores, lanes=lanes, samples=samples, wall_seconds=wall)
    log(f"  {cores} core(s): {out['cycles_per_sample']:.0f} cycles/sample, ideal "
        f"{out['ideal_cycles_per_sample']:.0f} ({out['ratio_to_ideal']:.2f}x), "
        f"bit_exact {out['bit_exact']}, {wall:.0f} s")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", type=int, nargs="*", default=[1, 2, 4, 8])
    p.add_argument("--networks", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    p.add_argument("--lanes", type=int, default=4)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--json", default="runs/scaling.json")
    p.add_argument("--plot", default=None)
    p.add_argument("--from-json", default=None,
                   help="print the table and draw the plot of an earlier run's JSON")
    args = p.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            out = json.load(f)
        args.cores = sorted({r["cores"] for rows in out["results"].values() for r in rows})
        return _report(out, args)
    results = {}
    for net in args.networks:
        print(f"{net}:", flush=True)
        rows = [measure(NETWORKS[net], c, args.lanes, args.samples) for c in args.cores]
        base = rows[0]["cycles_per_sample"] if rows[0]["cores"] == 1 else None
        for r in rows:
            r["speedup"] = base / r["cycles_per_sample"] if base else None
            r["efficiency"] = r["speedup"] / r["cores"] if base else None
        results[net] = rows
    shas = {net: sorted({r["weights_sha256"] for r in rows}) for net, rows in results.items()}
    out = {"benchmark": "scaling", "lanes": args.lanes, "samples": args.samples,
           "results": results, "same_weights_on_every_core_count":
           {net: len(s) == 1 for net, s in shas.items()}}
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    return _report(out, args)


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _report(out, args) -> int:
    results = out["results"]
    print("| network | cores | cycles / sample | ideal | ratio | speed-up | efficiency | "
          "host transfer cycles / sample | bit-exact |")
    print("| --- | --: | --: | --: | --: | --: | --: | --: | --- |")
    for net, rows in results.items():
        for r in rows:
            print(f"| {net} | {r['cores']} | {r['cycles_per_sample']:,.0f} | "
                  f"{r['ideal_cycles_per_sample']:,.0f} | {r['ratio_to_ideal']:.2f} | "
                  f"{_fmt(r['speedup'], '.2f')} | {_fmt(r['efficiency'], '.2f')} | "
                  f"{_fmt(r.get('transfer_cycles_per_sample'), ',.0f')} | {r['bit_exact']} |")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for net, rows in results.items():
            cs = [r["cores"] for r in rows]
            axes[0].plot(cs, [r["cycles_per_sample"] for r in rows], "o-", label=f"{net}")
            axes[0].plot(cs, [r["ideal_cycles_per_sample"] for r in rows], "x--",
                         label=f"{net} ideal")
            if rows[0]["speedup"]:
                axes[1].plot(cs, [r["speedup"] for r in rows], "o-", label=net)
        axes[1].plot(args.cores, args.cores, "k:", label="linear")
        axes[0].set(xscale="log", yscale="log", xlabel="cores", ylabel="cycles per sample",
                    title="cycles per training sample")
        axes[1].set(xscale="log", yscale="log", xlabel="cores", ylabel="speed-up",
                    title="speed-up over one core")
        for ax in axes:
            ax.legend(fontsize=7)
            ax.set_xticks(args.cores, [str(c) for c in args.cores])
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}" if args.plot else "")
    ok = all(r["bit_exact"] for rows in results.values() for r in rows) and \
        all(out["same_weights_on_every_core_count"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
