"""spikeforge port and spikeforge infer: the port's arithmetic on a hand-made
network, small end-to-end runs (few epochs, a small hidden layer), the network
file they share, and one-sentence refusals of bad input."""

import json
import os

import numpy as np
import pytest

from spikeforge.sim import cli
from spikeforge.sim import infer as INF
from spikeforge.sim import network_file as NF
from spikeforge.sim import port as P
from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import integer as I
from spikeforge.sim.golden import model as golden

SMALL = ["--hidden", "16", "--epochs", "4"]


def test_port_of_a_hand_made_network():
    # one hidden ReLU neuron h = relu(x0 - 0.5 x1 + 0.25); output z = 2 h - 1, 0.5 h
    net = P.FloatNet([[[1.0, -0.5]], [[2.0], [0.5]]], [[0.25], [-1.0, 0.0]])
    x = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 1.0]])     # h = 1.25, 0.25, 0 (not positive)
    intnet, record = P.port_float(net, x, B=4, T=4, Q=12, percentile=100.0,
                                  readout="potential", bias_shift="half")
    # lambda_1 = max positive h = 1.25: W' = [1, -0.5] / 1.25 = [0.8, -0.4], b' = 0.2;
    # scale 7 / 0.8 = 8.75: W = round([7, -3.5]) = [7, -4] (half to even), theta = round(8.75) = 9,
    # b = round(1.75) + round(9 / 8) = 2 + 1 = 3
    L0, L1 = intnet.layers
    assert record["layers"][0]["lambda"] == pytest.approx(1.25)
    assert L0.W.tolist() == [[7, -4]] and L0.theta == 9 and L0.b.tolist() == [3]
    # potential readout: lambda_2 = 1, W' = W * 1.25 = [[2.5], [0.625]], scale 7 / 2.5 = 2.8:
    # W = round([7, 1.75]) = [7, 2], b = round([-2.8, 0]) = [-3, 0], no bias shift
    assert L1.W.tolist() == [[7], [2]] and L1.b.tolist() == [-3, 0] and L1.theta == 3
    assert intnet.readout == "potential" and (intnet.B, intnet.Q, intnet.T) == (4, 12, 4)
    assert all(L.leak_shift is None and L.reset == "subtract" for L in intnet.layers)


def test_port_spikes_readout_normalises_the_last_layer():
    net = P.FloatNet([[[1.0]], [[2.0], [-1.0]]], [[0.0], [0.0, 0.0]])
    x = np.array([[1.0], [0.5]])                  # h = 1, 0.5; z = 2, 1 and -1, -0.5
    intnet, record = P.port_float(net, x, B=8, T=2, Q=16, percentile=100.0, readout="spikes",
                                  bias_shift="none")
    # lambda_2 = max positive logit 2: W' = [[2], [-1]] * 1 / 2 = [[1], [-0.5]]; scale 127
    assert record["layers"][1]["lambda"] == pytest.approx(2.0)
    assert intnet.layers[1].W.tolist() == [[127], [-64]] and intnet.layers[1].theta == 127


def test_float_training_is_deterministic_and_learns():
    data = D.load("digits")
    a = P.train_float(data.x_train, data.y_train, [64, 16, 10], seed=3, epochs=4, noise_T=4)
    b = P.train_float(data.x_train, data.y_train, [64, 16, 10], seed=3, epochs=4, noise_T=4)
    assert all((u == v).all() for u, v in zip(a.weights + a.biases, b.weights + b.biases))
    assert P.float_accuracy(a, data.x_test, data.y_test) > 0.8


