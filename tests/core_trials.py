"""One trial of a core against the golden model, shared by the Verilator core tests:
load a network, run samples at given spike densities (forward; forward and backward
with a label), check every history, potential, ``du`` and ``dW`` bit for bit, then the
update and the cleared ``dW``."""

import numpy as np

from spikeforge.sim.engines.compare import first_difference
from spikeforge.sim.golden import model as golden


def check_sample(acc, weights, dWs, spikes, label, params, what):
    """One sample on the device and the golden model; returns the accumulated ``dW``."""
    res = acc.run(spikes, label)
    traces = golden.forward(weights, spikes, params)
    counts = golden.spike_counts(traces[-1].s)
    assert list(res.counts) == list(counts), f"{what}: output spike counts"
    assert res.prediction == int(np.argmax(counts)), f"{what}: prediction"
    for l in range(len(weights)):
        first_difference(f"{what} layer {l} s", acc.history(l, "s"), traces[l].s, kind="trace")
        first_difference(f"{what} layer {l} m", acc.history(l, "m"), traces[l].m, kind="trace")
        if params.reset_grad == "through":
            first_difference(f"{what} layer {l} u", acc.potentials(l), traces[l].u, kind="trace")
    if label is None:
        return dWs
    grads = golden.backward(weights, traces, spikes, label, params, dWs)
    got_dw = acc.read_weights("dW")
    for l in range(len(weights)):
        first_difference(f"{what} layer {l} du", acc.du(l), grads[l].du, kind="trace")
        first_difference(f"{what} layer {l} dW", got_dw[l], grads[l].dW, kind="W")
    return [gr.dW for gr in grads]


def trial(acc, rng, sizes, params, densities, what, *, unlabelled=3):
    """Random weights for ``sizes``, loaded and checked; a sample per density (the
    ``unlabelled``-th without a label), then the update, all checked."""
    weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
               for i, o in zip(sizes[:-1], sizes[1:])]
    acc.load_network(sizes, params, weights)
    for l, W in enumerate(acc.read_weights("W")):
        first_difference(f"layer {l} W loaded", W, weights[l], kind="W")
    dWs = golden.zero_grads(weights)
    for k, density in enumerate(densities):
        spikes = rng.random((params.T, sizes[0])) < density
        label = None if k == unlabelled else int(rng.integers(0, sizes[-1]))
        dWs = check_sample(acc, weights, dWs, spikes, label, params,
                           f"{what} density {density}")
    acc.update()
    weights = golden.update(weights, dWs, params)
    for l, W in enumerate(acc.read_weights("W")):
        first_difference(f"layer {l} W after the update", W, weights[l], kind="W")
    for l, dW in enumerate(acc.read_weights("dW")):
        assert not np.any(dW.view(np.uint16)), f"layer {l}: dW not cleared by the update"
