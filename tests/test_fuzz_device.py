"""Faults and bad input on the one-core accelerator (Verilator, ``tiny`` preset).

At least 10,000 request frames, in batches of one exchange each: garbage between
frames, unknown commands, wrong CRCs (in the CRC byte or a payload byte, on commands
that would change the state), declared lengths above ``max_payload`` (then
``len + 1`` discarded bytes holding sync bytes and complete-looking frames), frames
the host gave up on and completed with filler, wrong payload sizes, values out of
range (layer, neuron, count, kind fields), commands in the wrong state (a run or an
update before any network is loaded), an update with nothing accumulated and valid
reads. The expected answer of every frame is written here from the rules of
docs/host-protocol.md (frames are encoded with this file's own CRC-8 and field
packing, not the driver's): exactly one response per request, in order, with the
status, the cmd echo and, for errors, an empty payload; garbage outside frames gets
none. Between batches a training sample runs and must equal the golden model bit
for bit (dW, then W after the update): nothing the rejected frames carried changed
the device. Then a reset in the middle of a sample and one in the middle of a frame:
the device must come back unconfigured and train bit-exact after reloading.

The seed is printed (``-s`` or on failure); replay with ``SPIKEFORGE_FUZZ_SEED=N``
(``SPIKEFORGE_FUZZ_FRAMES`` changes the number of frames).
"""

import os
import struct
import zlib

import numpy as np
import pytest

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.sim.engines.compare import first_difference
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device
from spikeforge.sim.host.driver import split_responses

pytestmark = pytest.mark.verilator

SEED = int(os.environ.get("SPIKEFORGE_FUZZ_SEED", "20261201"))
FRAMES = int(os.environ.get("SPIKEFORGE_FUZZ_FRAMES", "10000"))
PER_EXCHANGE = 50           # request frames per exchange
TRAIN_EVERY = 40            # exchanges between two training samples

# The protocol as docs/host-protocol.md writes it.
REQ_SYNC, RSP_SYNC = 0xA5, 0x5A
OK, BAD_CRC, BAD_LENGTH, UNKNOWN_COMMAND, BAD_ARGUMENT, BAD_STATE = range(6)
INFO, SET_CONSTANTS, SET_LAYER, WRITE_WEIGHTS, READ_WEIGHTS, LOAD_SPIKES, RUN, UPDATE, \
    READ_HISTORY, READ_GRADIENTS, READ_COUNTERS, WRITE_GRADIENTS, LOAD_HISTORY, \
    RUN_PHASE, READ_DIGEST = range(0x20, 0x2F)
COMMANDS = set(range(0x20, 0x2F))
# fixed payload sizes of the command table (bytes)
SIZE = {INFO: 0, SET_CONSTANTS: 2 + 1 + 1 + 4 + 8 * 2, SET_LAYER: 1 + 2 + 2 + 2 + 2 + 4,
        READ_WEIGHTS: 1 + 2 + 2 + 1 + 2, RUN: 1 + 2, UPDATE: 0, READ_HISTORY: 1 + 2 + 2 + 2,
        READ_GRADIENTS: 1 + 2 + 2 + 2, READ_COUNTERS: 1, RUN_PHASE: 1 + 1 + 2 + 1 + 1 + 1,
        READ_DIGEST: 1 + 1}
WW_HEADER, LS_HEADER = 1 + 2 + 2, 2


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial 0, no reflection, no final xor (bitwise)."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


assert crc8(b"123456789") == 0xF4


def frame(cmd: int, payload: bytes = b"", *, crc_xor: int = 0, length: int | None = None) -> bytes:
    body = bytes([cmd]) + struct.pack("<H", len(payload) if length is None else length) + payload
    return bytes([REQ_SYNC]) + body + bytes([crc8(body) ^ crc_xor])


