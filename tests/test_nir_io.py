"""NIR import and export (sim/interop/nir_io.py): the mapping, exact round trips, refusals.

References are computed here apart from the module: fp16 values by numpy's own
float64 -> float16 conversion, alpha from snnTorch's formulas written out."""

import math

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="NIR support needs the package nir (pip install nir)")

from spikeforge.sim.golden import model as G
from spikeforge.sim.interop import nir_io as N

DT = 1e-4


def _bits(a):
    return np.asarray(a, dtype=np.float16).view(np.uint16)


def _snntorch_lif(beta, thr, n, dtype=np.float32):
    """A LIF node written the way snntorch.export_nir writes snn.Leaky (float32 numpy)."""
    beta = np.full(n, beta, dtype=dtype)
    tau = DT / (1 - beta)
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros_like(beta),
                   v_threshold=np.full(n, thr, dtype=dtype), v_reset=np.zeros(n, dtype=dtype))


def _chain(*nodes, names=None, metadata=None):
    names = names or [f"n{k}" for k in range(len(nodes))]
    d = {"input": nir.Input(input_type={"input": np.array([nodes[0].weight.shape[1]])})}
    d.update(zip(names, nodes))
    last = nodes[-1]
    n_out = np.asarray(last.output_type["output"]).reshape(-1)
    d["output"] = nir.Output(output_type={"output": n_out})
    order = ["input", *names, "output"]
    edges = list(zip(order[:-1], order[1:]))
    return nir.NIRGraph(nodes=d, edges=edges, metadata=metadata or {})


# ---------------------------------------------------------------------------
# Import of snnTorch-style graphs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.75, 0.9, 0.5, 0.95, 0.0])
def test_snntorch_style_graph_imports_beta_threshold_weights(beta):
    rng = np.random.default_rng(3)
    W0 = rng.normal(0, 0.3, (6, 5)).astype(np.float32)
    W1 = rng.normal(0, 0.3, (3, 6)).astype(np.float32)
    g = _chain(nir.Linear(weight=W0), _snntorch_lif(beta, 0.3, 6),
               nir.Linear(weight=W1), _snntorch_lif(beta, 0.3, 3))
    net = N.from_nir(g)
    assert net.sizes == [5, 6, 3] and net.dt == DT and net.layers == [("n0", "n1"), ("n2", "n3")]
    # alpha is snnTorch's beta (float32) rounded to fp16; the threshold likewise
    assert _bits(net.alpha) == _bits(np.float16(np.float32(beta)))
    assert _bits(net.v_th) == _bits(np.float16(np.float32(0.3)))
    for W, W16 in zip((W0, W1), net.weights):
        assert W16.dtype == np.float16 and (_bits(W16) == _bits(W.astype(np.float16))).all()
    # every rounding reported, with before/after: all weights (random float32) + threshold
    rounded = {(w.node, w.parameter, w.index) for w in net.warnings}
    for name, W in (("n0", W0), ("n2", W1)):
        for i, j in np.ndindex(W.shape):
            assert ((name, "weight", (i, j)) in rounded) == (np.float16(W[i, j]) != W[i, j])
    thr = [w for w in net.warnings if w.parameter == "v_threshold"]
    assert len(thr) == 1 and thr[0].before == float(np.float32(0.3))
    assert thr[0].after == float(np.float16(np.float32(0.3)))
    p = net.params(T=8)
    assert _bits(p.consts.alpha) == _bits(net.alpha) and _bits(p.consts.v_th) == _bits(net.v_th)
    assert p.T == 8 and p.a == G.Params().a


