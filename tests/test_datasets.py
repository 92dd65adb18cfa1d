"""Digits dataset, its fixed split and the rate encoder."""

import hashlib

import numpy as np
import pytest

from spikeforge.sim.golden import datasets as D


@pytest.fixture(scope="module")
def digits():
    return D.load("digits")


def test_digits_split_is_fixed_stratified_and_scaled(digits):
    from sklearn.datasets import load_digits
    raw = load_digits()
    assert digits.x_train.shape == (1438, 64) and digits.x_test.shape == (359, 64)
    assert digits.n_classes == 10 and digits.n_features == 64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    # every sample exactly once, scaled pixel / 16, in dataset order within a split
    both = np.concatenate([digits.x_train, digits.x_test])
    assert sorted(map(bytes, (both * 16).astype(np.uint8))) == \
        sorted(map(bytes, raw.data.astype(np.uint8)))
    # stratified: each class contributes round(0.2 * n) test samples
    for k in range(10):
        n = int((raw.target == k).sum())
        assert int((digits.y_test == k).sum()) == round(0.2 * n)
    # pinned: the split never changes (the hardware results refer to it)
    _, te = D._stratified_split(raw.target, D.TEST_FRACTION, D.SPLIT_SEED)
    assert te[:10].tolist() == [5, 9, 12, 14, 16, 17, 19, 23, 24, 34]
    assert hashlib.sha256(te.astype(np.int64).tobytes()).hexdigest() == \
        "f71c9ddf317ebe278f01acb013a7eed702a00236a3733c9eefc19ea0e7aefeee"


def test_encoder_depends_only_on_seed_split_index(digits):
    x = digits.x_train[0]
    a = D.encode(x, index=0, split="train", seed=0, T=8)
    assert a.dtype == bool and a.shape == (8, 64)
    assert (a == D.encode(x, index=0, split="train", seed=0, T=8)).all()
    assert (a != D.encode(x, index=1, split="train", seed=0, T=8)).any()
    assert (a != D.encode(x, index=0, split="test", seed=0, T=8)).any()
    assert (a != D.encode(x, index=0, split="train", seed=1, T=8)).any()
    # the bits are U < x with U = default_rng([seed, split id, index]).random((T, N))
    u = np.random.default_rng([0, 0, 0]).random((8, 64))
    assert (a == (u < x)).all()
    # pinned bits (a numpy change in the generator would break hardware reproducibility)
    assert hashlib.sha256(np.packbits(a).tobytes()).hexdigest() == \
        "e7bca4519afc921706672915eb6deae51790da3fcf743d3768f9b8b7724ee19d"
    b = D.encode(digits.x_test[5], index=5, split="test", seed=3, T=8)
    assert hashlib.sha256(np.packbits(b).tobytes()).hexdigest() == \
        "9d1e778488906b970aa9936cf70cca12aaffc16d8492b19fc335f9c2adc83f4a"


def test_encoder_extremes_and_batch(digits):
    s = D.encode(np.array([0.0, 1.0, 0.5]), index=3, split="test", seed=9, T=200)
    assert not s[:, 0].any() and s[:, 1].all() and 60 < s[:, 2].sum() < 140
    idx = [7, 2, 7]
    batch = D.encode_batch(digits.x_test, idx, split="test", seed=4, T=5)
    for n, i in enumerate(idx):
        assert (batch[n] == D.encode(digits.x_test[i], index=i, split="test", seed=4, T=5)).all()


def test_unknown_dataset_and_split_are_named():
    with pytest.raises(D.DatasetError, match="unknown dataset 'foo'; available: digits"):
        D.load("foo")
    with pytest.raises(D.DatasetError, match="'valid'"):
        D.encode(np.zeros(3), index=0, split="valid", seed=0, T=2)
