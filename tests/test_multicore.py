"""Training through the multi-core system top (hdl/system.py) on Verilator: every
request of a training run (weights in and out, spikes, runs, updates, counters)
routed over the NoC to core 0 gives the golden model's bits and the same weights as
the one-core accelerator top."""

import json

import pytest

from spikeforge.sim import cli

pytestmark = pytest.mark.verilator

ARGS = ["train", "--dataset", "digits", "--engine", "rtl", "--cores", "1", "--preset", "tiny",
        "--hidden", "24", "--T", "8", "--samples", "3", "--batch", "2", "--test-samples", "4",
        "--no-progress"]


def _run(tmp_path, capsys, top):
    out = tmp_path / f"{top}.json"
    rc = cli.main([*ARGS, "--top", top, "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    return json.loads(out.read_text())


def test_training_through_the_system_top_is_bit_exact(tmp_path, capsys):
    system = _run(tmp_path, capsys, "system")
    assert system["top"] == "system" and system["bit_exact"] is True and system["samples"] == 3
    one = _run(tmp_path, capsys, "accelerator")
    assert one["bit_exact"] is True
    assert system["weights_sha256"] == one["weights_sha256"]
    # the cores' own cycle counters: the same work on the same core
    assert system["cycles_per_sample"] == one["cycles_per_sample"]