def test_alpha_rounding_is_reported_only_beyond_float64_noise():
    # beta = 0.75 in float32: tau = fl32(1e-4 / 0.25), alpha = 1 - dt/tau is off by ~1e-8
    g = _chain(nir.Linear(weight=np.full((2, 2), 0.5, np.float32)), _snntorch_lif(0.75, 0.5, 2))
    net = N.from_nir(g)
    tau = np.float32(DT / np.float32(0.25))
    alpha64 = 1 - DT / float(tau)
    assert alpha64 != 0.75
    assert [(w.parameter, w.before, w.after) for w in net.warnings] == \
        [("alpha (1 - dt/tau)", alpha64, 0.75)]
    # the same in float64 (error ~1e-16): not a rounding
    g = _chain(nir.Linear(weight=np.full((2, 2), 0.5)), _snntorch_lif(0.75, 0.5, 2, np.float64))
    assert N.from_nir(g).warnings == []


def test_gain_other_than_one_scales_the_weights_exactly():
    # r = 1 (not tau/dt): input gain r*dt/tau = 1/8 with tau = 8 dt; per-neuron r -> per-row gain
    W = np.array([[0.5, -3.0, 2.0 ** -20], [1.0, 0.0, -0.0]])
    r = np.array([1.0, 24.0])
    tau = np.full(2, 8 * DT)
    lif = nir.LIF(tau=tau, r=r, v_leak=np.zeros(2), v_threshold=np.full(2, 0.25),
                  v_reset=np.zeros(2))
    net = N.from_nir(_chain(nir.Linear(weight=W), lif))
    gain = r * DT / tau
    expected = (W * gain[:, None]).astype(np.float16)      # the products are exact in float64
    assert (_bits(net.weights[0]) == _bits(expected)).all()
    assert float(net.alpha) == 1 - 1 / 8
    # 2**-20 / 8 = 2**-23 is an fp16 subnormal (exact); nothing rounded
    assert net.warnings == []
    # the gain 1/8 * 0.3 ... a weight that rounds is reported with the scaled value
    net = N.from_nir(_chain(nir.Linear(weight=np.array([[0.1, 1.0]])),
                            nir.LIF(tau=np.array([8 * DT]), r=np.array([1.0]), v_leak=np.zeros(1),
                                    v_threshold=np.array([0.25]), v_reset=np.zeros(1))))
    assert [(w.index, w.before, w.after) for w in net.warnings] == \
        [((0, 0), 0.1 / 8, float(np.float16(0.1 / 8)))]


def test_if_threshold_and_affine_with_zero_bias():
    W = np.array([[0.25, 0.5]])
    net = N.from_nir(_chain(nir.Affine(weight=W, bias=np.zeros(1)),
                            nir.IF(r=np.ones(1), v_threshold=np.array([1.0]))))
    assert float(net.alpha) == 1.0 and float(net.v_th) == 1.0
    net = N.from_nir(_chain(nir.Linear(weight=W), nir.Threshold(threshold=np.array([0.5]))))
    assert float(net.alpha) == 0.0 and float(net.v_th) == 0.5
    # IF: the per-step gain r scales the weights
    net = N.from_nir(_chain(nir.Linear(weight=W), nir.IF(r=np.full(1, 2.0),
                                                          v_threshold=np.array([1.0]))))
    assert net.weights[0].tolist() == [[0.5, 1.0]]


# ---------------------------------------------------------------------------
# Round trips spikeforge -> NIR -> spikeforge
# ---------------------------------------------------------------------------

