"""Datasets and the rate encoder: the exact spikes the golden model and the hardware see.

* :func:`load` -- a dataset by name (``"digits"``) or a user's ``FILE.npz``
  (:func:`load_npz`); an unknown name raises :class:`DatasetError` with one
  sentence.
* :func:`load_npz` -- ``x_train, y_train, x_test, y_test`` from an ``.npz``:
  features in [0, 1] ``(N, n_features)`` (rate-coded by :func:`encode`) or spike
  trains, bool ``(N, T, n_features)`` (used as they are); integer labels
  ``0..K-1``. Every defect (missing file, not an npz, a missing key, lengths that
  differ, features outside [0, 1], more classes than the network has outputs, ...)
  is one :class:`DatasetError` sentence naming it.
* :func:`split_spikes` -- the spikes of some samples of a split, whichever kind
  the dataset holds (the given spike trains, or :func:`encode_batch`).
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

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from spikeforge.sim.files import input_file

__all__ = ["DatasetError", "Dataset", "DATASETS", "SPLIT_IDS", "SPLIT_SEED", "TEST_FRACTION",
           "NPZ_KEYS", "load", "load_digits", "load_npz", "encode", "encode_batch", "split_spikes"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
SPLIT_IDS = {"train": 0, "test": 1}


class DatasetError(ValueError):
    """A dataset cannot be found or is malformed; one sentence naming it."""


@dataclass(frozen=True)
class Dataset:
    """Features in [0, 1] (float64, ``(N, n_features)``) and integer labels per split.

    A dataset of spike trains (from an npz) also has ``spikes_train`` and
    ``spikes_test`` (bool ``(N, T, n_features)``, ``T`` = :attr:`T`); its ``x_*``
    are then the firing rates of those trains (for reports only: training and
    evaluation use the trains, see :func:`split_spikes`)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    spikes_train: np.ndarray | None = None
    spikes_test: np.ndarray | None = None

    @property
    def T(self) -> int | None:
        """Time steps of the given spike trains (``None`` for rate-coded features)."""
        return None if self.spikes_train is None else int(self.spikes_train.shape[1])

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


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz_labels(path, key, y, n):
    if y.ndim != 1:
        raise DatasetError(f"dataset {path!r}: {key} must be one label per sample, shape ({n},), "
                           f"not {y.shape}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"dataset {path!r}: {key} must hold integer labels 0..K-1, not "
                           f"{y.dtype} values")
    if y.size and y.min() < 0:
        raise DatasetError(f"dataset {path!r}: {key} has the label {int(y.min())}; labels must "
                           "be 0..K-1")
    return y.astype(np.int64)


def _npz_features(path, key, x):
    """('rates', float64 (N, F)) or ('spikes', bool (N, T, F))."""
    if x.dtype == np.bool_:
        if x.ndim != 3:
            raise DatasetError(f"dataset {path!r}: {key} is boolean, so it must be spike trains "
                               f"of shape (N, T, features), not {x.shape}")
        if x.shape[1] < 1 or x.shape[2] < 1:
            raise DatasetError(f"dataset {path!r}: {key} has shape {x.shape}; spike trains need "
                               "at least one time step and one feature")
        return "spikes", x
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DatasetError(f"dataset {path!r}: {key} must be numbers in [0, 1] or booleans "
                           f"(spike trains), not {x.dtype}")
    if x.ndim != 2 or x.shape[1] < 1:
        raise DatasetError(f"dataset {path!r}: {key} must have shape (N, features) (or be "
                           f"boolean spike trains (N, T, features)), not {x.shape}")
    x = x.astype(np.float64)
    bad = ~((x >= 0) & (x <= 1))                      # NaN is outside too
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise DatasetError(f"dataset {path!r}: {key}[{i}, {j}] = {float(x[i, j])!r} is outside [0, 1]; "
                           "features must be in [0, 1] (they are spike probabilities)")
    return "rates", x


