"""The integer inference core (hdl/inference) in Amaranth simulation, against the
golden model of SPEC section 8 (sim/golden/integer.py) on small random networks:
saturation at both ends, negative potentials through the leak's arithmetic
shift, spikes exactly at theta, ties, both readouts and both resets, B = 8 and 4."""

from __future__ import annotations

import numpy as np
import pytest

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.hdl.inference import InferenceCore
from spikeforge.sim.golden import integer as I
from spikeforge.sim.host import inference_device as D

from infer_sim import SimDeviceError, drive, simulate, transact

TINY8 = preset("inference-int-tiny")
TINY4 = preset("inference-int-tiny", lanes=4, weight_bits=4)


def random_net(rng, *, sizes, B, Q, T, readout, wscale=1.0, big_bias=False):
    layers = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hi = 2 ** (B - 1)
        W = np.clip(np.round(rng.normal(0, hi * wscale, (n_out, n_in))), -hi, hi - 1)
        qhi = 2 ** (Q - 1)
        bb = qhi if big_bias else max(2, qhi // 16)
        b = rng.integers(-bb, bb, n_out)
        theta = int(rng.integers(1, max(2, qhi // 4)))
        leak = [None, 0, 1, 3, 15][int(rng.integers(0, 5))]
        reset = ["subtract", "zero"][int(rng.integers(0, 2))]
        layers.append(I.IntLayer(W=W, b=b, theta=theta, leak_shift=leak, reset=reset))
    return I.IntNetwork(layers=tuple(layers), B=B, Q=Q, T=T, readout=readout)


def run_core(config, net, samples):
    core = InferenceCore(config)
    info = D.InferenceInfo.from_config(config)

    async def bench(ctx):
        status, p = await transact(ctx, core, proto.InferenceCommand.INFO)
        assert status == proto.Status.OK and D.InferenceInfo.parse(p) == info
        await drive(ctx, core, D.network_requests(net, info))
        outs = []
        for s in samples:
            outs.append(await drive(ctx, core, D.run_requests(net, info, s)))
        return outs
    return simulate(core, bench)


def check(config, net, rng, n=3, density=0.4):
    spikes = rng.random((n, net.T, net.sizes[0])) < density
    gold = I.forward(net, spikes)
    outs = run_core(config, net, spikes)
    for k, (res, cycles, sops) in enumerate(outs):
        want = gold.potentials[-1][k] if net.readout == "potential" else gold.counts[k]
        np.testing.assert_array_equal(res, want, err_msg=f"sample {k}")
        assert sops == int(gold.sops[k].sum())
        assert cycles > 0
    return outs


@pytest.mark.parametrize("seed,readout", [(1, "spikes"), (2, "potential")])
def test_random_b8(seed, readout):
    rng = np.random.default_rng(seed)
    net = random_net(rng, sizes=[20, 24, 7], B=8, Q=12, T=5, readout=readout)
    check(TINY8, net, rng)


def test_random_b4_saturation():
    # 6-bit potentials and large weights and biases: saturation at both ends
    rng = np.random.default_rng(3)
    net = random_net(rng, sizes=[24, 16, 5], B=4, Q=6, T=6, readout="potential",
                     wscale=2.0, big_bias=True)
    gold = I.forward(net, rng.random((2, 6, 24)) < 0.5)
    v = gold.potentials[0]
    assert (v == 31).any() or (v == -32).any() or (gold.potentials[-1] == -32).any()
    check(TINY4, net, rng, n=2, density=0.5)


@pytest.mark.parametrize("config, sizes", [
    # fan-in wider than the layers: 4 bitmap words per step, 2 groups (B = 8, 3 layers:
    # both spike buffers written by the engine) and 1 group (B = 4)
    (TINY8.replace(max_fan_in=64), [40, 16, 24, 10]),
    (TINY4.replace(neurons_per_core=16, max_fan_in=64), [40, 16, 10]),
    # fan-in narrower than the layers: 4 bitmap words per step, 4 groups
    (TINY8.replace(neurons_per_core=64, max_fan_in=16), [16, 16, 40]),
], ids=["fan64-n32-b8", "fan64-n16-b4", "fan16-n64-b8"])
def test_fan_in_and_layer_width_differ(config, sizes):
    # a layer writes its spikes where the next layer reads them: step t at
    # t * step_words, whatever the number of groups
    info = D.InferenceInfo.from_config(config)
    assert info.max_fan_in != info.max_neurons and info.step_words == 4
    rng = np.random.default_rng(7)
    B = info.weight_bits
    net = random_net(rng, sizes=sizes, B=B, Q=12 if B == 8 else 8, T=4, readout="spikes")
    spikes = rng.random((2, net.T, sizes[0])) < 0.4
    gold = I.forward(net, spikes)
    # hidden spikes after step 0 (where a wrong step stride would read other steps)
    assert all(s[:, 1:].any() for s in gold.spikes[:-1])
    for k, (res, cycles, sops) in enumerate(run_core(config, net, spikes)):
        np.testing.assert_array_equal(res, gold.counts[k], err_msg=f"sample {k}")
        assert sops == int(gold.sops[k].sum())


def test_directed_theta_negative_shift_ties():
    # one input, weights chosen so potentials hit theta exactly, go negative through
    # the leak (arithmetic shift of negative values), and outputs tie
    W0 = np.array([[5], [5], [-7], [3]])
    l0 = I.IntLayer(W=W0, b=np.array([0, 0, -1, 0]), theta=5, leak_shift=1, reset="subtract")
    W1 = np.array([[2, 0, 1, 0], [0, 2, 1, 0], [1, 1, 0, 1]])
    l1 = I.IntLayer(W=W1, b=np.array([0, 0, -1]), theta=2, leak_shift=None, reset="zero")
    net = I.IntNetwork(layers=(l0, l1), B=8, Q=8, T=6, readout="spikes")
    spikes = np.array([[[1], [0], [1], [1], [0], [1]]], dtype=bool)
    gold = I.forward(net, spikes)
    assert gold.counts[0][0] == gold.counts[0][1]          # a tie
    outs = run_core(TINY8, net, spikes)
    np.testing.assert_array_equal(outs[0][0], gold.counts[0])


def test_refuses_bad_arguments():
    core = InferenceCore(TINY8)

    async def bench(ctx):
        C = proto.InferenceCommand
        got = []
        got.append((await transact(ctx, core, C.RUN))[0])            # before SET_NETWORK
        got.append((await transact(ctx, core, C.SET_NETWORK, proto.pack(
            proto.INF_SET_NETWORK, {"T": 9, "layers": 1, "Q": 8, "readout": 0})))[0])
        got.append((await transact(ctx, core, C.SET_LAYER, proto.pack(proto.INF_SET_LAYER, {
            "layer": 0, "n_in": 33, "n_out": 4, "wbase": 0, "bbase": 0, "theta": 3,
            "leak": {"shift": 0, "none": 1}, "reset": 0})))[0])
        got.append((await transact(ctx, core, 0x7F))[0])
        return got
    S = proto.Status
    assert simulate(core, bench) == [S.BAD_STATE, S.BAD_ARGUMENT, S.BAD_ARGUMENT,
                                     S.UNKNOWN_COMMAND]


def test_plan_refuses_network_that_does_not_fit():
    info = D.InferenceInfo.from_config(TINY8)
    rng = np.random.default_rng(0)
    net = random_net(rng, sizes=[40, 8], B=8, Q=12, T=4, readout="spikes")
    with pytest.raises(D.FitError, match="40 inputs .* at most 32"):
        D.plan_network(net, info)


@pytest.mark.parametrize("changes, message", [
    (dict(inference_only=False, reset_grad_modes=("detach",)), "needs inference_only=True"),
    (dict(weight_bits=6), "weight_bits must be one of"),
    (dict(potential_bits=None), "needs potential_bits"),
    (dict(potential_bits=20), "potential_bits must be between 2 and 16"),
    (dict(lanes=6), "power of two"),
])
def test_config_refuses_bad_inference_builds(changes, message):
    from spikeforge.hdl.config import ConfigError
    with pytest.raises(ConfigError, match=message):
        preset("inference-int8", **changes)


def test_geometry_of_the_presets():
    for name, group, depth in (("inference-int8", 32, 2048), ("inference-int4", 64, 1024)):
        info = D.InferenceInfo.from_config(preset(name))
        assert (info.group, info.weight_depth, info.weights_per_word) == (
            group, depth, 16 // info.weight_bits)
