"""``spikeforge train``: a short run learns, bad input is one sentence, NaN stops the run."""

import json

import pytest

from spikeforge.sim import cli
from spikeforge.sim import train as TR


def test_short_training_run_learns(tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = cli.main(["train", "--dataset", "digits", "--engine", "golden", "--epochs", "1",
                   "--limit", "300", "--T", "8", "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["test_accuracy"] > 0.5          # chance is 0.1
    ep = report["epochs"][0]
    for key in ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "spike_density",
                "du_nonzero"):
        assert key in ep
    assert len(ep["spike_density"]) == 2 and len(ep["du_nonzero"]) == 2
    assert 0 < ep["du_nonzero"][0] < 1
    assert report["params"]["T"] == 8 and report["sizes"] == [64, 128, 10]
    assert report["constants"]["neg_lr"]["bits"].startswith("0x")
    text = capsys.readouterr().out
    assert "final test accuracy" in text and "epoch 1/1" in text


def test_float64_twin_and_two_hidden_layers_run(tmp_path):
    report = TR.run(epochs=1, limit=60, hidden=[16, 12], precision="float64",
                    reset_grad="through", batch=4, log=lambda *a: None)
    assert report["sizes"] == [64, 16, 12, 10]
    assert len(report["epochs"][0]["du_nonzero"]) == 3


def test_same_seed_same_result():
    a = TR.run(epochs=1, limit=40, hidden=[8], log=lambda *a: None)
    b = TR.run(epochs=1, limit=40, hidden=[8], log=lambda *a: None)
    assert a["epochs"][0]["train_loss"] == b["epochs"][0]["train_loss"]
    assert a["test_accuracy"] == b["test_accuracy"]


@pytest.mark.parametrize("argv,words", [
    (["--dataset", "foo"], ["unknown dataset 'foo'", "digits"]),
    (["--hidden", "12,x"], ["--hidden", "'12,x'"]),
    (["--alpha", "2"], ["--alpha", "2.0"]),
    (["--T", "0"], ["--T", "0"]),
    (["--epochs", "0"], ["--epochs", "0"]),
    (["--json", "/nonexistent-folder/x.json"], ["--json", "nonexistent-folder"]),
])
def test_bad_input_is_one_sentence_and_exit_2(argv, words, capsys):
    assert cli.main(["train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    for w in words:
        assert w in err


def test_divergence_names_layer_and_epoch(tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = cli.main(["train", "--epochs", "1", "--limit", "30", "--hidden", "8", "--lr", "60000",
                   "--loss-scale", "1", "--json", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "NaN or inf" in err and "layer" in err and "epoch 1" in err
    assert not out.exists()                       # nothing half-written


def test_engine_choices_are_the_registered_engines():
    assert "golden" in TR.ENGINES
    with pytest.raises(SystemExit):
        cli.main(["train", "--engine", "nonexistent"])