def _random_fp16(rng, shape):
    """Random fp16 bit patterns of finite values (normals, subnormals, zeros of both signs)."""
    bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
    W = bits.view(np.float16)
    return np.where(np.isfinite(W), W, np.float16(0.0)).astype(np.float16)


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_random_networks_bit_identical(tmp_path, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 12, size=rng.integers(2, 5))]
    weights = [_random_fp16(rng, (sizes[l + 1], sizes[l])) for l in range(len(sizes) - 1)]
    alpha = float(_random_fp16(rng, ()).__abs__()) % 1.0
    params = G.Params(T=int(rng.integers(1, 64)), alpha=float(rng.random()) if seed % 2 else alpha,
                      v_th=float(rng.uniform(0.01, 4)), a=float(rng.uniform(0.05, 1)),
                      beta=float(rng.uniform(0.5, 4)), lr=float(rng.uniform(1e-4, 0.1)),
                      loss_scale=float(rng.choice([1, 8, 64])),
                      reset_grad=str(rng.choice(list(G.RESET_GRAD_MODES))))
    path = tmp_path / "net.nir"
    N.write_network(path, weights, params)
    net = N.read_network(path)
    assert net.warnings == []
    assert net.sizes == sizes
    for W, W2 in zip(weights, net.weights):
        assert W2.dtype == np.float16 and (_bits(W) == _bits(W2)).all()
    p2 = net.params()
    assert p2 == params and p2.consts.bits() == params.consts.bits()
    # import then export: the same graph contents
    g1, g2 = nir.read(path), N.to_nir(net.weights, p2)
    assert sorted(g1.nodes) == sorted(g2.nodes) and sorted(g1.edges) == sorted(g2.edges)
    for name in g1.nodes:
        for key, v in g1.nodes[name].to_dict().items():
            if isinstance(v, np.ndarray):
                v2 = g2.nodes[name].to_dict()[key]
                assert v.dtype == v2.dtype and v.tobytes() == v2.tobytes(), (name, key)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0 ** -24, 1 - 2.0 ** -11, 0.5 + 2.0 ** -11, 0.1])
def test_round_trip_edge_constants(tmp_path, alpha):
    finfo = np.finfo(np.float16)
    W = np.array([[0.0, -0.0, float(finfo.max), -float(finfo.max)],
                  [2.0 ** -24, -(2.0 ** -24), float(finfo.smallest_normal), 1 - 2.0 ** -11]],
                 dtype=np.float16)
    params = G.Params(alpha=alpha, v_th=2.0 ** -24 * 3, a=2.0 ** -20)
    N.write_network(tmp_path / "e.nir", [W], params)
    net = N.read_network(tmp_path / "e.nir")
    assert (_bits(net.weights[0]) == _bits(W)).all() and net.warnings == []
    assert net.params().consts.bits() == params.consts.bits()
    kind = type(nir.read(tmp_path / "e.nir").nodes["if0" if alpha == 1 else "lif0"]).__name__
    assert kind == ("IF" if alpha == 1 else "LIF")


def test_export_writes_the_documented_nodes():
    W = [np.ones((3, 2), np.float16), np.ones((2, 3), np.float16)]
    g = N.to_nir(W, G.Params(alpha=0.75, v_th=0.5), dt=1e-3)
    assert sorted(g.edges) == sorted([("input", "linear0"), ("linear0", "lif0"), ("lif0", "linear1"),
                                      ("linear1", "lif1"), ("lif1", "output")])
    lif = g.nodes["lif0"]
    assert np.allclose(lif.tau, 1e-3 / 0.25) and np.allclose(lif.r, lif.tau / 1e-3)
    assert (lif.v_leak == 0).all() and (lif.v_reset == 0).all() and (lif.v_threshold == 0.5).all()
    assert g.nodes["linear0"].weight.dtype == np.float32 and g.metadata["dt"] == 1e-3
    # the importer uses the graph's dt; another dt changes alpha
    assert float(N.from_nir(g).alpha) == 0.75
    assert float(N.from_nir(g, dt=2e-3).alpha) == 0.5


def test_export_refuses_what_is_not_an_fp16_network():
    p = G.Params()
    with pytest.raises(N.NIRError, match=r"weights\[0\] must be a 2-D float16 array"):
        N.to_nir([np.ones((2, 2))], p)
    with pytest.raises(N.NIRError, match=r"weights\[1\] has 3 inputs but layer 0 has 2 neurons"):
        N.to_nir([np.ones((2, 2), np.float16), np.ones((1, 3), np.float16)], p)
    with pytest.raises(N.NIRError, match=r"weights\[0\]\[1, 0\] is nan"):
        N.to_nir([np.array([[1], [np.nan]], np.float16)], p)


