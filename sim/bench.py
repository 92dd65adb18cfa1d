"""``spikeforge bench TARGET ...``: benchmarks that measure a part of the accelerator and write JSON.

Each benchmark lives in its own module with ``add_arguments(parser)`` and
``main(args) -> int``, like the top-level subcommands; add it to
:data:`BENCHES` to make it a ``bench`` target.
"""

from __future__ import annotations

import importlib

__all__ = ["BENCHES", "add_arguments", "main"]

#: target name -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "noc": ("spikeforge.sim.noc.bench",
            "mesh network-on-chip: throughput and latency against offered load"),
}


def add_arguments(parser):
    sub = parser.add_subparsers(dest="bench", metavar="TARGET")
    sub.required = True
    for name, (module, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_bench_module=mod)


def main(args) -> int:
    return int(args._bench_module.main(args) or 0)