class Expect:
    """One expected response: status, cmd echo, and the payload (bytes), its length (int)
    or ``None`` (not checked)."""

    def __init__(self, status, cmd, payload=b""):
        self.status, self.cmd, self.payload = status, cmd, payload

    def check(self, got, where):
        assert (got.status, got.cmd) == (self.status, self.cmd), \
            f"{where}: status 0x{got.status:02X} cmd 0x{got.cmd:02X}, expected " \
            f"status 0x{self.status:02X} cmd 0x{self.cmd:02X}"
        if isinstance(self.payload, bytes):
            assert got.payload == self.payload, f"{where}: payload {got.payload[:16].hex()}..."
        elif isinstance(self.payload, int):
            assert len(got.payload) == self.payload, f"{where}: {len(got.payload)} payload bytes"


class Fuzzer:
    """Generates frames and their expected answers from the documented rules."""

    def __init__(self, rng, cfg, max_payload, info_payload):
        self.rng = rng
        self.f = cfg.features
        self.P = self.f.lanes
        self.max_payload = max_payload
        self.info_payload = info_payload
        self.net = None          # (sizes, T, weights) once a network is loaded

    def garbage(self, n=None):
        n = int(self.rng.integers(1, 24)) if n is None else n
        b = self.rng.integers(0, 255, size=n, dtype=np.uint8)
        b[b >= REQ_SYNC] += 1              # anything but a sync byte: ignored
        return bytes(b)

    def rand(self, n):
        return bytes(self.rng.integers(0, 256, size=n, dtype=np.uint8))

    def valid_request(self):
        """A well-formed request that would change the state if it were executed."""
        r = int(self.rng.integers(0, 5))
        if r == 0:
            return WRITE_WEIGHTS, struct.pack("<BHH", 0, 0, 0) + self.rand(2 * int(
                self.rng.integers(1, 20)))
        if r == 1:
            return SET_CONSTANTS, struct.pack("<HBBI", 2, 1, 0, 8) + self.rand(16)
        if r == 2:
            return SET_LAYER, struct.pack("<BHHHHI", 0, 3, 3, 0, 0, 0)
        if r == 3:
            return RUN, struct.pack("<BH", 1, 0)
        return UPDATE, b""

    def one(self):
        """(bytes, [Expect]) of one request frame (plus garbage before it)."""
        rng = self.rng
        pre = self.garbage() if rng.random() < 0.3 else b""
        kind = rng.choice(["unknown", "crc", "long", "gaveup", "size", "range", "state",
                           "read"], p=[0.12, 0.14, 0.02, 0.08, 0.2, 0.24, 0.08, 0.12])
        if kind == "unknown":
            cmd = int(rng.choice([c for c in range(256) if c not in COMMANDS]))
            return pre + frame(cmd, self.rand(int(rng.integers(0, 24)))), \
                [Expect(UNKNOWN_COMMAND, cmd)]
        if kind == "crc":
            cmd, payload = self.valid_request()
            f = bytearray(frame(cmd, payload))
            if payload and rng.random() < 0.5:
                f[4 + int(rng.integers(0, len(payload)))] ^= int(rng.integers(1, 256))
            else:
                f[-1] ^= int(rng.integers(1, 256))
            return pre + bytes(f), [Expect(BAD_CRC, cmd)]
        if kind == "long":
            cmd, payload = self.valid_request()
            n = self.max_payload + int(rng.integers(1, 300))
            # the discarded bytes hold sync bytes and a complete, valid-looking frame
            junk = bytearray(self.rand(n + 1))
            inner = frame(cmd, payload)
            at = int(rng.integers(0, n + 1 - len(inner))) if n + 1 > len(inner) else 0
            junk[at:at + len(inner)] = inner
            junk[0] = REQ_SYNC
            return pre + frame(cmd, b"", length=n)[:4] + bytes(junk[:n + 1]), \
                [Expect(BAD_LENGTH, cmd)]
        if kind == "gaveup":
            # cut after the header, completed with filler and a CRC that cannot match
            cmd, payload = self.valid_request()
            if not payload:
                payload = b"\x00"
            f = frame(cmd, payload)
            cut = int(rng.integers(4, 4 + len(payload)))
            filler = self.rand(4 + len(payload) - cut)
            body = f[1:cut] + filler
            return pre + bytes([REQ_SYNC]) + body + bytes([crc8(body) ^ 0xFF]), \
                [Expect(BAD_CRC, cmd)]
        if kind == "size":
            cmd = int(rng.choice(sorted(SIZE)))
            n = int(rng.integers(0, 30))
            if n == SIZE[cmd]:
                n += 1
            return pre + frame(cmd, self.rand(n)), [Expect(BAD_ARGUMENT, cmd)]
        if kind == "range":
            cmd, payload = self.out_of_range()
            return pre + frame(cmd, payload), [Expect(BAD_ARGUMENT, cmd)]
        if kind == "state":
            if self.net is None:
                # a run, a phase or an update before any network is loaded
                if rng.random() < 0.3:
                    return pre + frame(RUN_PHASE, struct.pack(
                        "<BBHBBB", int(rng.integers(0, 5)), int(rng.integers(0, 256)),
                        int(rng.integers(0, 0x10000)), int(rng.integers(0, 2)),
                        int(rng.integers(0, 256)), int(rng.integers(0, 256)))), \
                        [Expect(BAD_STATE, RUN_PHASE)]
                if rng.random() < 0.5:
                    return pre + frame(UPDATE), [Expect(BAD_STATE, UPDATE)]
                return pre + frame(RUN, struct.pack("<BH", int(rng.integers(0, 2)),
                                                    int(rng.integers(0, 4)))), \
                    [Expect(BAD_STATE, RUN)]
            # an update with nothing accumulated: done, the weights stay (checked later)
            return pre + frame(UPDATE), [Expect(OK, UPDATE)]
        return self.read(pre)

    def out_of_range(self):
        rng, f, P = self.rng, self.f, self.P
        layers = 0 if self.net is None else len(self.net[0]) - 1
        sizes = self.net[0] if self.net else None
        r = int(rng.integers(0, 16))
        if r == 0:      # a layer that is not loaded
            return READ_WEIGHTS, struct.pack("<BHHBH", int(rng.integers(layers, 256)), 0, 0,
                                             int(rng.integers(0, 2)), 1)
        if r == 1:      # a layer that is not loaded (writes change nothing)
            return WRITE_WEIGHTS, struct.pack("<BHH", int(rng.integers(layers, 256)), 0, 0) + \
                self.rand(8)
        if r == 2:      # count 0 or more than a payload holds
            return READ_WEIGHTS, struct.pack("<BHHBH", 0, 0, 0, 0, int(rng.choice(
                [0, self.max_payload // 2 + 1, 0xFFFF])))
        if r == 3:      # an unknown weight kind
            return READ_WEIGHTS, struct.pack("<BHHBH", 0, 0, 0, int(rng.integers(2, 256)), 1)
        if r == 4 and sizes:    # a neuron past the layer / a read past its end
            n_out, n_in = sizes[1], sizes[0]
            if rng.random() < 0.5:
                return READ_WEIGHTS, struct.pack("<BHHBH", 0, int(rng.integers(n_out, 0x10000)),
                                                 0, 0, 1)
            return READ_WEIGHTS, struct.pack("<BHHBH", 0, n_out - 1, n_in - 1, 0, 2)
        if r == 5:      # a layer past the built maximum
            return SET_LAYER, struct.pack("<BHHHHI", int(rng.integers(f.max_layers, 256)), 3,
                                          3, 0, 0, 0)
        if r == 6:      # fan-in or neurons out of range
            n_in, n_out = (0, 3) if rng.random() < 0.3 else (f.max_fan_in + 1, 3) \
                if rng.random() < 0.5 else (3, f.neurons_per_core + 1)
            return SET_LAYER, struct.pack("<BHHHHI", 0, n_in, n_out, 0, 0, 0)
        if r == 7:      # T or layers out of range, or a reset_grad mode not built
            T, L, mode = [(0, 1, 0), (f.max_time_steps + 1, 1, 0), (2, 0, 0),
                          (2, f.max_layers + 1, 0), (2, 1, 1 + int(rng.integers(0, 255)))][
                int(rng.integers(0, 5))]
            if mode == 1 and "through" in f.reset_grad_modes:
                mode = 2
            return SET_CONSTANTS, struct.pack("<HBBI", T, L, mode, 8) + self.rand(16)
        if r == 8:      # an unknown run mode, or a label past the output layer
            if sizes and rng.random() < 0.5:
                return RUN, struct.pack("<BH", 1, int(rng.integers(sizes[-1], 0x10000)))
            return RUN, struct.pack("<BH", int(rng.integers(2, 256)), 0)
        if r == 9:      # an unknown history kind, count 0, or past the history
            which, count, first = [(int(rng.integers(3, 256)), 1, 0), (0, 0, 0),
                                   (0, self.max_payload // 2 + 1, 0),
                                   (0, 2, 0xFFFF)][int(rng.integers(0, 4))]
            return READ_HISTORY, struct.pack("<BHHH", which, 0, first, count)
        if r == 10:     # an unknown gradient kind (u needs a through build), count 0
            which = 1 if "through" not in f.reset_grad_modes else int(rng.integers(2, 256))
            which, count = [(which, 1), (0, 0)][int(rng.integers(0, 2))]
            return READ_GRADIENTS, struct.pack("<BHHH", which, 0, 0, count)
        if r == 12:     # an unknown phase, or cont past 1; with a network, an entry past it
            # or a loss label past the entry's neurons
            phase, entry, label, cont = [(int(rng.integers(5, 256)), 0, 0, 0),
                                         (0, 0, 0, int(rng.integers(2, 256)))][
                int(rng.integers(0, 2))]
            if sizes and rng.random() < 0.5:
                phase, entry, label, cont = [(0, int(rng.integers(layers, 256)), 0, 0),
                                             (1, layers - 1, int(rng.integers(sizes[-1],
                                                                              0xFFFF)), 0)][
                    int(rng.integers(0, 2))]
            return RUN_PHASE, struct.pack("<BBHBBB", phase, entry, label, cont,
                                          int(rng.integers(0, 256)), int(rng.integers(0, 256)))
        if r == 13:     # WRITE_GRADIENTS: a kind other than acc, or count * T != the values
            which, count, values = [(int(rng.choice([0, 1, 3, 255])), 1, 16),
                                    (2, 0, 2), (2, 1, 16 + 1)][int(rng.integers(0, 3))]
            T = self.net[1] if self.net else 1
            if which == 2 and count == 1:
                values = T + 1
            return WRITE_GRADIENTS, struct.pack("<BHHH", which, 0, 0, count) + \
                self.rand(2 * values)
        if r == 14:     # LOAD_HISTORY: a kind other than spikes and window, or past the inputs
            if rng.random() < 0.5:
                return LOAD_HISTORY, struct.pack("<BH", int(rng.integers(2, 256)), 0) + \
                    self.rand(2)
            inputs = -(-f.max_fan_in // P) * P          # the input groups' neurons
            return LOAD_HISTORY, struct.pack("<BH", int(rng.integers(0, 2)),
                                             inputs) + self.rand(2)
        if r == 15:     # READ_DIGEST: a layer not loaded, or an unknown weight kind
            if rng.random() < 0.5:
                return READ_DIGEST, bytes([int(rng.integers(layers, 256)),
                                           int(rng.integers(0, 2))])
            return READ_DIGEST, bytes([0, int(rng.integers(2, 256))])
        return READ_COUNTERS, bytes([int(rng.integers(2, 256))])

    def read(self, pre):
        """A valid read: the answer's payload is known (INFO, weights) or its length."""
        rng = self.rng
        r = int(rng.integers(0, 5))
        if r == 4 and self.net is not None:
            # READ_DIGEST: CRC-32 of the words in bank order (W; dW is +0 between samples)
            sizes, T, weights = self.net
            l = int(rng.integers(0, len(weights)))
            which = int(rng.integers(0, 2))
            W = weights[l].view(np.uint16)
            n_out, n_in = W.shape
            words = [int(W[b * self.P + (k - j) % self.P, j])
                     if b * self.P + (k - j) % self.P < n_out and which == 0 else 0
                     for b in range(-(-n_out // self.P)) for j in range(n_in)
                     for k in range(self.P)]
            want = struct.pack("<I", zlib.crc32(struct.pack(f"<{len(words)}H", *words)))
            return pre + frame(READ_DIGEST, bytes([l, which])), [Expect(OK, READ_DIGEST, want)]
        if r == 0:
            return pre + frame(INFO), [Expect(OK, INFO, self.info_payload)]
        if r == 1:
            return pre + frame(READ_COUNTERS, b"\x00"), [Expect(OK, READ_COUNTERS, None)]
        if r == 2 or self.net is None:
            count = int(rng.integers(1, 9))
            return pre + frame(READ_HISTORY, struct.pack("<BHHH", int(rng.integers(0, 3)), 0,
                                                         0, count)), \
                [Expect(OK, READ_HISTORY, 2 * count)]
        sizes, T, weights = self.net
        l = int(rng.integers(0, len(weights)))
        W = weights[l].reshape(-1)
        start = int(rng.integers(0, W.size))
        count = int(rng.integers(1, min(W.size - start, self.max_payload // 2) + 1))
        i, j = divmod(start, sizes[l])
        want = W[start:start + count].astype("<f2").tobytes()
        return pre + frame(READ_WEIGHTS, struct.pack("<BHHBH", l, i, j, 0, count)), \
            [Expect(OK, READ_WEIGHTS, want)]

    def batch(self, n):
        data, expect = bytearray(), []
        for _ in range(n):
            b, e = self.one()
            data += b
            expect += e
        if self.rng.random() < 0.5:
            data += self.garbage()
        return bytes(data), expect


def _exchange(link, data, expect, where):
    got, _ = link.transport.exchange(data, len(expect), 200_000 + 20 * len(data))
    frames, rest = split_responses(got)
    assert rest == b"", f"{where}: {len(rest)} bytes after the last response"
    assert len(frames) == len(expect), f"{where}: {len(frames)} responses to {len(expect)} requests"
    for k, (resp, e) in enumerate(zip(frames, expect)):
        e.check(resp, f"{where}, response {k}")


PARAMS = golden.Params(T=8, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125, loss_scale=8.0,
                       reset_grad="detach")
SIZES = [16, 12, 5]


class Twin:
    """The golden model's weights next to the device; one training sample checked."""

    def __init__(self, acc, rng):
        self.acc, self.rng = acc, rng
        self.weights = [(rng.uniform(-1, 1, size=(o, i)) * 1.5 / np.sqrt(i)).astype(np.float16)
                        for i, o in zip(SIZES[:-1], SIZES[1:])]
        self.load()

    def load(self):
        self.acc.load_network(SIZES, PARAMS, self.weights)
        self.check_weights("after loading")

    def check_weights(self, when):
        for l, W in enumerate(self.acc.read_weights("W")):
            first_difference(f"layer {l} W {when}", W, self.weights[l], kind="W")

    def spikes(self):
        return self.rng.random((PARAMS.T, SIZES[0])) < 0.3, int(self.rng.integers(0, SIZES[-1]))

    def sample(self, where):
        spikes, label = self.spikes()
        res = self.acc.run(spikes, label)
        traces = golden.forward(self.weights, spikes, PARAMS)
        assert list(res.counts) == list(golden.spike_counts(traces[-1].s)), \
            f"{where}: output spike counts"
        grads = golden.backward(self.weights, traces, spikes, label, PARAMS,
                                golden.zero_grads(self.weights))
        for l, dW in enumerate(self.acc.read_weights("dW")):
            first_difference(f"{where}: layer {l} dW", dW, grads[l].dW, kind="W")
        self.acc.update()
        self.weights = golden.update(self.weights, [g.dW for g in grads], PARAMS)
        self.check_weights(f"{where}: after the update")

    def empty_update(self):
        self.weights = golden.update(self.weights, golden.zero_grads(self.weights), PARAMS)


@pytest.fixture(scope="module")
def device():
    from spikeforge.sim.verilator.session import rtl_session
    cfg = preset("tiny")
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=300.0) as link:
        yield cfg, link


def test_fuzzed_frames_are_answered_as_documented_and_training_stays_bit_exact(device):
    cfg, link = device
    print(f"fuzz seed {SEED} ({FRAMES} frames); replay with SPIKEFORGE_FUZZ_SEED={SEED}")
    rng = np.random.default_rng(SEED)
    for cmd, layout in ((SET_CONSTANTS, proto.SET_CONSTANTS), (SET_LAYER, proto.SET_LAYER),
                        (READ_WEIGHTS, proto.READ_WEIGHTS), (RUN, proto.RUN),
                        (READ_HISTORY, proto.READ_HISTORY), (READ_COUNTERS, proto.READ_COUNTERS),
                        (READ_DIGEST, proto.READ_DIGEST)):
        assert SIZE[cmd] == proto.nbytes(layout), f"payload size of 0x{cmd:02X}"
    link.reset()
    info = link.transact(INFO)
    fz = Fuzzer(rng, cfg, cfg.implementation.max_payload, info)
    sent = 0
    # 1. nothing loaded yet: runs and updates are in the wrong state
    for k in range(4):
        data, expect = fz.batch(PER_EXCHANGE)
        _exchange(link, data, expect, f"seed {SEED}, before loading, exchange {k}")
        sent += PER_EXCHANGE
    # 2. a network loaded and trained; the fuzzed frames must change nothing
    acc = Device(link)
    twin = Twin(acc, rng)
    fz.net = (SIZES, PARAMS.T, twin.weights)
    twin.sample(f"seed {SEED}, first sample")
    k = 0
    while sent < FRAMES:
        fz.net = (SIZES, PARAMS.T, twin.weights)
        data, expect = fz.batch(PER_EXCHANGE)
        _exchange(link, data, expect, f"seed {SEED}, exchange {k}")
        for e in expect:
            if (e.cmd, e.status) == (UPDATE, OK):
                twin.empty_update()
        sent += PER_EXCHANGE
        k += 1
        if k % TRAIN_EVERY == 0:
            twin.sample(f"seed {SEED}, sample after exchange {k}")
    twin.sample(f"seed {SEED}, sample after {sent} fuzzed frames")
    assert sent >= 10_000 or FRAMES < 10_000


def test_reset_in_the_middle_of_a_sample_or_frame_leaves_the_device_usable(device):
    cfg, link = device
    rng = np.random.default_rng(SEED + 1)
    print(f"reset seed {SEED + 1}")
    link.reset()
    acc = Device(link)
    twin = Twin(acc, rng)
    twin.sample("before the reset")
    # a training run started, reset while it computes
    spikes, label = twin.spikes()
    acc.load_spikes(spikes)
    data, _ = link.transport.exchange(frame(RUN, struct.pack("<BH", 1, label)), 0, 1000)
    assert data == b""
    link.reset()
    # back to the state after power-up: no network
    _exchange(link, frame(RUN, struct.pack("<BH", 1, 0)), [Expect(BAD_STATE, RUN)],
              "a run right after the reset")
    twin.load()
    twin.sample("after a reset in the middle of a sample")
    # half a frame, then a reset
    f = frame(WRITE_WEIGHTS, struct.pack("<BHH", 0, 0, 0) + bytes(8))
    data, _ = link.transport.exchange(f[:9], 0, 1000)
    assert data == b""
    link.reset()
    twin.load()
    twin.sample("after a reset in the middle of a frame")
