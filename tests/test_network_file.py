"""The network file (sim/network_file.py): round trips of both kinds, atomic
writes, and one-sentence refusals of files that are not networks."""

import json
import os

import numpy as np
import pytest

from spikeforge.sim import network_file as NF
from spikeforge.sim.golden import integer as I
from spikeforge.sim.golden import model as golden


def _int_net():
    rng = np.random.default_rng(5)
    layers = (I.IntLayer(W=rng.integers(-8, 8, (6, 4)), b=rng.integers(-100, 100, 6), theta=30,
                         leak_shift=None, reset="subtract"),
              I.IntLayer(W=rng.integers(-8, 8, (3, 6)), b=[0, -5, 7], theta=1, leak_shift=3,
                         reset="zero"))
    return I.IntNetwork(layers=layers, B=4, Q=12, T=5, readout="potential")


def _fp16_net():
    params = golden.Params(T=8, alpha=0.5, v_th=0.3, lr=0.02)
    return NF.Fp16Network(weights=tuple(golden.init_weights([4, 5, 3], seed=1)), params=params)


def test_integer_round_trip(tmp_path):
    net = _int_net()
    path = tmp_path / "net"
    NF.save(path, net, metrics={"accuracy": 0.9, "float_accuracy": 0.95},
            provenance={"command": "port", "settings": {"bits": 4}})
    assert os.listdir(tmp_path) == ["net"]          # the name as given, no temporary left
    got = NF.load(path)
    assert got.kind == "integer" and got.sizes == [4, 6, 3]
    assert got.metrics == {"accuracy": 0.9, "float_accuracy": 0.95}
    assert got.provenance["settings"] == {"bits": 4}
    g = got.network
    assert (g.B, g.Q, g.T, g.readout) == (4, 12, 5, "potential")
    for a, b in zip(g.layers, net.layers):
        assert a.W.tolist() == b.W.tolist() and a.b.tolist() == b.b.tolist()
        assert (a.theta, a.leak_shift, a.reset) == (b.theta, b.leak_shift, b.reset)
    spikes = np.random.default_rng(0).random((3, 5, 4)) < 0.5
    assert I.forward(g, spikes).potentials[-1].tolist() == \
        I.forward(net, spikes).potentials[-1].tolist()


def test_fp16_round_trip(tmp_path):
    net = _fp16_net()
    path = tmp_path / "train.npz"
    NF.save(path, net, metrics={"accuracy": 0.5})
    got = NF.load(path)
    assert got.kind == "fp16" and got.sizes == [4, 5, 3]
    assert got.network.params == net.params
    for a, b in zip(got.network.weights, net.weights):
        assert a.dtype == np.float16 and a.view(np.uint16).tolist() == b.view(np.uint16).tolist()
    assert got.provenance == {} and got.metrics == {"accuracy": 0.5}


def test_the_header_is_plain_json(tmp_path):
    path = tmp_path / "n.npz"
    NF.save(path, _int_net())
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
        assert sorted(z.files) == ["W0", "W1", "b0", "b1", "header"]
        assert z["W0"].dtype == np.int8
    assert header["format"] == "spikeforge-network" and header["version"] == 1
    assert header["kind"] == "integer"
    assert header["layers"][1] == {"theta": 1, "leak_shift": 3, "reset": "zero"}


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "n"
    NF.save(path, _int_net(), metrics={"accuracy": 1.0})
    with pytest.raises(NF.NetworkFileError, match="JSON-serialisable"):
        NF.save(path, _int_net(), metrics={"accuracy": object()})
    assert NF.load(path).metrics == {"accuracy": 1.0}
    assert os.listdir(tmp_path) == ["n"]


def test_writing_into_a_missing_folder(tmp_path):
    with pytest.raises(NF.NetworkFileError, match="does not exist"):
        NF.save(tmp_path / "nope" / "n", _int_net())


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _header(**changes):

    h = {"format": "spikeforge-network", "version": 1, "kind": "integer", "sizes": [2, 1],
         "B": 8, "Q": 8, "T": 2, "readout": "spikes",
         "layers": [{"theta": 3, "leak_shift": None, "reset": "subtract"}],
         "metrics": {}, "provenance": {}}
    h.update(changes)
    return np.array(json.dumps(h))


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_text("hello"), r"is not a spikeforge network file \(not a NumPy \.npz"),
    (lambda p: _write_npz(p, x=np.zeros(3)), r"no JSON header entry"),
    (lambda p: _write_npz(p, header=np.array("{nope")), r"header is not JSON"),
    (lambda p: _write_npz(p, header=np.array('{"format": "other"}')), r"has no format"),
    (lambda p: _write_npz(p, header=_header(version=7)), r"version 7; this spikeforge reads version 1"),
    (lambda p: _write_npz(p, header=_header(kind="float")), r"kind 'float'; known kinds"),
    (lambda p: _write_npz(p, header=_header()), r"no weights W0 for layer 0"),
    (lambda p: _write_npz(p, header=_header(), W0=np.array([[1, 200]]), b0=np.array([0])),
     r"holds a bad network: layer 0 has weight 200 outside the 8-bit range -128\.\.127"),
    (lambda p: _write_npz(p, header=_header(layers=[{"theta": 0, "leak_shift": None,
                                                      "reset": "zero"}]),
                          W0=np.array([[1, 2]], dtype=np.int8), b0=np.array([0])),
     r"holds a bad network: theta must be > 0, not 0"),
    (lambda p: _write_npz(p, header=_header(sizes=[2, 2]), W0=np.array([[1, 2]], dtype=np.int8),
                          b0=np.array([0])), r"records sizes \[2, 2\] but its weights give \[2, 1\]"),
])
def test_files_that_are_not_networks(tmp_path, make, match):
    path = tmp_path / "bad"
    make(path)
    with pytest.raises(NF.NetworkFileError, match=match) as info:
        NF.load(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(NF.NetworkFileError, match=r"network file .* does not exist"):
        NF.load(tmp_path / "none")


def test_fp16_network_checks():
    with pytest.raises(NF.NetworkFileError, match="must be float16"):
        NF.Fp16Network(weights=(np.zeros((2, 2)),), params=golden.Params())
    with pytest.raises(NF.NetworkFileError, match="layer 1 takes 3 inputs but layer 0 has 2"):
        NF.Fp16Network(weights=(np.zeros((2, 2), np.float16), np.zeros((1, 3), np.float16)),
                       params=golden.Params())
    with pytest.raises(NF.NetworkFileError, match="NaN or inf"):
        NF.Fp16Network(weights=(np.full((2, 2), np.inf, np.float16),), params=golden.Params())


def test_a_nir_graph_loads_as_an_fp16_network(tmp_path):
    pytest.importorskip("nir")
    from spikeforge.sim.interop import nir_io
    weights = golden.init_weights([64, 12, 10], 7)
    params = golden.Params(T=6, beta=1.5)
    path = tmp_path / "net.nir"
    nir_io.write_network(path, weights, params)
    loaded = NF.load(path, kind="fp16")
    assert loaded.kind == "fp16" and loaded.sizes == [64, 12, 10]
    assert [w.view(np.uint16).tolist() for w in loaded.network.weights] == \
        [w.view(np.uint16).tolist() for w in weights]
    assert loaded.network.params.to_dict() == params.to_dict()
    with pytest.raises(NF.NetworkFileError, match="an integer inference network .* is needed"):
        NF.load(path, kind="integer")
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(NF.NetworkFileError, match="not a readable NIR file"):
        NF.load(tmp_path / "bad.nir")
