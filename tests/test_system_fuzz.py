"""Random frames against two real tiny cores behind the system top on Verilator: every
frame gets exactly one response with the status docs/host-protocol.md allows, nothing
hangs, a reset in the middle of a run leaves the system usable, and the next training
sample on both cores is still bit-exact against the golden model. The seed is printed
(and is the test's parameter) so a failure can be replayed. 1,000 frames in CI;
``SPIKEFORGE_FUZZ_FRAMES=10000`` for the long run."""

import hashlib
import os
import random

import numpy as np
import pytest

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import AddressMode, Command, Status, crc8
from spikeforge.hdl.system import System
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import DeviceInfo, SystemDevice, parse_records, plans
from spikeforge.sim.host.driver import TransportTimeout, encode_request, split_responses

pytestmark = pytest.mark.verilator

CORE_CMDS = [int(c) for c in Command if c != Command.ROUTE]
ALLOWED = {Status.OK, Status.BAD_ARGUMENT, Status.BAD_STATE}    # a known command on a core
CFG = preset("tiny", rows=1, cols=2)
NCORES = 2
#: Frames of the fuzz run (25 per exchange); SPIKEFORGE_FUZZ_FRAMES=10000 for a long run.
FRAMES = int(os.environ.get("SPIKEFORGE_FUZZ_FRAMES", "1000"))


def _random_frame(rng, max_payload):
    """(frame bytes, check) for one random request; ``check(response)`` raises unless
    the response is one the protocol allows for it."""
    inner = rng.choice(CORE_CMDS + [0x00, 0x13, 0x2F, 0x31, 0xFF])
    n = rng.choice([0, 1, 2, 3, 5, 7, 8, 13, 24, rng.randrange(0, 60)])
    body = bytes(rng.randrange(256) for _ in range(n))
    known = inner in CORE_CMDS

    def core_status_ok(status):
        return status in ALLOWED if known else status == Status.UNKNOWN_COMMAND

    routed = rng.random() < 0.8
    if not routed:
        cmd, payload = inner, body

        def check(r):
            assert core_status_ok(r.status) or r.status == Status.BAD_LENGTH, r
    else:
        cmd = Command.ROUTE
        mode = rng.choice([AddressMode.CORE, AddressMode.ALL, AddressMode.RANGE, 5])
        first, count = rng.randrange(0, NCORES + 2), rng.randrange(0, NCORES + 2)
        addr = proto.pack(proto.ADDRESS, {"mode": mode, "first": first, "count": count}) \
            if mode != 5 else bytes([5, first, 0, count, 0])
        short = rng.random() < 0.05
        payload = addr[:rng.randrange(0, len(addr) + 1)] if short else addr + bytes([inner]) + body
        bad = short or mode == 5 or (mode == AddressMode.CORE and first >= NCORES) or \
            (mode == AddressMode.RANGE and (count == 0 or first + count > NCORES))
        cores = (NCORES if mode == AddressMode.ALL else count)

        def check(r):
            if bad:
                assert r.status == Status.BAD_ARGUMENT and r.payload == b"", r
            elif mode == AddressMode.CORE:
                assert core_status_ok(r.status) or r.status == Status.BAD_LENGTH, r
            elif r.status != Status.BAD_LENGTH:
                assert r.status == Status.OK, r
                for status, _ in parse_records(r.payload, cores):
                    assert core_status_ok(status), (r, status)
    frame = bytearray(encode_request(cmd, payload))
    if rng.random() < 0.08:
        frame[-1] ^= 1 << rng.randrange(8)

        def check(r):       # noqa: F811 - a wrong CRC: never executed
            assert r.status == Status.BAD_CRC and r.payload == b"", r
    if rng.random() < 0.2:   # garbage before the frame (never the sync byte)
        frame = bytes(rng.choice([b for b in range(256) if b != 0xA5])
                      for _ in range(rng.randrange(1, 5))) + bytes(frame)
    return bytes(frame), cmd, check


def _train_sample_is_bit_exact(sd, rng):
    params = golden.Params(T=5, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125,
                           loss_scale=8.0, reset_grad="detach")
    sizes = (16, 12, 5)
    for d in sd.core:
        weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
                   for i, o in zip(sizes[:-1], sizes[1:])]
        spikes = rng.random((params.T, sizes[0])) < 0.4
        label = int(rng.integers(sizes[-1]))
        d.load_network(sizes, params, weights)
        d.read_weights("dW")
        res = d.run(spikes, label)
        traces = golden.forward(weights, spikes, params)
        assert list(res.counts) == list(golden.spike_counts(traces[-1].s))
        grads = golden.backward(weights, traces, spikes, label, params)
        for got, gr in zip(d.read_weights("dW"), grads):
            assert got.view(np.uint16).tobytes() == gr.dW.view(np.uint16).tobytes()


@pytest.mark.parametrize("seed", [2026])
def test_random_frames_on_two_cores(seed, capsys):
    from spikeforge.sim.verilator.session import rtl_session
    print(f"fuzz seed {seed}")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    name = "system_" + hashlib.sha256(CFG.to_json().encode()).hexdigest()[:8]
    with rtl_session(System(CFG), name=name, ports_only=True, wall_timeout_s=600.0) as link:
        sd = SystemDevice(link, NCORES)
        info = DeviceInfo.from_config(CFG)
        _train_sample_is_bit_exact(sd, nrng)
        frames = 0
        for batch in range(-(-FRAMES // 25)):
            items = [_random_frame(rng, info.max_payload) for _ in range(25)]
            data = b"".join(f for f, _, _ in items)
            out, _ = link.transport.exchange(data, len(items), 5_000_000)
            responses, rest = split_responses(out)
            assert rest == b"" and len(responses) == len(items), (seed, batch)
            for i, ((_, cmd, check), r) in enumerate(zip(items, responses)):
                assert r.cmd == cmd, (seed, batch, i)
                check(r)
            frames += len(items)
        assert frames >= FRAMES
        # a reset in the middle of a run: the system answers again afterwards
        d0 = sd.core[0]
        with pytest.raises(TransportTimeout):
            link.transact(Command.ROUTE, bytes(proto.pack(proto.ADDRESS, {
                "mode": AddressMode.ALL, "first": 0, "count": 0})) + bytes([Command.RUN]) +
                proto.pack(proto.RUN, {"mode": proto.RunMode.TRAIN, "label": 1}),
                timeout_cycles=40)
        link.reset()
        assert [d._do(plans.info()) for d in sd.core] == [info, info]
        _train_sample_is_bit_exact(sd, nrng)
        assert d0.info == info
