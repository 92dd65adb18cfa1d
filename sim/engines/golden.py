"""The golden model as a training engine: exact fp16 (the contract) or its float64 twin.

One minibatch is one call of :func:`spikeforge.sim.golden.model.train_step`
(forward, backward with ``dW`` summed over the samples in order, one update);
evaluation is :func:`~spikeforge.sim.golden.model.forward` in chunks of 512
samples. Speed: see docs/golden-model.md (numpy, a few thousand samples/s).
"""

from __future__ import annotations

import numpy as np

from spikeforge.sim.engines.base import Engine, EvalStats, StepStats
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import float64 as golden64
from spikeforge.sim.golden import model as golden

__all__ = ["GoldenEngine", "step_stats", "layer_activity"]


def layer_activity(traces) -> tuple[list[int], list[int]]:
    """Per layer: spikes and (sample, step, neuron) slots of a forward pass."""
    return [int(tr.s.sum()) for tr in traces], [int(tr.s.size) for tr in traces]


def step_stats(losses, correct, traces, grads, nonfinite=None) -> StepStats:
    """:class:`StepStats` of a minibatch from its losses and the golden traces and gradients."""
    spikes, slots = layer_activity(traces)
    return StepStats(loss=float(np.sum(losses)), correct=int(correct), spikes=spikes,
                     slots=slots, du_nonzero=[int(np.count_nonzero(gr.du)) for gr in grads],
                     nonfinite=nonfinite)


class GoldenEngine(Engine):
    """The golden model as a training engine (fp16, the contract; or the float64 twin)."""

    name = "golden"
    hardware = "the golden model"

    def __init__(self, sizes, params: golden.Params, *, weights, precision="fp16"):
        if precision not in ("fp16", "float64"):
            raise UsageError(f"precision must be fp16 or float64, not {precision!r}")
        self.precision = precision
        self.model = golden if precision == "fp16" else golden64
        self.params = params
        self.weights = ([np.array(W, dtype=np.float16) for W in weights] if precision == "fp16"
                        else golden64.to_float64(weights))

    def describe(self) -> str:
        return f"engine {self.name}, {self.precision}"

    def set_params(self, params: golden.Params):
        self.params = params

    def train_step(self, spikes, labels) -> StepStats:
        res = self.model.train_step(self.weights, spikes, labels, self.params)
        nonfinite = None
        for l in range(len(self.weights)):
            for what, arr in (("the potential gradient du", res.grads[l].du),
                              ("the weight gradient dW", res.dWs[l]),
                              ("the weights", res.weights[l])):
                if not np.isfinite(arr).all():
                    nonfinite = nonfinite or f"{what} of layer {l}"
        self.weights = res.weights
        correct = (np.argmax(res.counts, axis=-1) == labels).sum()
        return step_stats(res.loss, correct, res.traces, res.grads, nonfinite)

    def evaluate(self, spikes, labels, chunk=512) -> EvalStats:
        preds, losses = [], []
        spikes_l = slots_l = None
        for k in range(0, len(spikes), chunk):
            traces = self.model.forward(self.weights, spikes[k:k + chunk], self.params)
            counts = golden.spike_counts(traces[-1].s)
            preds.append(np.argmax(counts, axis=-1))
            losses.append(golden.loss_value(traces[-1].s, labels[k:k + chunk]))
            sp, sl = layer_activity(traces)
            spikes_l = sp if spikes_l is None else [a + b for a, b in zip(spikes_l, sp)]
            slots_l = sl if slots_l is None else [a + b for a, b in zip(slots_l, sl)]
        return EvalStats(predictions=np.concatenate(preds), loss=np.concatenate(losses),
                         spikes=spikes_l, slots=slots_l)
