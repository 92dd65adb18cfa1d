"""Host-side pieces of the core (no simulation): network mapping and its errors,
geometry checks, the first-difference report."""

import numpy as np
import pytest

from spikeforge.hdl.config import ConfigError, preset
from spikeforge.hdl.core import Core
from spikeforge.sim.host.device import DeviceInfo, MapError, NetworkMap
from spikeforge.sim.engines.compare import Mismatch, first_difference


def _info(cfg):
    return DeviceInfo.from_config(cfg)


def test_network_map_places_layers_in_groups():
    info = _info(preset("digits"))
    nm = NetworkMap.build([64, 128, 10], info)
    P = info.lanes
    assert [l.out_g for l in nm.layers] == [0, 128 // P]
    assert nm.layers[1].in_hg == info.input_groups          # layer 1 reads layer 0's spikes
    assert nm.layers[1].wbase == (128 // P) * 64
    assert nm.wcount == (128 // P) * 64 + 1 * 128


@pytest.mark.parametrize("sizes, message", [
    ([64, 300, 10], "neurons"),
    ([200, 10], "inputs"),
    ([8, 8, 8, 8, 8], "layers"),
    ([5], "two layer sizes"),
])
def test_network_that_does_not_fit_gets_one_clear_sentence(sizes, message):
    with pytest.raises(MapError, match=message):
        NetworkMap.build(sizes, _info(preset("digits")))


def test_core_rejects_lanes_that_are_not_a_power_of_two():
    with pytest.raises(ConfigError, match="power of two"):
        Core(preset("tiny", lanes=3))
    with pytest.raises(ConfigError, match="max_time_steps"):
        Core(preset("tiny", max_time_steps=32))


def test_first_difference_names_the_place_and_both_values():
    want = np.zeros((3, 4), dtype=np.float16)
    got = want.copy()
    got[2, 1] = np.float16(-0.0)
    with pytest.raises(Mismatch, match=r"neuron 2, input 1: hardware -0.0 \(0x8000\), golden 0.0"):
        first_difference("layer 0 W", got, want, kind="W")
    first_difference("same", want, want.copy(), kind="W")


def test_train_rtl_checks_the_network_before_building(capsys):
    from spikeforge.sim import cli
    assert cli.main(["train", "--engine", "rtl", "--preset", "tiny", "--hidden", "128",
                     "--samples", "1"]) == 2
    assert "neurons" in capsys.readouterr().err
    assert cli.main(["train", "--engine", "rtl", "--preset", "tiny", "--hidden", "16",
                     "--T", "9", "--samples", "1"]) == 2
    assert "--T 9" in capsys.readouterr().err


def test_train_rtl_checks_the_mapping_over_cores_before_building(capsys):
    from spikeforge.sim import cli
    # 2 x 64 neurons of tiny cores cannot hold 200 + 10
    assert cli.main(["train", "--engine", "rtl", "--cores", "2", "--preset", "tiny",
                     "--hidden", "200", "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert "does not fit 2 core(s)" in err and "neurons" in err


def test_train_rtl_refuses_an_inference_preset_in_one_sentence(capsys):
    from spikeforge.sim import cli
    assert cli.main(["train", "--engine", "rtl", "--preset", "inference-int8",
                     "--samples", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inference-only" in err[0] and "tiny" in err[0]
