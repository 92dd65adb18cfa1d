"""The golden model's weights after a short ``spikeforge train`` run, computed from the
rules the training loop states (docs/golden-model.md, ``sim/train.py``), not by
calling it: seeded initial weights, every training sample encoded once with the run's
seed, the first epoch's order ``default_rng([seed, 2, 1]).permutation(N)``, minibatches
of ``batch`` samples in that order."""

import numpy as np

from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden


def trained_weights(sizes, *, T, samples, batch, seed=0):
    data = D.load("digits")
    params = golden.Params(T=T)
    weights = golden.init_weights(list(sizes), seed)
    spikes = D.encode_batch(data.x_train, np.arange(len(data.x_train)), split="train",
                            seed=seed, T=T)
    order = np.random.default_rng([seed, 2, 1]).permutation(len(data.x_train))[:samples]
    for k in range(0, samples, batch):
        idx = order[k:k + batch]
        weights = golden.train_step(weights, spikes[idx], data.y_train[idx], params).weights
    return weights
