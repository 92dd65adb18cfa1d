"""One network split over the cores of a system (Verilator, two tiny cores): the
split-layer schedule of docs/multicore.md gives the golden model's bits after every
sample (dW of every layer, spikes, du) and after every update (W), on one core and on two,
so the weights are the same on both core counts; the phase commands refuse bad
arguments and keep the cores working."""

import numpy as np
import pytest

from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import (NO_LABEL, Command, GradientKind, HistoryKind, Phase,
                                     Status, pack)
from spikeforge.hdl import protocol as proto
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import CoreLink, plans
from spikeforge.sim.host.driver import DeviceError
from spikeforge.sim.host.split import SplitDevice

from test_system import _system_session

pytestmark = pytest.mark.verilator

CFG = preset("tiny", rows=1, cols=2)


def _net(rng, sizes):
    return [(rng.uniform(-1, 1, size=(o, i)) * 2.0 / np.sqrt(i)).astype(np.float16)
            for i, o in zip(sizes[:-1], sizes[1:])]


def _train(dev, sizes, params, weights, samples, labels, batch):
    """Train on ``dev`` and on the golden model side by side; every dW, spike and du
    history after every sample and W after every update must be equal."""
    dev.load_network(sizes, params, weights)
    W = [w.copy() for w in weights]
    dWs = golden.zero_grads(W)
    for k, (spikes, label) in enumerate(zip(samples, labels)):
        res = dev.run(spikes, int(label))
        traces = golden.forward(W, spikes, params)
        grads = golden.backward(W, traces, spikes, int(label), params, dWs)
        dWs = [gr.dW for gr in grads]
        assert not res.nonfinite
        assert list(res.counts) == list(golden.spike_counts(traces[-1].s)), k
        for l in range(len(W)):
            assert np.array_equal(dev.history(l, "s"), traces[l].s), (k, l)
            assert dev.du(l).tobytes() == grads[l].du.astype(np.float16).tobytes(), (k, l)
        got = dev.read_weights("dW")
        for l in range(len(W)):
            assert got[l].tobytes() == dWs[l].astype(np.float16).tobytes(), (k, l)
        if (k + 1) % batch == 0:
            dev.update()
            W = golden.update(W, dWs, params)
            dWs = golden.zero_grads(W)
            got = dev.read_weights("W")
            for l in range(len(W)):
                assert got[l].tobytes() == W[l].tobytes(), (k, l)
    return W


@pytest.mark.parametrize("reset_grad", ["detach"])
def test_split_layers_train_bit_exact_on_one_and_two_cores(reset_grad):
    rng = np.random.default_rng(11)
    # 48 hidden neurons: 24 + 24 on two cores; 10 outputs: 8 + 2 (the label's block and
    # the other); the output layer's input gradient is chained over both cores, whose
    # output blocks read the hidden spikes and window bits from their input groups
    sizes = (40, 48, 10)
    params = golden.Params(T=6, alpha=0.75, v_th=0.5, a=0.5, beta=1.0, lr=0.25,
                           loss_scale=8.0, reset_grad=reset_grad)
    weights = _net(rng, sizes)
    samples = [rng.random((params.T, sizes[0])) < 0.35 for _ in range(4)]
    labels = rng.integers(0, sizes[-1], size=4)
    with _system_session(CFG) as link:
        finals = []
        # the input gradient staged in chunks of 2 steps (the default for two blocks and
        # T = 6), in chunks of 4 and 2, and unstaged (one core after the other); one core
        for cores, steps in ((2, None), (2, 4), (2, 0), (1, None)):
            dev = SplitDevice(link, CFG, cores=cores, gin_steps=steps)
            finals.append(_train(dev, sizes, params, weights, samples, labels, batch=2))
            if cores == 2:
                # the hidden and output layers really are split over both cores
                assert [len(b) for b in dev.mapping.layers] == [2, 2]
                assert dev.compute_cycles > 0 and dev.transfer_cycles > 0
        for other in finals[1:]:
            for a, b in zip(finals[0], other):
                assert a.tobytes() == b.tobytes()


