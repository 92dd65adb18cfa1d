"""Forward cycles of one core against input spike density (cycles follow the spikes).

Runs a random ``N_in - hidden - K`` network forward on the Verilator model of the
one-core accelerator at input densities from 0 to 1 and records, per density,
the forward cycles (core counter), the active (input, step) events, the cycles
the same layer would take if every input were a term (the dense equivalent:
``N_in * T`` events for the first layer), and the simulated cycles per second.
Every sample's output counts are checked against the golden model.

    python scripts/bench_core_density.py --preset digits --json bench_core_density.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import preset
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.verilator.session import rtl_session


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="digits")
    p.add_argument("--sizes", default="64,128,10")
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--samples", type=int, default=3, help="samples per density")
    p.add_argument("--densities", default="0,0.05,0.1,0.2,0.3,0.5,0.75,1")
    p.add_argument("--json", default="bench_core_density.json")
    args = p.parse_args(argv)
    cfg = preset(args.preset)
    sizes = [int(x) for x in args.sizes.split(",")]
    params = golden.Params(T=args.T)
    weights = golden.init_weights(sizes, 0)
    rng = np.random.default_rng(1)
    rows = []
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=600.0) as link:
        acc = Device(link)
        acc.load_network(sizes, params, weights)
        P = acc.info.lanes
        G0 = -(-sizes[1] // P)
        for d in (float(x) for x in args.densities.split(",")):
            cyc, events, wall, sim = 0, 0, 0.0, 0
            for _ in range(args.samples):
                spikes = rng.random((args.T, sizes[0])) < d
                acc.load_spikes(spikes)
                acc.counters(clear=True)
                c0, t0 = link.cycles, time.monotonic()
                res = acc.run_loaded(None)
                wall += time.monotonic() - t0
                sim += link.cycles - c0
                want = golden.spike_counts(golden.forward(weights, spikes, params)[-1].s)
                assert list(res.counts) == list(want), "output counts differ from the golden model"
                cyc += acc.counters()["cycles_forward"]
                events += int(spikes.sum())
            n = args.samples
            rows.append({
                "density": d,
                "forward_cycles": cyc / n,
                "active_input_events": events / n,
                "layer0_accumulate_cycles_ideal": events / n * G0,
                "layer0_accumulate_cycles_dense": sizes[0] * args.T * G0,
                "simulated_cycles_per_second": sim / wall if wall else 0.0,
            })
            r = rows[-1]
            print(f"density {d:4.2f}: {r['forward_cycles']:8.0f} forward cycles, "
                  f"{r['active_input_events']:6.0f} active inputs "
                  f"(layer 0 accumulate: {r['layer0_accumulate_cycles_ideal']:.0f} sparse, "
                  f"{r['layer0_accumulate_cycles_dense']} dense)")
    out = {"preset": args.preset, "config": cfg.to_dict(), "sizes": sizes, "T": args.T,
           "lanes": P, "rows": rows}
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
