"""The one-core accelerator on Verilator against the golden model, bit for bit.

Per engine, on random layers: forward (spike and window history, output counts,
prediction), backward (``du`` of every layer, so the loss unit and both
``reset_grad`` modes, and ``g_in`` through the layer below's ``du``), weight
gradient (``dW``) and update (``W``), at input densities from 0 to 1, on two
builds (2 lanes with both ``reset_grad`` modes, 4 lanes with ``detach``). Then a
short end-to-end ``spikeforge train --engine rtl`` run. Two Verilator builds in
all, shared by every test (cached per configuration).
"""

import json

import numpy as np
import pytest

from core_trials import trial

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import Command, Status
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device, DeviceInfo, MapError
from spikeforge.sim.host.driver import DeviceError
from spikeforge.sim.engines.rtl import session_name

pytestmark = pytest.mark.verilator

CONFIGS = {
    "p4": preset("tiny"),
    "p2-through": preset("tiny", lanes=2, reset_grad_modes=("detach", "through")),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def device(request):
    from spikeforge.sim.verilator.session import rtl_session
    cfg = CONFIGS[request.param]
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=300.0) as link:
        yield request.param, cfg, Device(link)


def test_engines_match_golden_on_random_layers(device):
    name, cfg, acc = device
    # Every reset_grad mode the build has (p4: detach; p2-through: both).
    for mode in cfg.features.reset_grad_modes:
        _random_layers_match_golden(name, cfg, acc, mode)


def _random_layers_match_golden(name, cfg, acc, mode):
    rng = np.random.default_rng(7 if mode == "detach" else 8)
    for t in range(2):
        sizes = [int(rng.integers(3, 40)), int(rng.integers(2, 24)), int(rng.integers(2, 11))]
        T = int(rng.integers(1, cfg.features.max_time_steps + 1)) if t else \
            cfg.features.max_time_steps
        params = golden.Params(T=T, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                               loss_scale=8.0, reset_grad=mode)
        trial(acc, rng, sizes, params, (0.0, 1.0, 0.15, 0.5), f"{name} {mode} trial {t}")
    counters = acc.counters(clear=True)
    assert counters["runs"] > 0 and counters["fp_fmas"] > 0 and counters["wg_fmas"] > 0


def test_info_the_rtl_answers_is_the_one_the_host_derives_from_the_config(device):
    name, cfg, acc = device
    assert acc.info == DeviceInfo.from_config(cfg)
    f = cfg.features
    assert (acc.info.lanes, acc.info.max_time_steps, acc.info.modes) == \
        (f.lanes, f.max_time_steps, f.reset_grad_modes)


def test_bad_requests_get_errors_and_the_core_keeps_working(device):
    name, cfg, acc = device
    link = acc.link
    unused = 0x7F
    assert unused not in set(Command)
    with pytest.raises(DeviceError) as err:
        link.transact(unused, b"")
    assert err.value.status == Status.UNKNOWN_COMMAND
    with pytest.raises(DeviceError) as err:
        link.transact(Command.SET_LAYER, b"\x00\x01")      # payload too short
    assert err.value.status == Status.BAD_ARGUMENT
    with pytest.raises(MapError, match="neurons"):
        acc.load_network([4, cfg.features.neurons_per_core + 1], golden.Params(T=2))
    params = golden.Params(T=2)
    weights = [np.full((3, 5), 0.5, dtype=np.float16)]
    acc.load_network([5, 3], params, weights)
    res = acc.run(np.ones((2, 5), dtype=bool))
    counts = golden.spike_counts(golden.forward(weights, np.ones((2, 5), dtype=bool), params)[-1].s)
    assert list(res.counts) == list(counts)