def test_phase_commands_refuse_bad_arguments():
    with _system_session(CFG) as link:
        core = CoreLink(link, 1)

        def status(cmd, payload):
            try:
                core.transact(cmd, payload)
            except DeviceError as err:
                return err.status
            return Status.OK

        run = lambda phase, entry, label=NO_LABEL, cont=0: pack(proto.RUN_PHASE, {  # noqa: E731
            "phase": phase, "entry": entry, "label": label, "cont": cont, "stage": 0,
            "steps": 0})
        # before any network: the state is wrong
        assert status(Command.RUN_PHASE, run(Phase.FORWARD, 0)) == Status.BAD_STATE
        dev = SplitDevice(link, CFG, cores=2)
        params = golden.Params(T=4)
        dev.load_network((16, 12, 6), params, _net(np.random.default_rng(1), (16, 12, 6)))
        bad = [
            (Command.RUN_PHASE, run(Phase.FORWARD, 2)),                  # no such entry
            (Command.RUN_PHASE, bytes([Phase.WEIGHT_GRAD.value + 1]) +     # no such phase
             run(Phase.FORWARD, 0)[1:]),
            (Command.RUN_PHASE, run(Phase.INPUT_GRAD, 1, cont=2)),
            (Command.RUN_PHASE, run(Phase.LOSS, 1, label=3)),           # core 1 holds 2 outputs
            (Command.RUN_PHASE, run(Phase.FORWARD, 0)[:-1]),
            (Command.WRITE_GRADIENTS, pack(proto.WRITE_GRADIENTS, {
                "which": GradientKind.DU, "group": 0, "first": 0, "count": 1}) + bytes(8)),
            (Command.WRITE_GRADIENTS, pack(proto.WRITE_GRADIENTS, {          # count * T words
                "which": GradientKind.ACC, "group": 0, "first": 0, "count": 2}) + bytes(8)),
            (Command.WRITE_GRADIENTS, pack(proto.WRITE_GRADIENTS, {          # past the groups
                "which": GradientKind.ACC, "group": 64, "first": 0, "count": 1}) + bytes(8)),
            (Command.LOAD_HISTORY, pack(proto.LOAD_HISTORY, {
                "which": HistoryKind.NONZERO, "first": 0}) + bytes(2)),
            (Command.LOAD_HISTORY, pack(proto.LOAD_HISTORY, {
                "which": HistoryKind.WINDOW, "first": 64}) + bytes(2)),
        ]
        for cmd, payload in bad:
            assert status(cmd, payload) == Status.BAD_ARGUMENT, (cmd, payload.hex())
        # the label of the block that holds it, and a block without it, are fine
        assert status(Command.RUN_PHASE, run(Phase.FORWARD, 0)) == Status.OK
        assert status(Command.RUN_PHASE, run(Phase.FORWARD, 1)) == Status.OK
        assert status(Command.RUN_PHASE, run(Phase.LOSS, 1, label=1)) == Status.OK
        assert status(Command.RUN_PHASE, run(Phase.LOSS, 1)) == Status.OK
        # accumulators written by the host read back as written, the rest as +0
        vals = np.arange(1, 9, dtype=np.float16).reshape(4, 2)       # (T, 2 neurons)
        dev._do(1, plans.write_acc(dev.info, vals, group=1))
        got = dev._do(1, plans.read_gradients(dev.info, GradientKind.ACC, 1, 3, 4))
        assert got[:, :2].tobytes() == vals.tobytes()
        assert got[:, 2].view(np.uint16).tolist() == [0] * 4
        # the input gradient from +0 resets every accumulator flag (no du != 0 was
        # computed on this core yet, so it writes none)
        assert status(Command.RUN_PHASE, run(Phase.INPUT_GRAD, 1)) == Status.OK
        got = dev._do(1, plans.read_gradients(dev.info, GradientKind.ACC, 1, 3, 4))
        assert not got.any()
