"""Estimated energy per sample against input spike density, with the dense equivalent.

For each input density a few random samples (Bernoulli spikes, ``T`` steps) of a
network with the seeded initial weights go through the golden model forward and
backward; the work the contract implies for each (``spikeforge.sim.energy.contract_work``:
forward adds = active inputs x neurons, LIF, loss, surrogate, du, ``g_in`` over
non-zero ``du``, ``dW`` over non-zero ``du`` x active inputs, one update per sample)
becomes a core event set at the ideal cycle count (lane operations / lanes) on the
chosen preset's memories, plus the sample's off-chip bytes, and
``spikeforge.sim.energy.estimate`` gives its energy. The dense equivalent is the
same network with every input a term and every ``du`` non-zero (``dense_work``).
Forward-only (inference on the training core) is reported beside training.

With ``--rtl`` each sample also runs on the Verilator model of the one-core
accelerator and its own counters give a measured-work point
(``spikeforge.sim.energy.core_events``; the energies are still the estimate's).

    python scripts/bench_energy_density.py --json docs/energy-density.json --png docs/energy-density.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from spikeforge.hdl.config import preset
from spikeforge.sim import energy as E
from spikeforge.sim.golden import fp16
from spikeforge.sim.golden import model as golden


def sample_work(weights, sizes, spikes, label, params):
    traces = golden.forward(weights, spikes, params)
    grads = golden.backward(weights, traces, spikes, label, params)
    s = [t.s for t in traces]
    train = E.contract_work(sizes, spikes, s, [t.m for t in traces],
                            [fp16.ne(g.du, np.float16(0)) for g in grads],
                            reset_grad=params.reset_grad, update=True)
    fwd = E.contract_work(sizes, spikes, s)
    return train, fwd


def _avg(dicts):
    return {k: sum(d[k] for d in dicts) / len(dicts) for k in dicts[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="digits")
    p.add_argument("--sizes", default="64,128,10")
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--samples", type=int, default=4, help="samples per density")
    p.add_argument("--densities", default="0,0.05,0.1,0.2,0.3,0.5,0.75,1")
    p.add_argument("--constants", default=None, help="a JSON file of energy constants")
    p.add_argument("--rtl", action="store_true", help="also run every sample on the RTL core")
    p.add_argument("--json", default="energy_density.json")
    p.add_argument("--png", default=None)
    args = p.parse_args(argv)
    try:
        model = E.EnergyModel.from_json(args.constants)
    except E.EnergyError as exc:
        print(f"bench_energy_density: {exc}", file=sys.stderr)
        return 2
    cfg = preset(args.preset)
    geo = E.geometry_of(cfg)
    sizes = [int(x) for x in args.sizes.split(",")]
    params = golden.Params(T=args.T)
    weights = golden.init_weights(sizes, 0)
    dram = E.offchip_bytes_per_sample(sizes, args.T)["bytes_per_sample"]
    dram_fwd = E.offchip_bytes_per_sample(sizes, args.T, train=False)["bytes_per_sample"]
    rng = np.random.default_rng(1)
    densities = [float(x) for x in args.densities.split(",")]
    samples = {d: [(rng.random((args.T, sizes[0])) < d, int(rng.integers(sizes[-1])))
                   for _ in range(args.samples)] for d in densities}

    def energy(work, dram_bytes):
        ev = E.events_from_work(work, geo, dram_bytes=dram_bytes)
        return E.estimate(ev, samples=1, model=model)

    dense_train = energy(E.dense_work(sizes, args.T, update=True), dram)
    dense_fwd = energy(E.dense_work(sizes, args.T, train=False), dram_fwd)
    rows = []
    for d in densities:
        tw, fw = zip(*(sample_work(weights, sizes, sp, lab, params) for sp, lab in samples[d]))
        tr, fr = energy(_avg(tw), dram), energy(_avg(fw), dram_fwd)
        rows.append({
            "input_density": d,
            "active_input_events_per_sample": float(np.mean([sp.sum() for sp, _ in samples[d]])),
            "train_work": _avg(tw), "forward_work": _avg(fw),
            "train_joules_per_sample": tr["joules_per_sample"],
            "train_tflops_per_watt": tr["tflops_per_watt"],
            # the dense-equivalent FLOPs per joule the sparse run spends
            "train_effective_tflops_per_watt":
                (dense_flops(sizes, args.T) / tr["joules_total"] / 1e12)
                if tr["joules_total"] else None,
            "train_shares": tr["shares"],
            "forward_joules_per_sample": fr["joules_per_sample"],
            "forward_shares": fr["shares"],
        })
    report = {
        "estimate": True, "preset": args.preset, "sizes": sizes, "T": args.T,
        "samples_per_density": args.samples, "model": model.to_dict(),
        "dense_train_joules_per_sample": dense_train["joules_per_sample"],
        "dense_forward_joules_per_sample": dense_fwd["joules_per_sample"],
        "dense_train_tflops_per_watt": dense_train["tflops_per_watt"],
        "rows": rows,
    }
    if args.rtl:
        report["rtl"] = rtl_points(cfg, geo, sizes, params, weights, samples, model, dram)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=2)
    os.replace(tmp, args.json)
    print(f"{'density':>7} {'train uJ':>9} {'dense uJ':>9} {'fwd uJ':>8} {'dense fwd':>9}"
          f" {'TFLOPS/W':>8}" + ("  rtl train uJ" if args.rtl else ""))
    for i, r in enumerate(rows):
        line = (f"{r['input_density']:>7.2f} {r['train_joules_per_sample'] * 1e6:>9.3f} "
                f"{dense_train['joules_per_sample'] * 1e6:>9.3f} "
                f"{r['forward_joules_per_sample'] * 1e6:>8.3f} "
                f"{dense_fwd['joules_per_sample'] * 1e6:>9.3f} "
                f"{r['train_tflops_per_watt']:>8.3f}")
        if args.rtl:
            line += f"  {report['rtl'][i]['train_joules_per_sample'] * 1e6:>12.3f}"
        print(line)
    if args.png:
        plot(report, args.png)
    return 0


def dense_flops(sizes, T):
    """FLOPs of one dense training sample (an add 1 FLOP, any other operation an FMA: 2)."""
    w = E.dense_work(sizes, T, update=True)
    return sum(v if k in ("fp_add", "wg_add") else 2 * v for k, v in w.items())


def rtl_points(cfg, geo, sizes, params, weights, samples, model, dram):
    from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
    from spikeforge.sim.engines.rtl import CXX_OPT, session_name
    from spikeforge.sim.host.device import Device
    from spikeforge.sim.verilator.session import rtl_session
    out = []
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=600.0, cxx_opt=CXX_OPT) as link:
        acc = Device(link)
        for d, group in samples.items():
            tot = None
            for sp, lab in group:
                # every sample from the same weights: reload them (dW cleared) first
                acc.load_network(sizes, params, weights)
                acc.counters(clear=True)
                res = acc.run(sp, lab)
                want = golden.spike_counts(golden.forward(weights, sp, params)[-1].s)
                if list(res.counts) != list(want):
                    raise RuntimeError(f"density {d}: output counts differ from the golden model")
                acc.update()
                c = acc.counters(clear=True)
                tot = c if tot is None else {k: tot[k] + c[k] for k in c}
            ev = E.core_events(tot, geometry=geo, sizes=sizes, T=params.T,
                               dram_bytes=dram * len(group))
            r = E.estimate(ev, samples=len(group), model=model)
            out.append({"input_density": d, "train_joules_per_sample": r["joules_per_sample"],
                        "tflops_per_watt": r["tflops_per_watt"],
                        "effective_tflops_per_watt": r["effective_tflops_per_watt"],
                        "shares": r["shares"],
                        "cycles_per_sample": sum(tot[k] for k in ("cycles_forward",
                                                                  "cycles_backward",
                                                                  "cycles_update")) / len(group),
                        "counters": tot})
    return out


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = report["rows"]
    d = [r["input_density"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    uj = 1e6
    ax.plot(d, [r["train_joules_per_sample"] * uj for r in rows], "o-", label="training, sparse (contract work)")
    ax.axhline(report["dense_train_joules_per_sample"] * uj, ls="--", color="C0",
               label="training, dense equivalent")
    ax.plot(d, [r["forward_joules_per_sample"] * uj for r in rows], "s-", color="C1",
            label="forward only, sparse")
    ax.axhline(report["dense_forward_joules_per_sample"] * uj, ls="--", color="C1",
               label="forward only, dense equivalent")
    if "rtl" in report:
        ax.plot([r["input_density"] for r in report["rtl"]],
                [r["train_joules_per_sample"] * uj for r in report["rtl"]], "x", ms=9,
                color="C3", label="training, RTL core counters")
    ax.set_xlabel("input spike density")
    ax.set_ylabel("energy per sample (uJ, estimate)")
    ax.set_title(f"{'-'.join(map(str, report['sizes']))}, T = {report['T']}, "
                 f"{report['model']['constants']['node_nm']['value']:g} nm (estimate)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    kinds = [k for k in E.KINDS if any(r["train_shares"][k] > 0.005 for r in rows)]
    bottom = np.zeros(len(rows))
    for k in kinds:
        v = np.array([r["train_shares"][k] for r in rows])
        bx.bar(range(len(rows)), v, bottom=bottom, label=k)
        bottom += v
    bx.set_xticks(range(len(rows)), [f"{x:g}" for x in d])
    bx.set_xlabel("input spike density")
    bx.set_ylabel("share of training energy")
    bx.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
