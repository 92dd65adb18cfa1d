"""The mapping compiler (sim/host/mapping.py): fits, does not fit (with the numbers),
splits of a layer over cores, several layers per core, the routes, and the one-core
case equal to the one-core layer table of NetworkMap."""

import pytest

from spikeforge.hdl.config import preset
from spikeforge.sim.host.device import DeviceInfo, NetworkMap
from spikeforge.sim.host.mapping import MappingError, compile_mapping, spread

#: 2x2 cores of 4 lanes, 64 neurons, fan-in 128, 16 steps, 3 blocks each
CFG4 = preset("tiny", rows=2, cols=2, neurons_per_core=64, max_fan_in=128, max_time_steps=16,
              max_layers=3)


def _check_cover(m):
    """Every layer's blocks are contiguous, ascending, cover it exactly; every core's
    table lists its blocks in ascending layer order within the built limits."""
    for l, blocks in enumerate(m.layers):
        assert blocks[0].lo == 0 and blocks[-1].hi == m.sizes[l + 1]
        for a, b in zip(blocks, blocks[1:]):
            assert a.hi == b.lo and a.core < b.core
        for b in blocks[:-1]:
            assert b.n % m.lanes == 0                  # whole lane groups
    for cm in m.core_maps:
        assert [b.layer for b in cm.blocks] == sorted({b.layer for b in cm.blocks})
        for e, (b, lm) in enumerate(zip(cm.blocks, cm.netmap.layers)):
            assert b.entry == e and lm.n_out == b.n and lm.n_in == m.sizes[b.layer]


def test_one_core_is_the_one_core_layout():
    cfg = preset("digits")
    m = compile_mapping((64, 128, 10), cfg, T=16)
    want = NetworkMap.build((64, 128, 10), DeviceInfo.from_config(cfg))
    assert m.cores == 1 and m.core_maps[0].netmap.layers == want.layers
    assert m.core_maps[0].netmap.wcount == want.wcount
    assert m.spikes == ((("host",), (0,)), ((0,), (0,)))
    assert m.gin_chain == (None, (0,)) and m.gin_deliver == (None, (0,))
    _check_cover(m)


def test_fits_and_splits_over_four_cores():
    m = compile_mapping((64, 128, 10), CFG4, T=16)
    _check_cover(m)
    assert [(b.core, b.lo, b.hi) for b in m.layers[0]] == [(0, 0, 32), (1, 32, 64),
                                                           (2, 64, 96), (3, 96, 128)]
    assert [(b.core, b.lo, b.hi) for b in m.layers[1]] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    # several layers per core: cores 0-2 hold a block of each layer, core 3 one
    assert [len(cm.blocks) for cm in m.core_maps] == [2, 2, 2, 1]
    # the hidden blocks take their inputs from the input region; the output blocks too
    # (their inputs are the whole hidden layer, which no core holds alone)
    assert all(lm.in_hg == 0 for cm in m.core_maps for lm in cm.netmap.layers)
    # weight words per bank: 32/4 groups x 64 inputs, then 1 group x 128 inputs
    assert [cm.weight_words for cm in m.core_maps] == [8 * 64 + 128] * 3 + [8 * 64]
    assert m.spikes[1] == ((0, 1, 2, 3), (0, 1, 2))
    assert m.gin_chain[1] == (0, 1, 2) and m.gin_deliver[1] == (0, 1, 2, 3)
    # 2x2: core 0 (0,0), 1 (1,0), 2 (0,1), 3 (1,1); chain 0-1-2, then 2 -> 0, 1, 2, 3
    assert m.hops["gin"] == (1 + 2) + (1 + 2 + 0 + 1)


def test_fewer_cores_than_built_and_a_local_chain():
    cfg = CFG4
    m = compile_mapping((20, 8, 4), cfg, cores=2, T=4)
    _check_cover(m)
    assert m.cores == 2 and [(b.core, b.n) for b in m.layers[0]] == [(0, 4), (1, 4)]
    m1 = compile_mapping((20, 40, 3), cfg, cores=1)
    assert m1.core_maps[0].netmap.layers[1].in_hg == DeviceInfo.from_config(cfg).input_groups


def test_spread_is_balanced_and_lane_aligned():
    assert spread(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]
    assert spread(128, 4, 3) == [(0, 44), (44, 88), (88, 128)]
    assert spread(3, 4, 8) == [(0, 3)]
    assert spread(1, 1, 1) == [(0, 1)]


def test_does_not_fit_gives_the_numbers():
    with pytest.raises(MappingError) as err:
        compile_mapping((64, 300, 10), CFG4, T=16)
    msg = str(err.value)
    assert "64-300-10 does not fit 4 core(s)" in msg
    assert "neurons 80 > 64" in msg and "fan-in 300 > 128" in msg
    assert "time steps 16 <= 16" in msg and "cores: none fits" in msg
    with pytest.raises(MappingError) as err:
        compile_mapping((64, 200, 10), preset("tiny", cores=2), T=8)
    msg = str(err.value)
    assert "neurons 108 > 64" in msg and "fan-in 200 > 64" in msg   # 25 + 2 lane groups
    # fixable by more cores: the sentence says how many
    with pytest.raises(MappingError) as err:
        compile_mapping((64, 200, 10), CFG4, cores=2, T=16)
    msg = str(err.value)
    assert "neurons 108 > 64" in msg and "fan-in 200 > 128" in msg
    with pytest.raises(MappingError) as err:
        compile_mapping((64, 120, 100), CFG4, cores=2, T=17)
    assert "time steps 17 > 16" in str(err.value)
    with pytest.raises(MappingError, match=r"neurons 112 > 64.*cores 4 > 2"):
        compile_mapping((64, 120, 100), CFG4, cores=2, T=16)
    with pytest.raises(MappingError, match="cores must be between 1 and the 4 built, not 5"):
        compile_mapping((4, 4), CFG4, cores=5)
    with pytest.raises(MappingError, match="at least one layer"):
        compile_mapping((4,), CFG4)
