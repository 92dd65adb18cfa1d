"""The error of bad user input, shared by every command (``sim/``, ``boards/``), and the
parsing of option values more than one command takes.

It lives apart from the command-line entry point (:mod:`spikeforge.sim.cli`),
so that any module can raise it without importing the CLI, and the CLI can
catch the very same class however it is started.
"""

from __future__ import annotations

__all__ = ["UsageError", "parse_hidden"]


class UsageError(Exception):
    """Bad user input: the message is one sentence naming the value and what is allowed."""


def parse_hidden(text) -> list[int]:
    """Hidden layer sizes from a ``--hidden`` value: ``128`` or ``128,64``; ``none``
    (or ``0`` or empty) for none."""
    text = str(text).strip()
    if text in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden must be layer sizes like 128 or 128,64 (positive integers), "
                         f"not {text!r}")
    return sizes
