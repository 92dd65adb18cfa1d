"""``spikeforge train``: a short run learns, bad input is one sentence, NaN stops the run."""

import json

import numpy as np
import pytest

from spikeforge.sim import cli
from spikeforge.sim import train as TR
from spikeforge.sim.engines.compare import Mismatch
from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden


def _reference_run(*, limit, T, hidden, seed=0):
    """One epoch at batch 1, written here from the golden model's pieces and the rules
    the report states (init, encoding, order): what the loop must report."""
    data = D.load("digits")
    x, y = data.x_train[:limit], data.y_train[:limit]
    params = golden.Params(T=T)
    W = golden.init_weights([64, *hidden, 10], seed)
    spikes = D.encode_batch(x, np.arange(limit), split="train", seed=seed, T=T)
    n_layers = len(W)
    loss, correct = 0.0, 0
    fired, slots, du_nz = np.zeros(n_layers), np.zeros(n_layers), np.zeros(n_layers)
    for i in np.random.default_rng([seed, 2, 1]).permutation(limit):
        s_in, label = spikes[i:i + 1], y[i:i + 1]
        traces = golden.forward(W, s_in, params)
        grads = golden.backward(W, traces, s_in, label, params)
        correct += int(np.argmax(traces[-1].s.sum(axis=-2)) == label[0])
        loss += float(golden.loss_value(traces[-1].s, label).sum())
        for l in range(n_layers):
            fired[l] += traces[l].s.sum()
            slots[l] += traces[l].s.size
            du_nz[l] += np.count_nonzero(grads[l].du)
        W = golden.update(W, [g.dW for g in grads], params)

    def accuracy(xs, ys, split):
        s = D.encode_batch(xs, np.arange(len(xs)), split=split, seed=seed, T=T)
        out = golden.forward(W, s, params)[-1].s
        return float((np.argmax(out.sum(axis=-2), axis=-1) == ys).mean()), \
            float(golden.loss_value(out, ys).mean())

    train_acc, _ = accuracy(x, y, "train")
    test_acc, test_loss = accuracy(data.x_test, data.y_test, "test")
    return {"train_accuracy": train_acc, "test_accuracy": test_acc, "train_loss": loss / limit,
            "test_loss": test_loss, "train_accuracy_during_epoch": correct / limit,
            "spike_density": list(fired / slots), "du_nonzero": list(du_nz / slots)}


def test_short_training_run_learns(tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = cli.main(["train", "--dataset", "digits", "--engine", "golden", "--epochs", "1",
                   "--limit", "300", "--T", "8", "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["test_accuracy"] > 0.5          # chance is 0.1
    ep = report["epochs"][0]
    want = _reference_run(limit=300, T=8, hidden=[128])
    for key, value in want.items():
        assert ep[key] == pytest.approx(value, rel=1e-12, abs=0), key
    assert report["test_accuracy"] == ep["test_accuracy"]
    assert report["train_accuracy"] == ep["train_accuracy"]
    assert report["samples"] == 300 and report["settings"]["train_samples"] == 300
    assert report["test_samples"] == len(D.load("digits").y_test)
    assert report["params"]["T"] == 8 and report["sizes"] == [64, 128, 10]
    # the learning-rate constant the core gets: fp16(-lr / loss_scale)
    neg_lr = np.float16(-0.01 / 8)
    assert report["constants"]["neg_lr"] == {"value": float(neg_lr),
                                             "bits": f"0x{int(neg_lr.view(np.uint16)):04x}"}
    text = capsys.readouterr().out
    assert "final test accuracy" in text and "epoch 1/1" in text


def test_samples_stop_the_run_and_test_samples_cut_the_test_set():
    """``--samples`` in place of ``--epochs`` (across an epoch boundary), ``--test-samples``."""
    report = TR.run(epochs=5, limit=30, samples=45, test_samples=7, hidden=[8], batch=4,
                    log=lambda *a: None)
    assert [ep["epoch"] for ep in report["epochs"]] == [1, 2]
    assert report["samples"] == 45 and report["test_samples"] == 7
    assert report["settings"]["epochs"] == 2
    # the second epoch trains the first 15 samples of its order
    assert report["epochs"][1]["spike_density"] != report["epochs"][0]["spike_density"]
    full = TR.run(epochs=1, limit=30, hidden=[8], batch=4, log=lambda *a: None)
    assert report["epochs"][0]["train_loss"] == full["epochs"][0]["train_loss"]
    assert report["epochs"][0]["spike_density"] == full["epochs"][0]["spike_density"]


def test_float64_twin_and_two_hidden_layers_run(tmp_path):
    report = TR.run(epochs=1, limit=60, hidden=[16, 12], precision="float64",
                    reset_grad="through", batch=4, log=lambda *a: None)
    assert report["sizes"] == [64, 16, 12, 10]
    ep = report["epochs"][0]
    assert len(ep["du_nonzero"]) == 3 and len(ep["spike_density"]) == 3
    assert all(0 <= d <= 1 for d in ep["du_nonzero"] + ep["spike_density"])
    assert report["precision"] == "float64" and report["params"]["reset_grad"] == "through"


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
    assert sorted(TR.ENGINES) == ["fpga", "golden", "rtl"]
    for name in TR.ENGINES:
        cls = TR.engine_class(name)
        assert cls.name == name
        for method in ("train_step", "evaluate", "set_params", "report", "summary"):
            assert callable(getattr(cls, method)), (name, method)
    with pytest.raises(SystemExit):
        cli.main(["train", "--engine", "nonexistent"])


class _DiffersAtThirdSample(TR.GoldenEngine):
    """The golden engine with a made-up hardware difference in the third sample."""

    name = "differs"
    hardware = "the test engine"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.seen = 0

    def train_step(self, spikes, labels):
        if self.seen + len(labels) > 2:
            raise Mismatch("layer 0 dW: first difference at neuron 1, input 2",
                           {"neuron": 1, "input": 2})
        self.seen += len(labels)
        return super().train_step(spikes, labels)

    def report(self):
        return {"bit_exact": False}


def test_a_difference_stops_the_run_and_the_report_says_where(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(TR.ENGINES, "differs", _DiffersAtThirdSample)
    out = tmp_path / "run.json"
    rc = cli.main(["train", "--engine", "differs", "--limit", "10", "--hidden", "8",
                   "--json", str(out)])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err == ("spikeforge train: sample 2: the test engine differs from the golden model: "
                   "layer 0 dW: first difference at neuron 1, input 2")
    report = json.loads(out.read_text())
    assert report["mismatch"] == {"sample": 2, "message": "layer 0 dW: first difference at "
                                  "neuron 1, input 2", "where": {"neuron": 1, "input": 2}}
    assert report["bit_exact"] is False and report["samples"] == 0 and report["epochs"] == []
