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
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device, DeviceInfo

from core_trials import trial

pytestmark = pytest.mark.verilator

CONFIG = preset("up5k")


@pytest.fixture(scope="module")
def device():
    from spikeforge.sim.verilator.session import rtl_session
    with rtl_session(AcceleratorTop(CONFIG), name=session_name(CONFIG), ports_only=True,
                     wall_timeout_s=300.0) as link:
        yield Device(link)


def test_up5k_core_matches_golden_on_random_layers(device):
    acc = device
    f = CONFIG.features
    assert acc.info == DeviceInfo.from_config(CONFIG)
    rng = np.random.default_rng(5)
    for t in range(3):
        # the largest network in the first trial: fan-in 32, 16 neurons over two layers
        sizes = [f.max_fan_in, 12, 4] if t == 0 else \
            [int(rng.integers(3, f.max_fan_in + 1)), int(rng.integers(2, 13)),
             int(rng.integers(2, 5))]
        T = f.max_time_steps if t == 0 else int(rng.integers(1, f.max_time_steps + 1))
        params = golden.Params(T=T, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                               loss_scale=8.0, reset_grad="detach")
        trial(acc, rng, sizes, params, (0.0, 1.0, 0.15, 0.5, 0.3), f"up5k trial {t}")
    counters = acc.counters(clear=True)
    assert counters["runs"] > 0 and counters["fp_fmas"] > 0 and counters["wg_fmas"] > 0
    assert counters["bp_fmas"] > 0 and counters["cycles_update"] > 0
