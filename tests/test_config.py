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
