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


def _run(tmp_path, capsys, top, cores=1):
    out = tmp_path / f"{top}-{cores}.json"
    args = list(ARGS)
    args[args.index("--cores") + 1] = str(cores)
    rc = cli.main([*args, "--top", top, "--json", str(out)])
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


def test_training_split_over_two_cores_gives_the_same_weights(tmp_path, capsys):
    """24 hidden neurons in two blocks of 12, the 10 outputs in blocks of 8 and 2: the
    split-layer schedule over two cores, checked against the golden model after every
    sample and update, ends with the one-core run's weights."""
    two = _run(tmp_path, capsys, "system", cores=2)
    assert two["bit_exact"] is True and two["cores"] == 2 and two["cores_used"] == 2
    # dW and W compared by the digests of every block, after every sample and update
    assert two["check"] == "digest" and two["digest_checks"] == 1 + 3 + 2
    assert [[(b["core"], b["lo"], b["hi"]) for b in layer] for layer in
            two["mapping"]["layers"]] == [[(0, 0, 12), (1, 12, 24)], [(0, 0, 8), (1, 8, 10)]]
    one = _run(tmp_path, capsys, "accelerator")
    assert two["weights_sha256"] == one["weights_sha256"]
    # both cores worked on every sample; the host moved data between the phases
    assert [c["core"] for c in two["per_core"]] == [0, 1]
    assert all(c["fmas_per_sample"] > 0 and 0 < c["utilisation"] <= 1 for c in two["per_core"])
    assert two["transfer_cycles_per_sample"] > 0
    assert two["ratio_to_ideal"] > 1