# ---------------------------------------------------------------------------
# Refusals: one sentence naming the node, the parameter and what is allowed
# ---------------------------------------------------------------------------

def _lif(n=2, **kw):
    d = dict(tau=np.full(n, 4 * DT), r=np.full(n, 4.0), v_leak=np.zeros(n),
             v_threshold=np.full(n, 0.25), v_reset=np.zeros(n))
    d.update(kw)
    return nir.LIF(**d)


W22 = np.full((2, 2), 0.5)


@pytest.mark.parametrize("make, message", [
    (lambda: _chain(nir.Affine(weight=W22, bias=np.array([0.0, 0.1])), _lif()),
     r"node 'n0' has bias\[1\] = 0\.1; allowed: bias = 0 everywhere \(the training contract has no bias"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(v_leak=np.array([0.0, -0.1]))),
     r"node 'n1' has v_leak\[1\] = -0\.1; allowed: v_leak = 0"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(v_reset=np.array([0.2, 0.2]))),
     r"node 'n1' has v_reset\[0\] = 0\.2; allowed: v_reset = 0"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(v_threshold=np.array([0.25, 0.5]))),
     r"node 'n1' has per-neuron v_threshold that differ .*one threshold for the whole network"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(tau=np.array([4 * DT, 5 * DT]))),
     r"node 'n1' has per-neuron tau that differ .*one decay for the whole network"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(tau=np.full(2, DT / 2))),
     r"node 'n1' has tau = 5e-05 below the time step dt = 0\.0001"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(), nir.Linear(weight=W22),
                    _lif(tau=np.full(2, 8 * DT), r=np.full(2, 8.0))),
     r"node 'n3' has alpha = 0\.875 but node 'n1' has alpha = 0\.75"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(), nir.Linear(weight=W22),
                    _lif(v_threshold=np.full(2, 1.0))),
     r"node 'n3' has threshold 1\.0 but node 'n1' has 0\.25; .*one threshold"),
    (lambda: _chain(nir.Linear(weight=W22), nir.CubaLIF(
        tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
        v_threshold=np.ones(2))),
     r"node 'n1' is a CubaLIF node \(the contract has no synaptic current state\); allowed: Input, Flatten, Linear"),
    (lambda: _chain(nir.Linear(weight=W22), nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))),
     r"node 'n1' is a LI node"),
    (lambda: _chain(nir.Linear(weight=W22), nir.Linear(weight=W22), _lif()),
     r"node 'n0' \(Linear\) is followed by 'n1' \(Linear\); allowed: each Linear or Affine node is followed by one LIF"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(), nir.Linear(weight=W22)),
     r"node 'n2' \(Linear\) is the last node before the Output"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(), _lif()),
     r"node 'n2' \(LIF\) comes after 'n1' with no Linear or Affine before it"),
    (lambda: _chain(nir.Linear(weight=np.array([[np.inf, 0.0], [0.0, 0.0]])), _lif()),
     r"node 'n0' parameter weight\[0, 0\] is inf; allowed: finite numbers"),
    (lambda: _chain(nir.Linear(weight=np.array([[70000.0, 0.0], [0.0, 0.0]])), _lif()),
     r"node 'n0' weight\[0, 0\] = 70000\.0 overflows fp16"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(v_threshold=np.full(2, -1.0))),
     r"node 'n1' has v_threshold -1\.0, .*allowed: a threshold > 0"),
    (lambda: _chain(nir.Linear(weight=W22), _lif(v_threshold=np.full(2, 1e-9))),
     r"node 'n1' has v_threshold 1e-09, which is 0\.0 in fp16"),
])
def test_refusals_name_node_parameter_and_what_is_allowed(make, message):
    with pytest.raises(N.NIRError, match=message) as exc:
        N.from_nir(make())
    assert "\n" not in str(exc.value)
    assert isinstance(exc.value, ValueError)


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_refuses_graphs_that_are_not_a_chain():
    inp = lambda: nir.Input(input_type={"input": np.array([2])})
    out = lambda: nir.Output(output_type={"output": np.array([2])})
    # recurrent edge lif -> w_rec -> lif
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "lif": _lif(),
                "w_rec": nir.Linear(weight=W22), "output": out()},
               [("input", "w"), ("w", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    with pytest.raises(N.NIRError, match=r"edge \('w_rec', 'lif'\) closes a loop \(a recurrent connection\)"):
        N.from_nir(g)
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "lif": _lif(), "output": out()},
               [("input", "w"), ("w", "lif"), ("lif", "lif"), ("lif", "output")])
    with pytest.raises(N.NIRError, match=r"connects node 'lif' to itself"):
        N.from_nir(g)
    # branch
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "lif": _lif(), "lif2": _lif(),
                "output": out()},
               [("input", "w"), ("w", "lif"), ("w", "lif2"), ("lif", "output"), ("lif2", "output")])
    with pytest.raises(N.NIRError, match=r"node 'w' feeds 2 nodes \('lif', 'lif2'\); the training contract is a chain"):
        N.from_nir(g)
    # a node off the chain
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "lif": _lif(), "stray": _lif(),
                "output": out()}, [("input", "w"), ("w", "lif"), ("lif", "output")])
    with pytest.raises(N.NIRError, match=r"node 'stray' is not on the chain"):
        N.from_nir(g)
    # conv
    conv = nir.Conv2d(input_shape=None, weight=np.ones((1, 1, 1, 1)), stride=1, padding=0,
                      dilation=1, groups=1, bias=np.zeros(1))
    g = _graph({"input": inp(), "c": conv, "lif": _lif(), "output": out()},
               [("input", "c"), ("c", "lif"), ("lif", "output")])
    with pytest.raises(N.NIRError, match=r"node 'c' is a Conv2d node \(the contract has fully connected layers only\)"):
        N.from_nir(g)
    # a subgraph (snnTorch's RLeaky)
    sub = _graph({"input": inp(), "lif": _lif(), "output": out()},
                 [("input", "lif"), ("lif", "output")])
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "rec": sub, "output": out()},
               [("input", "w"), ("w", "rec"), ("rec", "output")])
    with pytest.raises(N.NIRError, match=r"node 'rec' is a subgraph"):
        N.from_nir(g)
    # edge to nowhere; two inputs; image input
    g = _graph({"input": inp(), "w": nir.Linear(weight=W22), "lif": _lif(), "output": out()},
               [("input", "w"), ("w", "lif"), ("lif", "outptu")])
    with pytest.raises(N.NIRError, match=r"names the node 'outptu', which the graph does not have"):
        N.from_nir(g)
    g = _graph({"input": nir.Input(input_type={"input": np.array([1, 2])}),
                "w": nir.Linear(weight=W22), "lif": _lif(), "output": out()},
               [("input", "w"), ("w", "lif"), ("lif", "output")])
    with pytest.raises(N.NIRError, match=r"Input node 'input' has shape \(1, 2\); allowed: a flat vector"):
        N.from_nir(g)
    with pytest.raises(N.NIRError, match="expected a NIR graph"):
        N.from_nir(_lif())


