"""User datasets from an npz file: rates or spike trains, and every defect named."""

import numpy as np
import pytest

from spikeforge.sim.golden import datasets as D


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _good(rng, n_tr=12, n_te=5, f=7, k=3):
    return dict(x_train=rng.random((n_tr, f)), y_train=np.arange(n_tr) % k,
                x_test=rng.random((n_te, f)), y_test=np.arange(n_te) % k)


def test_rate_features_load_and_encode_like_digits(tmp_path):
    rng = np.random.default_rng(1)
    arrays = _good(rng)
    arrays["x_train"][0, :2] = [0.0, 1.0]                    # the closed interval's ends
    path = _write(tmp_path / "mine.npz", **arrays)
    data = D.load(path)
    assert data.name == "mine.npz" and data.n_classes == 3 and data.n_features == 7
    assert data.spikes_train is None and data.T is None
    assert (data.x_train == arrays["x_train"]).all() and (data.y_test == arrays["y_test"]).all()
    assert data.y_train.dtype == np.int64
    # the project's encoder, exactly: U[t, j] < x[j], U from default_rng([seed, split id, index])
    s = D.split_spikes(data, "test", [4, 1], seed=3, T=6)
    for n, i in enumerate([4, 1]):
        u = np.random.default_rng([3, 1, i]).random((6, 7))
        assert (s[n] == (u < arrays["x_test"][i])).all()


def test_spike_trains_are_used_as_given(tmp_path):
    rng = np.random.default_rng(2)
    tr = rng.random((9, 4, 5)) < 0.3
    te = rng.random((3, 4, 5)) < 0.3
    path = _write(tmp_path / "spk.npz", x_train=tr, y_train=np.array([0, 1, 2, 3] * 2 + [0]),
                  x_test=te, y_test=np.array([3, 0, 1], dtype=np.int32))
    data = D.load(path, n_outputs=4)
    assert data.T == 4 and data.n_features == 5 and data.n_classes == 4
    assert (D.split_spikes(data, "train", [8, 0], seed=0, T=4) == tr[[8, 0]]).all()
    assert (D.split_spikes(data, "test", np.arange(3), seed=7, T=4) == te).all()
    assert np.allclose(data.x_train, tr.mean(axis=1))
    with pytest.raises(D.DatasetError, match=r"spike trains of 4 time steps but the run has T = 8"):
        D.split_spikes(data, "train", [0], seed=0, T=8)


def test_digits_unchanged_through_load():
    a, b = D.load("digits"), D.load_digits()
    assert (a.x_train == b.x_train).all() and (a.y_test == b.y_test).all()
    assert a.spikes_train is None
    s = D.split_spikes(a, "train", [0, 5], seed=0, T=8)
    assert (s == D.encode_batch(a.x_train, [0, 5], split="train", seed=0, T=8)).all()
    with pytest.raises(D.DatasetError, match="10 classes but the network has 9 outputs"):
        D.load("digits", n_outputs=9)


@pytest.mark.parametrize("change, message", [
    (dict(drop="y_test"), r"lacks the array 'y_test'"),
    (dict(y_train=np.arange(11) % 3), r"x_train has 12 samples but y_train has 11 labels"),
    (dict(x_test_value=1.5), r"x_test\[2, 3\] = 1\.5 is outside \[0, 1\]"),
    (dict(x_test_value=-0.25), r"x_test\[2, 3\] = -0\.25 is outside \[0, 1\]"),
    (dict(x_test_value=np.nan), r"x_test\[2, 3\] = nan is outside \[0, 1\]"),
    (dict(y_train=np.arange(12) % 3 - 1), r"y_train has the label -1; labels must be 0\.\.K-1"),
    (dict(y_train=(np.arange(12) % 3).astype(float)), r"y_train must hold integer labels"),
    (dict(x_train=np.zeros((12, 7, 2))), r"x_train must have shape \(N, features\)"),
    (dict(x_test=np.zeros((5, 6))), r"x_train has features \(7,\) but x_test has \(6,\)"),
    (dict(x_test=np.zeros((5, 2, 7), dtype=bool)), r"x_train holds rates but x_test holds spikes"),
    (dict(x_train=np.zeros((12, 7), dtype=bool)), r"x_train is boolean, so it must be spike trains"),
    (dict(y_test=np.array([0, 1, 2, 3, 4])), r"labels up to 4 \(5 classes\) but the network has 3 outputs"),
])
def test_defects_are_one_sentence_naming_them(tmp_path, change, message):
    arrays = _good(np.random.default_rng(0))
    change = dict(change)
    if "drop" in change:
        del arrays[change.pop("drop")]
    if "x_test_value" in change:
        arrays["x_test"][2, 3] = change.pop("x_test_value")
    arrays.update(change)
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(D.DatasetError, match=message) as exc:
        D.load(path, n_outputs=3)
    assert "\n" not in str(exc.value) and "bad.npz" in str(exc.value)


def test_missing_and_not_npz_files(tmp_path):
    with pytest.raises(D.DatasetError, match=r"dataset file '.*nowhere\.npz' does not exist"):
        D.load(str(tmp_path / "nowhere.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(D.DatasetError, match=r"junk\.npz' is not an npz file"):
        D.load(str(junk))
    single = tmp_path / "one.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(D.DatasetError, match=r"single \.npy array, not an npz file"):
        D.load(str(single))
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(D.DatasetError, match="is a folder"):
        D.load(str(tmp_path / "dir.npz"))
    obj = tmp_path / "obj.npz"
    np.savez(obj, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, int),
             x_test=np.zeros((1, 1)), y_test=np.zeros(1, int))
    with pytest.raises(D.DatasetError, match="cannot be read without pickle"):
        D.load(str(obj))
    with pytest.raises(D.DatasetError, match="unknown dataset 'mnist'; available: digits or a FILE.npz"):
        D.load("mnist")
