"""The ``spikeforge`` command.

Each subcommand lives in the module that owns it; that module provides
``add_arguments(parser)`` and ``main(args) -> int`` (or, for a group such as
``bench``, a ``SUBCOMMANDS`` table of the same shape as :data:`COMMANDS`). Errors in user input are
raised as :class:`~spikeforge.sim.errors.UsageError` (one sentence; also importable
from here) and end with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spikeforge.sim.errors import UsageError

__all__ = ["UsageError", "main", "COMMANDS"]


#: subcommand name -> (module, one-line help). A subcommand is listed only once it works.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("spikeforge.sim.generate", "write the Verilog of a multi-core accelerator and its manifest"),
    "build": ("spikeforge.boards.build", "place and route a block on an FPGA board and report its cost"),
    "train": ("spikeforge.sim.train", "train a spiking network on a dataset with the golden model or on the RTL core"),
    "bench": ("spikeforge.sim.bench", "run a benchmark and write its numbers as JSON"),
    "port": ("spikeforge.sim.port", "port a trained network to an integer spiking network (SPEC section 8)"),
    "infer": ("spikeforge.sim.infer", "run a network file over the test set with an inference engine"),
}


def _add_commands(parser, table, *, dest, metavar):
    """One subcommand per ``table`` entry; a module with a ``SUBCOMMANDS`` table (such as
    :mod:`spikeforge.sim.bench`) is a group of subcommands itself."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar)
    sub.required = True
    for name, (module, help_text) in table.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        if hasattr(mod, "SUBCOMMANDS"):
            _add_commands(p, mod.SUBCOMMANDS, dest=name, metavar=mod.SUBCOMMAND_METAVAR)
        else:
            mod.add_arguments(p)
            p.set_defaults(_module=mod)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="RTL generator for a multi-core neuromorphic accelerator that trains "
                    "spiking neural networks on chip.")
    _add_commands(parser, COMMANDS, dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.main(args) or 0)
    except UsageError as exc:
        print(f"spikeforge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spikeforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
