import json

import pytest

from spikeforge.hdl.config import (BuildConfig, ConfigError, Features, Implementation,
                                   PRESETS, mesh_shape_for, preset)


def test_presets_round_trip_through_json():
    for name, config in PRESETS.items():
        again = BuildConfig.from_dict(json.loads(config.to_json()))
        assert again == config, name


@pytest.mark.parametrize("cores,shape", [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (6, (2, 3)),
                                         (16, (4, 4)), (20, (4, 5)), (7, (1, 7))])
def test_mesh_shape(cores, shape):
    assert mesh_shape_for(cores) == shape
    assert preset("tiny", cores=cores).features.cores == cores


@pytest.mark.parametrize("kwargs,word", [
    ({"lanes": 0}, "lanes"), ({"rows": 0}, "rows"), ({"reset_grad_modes": ("sideways",)}, "sideways"),
    ({"reset_grad_modes": ()}, "at least one"), ({"lanes": 2.5}, "integer"),
])
def test_bad_features_are_named(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        Features(**kwargs)


def test_bad_implementation_and_preset():
    with pytest.raises(ConfigError, match="memory"):
        Implementation(memory="flash")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ConfigError, match="cores"):
        mesh_shape_for(0)


def test_through_mode_stores_potentials():
    assert not PRESETS["digits"].features.stores_potentials
    assert PRESETS["digits-through"].features.stores_potentials


def test_max_payload_is_an_implementation_field():
    from spikeforge.sim.host.device import DeviceInfo
    with pytest.raises(ConfigError, match="max_payload"):
        Implementation(max_payload=10)
    assert DeviceInfo.from_config(preset("tiny", max_payload=512)).max_payload == 512


def test_memory_primitive_reaches_the_lane_memories():
    from amaranth.back import rtlil

    from spikeforge.hdl.core.lane_datapath import LaneDatapath
    from spikeforge.hdl.core.defs import CoreGeometry
    cfg = preset("tiny", lanes=1, neurons_per_core=8, max_fan_in=8, max_time_steps=2)
    auto = rtlil.convert(LaneDatapath(CoreGeometry(cfg)))
    bram = rtlil.convert(LaneDatapath(CoreGeometry(cfg.replace(memory="bram"))))
    lutram = rtlil.convert(LaneDatapath(CoreGeometry(cfg.replace(memory="lutram"))))
    assert "ram_style" not in auto
    assert 'ram_style "block"' in bram and 'ram_style "distributed"' in lutram


def test_fma_stage_limits_come_from_the_configuration():
    from spikeforge.hdl import fp16
    from spikeforge.hdl.config import FMA_MAX_STAGES
    assert fp16.DEFAULT_STAGES == Implementation().fma_stages
    assert fp16.MAX_STAGES == FMA_MAX_STAGES
    with pytest.raises(ConfigError, match="fma_stages"):
        Implementation(fma_stages=FMA_MAX_STAGES + 1)
