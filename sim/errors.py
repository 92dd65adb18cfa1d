"""The error of bad user input, shared by every command (``sim/``, ``boards/``).

It lives apart from the command-line entry point (:mod:`spikeforge.sim.cli`),
so that any module can raise it without importing the CLI, and the CLI can
catch the very same class however it is started.
"""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad user input: the message is one sentence naming the value and what is allowed."""