def test_train_command_on_rtl_is_bit_exact(tmp_path, capsys):
    from spikeforge.sim import cli
    from spikeforge.sim.golden import datasets as D
    from spikeforge.sim.engines.rtl import weights_sha256
    out = tmp_path / "r.json"
    rc = cli.main(["train", "--dataset", "digits", "--engine", "rtl", "--cores", "1",
                   "--preset", "tiny", "--hidden", "24", "--T", "8", "--samples", "3", "--batch", "2",
                   "--check-traces", "--test-samples", "5", "--no-progress",
                   "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["bit_exact"] is True and report["samples"] == 3
    # The golden model on the same samples, written here: weights, spikes and order
    # from the rules the report states; minibatches [s0, s1], [s2].
    from train_reference import trained_weights
    data = D.load("digits")
    params = golden.Params(T=8)
    weights = trained_weights([64, 24, 10], T=8, samples=3, batch=2)
    assert report["weights_sha256"] == weights_sha256(weights)
    test_spikes = D.encode_batch(data.x_test[:5], np.arange(5), split="test", seed=0, T=8)
    predicted = golden.predict(weights, test_spikes, params)
    assert report["test_samples"] == 5
    assert report["test_accuracy"] == float((predicted == data.y_test[:5]).mean())
    # the hardware numbers against each other and the build
    lanes = CONFIGS["p4"].features.lanes
    assert report["lanes"] == lanes and report["config"] == json.loads(CONFIGS["p4"].to_json())
    phases = report["cycles_per_phase_per_sample"]
    assert report["cycles_per_sample"] == pytest.approx(sum(phases.values()))
    assert min(phases.values()) > 0
    c = report["counters_per_sample"]
    assert report["fmas_done"] == pytest.approx(3 * (c["fp_fmas"] + c["bp_fmas"] + c["wg_fmas"]))
    assert report["fmas_skipped"] == pytest.approx(
        3 * (c["fp_skipped"] + c["bp_skipped"] + c["wg_skipped"]))
    assert report["pe_utilisation"] == pytest.approx(
        report["fmas_done"] / (3 * report["cycles_per_sample"] * lanes))
    assert report["ideal_cycles_per_sample"] > 0
    assert report["ratio_to_ideal"] == pytest.approx(
        report["cycles_per_sample"] / report["ideal_cycles_per_sample"])
    assert report["simulated_cycles_per_second"] > 0
    # the energy estimate of the run, from its counters (docs/energy.md)
    energy = report["energy"]
    assert energy["joules_per_sample"] > 0
    assert sum(energy["shares"].values()) == pytest.approx(1.0)
    # with the weights on chip a sample moves its input bitmap (T * 64 bits) and a label byte
    assert energy["offchip"]["bytes_per_sample"] == 8 * 64 // 8 + 1
    assert energy["tflops_per_watt"] > 0


@pytest.mark.parametrize("check", ["digest", "full"])
def test_train_command_on_rtl_stops_at_the_first_difference(tmp_path, capsys, monkeypatch, check):
    """A golden twin made wrong on purpose (one weight bit after the first update): the
    run stops there, names the sample and the place, and still writes the report (the
    core's digest differs, then the values read back name the place; or every value read
    back)."""
    from spikeforge.sim import cli
    real_update = golden.update

    def update_with_one_bit_flipped(weights, dWs, params):
        new = real_update(weights, dWs, params)
        new[0] = new[0].copy()
        new[0].view(np.uint16)[1, 2] ^= 1
        return new

    monkeypatch.setattr(golden, "update", update_with_one_bit_flipped)
    out = tmp_path / "r.json"
    rc = cli.main(["train", "--engine", "rtl", "--preset", "tiny", "--hidden", "24", "--T", "8",
                   "--samples", "3", "--test-samples", "2", "--no-progress", "--json", str(out),
                   "--check", check])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("spikeforge train: sample 0: the core differs from the golden "
                              "model: layer 0 weights after the update: first difference at "
                              "neuron 1, input 2: ")
    report = json.loads(out.read_text())
    assert report["bit_exact"] is False and report["samples"] == 0
    assert report["mismatch"]["sample"] == 0
    assert report["mismatch"]["where"] == {"neuron": 1, "input": 2}
    assert "weights_sha256" not in report and report["epochs"] == []
