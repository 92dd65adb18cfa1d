"""Off-chip traffic counts of scripts/bench_offchip_traffic.py on networks small
enough to count by hand."""

import json

import pytest
from script_loader import load_script

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH,
                                 reason="torch is not installed (optional dependency)")

@pytest.fixture(scope="module")
def bench():
    return load_script("bench_offchip_traffic")


def test_accelerator_streamed_bytes_by_hand(bench):
    # 3-2-2, T = 2: 6 + 4 weights; input 6 bits -> 1 byte, label 1 byte;
    # per sample W forward 2*10, W backward (layer 1) 2*4, dW read + write 4*10;
    # per minibatch of 2 the update 6*10 -> 30 per sample
    assert bench.accelerator_streamed_bytes([3, 2, 2], 2, 2) == 2 + 20 + 8 + 40 + 30


@needs_torch
def test_saved_tensor_model_by_hand(bench):
    # 3-2-2, T = 2, batch 1, float32. Per step and layer the BPTT of the script saves:
    # the linear's input (layer 0: a view of the input spikes, read but not written;
    # layer 1: the spikes of layer 0, 2 floats written and read) and, when the input
    # needs a gradient (layer 1), the weights (4 floats, read only); the reset
    # mask of torch.where (2 bools); the potential u for the surrogate (2 floats).
    # The loss saves rate - y (2 floats).
    r = bench.torch_traffic([3, 2, 2], 2, 1)
    parts = r["saved_model_parts_per_sample"]
    written = 2 * (2 + 8) + 2 * (8 + 2 + 8) + 8
    read = 2 * (12 + 2 + 8) + 2 * (8 + 16 + 2 + 8) + 8
    assert parts["saved_activations_written"] == written == 64
    assert parts["saved_tensors_read"] == read == 120
    assert parts["weights_read_forward"] == 2 * 10 * 4          # once per step
    assert parts["inputs_read"] == 2 * 3 * 4 + 8                 # spikes + int64 label
    assert parts["weight_gradient_written"] == 10 * 4
    assert parts["sgd_step"] == 3 * 10 * 4
    assert r["saved_model_bytes_per_sample"] == sum(parts.values())
    assert r["kernel_model_bytes_per_sample"] > r["saved_model_bytes_per_sample"]


@needs_torch
def test_batch_shares_the_weights_not_the_activations(bench):
    one = bench.torch_traffic([3, 2, 2], 2, 1)["saved_model_parts_per_sample"]
    four = bench.torch_traffic([3, 2, 2], 2, 4)["saved_model_parts_per_sample"]
    assert four["saved_activations_written"] == one["saved_activations_written"]
    # the layer-1 weights (16 bytes per unpack, 2 unpacks) are read once per minibatch
    assert four["saved_tensors_read"] == one["saved_tensors_read"] - 32 + 32 / 4
    assert four["weights_read_forward"] == one["weights_read_forward"] / 4
    assert four["sgd_step"] == one["sgd_step"] / 4


@needs_torch
def test_float16_halves_the_float_tensors(bench):
    a = bench.torch_traffic([3, 2], 2, 1, dtype="float32")["saved_model_parts_per_sample"]
    b = bench.torch_traffic([3, 2], 2, 1, dtype="float16")["saved_model_parts_per_sample"]
    assert b["weights_read_forward"] == a["weights_read_forward"] / 2
    # saved: 2 steps x (bool mask 2 + u) + rate - y; masks stay one byte per entry
    assert a["saved_activations_written"] == 2 * (2 + 8) + 8
    assert b["saved_activations_written"] == 2 * (2 + 4) + 4


@needs_torch
def test_script_writes_json(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "NETWORKS", {"tiny 3-2-2": [3, 2, 2]})
    out = tmp_path / "t.json"
    assert bench.main(["--T", "2", "--batches", "1", "--dtypes", "float32",
                       "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    (row,) = rep["rows"]
    assert row["accelerator_bytes_per_sample"] == 2
    saved = 64 + 120 + 80 + 32 + 40 + 120           # the parts of the test above
    assert row["saved_model_bytes_per_sample"] == saved
    assert row["reduction_vs_saved_model"] == pytest.approx(1 - 2 / saved)
    assert "55%-85%" in capsys.readouterr().out
