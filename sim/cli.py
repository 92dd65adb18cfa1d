"""The ``spikeforge`` command.

Each subcommand lives in the module that owns it; that module provides
``add_arguments(parser)`` and ``main(args) -> int``. Errors in user input are
raised as :class:`UsageError` (one sentence) and end with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["UsageError", "main", "COMMANDS"]


class UsageError(Exception):
    """Bad user input: the message is one sentence naming the value and what is allowed."""


#: subcommand name -> (module, one-line help). A subcommand is listed only once it works.
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("spikeforge.boards.build", "place and route a block on an FPGA board and report its cost"),
    "train": ("spikeforge.sim.train", "train a spiking network on a dataset with the golden model or on the RTL core"),
    "bench": ("spikeforge.sim.bench", "run a benchmark and write its numbers as JSON"),
    "port": ("spikeforge.sim.port", "port a trained network to an integer spiking network (SPEC section 8)"),
    "infer": ("spikeforge.sim.infer", "run a network file over the test set with an inference engine"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="RTL generator for a multi-core neuromorphic accelerator that trains "
                    "spiking neural networks on chip.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
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
    # Run the canonical module so that its UsageError is the one subcommands raise.
    from spikeforge.sim.cli import main as _main
    sys.exit(_main())
