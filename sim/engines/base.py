"""The training-engine interface that ``spikeforge train``'s one loop drives.

An engine does the arithmetic of SPEC section 3 somewhere (the golden model, the
Verilator model of the core, a board); :mod:`spikeforge.sim.train` owns
everything around it (data, encoding, sample order, epochs, metrics, progress,
the JSON report). An engine is built as
``Engine(sizes, params, weights=..., precision=..., **options)`` and used as a
context manager (``with engine:``; it may start a simulator or open a board
there), then:

* ``train_step(spikes, labels) -> StepStats`` -- one minibatch (spikes bool
  ``(B, T, N_in)``, labels ``(B,)``): forward, backward with ``dW`` accumulated
  over the samples in order, one update;
* ``evaluate(spikes, labels) -> EvalStats`` -- forward only (predictions);
* ``set_params(params)`` -- new run-time constants (no new weights), between
  minibatches;
* ``weights`` -- the current weights (one array per layer);
* ``report() -> dict`` -- keys the engine adds to the run's JSON report (hardware
  counters, the bit-exact verdict, ...); ``summary(report) -> str | None`` -- a last
  line for the terminal.

A hardware engine compares with the golden model as it goes and raises
:class:`~spikeforge.sim.engines.compare.Mismatch` at the first difference; the
loop stops there, says where, and still writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Engine", "StepStats", "EvalStats"]


@dataclass
class StepStats:
    """What one minibatch did (sums over its samples)."""

    loss: float                       # sum of the per-sample losses
    correct: int                      # samples whose prediction (before the update) was right
    spikes: list[int]                 # per layer: spikes over all samples and steps
    slots: list[int]                  # per layer: B * T * N_out
    du_nonzero: list[int]             # per layer: du entries != 0
    nonfinite: str | None = None      # e.g. "the weight gradient dW of layer 1", or None


@dataclass
class EvalStats:
    predictions: np.ndarray
    loss: np.ndarray                  # per sample
    spikes: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)


class Engine:
    """Defaults of the optional parts of the interface."""

    #: the ``--engine`` name
    name = ""
    #: what the engine runs on, for messages ("the core differs from the golden model")
    hardware = "the engine"
    #: whether the loop evaluates the whole training set after every epoch (not where
    #: inference costs about as much as training, as on a simulated core)
    train_eval = True

    @classmethod
    def add_arguments(cls, parser):
        """Add the options only this engine reads to ``parser`` (an argument group)."""

    @classmethod
    def options_from(cls, args) -> dict:
        """This engine's keyword options from parsed ``args``."""
        return {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> str:
        """How the run's first line names the engine."""
        return f"engine {self.name}"

    def report(self) -> dict:
        return {}

    def summary(self, report: dict) -> str | None:
        """A last line for the terminal, from this engine's ``report()``."""
        return None
