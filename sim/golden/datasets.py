"""Datasets and the rate encoder: the exact spikes the golden model and the hardware see.

* :func:`load` -- a dataset by name (only ``"digits"`` today; an unknown name
  raises :class:`DatasetError` with one sentence).
* :func:`load_digits` -- scikit-learn's 8x8 handwritten digits (1797 samples,
  64 features, 10 classes; shipped inside scikit-learn, no download), features
  scaled to [0, 1] as ``pixel / 16``, split into train and test by a fixed
  stratified split: within each class (in dataset order) the indices are
  permuted by ``numpy.random.default_rng(SPLIT_SEED)`` -- one generator, classes
  0..9 in turn -- and the first ``round(TEST_FRACTION * n_class)`` go to the
  test set. Each split keeps dataset order. With ``SPLIT_SEED = 0`` and
  ``TEST_FRACTION = 0.2`` that is 1438 training and 359 test samples.
* :func:`encode` -- rate coding: input ``j`` of sample ``index`` of ``split``
  spikes at step ``t`` when ``U[t, j] < x[j]``, with
  ``U = numpy.random.default_rng([seed, SPLIT_IDS[split], index]).random((T, N_in))``
  (PCG64 seeded through SeedSequence; float64 in [0, 1)). The bits depend only
  on ``(seed, split, index, T)`` and the sample's features: never on batch,
  epoch or order, so the host can regenerate them for the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DatasetError", "Dataset", "DATASETS", "SPLIT_IDS", "SPLIT_SEED", "TEST_FRACTION",
           "load", "load_digits", "encode", "encode_batch"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
SPLIT_IDS = {"train": 0, "test": 1}


class DatasetError(ValueError):
    """A dataset cannot be found or is malformed; one sentence naming it."""


@dataclass(frozen=True)
class Dataset:
    """Features in [0, 1] (float64, ``(N, n_features)``) and integer labels per split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def split(self, split: str):
        if split not in SPLIT_IDS:
            raise DatasetError(f"unknown split {split!r}; allowed: {sorted(SPLIT_IDS)}")
        return (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)


def _stratified_split(y, test_fraction, seed):
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for k in np.unique(y):                                   # classes ascending
        idx = np.flatnonzero(y == k)                         # dataset order
        perm = rng.permutation(idx)
        n_test = int(round(test_fraction * len(idx)))
        test[perm[:n_test]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def load_digits() -> Dataset:
    """scikit-learn's digits, scaled to [0, 1], fixed stratified split (see module doc)."""
    from sklearn.datasets import load_digits as _sk_digits
    d = _sk_digits()
    x = d.data.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    tr, te = _stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    return Dataset(name="digits", x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te],
                   n_classes=10)


DATASETS = {"digits": load_digits}


def load(name: str) -> Dataset:
    """The dataset called ``name``; :class:`DatasetError` if there is none."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]()


def encode(x, *, index: int, split: str, seed: int, T: int) -> np.ndarray:
    """Rate-coded spikes of one sample: bool ``(T, N_in)``, ``U[t, j] < x[j]``."""
    if split not in SPLIT_IDS:
        raise DatasetError(f"unknown split {split!r}; allowed: {sorted(SPLIT_IDS)}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"encode takes one sample's features (N_in,), not shape {x.shape}")
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])
    return rng.random((int(T), x.shape[0])) < x


def encode_batch(x, indices, *, split: str, seed: int, T: int) -> np.ndarray:
    """Spikes ``(B, T, N_in)`` of the samples ``indices`` of a split (``x`` is the
    whole split's features); the same bits as :func:`encode` sample by sample."""
    indices = np.asarray(indices)
    out = np.empty((len(indices), int(T), x.shape[1]), dtype=bool)
    for n, i in enumerate(indices):
        out[n] = encode(x[i], index=int(i), split=split, seed=seed, T=T)
    return out
