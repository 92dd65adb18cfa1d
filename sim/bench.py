"""``spikeforge bench TARGET ...``: benchmarks that measure a part of the accelerator and write JSON.

Each benchmark lives in its own module with ``add_arguments(parser)`` and
``main(args) -> int``, like the top-level subcommands; add it to
:data:`BENCHES` to make it a ``bench`` target (:mod:`spikeforge.sim.cli` builds
the ``bench`` subcommands from this table).
"""

from __future__ import annotations

__all__ = ["BENCHES", "SUBCOMMANDS", "SUBCOMMAND_METAVAR"]

#: target name -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "noc": ("spikeforge.sim.noc.bench",
            "mesh network-on-chip: throughput and latency against offered load"),
}

#: what :mod:`spikeforge.sim.cli` reads: this command is a group of subcommands
SUBCOMMANDS = BENCHES
SUBCOMMAND_METAVAR = "TARGET"