def load_npz(path, *, n_outputs: int | None = None) -> Dataset:
    """A user's dataset from ``path`` (see the module doc); ``n_outputs``, when given,
    is the number of outputs of the network it is for (the labels must fit)."""
    path = input_file(path, "dataset file", DatasetError)
    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"dataset {path!r} is not an npz file ({type(exc).__name__})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DatasetError(f"dataset {path!r} is a single .npy array, not an npz file with the "
                           f"arrays {', '.join(NPZ_KEYS)}")
    with f:
        missing = [k for k in NPZ_KEYS if k not in f.files]
        if missing:
            raise DatasetError(f"dataset {path!r} lacks the array {missing[0]!r}; it must hold "
                               f"{', '.join(NPZ_KEYS)} (it has {', '.join(f.files) or 'none'})")
        try:
            arrays = {k: f[k] for k in NPZ_KEYS}
        except ValueError as exc:      # object arrays need pickle, which is refused
            raise DatasetError(f"dataset {path!r} holds an array that cannot be read without "
                               f"pickle ({exc}); store plain numeric arrays") from None
    feats, labels = {}, {}
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        kind, x = _npz_features(path, xk, arrays[xk])
        y = _npz_labels(path, yk, arrays[yk], len(x))
        if len(x) != len(y):
            raise DatasetError(f"dataset {path!r}: {xk} has {len(x)} samples but {yk} has "
                               f"{len(y)} labels; they must be equal")
        if len(x) == 0:
            raise DatasetError(f"dataset {path!r}: {xk} has no samples")
        feats[split], labels[split] = (kind, x), y
    (ktr, xtr), (kte, xte) = feats["train"], feats["test"]
    if ktr != kte:
        raise DatasetError(f"dataset {path!r}: x_train holds {ktr} but x_test holds {kte}; both "
                           "must be features in [0, 1] or both spike trains")
    if xtr.shape[1:] != xte.shape[1:]:
        what = "(T, features)" if ktr == "spikes" else "features"
        raise DatasetError(f"dataset {path!r}: x_train has {what} {xtr.shape[1:]} but x_test "
                           f"has {xte.shape[1:]}; they must be equal")
    n_classes = int(max(labels["train"].max(), labels["test"].max())) + 1
    if n_outputs is not None and n_classes > n_outputs:
        raise DatasetError(f"dataset {path!r} has labels up to {n_classes - 1} ({n_classes} "
                           f"classes) but the network has {n_outputs} outputs; it needs one "
                           "output per class")
    name = os.path.basename(path)
    if ktr == "spikes":
        return Dataset(name=name, x_train=xtr.mean(axis=1), y_train=labels["train"],
                       x_test=xte.mean(axis=1), y_test=labels["test"], n_classes=n_classes,
                       spikes_train=xtr, spikes_test=xte)
    return Dataset(name=name, x_train=xtr, y_train=labels["train"], x_test=xte,
                   y_test=labels["test"], n_classes=n_classes)


def load(name: str, *, n_outputs: int | None = None) -> Dataset:
    """The dataset called ``name``, or the npz file ``name`` (ending in ``.npz``);
    :class:`DatasetError` if there is none. ``n_outputs`` is the network's number
    of outputs when it is already known (a network file): an npz's labels must fit."""
    name = os.fspath(name)
    if name.endswith(".npz"):
        return load_npz(name, n_outputs=n_outputs)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))} "
                           "or a FILE.npz")
    data = DATASETS[name]()
    if n_outputs is not None and data.n_classes > n_outputs:
        raise DatasetError(f"dataset {name!r} has {data.n_classes} classes but the network has "
                           f"{n_outputs} outputs; it needs one output per class")
    return data


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


def split_spikes(data: Dataset, split: str, indices, *, seed: int, T: int) -> np.ndarray:
    """Spikes ``(B, T, N_in)`` of the samples ``indices`` of ``split``: the dataset's own
    spike trains when it has them (their ``T`` must be the run's), else the rate
    encoding :func:`encode_batch` with ``seed``."""
    if split not in SPLIT_IDS:
        raise DatasetError(f"unknown split {split!r}; allowed: {sorted(SPLIT_IDS)}")
    indices = np.asarray(indices)
    if data.spikes_train is None:
        x = data.x_train if split == "train" else data.x_test
        return encode_batch(x, indices, split=split, seed=seed, T=T)
    if int(T) != data.T:
        raise DatasetError(f"dataset {data.name!r} holds spike trains of {data.T} time steps but "
                           f"the run has T = {T}; use T = {data.T}")
    trains = data.spikes_train if split == "train" else data.spikes_test
    return trains[indices]
