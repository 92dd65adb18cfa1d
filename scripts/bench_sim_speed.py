"""Compare simulation variants of the accelerator (transport and Verilator build) on one
training run each.

Runs ``spikeforge train --dataset digits --engine rtl --cores 1 --samples N`` once
per variant and repeat, interleaved (A B C A B C ...) so that a busy machine
affects every variant alike, and writes as JSON per variant: the medians of the
run's wall time, its CPU time (this process and the simulator), the seconds per
training sample (the run's wall time less start-up, over the samples),
``simulated_cycles_per_second`` and ``simulated_cycles_per_cpu_second`` (run and
update commands only: the simulator computing, Python asleep), their ratios to the
first variant, ``cycles_per_sample`` and ``bit_exact``::

    python scripts/bench_sim_speed.py --repeats 3 --json bench_sim_speed.json
    python scripts/bench_sim_speed.py --variants bytes,bulk,bulk-rreg --samples 6
    python scripts/bench_sim_speed.py --variants full,digest --samples 40 --repeats 1

``full`` and ``digest`` are the same build, trained with ``--check full`` (every ``dW``
and ``W`` read back) and ``--check digest`` (the core's CRC-32 of each layer): their
``link_cycles_per_sample`` (every simulated cycle of a training sample: spikes, run,
checks, update) and ``train_wall_seconds_per_sample`` show what the checks cost.

A variant is the transport (``bytes``: the byte-wise cocotb bridge; ``bulk``: the
wrapper of :mod:`spikeforge.sim.verilator.bulk_top` with its buffer width and
registered reset or not) plus a g++ optimisation level for the model's per-cycle
code (``OPT_FAST``) and extra Verilator arguments; each variant is its own cached
build (the first run of a variant builds it, not timed: a build runs before the
simulation starts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BYTES = {"bulk": False}
_BULK = {"bulk": True, "bulk_width": 64, "registered_reset": False}
_RREG = {"bulk": True, "bulk_width": 64, "registered_reset": True}    # the default

#: name -> (SimTransport options, cxx_opt, extra Verilator arguments)
VARIANTS = {
    "bytes": (_BYTES, "-O3", ()),       # the byte-wise bridge (before the bulk path)
    "bulk": (_BULK, "-O3", ()),
    "bulk-rreg": (_RREG, "-O3", ()),    # the train default
    "bulk16-rreg": (dict(_RREG, bulk_width=16), "-O3", ()),
    "bulk-rreg-native": (_RREG, "-O3", ("-CFLAGS", "-march=native")),
    "bulk-rreg-threads2": (_RREG, "-O3", ("--threads", "2")),
    "bulk-rreg-O2": (_RREG, "-O2", ()),
    "bulk-rreg-noinline": (_RREG, "-O3", ("--inline-mult", "0")),
    "bulk-rreg-fno": (_RREG, "-O3", ("-CFLAGS", "-fno-stack-protector -fno-plt "
                                     "-fno-semantic-interposition")),
    # profile-guided: "pgo-gen" builds an instrumented model whose warm-up run writes the
    # profile, "pgo-use" builds with it (list pgo-gen before pgo-use)
    "pgo-gen": (_RREG, "-O3", (), "generate"),
    "pgo-use": (_RREG, "-O3", (), "use"),
    "O1": (_RREG, "-O1", ()),
    "O2": (_RREG, "-O2", ()),
    "O3": (_RREG, "-O3", ()),
    "Os": (_RREG, "-Os", ()),
    # how dW and W are checked after every sample and update (train's --check)
    "full": (_RREG, "-O3", ()),         # every value read back (READ_WEIGHTS)
    "digest": (_RREG, "-O3", ()),       # the core's CRC-32 (READ_DIGEST), the default
}

#: the train arguments of a variant (default: none)
TRAIN_ARGS = {"full": ("--check", "full"), "digest": ("--check", "digest")}

#: where the pgo-gen model writes its profile and pgo-use reads it
PGO_DIR = Path(os.environ.get("SPIKEFORGE_CACHE", Path.home() / ".cache" / "spikeforge")) / \
    "pgo-bench-sim-speed"

# Runs in a subprocess: the CLI with SimTransport and harness.build given this variant's
# options.
_DRIVER = r"""
import json, os, sys
from spikeforge.sim.verilator import harness, session
options, cxx_opt, extra, pgo, pgo_dir = json.loads(os.environ["SF_BENCH_VARIANT"])
if cxx_opt not in harness.CXX_OPT_LEVELS:
    harness.CXX_OPT_LEVELS = tuple(harness.CXX_OPT_LEVELS) + (cxx_opt,)
_build = harness.build
def build(*args, extra_args=(), **kw):
    kw.pop("cxx_opt", None)
    return _build(*args, extra_args=tuple(extra_args) + tuple(extra), cxx_opt=cxx_opt,
                  pgo=pgo, pgo_dir=pgo_dir, **kw)
harness.build = build
_init = session.SimTransport.__init__
def init(self, top, **kw):
    kw.update(options)
    _init(self, top, **kw)
