"""The ``up5k`` core (one lane, histories written through bit enables, the smallest
memories) on Verilator against the golden model, bit for bit.

The ``up5k`` preset is the only one built with ``history_write="bit"`` and one lane,
so the structures that degenerate for one lane and the block-RAM history writes are
checked here: forward (spike and window history, counts, prediction), backward
(``du`` of both layers, so ``g_in`` through the layer below), weight gradient and
update, on random layers that fill the core (fan-in 32, 16 neurons), at input
densities from 0 to 1. One Verilator build.
"""

import numpy as np
import pytest

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import preset
from spikeforge.sim.engines.compare import first_difference
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device, DeviceInfo

pytestmark = pytest.mark.verilator

CONFIG = preset("up5k")


@pytest.fixture(scope="module")
def device():
    from spikeforge.sim.verilator.session import rtl_session
    with rtl_session(AcceleratorTop(CONFIG), name=session_name(CONFIG), ports_only=True,
                     wall_timeout_s=300.0) as link:
        yield Device(link)


def _check_sample(acc, weights, dWs, spikes, label, params, what):
    res = acc.run(spikes, label)
    traces = golden.forward(weights, spikes, params)
    counts = golden.spike_counts(traces[-1].s)
    assert list(res.counts) == list(counts), f"{what}: output spike counts"
    assert res.prediction == int(np.argmax(counts)), f"{what}: prediction"
    for l in range(len(weights)):
        first_difference(f"{what} layer {l} s", acc.history(l, "s"), traces[l].s, kind="trace")
        first_difference(f"{what} layer {l} m", acc.history(l, "m"), traces[l].m, kind="trace")
    if label is None:
        return dWs
    grads = golden.backward(weights, traces, spikes, label, params, dWs)
    got_dw = acc.read_weights("dW")
    for l in range(len(weights)):
        first_difference(f"{what} layer {l} du", acc.du(l), grads[l].du, kind="trace")
        first_difference(f"{what} layer {l} dW", got_dw[l], grads[l].dW, kind="W")
    return [gr.dW for gr in grads]


def test_up5k_core_matches_golden_on_random_layers(device):
    acc = device
    f = CONFIG.features
    assert acc.info == DeviceInfo.from_config(CONFIG)
    rng = np.random.default_rng(5)
    for trial in range(3):
        # the largest network in the first trial: fan-in 32, 16 neurons over two layers
        sizes = [f.max_fan_in, 12, 4] if trial == 0 else \
            [int(rng.integers(3, f.max_fan_in + 1)), int(rng.integers(2, 13)),
             int(rng.integers(2, 5))]
        T = f.max_time_steps if trial == 0 else int(rng.integers(1, f.max_time_steps + 1))
        params = golden.Params(T=T, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                               loss_scale=8.0, reset_grad="detach")
        weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
                   for i, o in zip(sizes[:-1], sizes[1:])]
        acc.load_network(sizes, params, weights)
        for l, W in enumerate(acc.read_weights("W")):
            first_difference(f"layer {l} W loaded", W, weights[l], kind="W")
        dWs = golden.zero_grads(weights)
        for k, density in enumerate((0.0, 1.0, 0.15, 0.5, 0.3)):
            spikes = rng.random((T, sizes[0])) < density
            label = None if k == 3 else int(rng.integers(0, sizes[-1]))
            dWs = _check_sample(acc, weights, dWs, spikes, label, params,
                                f"up5k trial {trial} density {density}")
        acc.update()
        weights = golden.update(weights, dWs, params)
        for l, W in enumerate(acc.read_weights("W")):
            first_difference(f"layer {l} W after the update", W, weights[l], kind="W")
        for l, dW in enumerate(acc.read_weights("dW")):
            assert not np.any(dW.view(np.uint16)), f"layer {l}: dW not cleared by the update"
    counters = acc.counters(clear=True)
    assert counters["runs"] > 0 and counters["fp_fmas"] > 0 and counters["wg_fmas"] > 0
    assert counters["bp_fmas"] > 0 and counters["cycles_update"] > 0
