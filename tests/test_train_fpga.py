"""``spikeforge train --engine fpga``: the training loop over a board's UART.

Without a board the board is the board top in Verilator behind the bit-level UART
model (``sim/verilator/uart_session.py``, the build ``tests/test_uart_path.py``
uses): the engine's serial transport is the session's ``SerialTransport`` on the
model's pseudo-terminal, so every request goes through the UART framing and
bit by bit through the board top's UART. The run must be bit-exact, and its
final weights must be those of the golden model computed here from the rules
the report states. Bad ports and a silent board are one sentence.
"""

import json
import os

import numpy as np
import pytest

pytest.importorskip("serial")

from spikeforge.boards.top import BoardTop
from spikeforge.hdl.config import preset
from spikeforge.sim import cli
from spikeforge.sim.engines import fpga
from spikeforge.sim.engines.rtl import weights_sha256
from spikeforge.sim.golden import datasets as D
from train_reference import trained_weights

# the board top of tests/test_uart_path.py: one Verilator build serves both
CONFIG = preset("tiny")
TOP = dict(divisor=8, idle_bits=20, heartbeat_cycles=2000)


def _one_line_error(capsys, argv, code=2):
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_no_port_is_one_sentence(capsys):
    line = _one_line_error(capsys, ["train", "--engine", "fpga", "--samples", "1",
                                    "--no-progress"])
    assert "--port" in line and "serial port" in line


def test_a_port_that_does_not_exist_is_one_sentence(capsys, tmp_path):
    port = str(tmp_path / "ttyUSB9")
    line = _one_line_error(capsys, ["train", "--engine", "fpga", "--port", port,
                                    "--samples", "1", "--no-progress"])
    assert port in line and "cannot be opened" in line


def test_a_board_that_does_not_answer_is_one_sentence(capsys):
    # a pseudo-terminal nobody answers on: the INFO request times out
    master, slave = os.openpty()
    try:
        line = _one_line_error(capsys, ["train", "--engine", "fpga", "--port",
                                        os.ttyname(slave), "--board-timeout", "0.3",
                                        "--samples", "1", "--no-progress"])
    finally:
        os.close(master)
        os.close(slave)
    assert "does not answer" in line and "3000000 baud" in line


@pytest.mark.verilator
def test_training_over_the_uart_is_bit_exact(tmp_path, capsys, monkeypatch):
    from spikeforge.sim.verilator.uart_session import UartSession
    top = BoardTop(CONFIG, **TOP)
    with UartSession(top, name="board_top_uart", timeout_s=1.5) as session:
        monkeypatch.setattr(fpga.FpgaEngine, "_transport", lambda self: session.transport)
        out = tmp_path / "r.json"
        rc = cli.main(["train", "--dataset", "digits", "--engine", "fpga", "--port",
                       session.pty, "--hidden", "8", "--T", "4", "--samples", "2",
                       "--batch", "2", "--test-samples", "2", "--no-progress",
                       "--json", str(out)])
        assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["engine"] == "fpga" and report["bit_exact"] is True
    assert report["samples"] == 2
    assert report["device_info"]["lanes"] == CONFIG.features.lanes
    # the golden model on the same samples, from the rules the report states
    weights = trained_weights([64, 8, 10], T=4, samples=2, batch=2)
    assert report["weights_sha256"] == weights_sha256(weights)
    # the board's own counters: cycles per sample, and the wall clock of the link
    phases = report["cycles_per_phase_per_sample"]
    assert report["cycles_per_sample"] == pytest.approx(sum(phases.values()))
    assert min(phases.values()) > 0
    assert report["host_samples_per_second"] > 0
    assert "simulated_cycles_per_second" not in report


# ---------------------------------------------------------------------------- infer

def _int_network(rng, sizes, *, B=8, Q=12, T=4):
    from spikeforge.sim.golden import integer as I
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        hi = 2 ** (B - 1)
        layers.append(I.IntLayer(W=rng.integers(-hi, hi, (n_out, n_in)),
                                 b=rng.integers(-40, 40, n_out),
                                 theta=int(rng.integers(60, 200)), leak_shift=2,
                                 reset="subtract"))
    return I.IntNetwork(layers=tuple(layers), B=B, Q=Q, T=T, readout="spikes")


def test_infer_on_a_port_that_does_not_exist_is_one_sentence(capsys, tmp_path):
    from spikeforge.sim import network_file as NF
    net = tmp_path / "net.npz"
    NF.save(net, _int_network(np.random.default_rng(1), [64, 10]))
    port = str(tmp_path / "ttyUSB9")
    line = _one_line_error(capsys, ["infer", "--network", str(net), "--engine", "fpga",
                                    "--port", port, "--limit", "2"])
    assert port in line and "cannot be opened" in line


@pytest.mark.verilator
def test_integer_inference_over_the_uart_is_bit_exact(tmp_path, capsys, monkeypatch):
    """The small integer inference build (``inference-int-tiny`` with the digits' 64
    inputs) in the board top, behind the UART model: ``infer --engine fpga`` gives the
    golden model's outputs and its accuracy."""
    from spikeforge.sim import network_file as NF
    from spikeforge.sim.golden import integer as I
    from spikeforge.sim.verilator.uart_session import UartSession
    config = preset("inference-int-tiny").replace(max_fan_in=64)
    rng = np.random.default_rng(5)
    network = _int_network(rng, [64, 16, 10])
    path = tmp_path / "net.npz"
    NF.save(path, network)
    top = BoardTop(config, **TOP)
    out = tmp_path / "r.json"
    with UartSession(top, name="board_top_uart_int", timeout_s=1.5) as session:
        monkeypatch.setattr(fpga.FpgaInferEngine, "_transport", lambda self: session.transport)
        rc = cli.main(["infer", "--network", str(path), "--engine", "fpga", "--port",
                       session.pty, "--limit", "3", "--json", str(out)])
        assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["engine"] == "fpga" and report["bit_exact"] is True, json.dumps(report)
    assert report["port"] == session.pty and report["lanes"] == config.features.lanes
    data = D.load("digits")
    spikes = D.encode_batch(data.x_test[:3], np.arange(3), split="test", seed=0, T=network.T)
    gold = I.forward(network, spikes)
    assert report["accuracy"] == float((gold.predictions == data.y_test[:3]).mean())
    assert report["cycles_per_sample"] >= report["ideal_cycles_per_sample"] > 0
