"""The integer inference core in Verilator (ports-only build of the small
``inference-int-tiny`` preset) through ``spikeforge infer``'s rtl engine: a few
samples bit-exact against the golden model of SPEC section 8, in both readouts,
and a network that does not fit refused with its numbers (by the host before a
build, and by the core itself)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.hdl.inference import InferenceAccelerator
from spikeforge.sim.engines.infer_rtl import RtlInferEngine, session_name
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import integer as I
from spikeforge.sim.host.driver import DeviceError
from spikeforge.sim.host.inference_device import InferenceDevice

TINY = "inference-int-tiny"


def _net(rng, sizes, *, B=8, Q=12, T=6, readout="spikes"):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        hi = 2 ** (B - 1)
        W = rng.integers(-hi, hi, (n_out, n_in))
        layers.append(I.IntLayer(W=W, b=rng.integers(-40, 40, n_out),
                                 theta=int(rng.integers(20, 200)),
                                 leak_shift=[None, 2][len(layers) % 2],
                                 reset=["subtract", "zero"][len(layers) % 2]))
    return I.IntNetwork(layers=tuple(layers), B=B, Q=Q, T=T, readout=readout)


@pytest.mark.verilator
def test_rtl_engine_is_bit_exact_and_refuses_what_does_not_fit():
    rng = np.random.default_rng(7)
    args = SimpleNamespace(preset=TINY)
    for readout in ("spikes", "potential"):
        net = _net(rng, [16, 24, 6], readout=readout)
        eng = RtlInferEngine(SimpleNamespace(network=net), args)
        spikes = rng.random((4, net.T, 16)) < 0.3
        batch = eng.run(spikes)
        report = eng.report()
        gold = I.forward(net, spikes)
        assert report["bit_exact"], report["first_mismatches"]
        np.testing.assert_array_equal(batch.predictions, gold.predictions)
        assert report["cycles_per_sample"] >= report["ideal_cycles_per_sample"] > 0

    too_wide = _net(rng, [40, 8])
    with pytest.raises(UsageError, match="does not fit .* 40 inputs .* at most 32"):
        RtlInferEngine(SimpleNamespace(network=too_wide), args)

    # the core itself refuses a layer wider than it was built for
    from spikeforge.sim.verilator.session import rtl_session
    config = preset(TINY)
    with rtl_session(InferenceAccelerator(config), name=session_name(config)) as link:
        dev = InferenceDevice(link)
        with pytest.raises(DeviceError):
            link.transact(proto.InferenceCommand.SET_LAYER, proto.pack(proto.INF_SET_LAYER, {
                "layer": 0, "n_in": 40, "n_out": 8, "wbase": 0, "bbase": 0, "theta": 5,
                "leak": {"shift": 0, "none": 1}, "reset": 0}))
        assert dev.info.max_fan_in == 32


@pytest.mark.verilator
def test_rtl_fan_in_wider_than_the_layers_is_bit_exact():
    # max_fan_in 64 with 32 neurons per layer: 4 bitmap words per step and 2 groups,
    # so a layer's spikes must go to step t * 4 of the next layer's input
    from spikeforge.sim.host.inference_device import InferenceInfo
    from spikeforge.sim.verilator.session import rtl_session
    config = preset(TINY, max_fan_in=64)
    rng = np.random.default_rng(5)
    net = _net(rng, [64, 16, 10], T=4)
    spikes = rng.random((3, net.T, 64)) < 0.3
    gold = I.forward(net, spikes)
    assert gold.spikes[0][:, 1:].any()              # hidden spikes after step 0
    with rtl_session(InferenceAccelerator(config), name=session_name(config)) as link:
        dev = InferenceDevice(link)
        assert dev.info == InferenceInfo.from_config(config) and dev.info.step_words == 4
        dev.load(net)
        for k in range(len(spikes)):
            res, cycles, sops = dev.run(spikes[k])
            np.testing.assert_array_equal(res, gold.counts[k], err_msg=f"sample {k}")
            assert sops == int(gold.sops[k].sum())