session.SimTransport.__init__ = init
from spikeforge.sim.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_variant(name: str, samples: int, test_samples: int, timeout_s: float) -> dict:
    options, cxx_opt, extra, pgo = (VARIANTS[name] + (None,))[:4]
    with tempfile.TemporaryDirectory(prefix="sf-bench-sim-") as tmp:
        out = Path(tmp) / "train.json"
        env = dict(os.environ, SF_BENCH_VARIANT=json.dumps(
            [options, cxx_opt, list(extra), pgo, str(PGO_DIR) if pgo else None]))
        cmd = [sys.executable, "-c", _DRIVER, "train", "--dataset", "digits", "--engine", "rtl",
               "--cores", "1", "--samples", str(samples), "--test-samples", str(test_samples),
               "--json", str(out), *TRAIN_ARGS.get(name, ())]
        t0 = time.monotonic()
        c0 = os.times()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        seconds = time.monotonic() - t0
        c1 = os.times()
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        if proc.returncode != 0 or not out.exists():
            return {"ok": False, "seconds": seconds, "error": (proc.stderr or proc.stdout)[-3000:]}
        report = json.loads(out.read_text())
    return {
        "ok": True,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "train_seconds": report.get("seconds"),
        "bit_exact": report.get("bit_exact"),
        "cycles_per_sample": report.get("cycles_per_sample"),
        "check": report.get("check"),
        "link_cycles_per_sample": report.get("link_cycles_per_sample"),
        "train_wall_seconds_per_sample": report.get("train_wall_seconds_per_sample"),
        "weights_sha256": report.get("weights_sha256"),
        "simulated_cycles_per_second": report.get("simulated_cycles_per_second"),
        "simulated_cycles_per_cpu_second": report.get("simulated_cycles_per_cpu_second"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="bytes,bulk,bulk-rreg",
                    help=f"comma-separated, the first is the reference; known: {', '.join(VARIANTS)}")
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--test-samples", type=int, default=5,
                    help="test samples through inference after training (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run (with build)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    for n in names:
        if n not in VARIANTS:
            ap.error(f"unknown variant {n!r}; known: {', '.join(VARIANTS)}")

    # Build (and warm) every variant first: the build is not part of the figures.
    warm = {}
    for n in names:
        print(f"building/warming {n} ...", flush=True)
        # the instrumented model's warm-up is the profile: a run of the usual length
        warm[n] = run_variant(n, args.samples if n == "pgo-gen" else 1, 1, args.timeout)
        if not warm[n]["ok"]:
            print(f"  {n} failed:\n{warm[n]['error']}", flush=True)
    names = [n for n in names if warm[n]["ok"]]
    runs = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names:
            res = run_variant(n, args.samples, args.test_samples, args.timeout)
            runs[n].append(res)
            print(f"repeat {r}: {n}: {json.dumps(res)[:300]}", flush=True)

    def med(n, key):
        vals = [x[key] for x in runs[n] if x.get("ok") and x.get(key) is not None]
        return statistics.median(vals) if vals else None

    ref = names[0] if names else None
    summary = {}
    for n in names:
        options, cxx_opt, extra, pgo = (VARIANTS[n] + (None,))[:4]
        s = {
            "pgo": pgo,
            "transport": options,
            "cxx_opt": cxx_opt,
            "verilator_args": list(extra),
            "runs": len(runs[n]),
            "all_bit_exact": all(x.get("ok") and x.get("bit_exact") for x in runs[n]),
            "cycles_per_sample": med(n, "cycles_per_sample"),
            "median_link_cycles_per_sample": med(n, "link_cycles_per_sample"),
            "median_train_wall_seconds_per_sample": med(n, "train_wall_seconds_per_sample"),
            "weights_sha256": sorted({x.get("weights_sha256") for x in runs[n] if x.get("ok")},
                                     key=str),
            "median_cycles_per_second": med(n, "simulated_cycles_per_second"),
            "median_cycles_per_cpu_second": med(n, "simulated_cycles_per_cpu_second"),
            "median_seconds": med(n, "seconds"),
            "median_cpu_seconds": med(n, "cpu_seconds"),
            "median_train_seconds": med(n, "train_seconds"),
        }
        summary[n] = s
    for n in names:
        for key in ("median_cycles_per_second", "median_cycles_per_cpu_second",
                    "median_seconds", "median_cpu_seconds", "median_link_cycles_per_sample",
                    "median_train_wall_seconds_per_sample"):
            a, b = summary[n][key], summary[ref][key]
            summary[n][key.replace("median_", "ratio_")] = (a / b) if a and b else None
    result = {"samples": args.samples, "repeats": args.repeats, "reference": ref,
              "variants": summary, "runs": runs}
    text = json.dumps(result, indent=2)
    if args.json:
        tmp = Path(args.json).with_name(Path(args.json).name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.json)
    for n, s in summary.items():
        print(f"{n:18s} {s['median_seconds'] or 0:6.1f} s wall {s['median_cpu_seconds'] or 0:6.1f} s CPU "
              f"{s['median_cycles_per_second'] or 0:10.0f} cycles/s "
              f"{s['median_cycles_per_cpu_second'] or 0:10.0f} cycles/CPU-s "
              f"x{s['ratio_cycles_per_cpu_second'] or 0:.2f}  bit_exact={s['all_bit_exact']} "
              f"cycles/sample={s['cycles_per_sample']} "
              f"link cycles/sample={s['median_link_cycles_per_sample']} "
              f"s/sample={s['median_train_wall_seconds_per_sample']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
