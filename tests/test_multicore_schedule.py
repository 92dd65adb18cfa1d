"""The multi-core schedule of docs/multicore.md, block by block on the mapping's cores
(sim/host/mapping.py ``schedule_sample``), gives the golden model's bits on 1, 2, 4 and
8 cores: spikes, du, the chained input gradients and dW, over a minibatch."""

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.mapping import compile_mapping, schedule_sample


@pytest.mark.parametrize("mode", ["detach", "through"])
@pytest.mark.parametrize("cores", [1, 2, 4, 8])
def test_schedule_gives_the_golden_bits_on_any_core_count(cores, mode):
    cfg = preset("tiny", rows=2, cols=4, max_layers=3, neurons_per_core=96)
    sizes = (30, 40, 22, 10)
    m = compile_mapping(sizes, cfg, cores=min(cores, 8), T=6)
    if cores > 1:
        assert max(len(bl) for bl in m.layers) > 1          # some layer is split
    rng = np.random.default_rng(cores)
    params = golden.Params(T=6, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                           loss_scale=8.0, reset_grad=mode)
    weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
               for i, o in zip(sizes[:-1], sizes[1:])]
    dW_gold = dW_sched = None
    for sample in range(2):
        spikes = rng.random((params.T, sizes[0])) < 0.4
        label = int(rng.integers(sizes[-1]))
        traces = golden.forward(weights, spikes, params)
        grads = golden.backward(weights, traces, spikes, label, params, dW_gold)
        step = schedule_sample(m, weights, spikes, label, params, dW_sched)
        for l, blocks in enumerate(m.layers):
            assert np.array_equal(step.spikes[l], traces[l].s), (l, sample)
            du = np.concatenate([step.du[l, b.core] for b in blocks], axis=-1)
            assert du.view(np.uint16).tobytes() == grads[l].du.view(np.uint16).tobytes()
            if l:
                assert step.g_in[l].view(np.uint16).tobytes() == \
                    grads[l].g_in.view(np.uint16).tobytes(), (l, sample)
            assert step.dWs[l].view(np.uint16).tobytes() == \
                grads[l].dW.view(np.uint16).tobytes(), (l, sample)
        dW_gold = [gr.dW for gr in grads]
        dW_sched = step.dWs
