"""Benchmark of the multi-core system top: cycles per command through the dispatcher
and the NoC against the one-core top, and a broadcast RUN on two cores against two
RUNs one after the other.

Both tops are built from the ``tiny`` preset (the system as a 1x2 mesh) and run on
Verilator; every core holds the same network and input spikes. Cycles are the
transport's, request in to response out (``HostLink.last_cycles``).

Usage: ``python scripts/bench_system.py [--json FILE]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import numpy as np

from spikeforge.hdl.accelerator import Accelerator
from spikeforge.hdl.config import preset
from spikeforge.hdl.system import System
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device, SystemDevice, plans
from spikeforge.sim.verilator.session import rtl_session

SIZES = (64, 32, 10)


def _network(seed=1):
    rng = np.random.default_rng(seed)
    params = golden.Params(T=8)
    weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
               for i, o in zip(SIZES[:-1], SIZES[1:])]
    spikes = rng.random((params.T, SIZES[0])) < 0.3
    return params, weights, spikes


def _commands(dev, link, params, weights, spikes):
    """Cycles of each command on one Device (over ``link``)."""
    out = {}

    def timed(name, fn):
        fn()
        out[name] = link.last_cycles
    timed("INFO", lambda: dev._do(plans.info()))
    dev.load_network(SIZES, params, weights)
    timed("WRITE_WEIGHTS (full payload)", lambda: dev._do(plans.write_weights(
        dev.info, 0, weights[0][: (dev.info.max_payload - 5) // 2 // SIZES[0]])))
    timed("READ_WEIGHTS (512 values)", lambda: dev._do(plans.read_weights(
        dev.info, 0, (8, 64))))
    timed("LOAD_SPIKES", lambda: dev.load_spikes(spikes))
    timed("RUN (train)", lambda: dev.run_loaded(3))
    timed("UPDATE", dev.update)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench_system.json", help="output JSON file")
    args = parser.parse_args(argv)
    params, weights, spikes = _network()
    result = {"sizes": list(SIZES), "T": params.T, "preset": "tiny"}

    cfg1 = preset("tiny")
    with rtl_session(Accelerator(cfg1), name=session_name(cfg1), ports_only=True,
                     wall_timeout_s=600.0) as link:
        result["one_core_top"] = _commands(Device(link), link, params, weights, spikes)

    cfg2 = preset("tiny", rows=1, cols=2)
    name = "system_" + hashlib.sha256(cfg2.to_json().encode()).hexdigest()[:8]
    with rtl_session(System(cfg2), name=name, ports_only=True, wall_timeout_s=600.0) as link:
        sd = SystemDevice(link, 2)
        result["system_core_0"] = _commands(sd.core[0], link, params, weights, spikes)
        result["system_core_1"] = _commands(sd.core[1], link, params, weights, spikes)
        for d in sd.core:
            d.load_network(SIZES, params, weights)
            d.load_spikes(spikes)
        sd.broadcast(lambda: plans.run(3))
        both = link.last_cycles
        sd.broadcast(lambda: plans.update())
        result["broadcast"] = {
            "RUN (train) on 2 cores": both,
            "UPDATE on 2 cores": link.last_cycles,
            "two RUNs one after the other": (result["system_core_0"]["RUN (train)"] +
                                             result["system_core_1"]["RUN (train)"]),
        }
        b = result["broadcast"]
        b["speed_up"] = b["two RUNs one after the other"] / b["RUN (train) on 2 cores"]
    text = json.dumps(result, indent=2)
    with open(args.json, "w") as fh:
        fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