def test_files_that_are_not_nir(tmp_path):
    with pytest.raises(N.NIRError, match=r"NIR file '.*none\.nir' does not exist"):
        N.read_network(tmp_path / "none.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(N.NIRError, match=r"junk\.nir' is not a readable NIR file"):
        N.read_network(junk)
    with pytest.raises(N.NIRError, match="does not exist"):
        N.write_network(tmp_path / "no" / "x.nir", [np.ones((1, 1), np.float16)], G.Params())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.nir"]


def test_params_and_dataset_checks():
    net = N.from_nir(_chain(nir.Linear(weight=W22), _lif()))
    assert net.training == {}
    with pytest.raises(N.NIRError, match=r"alpha and v_th come from the network"):
        net.params(alpha=0.5)
    assert net.params(lr=0.5).lr == 0.5
    net.check_dataset(2, 2)
    with pytest.raises(N.NIRError, match="the network takes 2 inputs but the dataset has 64 features"):
        net.check_dataset(64, 2)
    with pytest.raises(N.NIRError, match="the network has 2 outputs but digits has 10 classes"):
        net.check_dataset(2, 10, "digits")


def test_summary_lines():
    g = _chain(nir.Linear(weight=np.array([[0.1, 0.5], [0.3, 0.25]])), _lif())
    lines = N.summarize_warnings(N.from_nir(g).warnings)
    assert lines == [f"node 'n0' weight: 2 value(s) rounded to fp16, largest change "
                     f"{max(abs(float(np.float16(v)) - v) for v in (0.1, 0.3)):.3g} (relative "
                     f"{max(abs(float(np.float16(v)) - v) / v for v in (0.1, 0.3)):.3g})"]


def test_the_train_wiring_npz_network_train_export(tmp_path):
    """What `spikeforge train --dataset FILE.npz --network IN.nir --export OUT.nir` does
    with these functions: the trained weights come back bit for bit."""
    from spikeforge.sim.golden import datasets as D
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "d.npz", x_train=rng.random((6, 4)), y_train=np.array([0, 1, 2] * 2),
             x_test=rng.random((3, 4)), y_test=np.array([2, 1, 0]))
    W0 = [G.init_weights([4, 5, 3], 1)[l] for l in range(2)]
    N.write_network(tmp_path / "in.nir", W0, G.Params(T=4, alpha=0.5, v_th=0.3))
    net = N.read_network(tmp_path / "in.nir")
    data = D.load(str(tmp_path / "d.npz"), n_outputs=net.sizes[-1])
    net.check_dataset(data.n_features, data.n_classes, "d.npz")
    params = net.params(lr=0.05)
    assert params.T == 4 and params.alpha == 0.5 and params.lr == 0.05
    spikes = D.split_spikes(data, "train", np.arange(6), seed=0, T=params.T)
    W = net.weights
    for i in range(6):
        W = G.train_step(W, spikes[i:i + 1], data.y_train[i:i + 1], params).weights
    assert any((a != b).any() for a, b in zip(W, W0))
    N.write_network(tmp_path / "out.nir", W, params)
    back = N.read_network(tmp_path / "out.nir")
    assert all((_bits(a) == _bits(b)).all() for a, b in zip(W, back.weights))
    assert back.params() == params


def test_flatten_of_an_image_input_is_row_major_features():
    W = np.arange(12, dtype=np.float64).reshape(2, 6) / 16
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 2, 3])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 2, 3])}, start_dim=0,
                                 end_dim=-1),
             "w": nir.Linear(weight=W), "lif": _lif(), "output": nir.Output(
                 output_type={"output": np.array([2])})}
    edges = [("input", "flat"), ("flat", "w"), ("w", "lif"), ("lif", "output")]
    net = N.from_nir(nir.NIRGraph(nodes=nodes, edges=edges))
    assert net.sizes == [6, 2] and (net.weights[0] == W).all()
    # a Flatten that leaves two dimensions is refused
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([1, 2, 3])}, start_dim=1,
                                end_dim=2)
    with pytest.raises(N.NIRError, match=r"Input node 'input' has shape \(1, 6\); allowed: a flat vector"):
        N.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    nodes["flat"] = nir.Flatten(input_type={"input": None}, start_dim=3, end_dim=4)
    with pytest.raises(N.NIRError, match=r"node 'flat' \(Flatten\) has start_dim 3 and end_dim 4"):
        N.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
