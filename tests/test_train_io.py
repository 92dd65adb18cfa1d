"""`spikeforge train` with networks and data in and out: --network, --export, --plot and
--dataset FILE.npz, through the command's own argument parsing."""

import argparse

import numpy as np
import pytest

from spikeforge.sim import train as TR
from spikeforge.sim.engines.golden import GoldenEngine
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import model as golden
from spikeforge.sim.interop import nir_io

pytest.importorskip("nir")


class Recording(GoldenEngine):
    """The golden engine, keeping the weights it started and ended with."""

    seen = []

    def __init__(self, sizes, params, *, weights, precision="fp16"):
        super().__init__(sizes, params, weights=weights, precision=precision)
        Recording.seen.append({"start": [w.copy() for w in weights], "params": params,
                               "engine": self})


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setitem(TR.ENGINES, "recording", Recording)
    Recording.seen = []
    return Recording.seen


def parse(*argv):
    p = argparse.ArgumentParser()
    TR.add_arguments(p)
    return p.parse_args(list(argv))


def test_export_then_network_continues_from_the_trained_weights(tmp_path, recording):
    a_nir, png = tmp_path / "a.nir", tmp_path / "curves.png"
    args = parse("--engine", "recording", "--limit", "24", "--test-samples", "10", "--epochs", "2",
                 "--hidden", "16", "--T", "6", "--beta", "1.5", "--no-progress",
                 "--export", str(a_nir), "--plot", str(png))
    assert TR.main(args) == 0
    first = recording[-1]
    final = first["engine"].weights
    assert not all(np.array_equal(w0, w1) for w0, w1 in zip(first["start"], final))
    net = nir_io.read_network(a_nir)
    assert [w.view(np.uint16).tolist() for w in net.weights] == \
        [w.view(np.uint16).tolist() for w in final]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # continue: the next run starts from exactly those weights with the same constants
    args = parse("--engine", "recording", "--network", str(a_nir), "--limit", "8",
                 "--test-samples", "4", "--epochs", "1", "--no-progress")
    assert TR.main(args) == 0
    second = recording[-1]
    assert [w.view(np.uint16).tolist() for w in second["start"]] == \
        [w.view(np.uint16).tolist() for w in final]
    assert second["params"].to_dict() == first["params"].to_dict()
    assert second["params"].T == 6 and second["params"].beta == 1.5

    # an option given on the command line wins over the file's metadata
    args = parse("--engine", "recording", "--network", str(a_nir), "--limit", "4",
                 "--test-samples", "2", "--epochs", "1", "--beta", "3", "--no-progress")
    assert TR.main(args) == 0
    assert recording[-1]["params"].beta == 3.0 and recording[-1]["params"].T == 6


def test_network_refuses_what_it_defines(tmp_path):
    net = tmp_path / "n.nir"
    nir_io.write_network(net, golden.init_weights([64, 8, 10], 1), golden.Params(T=4))
    for extra, word in ((("--alpha", "0.5"), "--alpha cannot be set with --network"),
                        (("--v-th", "2"), "--v-th cannot be set with --network"),
                        (("--hidden", "32"), "--hidden cannot be set with --network")):
        with pytest.raises(UsageError, match=word):
            TR.main(parse("--network", str(net), *extra))
    with pytest.raises(UsageError, match="does not exist"):
        TR.main(parse("--network", str(tmp_path / "missing.nir")))
    wrong = tmp_path / "w.nir"
    nir_io.write_network(wrong, golden.init_weights([20, 8, 10], 1), golden.Params(T=4))
    with pytest.raises(UsageError, match="takes 20 inputs but 'digits' has 64 features"):
        TR.main(parse("--network", str(wrong), "--limit", "2", "--epochs", "1"))


def test_export_and_plot_folders_are_checked_before_training(tmp_path, recording):
    for option in ("--export", "--plot"):
        with pytest.raises(UsageError, match=f"{option} .*the folder .* does not exist"):
            TR.main(parse("--engine", "recording", option, str(tmp_path / "no" / "x")))
    with pytest.raises(UsageError, match="--export writes fp16 networks"):
        TR.main(parse("--precision", "float64", "--export", str(tmp_path / "x.nir")))
    assert recording == []          # nothing started


def test_npz_spike_trains_train_as_given(tmp_path, recording):
    rng = np.random.default_rng(3)
    T, F, K = 5, 12, 3
    spikes = lambda n: rng.random((n, T, F)) < 0.3
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=spikes(20), y_train=rng.integers(0, K, 20),
             x_test=spikes(6), y_test=rng.integers(0, K, 6))
    args = parse("--engine", "recording", "--dataset", str(path), "--T", str(T), "--hidden", "8",
                 "--epochs", "1", "--no-progress")
    assert TR.main(args) == 0
    assert [w.shape for w in recording[-1]["start"]] == [(8, F), (K, 8)]
    with pytest.raises(UsageError, match="spike trains of 5 time steps but the run has T = 7"):
        TR.main(parse("--dataset", str(path), "--T", "7", "--hidden", "8", "--epochs", "1"))
    with pytest.raises(UsageError, match="--reencode needs features"):
        TR.main(parse("--dataset", str(path), "--T", str(T), "--reencode", "--epochs", "1"))


def test_save_then_continue_and_infer_from_the_network_file(tmp_path, recording):
    from spikeforge.sim import infer as INF
    from spikeforge.sim import network_file as NF
    net = tmp_path / "trained.npz"
    args = parse("--engine", "recording", "--limit", "20", "--test-samples", "30", "--epochs", "1",
                 "--hidden", "12", "--T", "5", "--lr", "0.02", "--no-progress", "--save", str(net))
    assert TR.main(args) == 0
    first = recording[-1]
    loaded = NF.load(net)
    assert loaded.kind == "fp16" and loaded.sizes == [64, 12, 10]
    assert [w.view(np.uint16).tolist() for w in loaded.network.weights] == \
        [w.view(np.uint16).tolist() for w in first["engine"].weights]
    assert loaded.network.params.to_dict() == first["params"].to_dict()
    # the accuracy recorded is the one the golden model gives on the same test spikes
    from spikeforge.sim.golden import datasets as D
    data = D.load("digits")
    spikes = D.encode_batch(data.x_test[:30], np.arange(30), split="test", seed=0, T=5)
    pred = golden.predict(list(loaded.network.weights), spikes, loaded.network.params)
    assert loaded.metrics["accuracy"] == float((pred == data.y_test[:30]).mean())

    args = parse("--engine", "recording", "--network", str(net), "--limit", "4",
                 "--test-samples", "2", "--epochs", "1", "--no-progress", "--lr", "0.001")
    assert TR.main(args) == 0
    second = recording[-1]
    assert [w.view(np.uint16).tolist() for w in second["start"]] == \
        [w.view(np.uint16).tolist() for w in loaded.network.weights]
    assert second["params"].T == 5 and second["params"].lr == 0.001

    with pytest.raises(UsageError, match="--save writes fp16 networks"):
        TR.main(parse("--precision", "float64", "--save", str(tmp_path / "x.npz")))
    bad = tmp_path / "not-a-network.npz"
    bad.write_bytes(b"hello")
    with pytest.raises(UsageError, match="not-a-network"):
        TR.main(parse("--network", str(bad)))
