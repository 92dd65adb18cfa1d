"""The UART path without a board: the board top in Verilator, the host over a pty.

``BoardTop`` of the ``tiny`` preset (4 lanes) with ``pll=False`` and 8 clock
cycles per bit runs under the bit-level UART model of
``sim/verilator/cocotb_tests/uart_bridge.py``; the host side is the real
``SerialTransport`` on the model's pseudo-terminal, under ``Device``. One
training sample runs end to end and is compared with the golden model bit for
bit (output counts, ``dW``, the weights after the update); then line errors as
docs/host-protocol.md says: a flipped bit is answered with ``BAD_CRC``, a
dropped byte (or one with a framing error) leaves the request unanswered (the
host times out; the idle line drops the partial frame), a line break resets
the device; after each the next command works. The LEDs are read from the pins.
One Verilator build (cached).
"""

import numpy as np
import pytest

pytest.importorskip("serial")

from spikeforge.boards.top import BoardTop
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import Command, Status
from spikeforge.sim.engines.compare import first_difference
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device
from spikeforge.sim.host.driver import DeviceError, TransportTimeout

pytestmark = pytest.mark.verilator

CONFIG = preset("tiny")
DIVISOR = 8
IDLE_BITS = 20
HEARTBEAT = 2000
SIZES = (12, 8, 4)
PARAMS = golden.Params(T=4, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125, loss_scale=8.0,
                       reset_grad="detach")


@pytest.fixture(scope="module")
def session():
    from spikeforge.sim.verilator.uart_session import UartSession
    top = BoardTop(CONFIG, divisor=DIVISOR, idle_bits=IDLE_BITS, heartbeat_cycles=HEARTBEAT)
    with UartSession(top, name="board_top_uart", timeout_s=1.5) as s:
        yield s


def _network(seed):
    rng = np.random.default_rng(seed)
    weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
               for i, o in zip(SIZES[:-1], SIZES[1:])]
    spikes = rng.random((PARAMS.T, SIZES[0])) < 0.5
    return weights, spikes, int(rng.integers(SIZES[-1]))


def _train_one_sample(acc, seed):
    """Load a network, run one sample forward and backward, update; all checked."""
    weights, spikes, label = _network(seed)
    acc.load_network(SIZES, PARAMS, weights)
    got = acc.read_weights("W")
    for l, W in enumerate(weights):
        first_difference(f"layer {l} W loaded", got[l], W, kind="W")
    res = acc.run(spikes, label)
    traces = golden.forward(weights, spikes, PARAMS)
    counts = golden.spike_counts(traces[-1].s)
    assert list(res.counts) == list(counts)
    assert not res.nonfinite
    grads = golden.backward(weights, traces, spikes, label, PARAMS, golden.zero_grads(weights))
    got = acc.read_weights("dW")
    for l in range(len(weights)):
        first_difference(f"layer {l} dW", got[l], grads[l].dW, kind="W")
    acc.update()
    want = golden.update(weights, [gr.dW for gr in grads], PARAMS)
    got = acc.read_weights("W")
    for l in range(len(weights)):
        first_difference(f"layer {l} W after the update", got[l], want[l], kind="W")
    assert any(np.any(gr.dW != 0) for gr in grads), "a sample without gradient tests little"


def test_training_sample_over_the_uart(session):
    acc = Device(session.link)
    assert (acc.info.lanes, acc.info.max_payload) == (4, 1024)
    _train_one_sample(acc, 1)
    assert session.pins()["busy"] == 0 and session.pins()["error"] == 0


def test_flipped_bit_gives_bad_crc(session):
    link = session.link
    # the CRC byte of an INFO request (A5 20 00 00 crc: byte 4)
    session.fault("flip", 4, bit=3)
    assert link.request(Command.INFO).status == Status.BAD_CRC
    assert session.pins() == {**session.pins(), "busy": 0, "error": 1}
    # a payload byte of READ_COUNTERS (A5 2A 01 00 clear crc: byte 4)
    session.fault("flip", 4, bit=0)
    with pytest.raises(DeviceError) as err:
        link.transact(Command.READ_COUNTERS, b"\x00")
    assert err.value.status == Status.BAD_CRC
    assert len(link.transact(Command.INFO)) > 0
    assert session.pins()["error"] == 0


def test_dropped_byte_times_out_then_the_next_command_works(session):
    link = session.link
    for frame_byte, cmd, payload in ((4, Command.INFO, b""),             # the CRC byte
                                     (4, Command.READ_COUNTERS, b"\x00")):  # a payload byte
        session.fault("drop", frame_byte)
        with pytest.raises(TransportTimeout):
            link.request(cmd, payload, timeout_cycles=1000)
        assert session.pins()["busy"] == 0          # the idle line dropped the partial frame
        assert len(link.transact(Command.INFO)) > 0
    acc = Device(link)
    _train_one_sample(acc, 2)
    assert session.pins()["error"] == 0


def test_framing_error_lights_the_error_led_until_a_break(session):
    link = session.link
    session.fault("stop", 4)                        # the CRC byte of INFO: dropped by the UART
    with pytest.raises(TransportTimeout):
        link.request(Command.INFO, timeout_cycles=1000)
    assert len(link.transact(Command.INFO)) > 0
    assert session.pins()["error"] == 1             # framing errors stay lit until a reset
    link.reset()
    assert session.pins()["error"] == 0             # the break's own framing error included
    assert len(link.transact(Command.INFO)) > 0


def test_break_resets_the_device(session):
    acc = Device(session.link)
    weights, spikes, label = _network(3)
    acc.load_network(SIZES, PARAMS, weights)
    acc.load_spikes(spikes)
    session.link.reset()                            # a line break
    assert session.pins() == {**session.pins(), "busy": 0, "error": 0}
    for command in (acc.update, acc.run_loaded):     # the constants are gone with the reset
        with pytest.raises(DeviceError) as err:
            command()
        assert err.value.status == Status.BAD_STATE
    _train_one_sample(Device(session.link), 3)      # reloaded, it works


def test_heartbeat_toggles(session):
    seen = set()
    for _ in range(6):
        seen.add(session.pins()["heartbeat"])
        session.link.transact(Command.INFO)         # about 400 bit times: 3200 cycles
    assert seen == {0, 1}