def test_port_then_infer(tmp_path, capsys):
    net_path, pj, ij = tmp_path / "net", tmp_path / "port.json", tmp_path / "infer.json"
    assert cli.main(["port", "--dataset", "digits", "--bits", "4", "--T", "4", *SMALL,
                     "-o", str(net_path), "--json", str(pj)]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "spiking (B=4, T=4)" in out
    loaded = NF.load(net_path)
    assert loaded.kind == "integer"
    net = loaded.network
    assert net.sizes == [64, 16, 10] and (net.B, net.T, net.Q) == (4, 4, 16)
    assert all(L.W.min() >= -8 and L.W.max() <= 7 and L.theta > 0 for L in net.layers)
    port_report = json.loads(pj.read_text())
    assert port_report["metrics"] == loaded.metrics
    assert loaded.metrics["accuracy"] > 0.5
    assert loaded.provenance["settings"]["bits"] == 4

    assert cli.main(["infer", "--network", str(net_path), "--engine", "golden",
                     "--json", str(ij)]) == 0
    rep = json.loads(ij.read_text())
    # the same test spikes (the file's seed) give the accuracy the port recorded
    assert rep["accuracy"] == loaded.metrics["accuracy"]
    assert rep["float_accuracy"] == loaded.metrics["float_accuracy"]
    assert rep["samples"] == 359 and rep["engine"] == "golden" and rep["kind"] == "integer"
    # SOPs: every active input spike of a layer reaches all its neurons
    data = D.load("digits")
    spikes = D.encode_batch(data.x_test, np.arange(359), split="test", seed=0, T=4)
    hidden_spikes = I.forward(net, spikes).spikes[0]
    expected = [spikes.sum() * 16 / 359, hidden_spikes.sum() * 10 / 359]
    assert rep["sops_per_sample_by_layer"] == pytest.approx(expected)
    assert rep["sops_per_sample"] == pytest.approx(sum(expected))
    assert rep["samples_per_s"] > 0
    assert not any(v is None for v in rep.values())


def test_port_is_deterministic(tmp_path):
    paths = [tmp_path / "a", tmp_path / "b"]
    for p in paths:
        assert cli.main(["port", "--bits", "8", "--T", "2", *SMALL, "--seed", "5",
                         "-o", str(p)]) == 0
    a, b = (NF.load(p).network for p in paths)
    for La, Lb in zip(a.layers, b.layers):
        assert La.W.tolist() == Lb.W.tolist() and La.b.tolist() == Lb.b.tolist()
        assert La.theta == Lb.theta


def test_readout_auto_records_its_choice(tmp_path):
    p = tmp_path / "n"
    assert cli.main(["port", "--bits", "8", "--T", "2", *SMALL, "--readout", "auto",
                     "--reset", "zero", "-o", str(p)]) == 0
    loaded = NF.load(p)
    choice = loaded.provenance["readout_choice"]
    assert set(choice["train_accuracy"]) == {"potential", "spikes"}
    assert loaded.network.readout == choice["chosen"]
    assert all(L.reset == "zero" for L in loaded.network.layers)


def _fp16_file(path, T=4):
    params = golden.Params(T=T)
    weights = golden.init_weights([64, 12, 10], seed=2, gain=3.0)
    NF.save(path, NF.Fp16Network(weights=tuple(weights), params=params),
            metrics={"accuracy": 0.25}, provenance={"command": "test"})
    return weights, params


def test_port_from_an_fp16_network(tmp_path, capsys):
    src, out = tmp_path / "fp16", tmp_path / "int"
    weights, params = _fp16_file(src)
    assert cli.main(["port", "--bits", "8", "--from", str(src), "-o", str(out)]) == 0
    loaded = NF.load(out)
    net = loaded.network
    assert net.T == 4 and net.readout == "spikes"          # T from the file
    assert all(L.reset == "zero" and L.b.tolist() == [0] * L.n_out for L in net.layers)
    # theta = round(v_th * 127 / max|W|) per layer
    for L, W in zip(net.layers, weights):
        s = 127 / float(np.abs(W.astype(np.float64)).max())
        assert L.theta == round(float(params.consts.v_th) * s)
    data = D.load("digits")
    spikes = D.encode_batch(data.x_test, np.arange(359), split="test", seed=0, T=4)
    src_acc = float((golden.predict(weights, spikes, params) == data.y_test).mean())
    assert loaded.metrics["source_accuracy"] == src_acc
    assert set(loaded.provenance["port"]["leak_choice"]) == \
        {"none", "0", "1", "2", "3", "4", "5", "6"}
    assert loaded.provenance["source"]["metrics"] == {"accuracy": 0.25}


def test_infer_runs_an_fp16_network_with_the_fp16_golden_model(tmp_path):
    src, ij = tmp_path / "fp16", tmp_path / "r.json"
    weights, params = _fp16_file(src)
    assert cli.main(["infer", "--network", str(src), "--limit", "50", "--json", str(ij)]) == 0
    rep = json.loads(ij.read_text())
    data = D.load("digits")
    spikes = D.encode_batch(data.x_test[:50], np.arange(50), split="test", seed=0, T=4)
    assert rep["accuracy"] == float((golden.predict(weights, spikes, params)
                                     == data.y_test[:50]).mean())
    assert rep["kind"] == "fp16" and rep["T"] == 4 and "float_accuracy" not in rep
    assert rep["recorded_accuracy"] == 0.25


# --- bad input: one sentence, exit status 2, nothing written ------------------------------

@pytest.mark.parametrize("argv,match", [
    (["port", "--dataset", "cifar", "--bits", "8", "--T", "8"], "unknown dataset 'cifar'"),
    (["port", "--bits", "6", "--T", "8"], "--bits must be one of 4, 8, not 6"),
    (["port", "--bits", "8", "--T", "0"], "--T must be an integer in 1..1024, not 0"),
    (["port", "--bits", "8"], "--T (time steps per sample) is required"),
    (["port", "--bits", "8", "--T", "4", "--Q", "40"], "--Q must be an integer in 2..32"),
    (["port", "--bits", "8", "--T", "4", "--percentile", "0"], "--percentile must be in (0, 100]"),
    (["port", "--bits", "8", "--T", "4", "--leak-shift", "16"], "--leak-shift must be none"),
    (["port", "--bits", "8", "--T", "4", "--hidden", "a,b"], "--hidden must be layer sizes"),
    (["port", "--bits", "4", "--T", "4", "--Q", "3"], "the ported network is not valid"),
])
def test_bad_port_input(tmp_path, capsys, argv, match):
    out = tmp_path / "net"
    assert cli.main([argv[0], *SMALL, *argv[1:], "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_bad_infer_input(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a network")
    assert cli.main(["infer", "--network", str(bad), "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "is not a spikeforge network file" in err and err.count("\n") == 1
    assert cli.main(["infer", "--network", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    src = tmp_path / "fp16"
    _fp16_file(src)
    assert cli.main(["infer", "--network", str(src), "--dataset", "mnist"]) == 2
    assert "unknown dataset 'mnist'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["fp16", "notes.txt"]


def test_port_refuses_an_integer_network_as_source(tmp_path, capsys):
    src = tmp_path / "int"
    layer = I.IntLayer(W=np.zeros((10, 64), dtype=int), b=np.zeros(10, dtype=int), theta=1)
    NF.save(src, I.IntNetwork(layers=(layer,), B=8, Q=8, T=2))
    assert cli.main(["port", "--bits", "8", "--T", "2", "--from", str(src),
                     "-o", str(tmp_path / "out")]) == 2
    assert "holds an integer inference network (spikeforge port); an fp16 training network" \
        in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["int"]


def test_engine_registry_interface():
    assert "golden" in INF.ENGINES
    eng = INF.ENGINES["golden"]
    assert set(eng.kinds) == {"integer", "fp16"}
    for name in ("run", "report"):
        assert callable(getattr(eng, name))


def test_bench_port_writes_its_table(tmp_path):
    from script_loader import load_script
    bench = load_script("bench_port")
    out = tmp_path / "b.json"
    assert bench.main(["--seeds", "0", "--bits", "4,8", "--T", "2", "--hidden", "16",
                       "--epochs", "4", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert [(r["B"], r["T"]) for r in rep["rows"]] == [(4, 2), (8, 2)]
    # each row is what spikeforge port gives for the same settings
    _, metrics, _ = P.run(bits=8, T=2, hidden="16", epochs=4, seed=0, log=lambda *a: None)
    assert rep["rows"][1]["accuracy"] == metrics["accuracy"]
    assert rep["rows"][1]["float_accuracy"] == metrics["float_accuracy"]
    assert rep["summary"][1]["gap"] == pytest.approx(metrics["float_accuracy"] - metrics["accuracy"])
