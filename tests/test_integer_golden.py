"""The integer golden model (SPEC section 8) against the scalar reference of
tests/int_reference.py, on random networks and on directed cases whose expected
values are worked out by hand from the SPEC."""

import numpy as np
import pytest

from spikeforge.sim.golden import integer as G

import int_reference as R


def _net(layers, *, B, Q, T, readout):
    return G.IntNetwork(layers=tuple(G.IntLayer(W=L["W"], b=L["b"], theta=L["theta"],
                                                leak_shift=L["leak"], reset=L["reset"])
                                     for L in layers), B=B, Q=Q, T=T, readout=readout)


def _random_case(seed):
    rng = np.random.default_rng([seed, 812])
    B = int(rng.choice([4, 8]))
    Q = int(rng.choice([B + 1, 6, 10, 16, 24]))
    T = int(rng.choice([1, 2, 5, 9]))
    readout = str(rng.choice(["spikes", "potential"]))
    n_layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 14)) for _ in range(n_layers + 1)]
    wlo, whi = -(2 ** (B - 1)), 2 ** (B - 1) - 1
    qlo, qhi = -(2 ** (Q - 1)), 2 ** (Q - 1) - 1
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        # a positive tilt so that neurons fire; sometimes the extremes only
        if rng.random() < 0.2:
            W = rng.choice([wlo, whi, 0, 1, -1], size=(n_out, n_in))
        else:
            W = rng.integers(wlo // 2, whi + 1, size=(n_out, n_in))
        span = min(qhi, 4 * whi)
        b = rng.integers(max(qlo, -span), min(qhi, span) + 1, size=n_out)
        theta = int(rng.integers(1, min(qhi, 3 * whi) + 1))
        leak = None if rng.random() < 0.4 else int(rng.choice([0, 1, 2, 3, 7, 15]))
        layers.append(dict(W=W.tolist(), b=b.tolist(), theta=theta, leak=leak,
                           reset=str(rng.choice(["subtract", "zero"]))))
    density = rng.uniform(0.1, 0.9)
    spikes = rng.random((4, T, sizes[0])) < density
    return layers, B, Q, T, readout, spikes


@pytest.mark.parametrize("seed", range(60))
def test_random_networks_match_reference(seed):
    layers, B, Q, T, readout, spikes = _random_case(seed)
    net = _net(layers, B=B, Q=Q, T=T, readout=readout)
    res = G.forward(net, spikes)
    for n in range(spikes.shape[0]):
        ref = R.run_sample(layers, Q, readout, spikes[n].tolist())
        for l in range(len(layers)):
            assert res.spikes[l][n].tolist() == ref["spikes"][l], (n, l)
            assert res.potentials[l][n].tolist() == ref["potentials"][l], (n, l)
        assert res.counts[n].tolist() == ref["counts"]
        assert int(res.predictions[n]) == ref["prediction"]
        assert res.sops[n].tolist() == ref["sops"]


def _one(W, b, theta, *, leak=None, reset="subtract", B=8, Q=8, T, readout="potential",
         spikes=None):
    """A one-layer network; inputs all active unless ``spikes`` is given."""
    W = np.atleast_2d(np.asarray(W))
    layers = [dict(W=W.tolist(), b=list(np.atleast_1d(b)), theta=theta, leak=leak, reset=reset)]
    if spikes is None:
        spikes = np.ones((T, W.shape[1]), dtype=bool)
    spikes = np.asarray(spikes, dtype=bool)
    net = _net(layers, B=B, Q=Q, T=T, readout=readout)
    res = G.forward(net, spikes)
    ref = R.run_sample(layers, Q, readout, spikes.tolist())
    assert res.potentials[0][0].tolist() == ref["potentials"][0]
    assert res.counts[0].tolist() == ref["counts"]
    return res, ref


def test_saturation_at_the_top():
    # Q = 4: potentials in -8..7. 0 + 7 + 7 -> 7, then 7 + 7 + 7 -> 7.
    res, _ = _one([[7]], 7, 1, B=4, Q=4, T=3)
    assert res.potentials[0].tolist() == [[7]]


def test_saturation_at_the_bottom():
    # -8 - 8 -> -8; with k = 1: l = -8 - (-8 >> 1) = -4; -4 - 8 - 8 -> -8.
    res, _ = _one([[-8]], -8, 1, B=4, Q=4, T=3)
    assert res.potentials[0].tolist() == [[-8]]
    res, _ = _one([[-8]], -8, 1, B=4, Q=4, T=3, leak=1)
    assert res.potentials[0].tolist() == [[-8]]


def test_saturation_clamps_then_fires():
    # Q = 6 (max 31), theta = 31: 20 + 20 = 40 clamps to 31 >= theta: spike, v = 0.
    res, _ = _one([[20]], 0, 31, B=8, Q=6, T=2, readout="spikes",
                  spikes=[[True], [True]])
    assert res.spikes[0][0].tolist() == [[False], [True]]
    assert res.potentials[0].tolist() == [[0]]


@pytest.mark.parametrize("v0,k,expected", [
    (-3, 1, -1),    # -3 >> 1 = -2 (floor of -1.5): l = -3 + 2 = -1 (truncation would give -2)
    (-3, 2, -2),    # -3 >> 2 = -1: l = -2
    (-1, 1, 0),     # -1 >> 1 = -1: l = 0
    (-1, 15, 0),    # -1 >> 15 = -1: l = 0
    (-100, 3, -87),  # -100 >> 3 = -13 (floor of -12.5): l = -87
    (3, 1, 2),      # 3 >> 1 = 1: l = 2
    (100, 3, 88),   # 100 >> 3 = 12: l = 88
])
def test_arithmetic_shift_of_the_potential(v0, k, expected):
    # step 0 puts v0 into the potential (input active, bias 0); step 1 only leaks.
    res, _ = _one([[v0]], 0, 1, B=8, Q=16, T=2, leak=k, spikes=[[True], [False]])
    assert res.potentials[0].tolist() == [[expected]]


def test_spike_exactly_at_theta():
    # x = 5 = theta: spikes at every step (v' >= theta), v = 0 after a subtract.
    res, _ = _one([[5]], 0, 5, T=3, readout="spikes")
    assert res.counts.tolist() == [[3]]
    assert res.potentials[0].tolist() == [[0]]
    # one below: 4, then 8 >= 5 spikes (v = 3), then 7 spikes (v = 2)
    res, _ = _one([[4]], 0, 5, T=3, readout="spikes")
    assert res.spikes[0][0, :, 0].tolist() == [False, True, True]
    assert res.potentials[0].tolist() == [[2]]


def test_subtract_and_zero_reset():
    # x = 3, theta = 5. subtract: 3, 6 -> 1, 4, 7 -> 2.  zero: 3, 6 -> 0, 3, 6 -> 0.
    res, _ = _one([[3]], 0, 5, T=4, readout="spikes", reset="subtract")
    assert res.spikes[0][0, :, 0].tolist() == [False, True, False, True]
    assert res.potentials[0].tolist() == [[2]]
    res, _ = _one([[3]], 0, 5, T=4, readout="spikes", reset="zero")
    assert res.spikes[0][0, :, 0].tolist() == [False, True, False, True]
    assert res.potentials[0].tolist() == [[0]]


def test_bias_is_added_every_step():
    # no active input: v = 0 + 0 + 2 each step (integrate-and-fire): 2, 4, 6
    res, _ = _one([[9]], 2, 100, T=3, spikes=[[False]] * 3)
    assert res.potentials[0].tolist() == [[6]]
    assert res.sops.tolist() == [[0]]


def test_leak_none_versus_k_zero():
    # none: 3, 6, 9.  k = 0: l = v - v = 0, so v = x + b = 3 every step.
    res, _ = _one([[3]], 0, 100, T=3, leak=None)
    assert res.potentials[0].tolist() == [[9]]
    res, _ = _one([[3]], 0, 100, T=3, leak=0)
    assert res.potentials[0].tolist() == [[3]]


def test_readout_ties_go_to_the_lowest_index():
    # spikes readout: outputs 1 and 2 both spike at every step, output 0 never.
    W = [[0, 0], [1, 1], [2, 0]]
    res, ref = _one(W, [0, 0, 0], 2, T=4, readout="spikes")
    assert res.counts.tolist() == [[0, 4, 4]]
    assert res.predictions.tolist() == [1] and ref["prediction"] == 1
    # no output spikes at all: a tie of zeros, prediction 0
    res, ref = _one([[1], [1]], [0, 0], 50, T=2, readout="spikes")
    assert res.predictions.tolist() == [0] and ref["prediction"] == 0
    # potential readout: v = 6, 9, 9 -> 1
    res, ref = _one([[2], [3], [3]], [0, 0, 0], 1, T=3, readout="potential")
    assert res.potentials[0].tolist() == [[6, 9, 9]]
    assert res.predictions.tolist() == [1] and ref["prediction"] == 1


def test_potential_readout_last_layer_never_spikes_or_resets():
    # theta = 1 is far below the potential, but the last layer does not fire in potential readout
    res, _ = _one([[5]], 0, 1, T=3, readout="potential")
    assert res.potentials[0].tolist() == [[15]]
    assert not res.spikes[0].any() and res.counts.tolist() == [[0]]


def test_hidden_layer_feeds_its_spikes_forward_and_sops_count_them():
    # layer 0: 2 neurons fed by input 0 (always on), neuron 0 (x = 2 >= 2) spikes every step,
    # neuron 1 (x = 1, theta 2) every other step; layer 1 sums them with weights 1 and 10.
    layers = [dict(W=[[2, 0], [1, 0]], b=[0, 0], theta=2, leak=None, reset="subtract"),
              dict(W=[[1, 10]], b=[0], theta=1, leak=None, reset="zero")]
    spikes = np.array([[True, False]] * 4)
    net = _net(layers, B=8, Q=8, T=4, readout="potential")
    res = G.forward(net, spikes)
    assert res.spikes[0][0].tolist() == [[True, False], [True, True], [True, False], [True, True]]
    assert res.potentials[1].tolist() == [[4 + 20]]
    # SOPs: layer 0 sees 4 active inputs x 2 neurons; layer 1 sees 6 spikes x 1 neuron
    assert res.sops.tolist() == [[8, 6]]
    ref = R.run_sample(layers, 8, "potential", spikes.tolist())
    assert ref["potentials"][1] == [24] and ref["sops"] == [8, 6]


def test_one_sample_and_a_batch_agree():
    layers, B, Q, T, readout, spikes = _random_case(3)
    net = _net(layers, B=B, Q=Q, T=T, readout=readout)
    batch = G.forward(net, spikes)
    one = G.forward(net, spikes[2])
    assert one.potentials[-1].tolist() == batch.potentials[-1][2:3].tolist()
    assert G.predict(net, spikes).tolist() == batch.predictions.tolist()


# --- bad networks: one sentence each --------------------------------------------------

def _layer(**kw):
    base = dict(W=[[1, 2]], b=[0], theta=3, leak_shift=None, reset="subtract")
    base.update(kw)
    return G.IntLayer(**base)


@pytest.mark.parametrize("kw,match", [
    (dict(W=[[8, 0]]), r"weight 8 outside the 4-bit range -8\.\.7"),
    (dict(W=[[-9, 0]]), r"weight -9 outside the 4-bit range"),
    (dict(b=[8]), r"bias 8 outside the 4-bit range"),
    (dict(theta=8), r"threshold 8 outside the 4-bit range"),
])
def test_out_of_range_values_are_refused(kw, match):
    with pytest.raises(G.IntNetworkError, match=match):
        G.IntNetwork(layers=(_layer(**kw),), B=4, Q=4, T=2)


@pytest.mark.parametrize("kw,match", [
    (dict(theta=0), r"theta must be > 0, not 0"),
    (dict(theta=-3), r"theta must be > 0, not -3"),
    (dict(theta=1.5), r"theta must be an integer"),
    (dict(leak_shift=16), r"leak_shift must be an integer in 0\.\.15 or None"),
    (dict(reset="soft"), r"reset must be one of \['subtract', 'zero'\]"),
    (dict(b=[0, 0]), r"b must have one entry per neuron"),
    (dict(W=[1, 2]), r"W must have 2 dimension"),
    (dict(W=[[0.5, 1]]), r"W must hold integers"),
])
def test_bad_layers_are_refused(kw, match):
    with pytest.raises(G.IntNetworkError, match=match):
        _layer(**kw)


@pytest.mark.parametrize("kw,match", [
    (dict(B=6), r"B \(weight bits\) must be one of \[4, 8\], not 6"),
    (dict(Q=1), r"Q \(potential bits\) must be an integer in 2\.\.32, not 1"),
    (dict(T=0), r"T must be an integer in 1\.\.1024, not 0"),
    (dict(readout="rate"), r"readout must be one of"),
    (dict(layers=()), r"needs at least one layer"),
    (dict(layers=(_layer(), _layer())), r"layer 1 takes 2 inputs but layer 0 has 1 neurons"),
])
def test_bad_networks_are_refused(kw, match):
    base = dict(layers=(_layer(),), B=8, Q=8, T=2)
    base.update(kw)
    with pytest.raises(G.IntNetworkError, match=match):
        G.IntNetwork(**base)


def test_bad_spikes_are_refused():
    net = G.IntNetwork(layers=(_layer(),), B=8, Q=8, T=2)
    with pytest.raises(G.IntNetworkError, match=r"bool array"):
        G.forward(net, np.ones((2, 2)))
    with pytest.raises(G.IntNetworkError, match=r"T = 2 and N_in = 2"):
        G.forward(net, np.ones((3, 2), dtype=bool))


def test_arrays_are_read_only_copies():
    W = np.array([[1, 2]])
    layer = _layer(W=W)
    W[0, 0] = 5
    assert layer.W.tolist() == [[1, 2]]
    with pytest.raises(ValueError):
        layer.W[0, 0] = 3
