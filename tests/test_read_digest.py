"""READ_DIGEST: the device's CRC-32 of a layer's ``W`` / ``dW`` against a reference written
here from docs/host-protocol.md (a bitwise CRC-32 and the bank order spelled out in
loops, not the host's ``weights_digest``): the digest block alone (Amaranth simulator),
the host function, and the core on Verilator (``tiny``: 4 lanes), including padded
neuron groups holding stale words, a single changed word and the refused requests."""

import struct

import numpy as np
import pytest
from amaranth.sim import Simulator

from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
from spikeforge.hdl.config import preset
from spikeforge.hdl.core.digest import WordDigest
from spikeforge.hdl.protocol import Command, Status
from spikeforge.sim.engines.rtl import session_name
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import Device, weights_digest


def crc32_reference(data: bytes) -> int:
    """CRC-32 (IEEE 802.3 as zlib: reflected 0xEDB88320, preset ~0, final ~), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        for b in range(8):
            bit = (byte >> b) & 1
            crc = (crc >> 1) ^ (0xEDB88320 if (crc ^ bit) & 1 else 0)
    return crc ^ 0xFFFFFFFF


assert crc32_reference(b"123456789") == 0xCBF43926     # the standard check value


def digest_reference(W, P: int) -> int:
    """The documented walk: neuron group b, input j, bank k -> neuron b*P + (k - j) mod P,
    0x0000 past N_out; 16-bit little-endian words."""
    n_out, n_in = W.shape
    bits = np.asarray(W, dtype=np.float16).view(np.uint16)
    out = bytearray()
    for b in range(-(-n_out // P)):
        for j in range(n_in):
            for k in range(P):
                i = b * P + (k - j) % P
                out += struct.pack("<H", int(bits[i, j]) if i < n_out else 0)
    return crc32_reference(bytes(out))


def _random_f16(rng, shape):
    return rng.integers(0, 0x10000, size=shape, dtype=np.uint16).view(np.float16)


@pytest.mark.parametrize("shape,P", [((5, 3), 4), ((8, 7), 4), ((1, 1), 1), ((17, 9), 16)])
def test_host_digest_follows_the_documented_walk(shape, P):
    rng = np.random.default_rng(7)
    W = _random_f16(rng, shape)
    assert weights_digest(W, P) == digest_reference(W, P)
    # any one word changed changes it
    for _ in range(5):
        i, j = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        V = W.copy()
        V.view(np.uint16)[i, j] ^= np.uint16(1 << int(rng.integers(0, 16)))
        assert weights_digest(V, P) != weights_digest(W, P)


@pytest.mark.parametrize("P", [1, 4])
def test_digest_block_against_the_bitwise_crc(P):
    rng = np.random.default_rng(3 + P)
    rows = rng.integers(0, 0x10000, size=(9, P))
    masks = rng.integers(0, 1 << P, size=9)
    dut = WordDigest(words=P)
    got = {}

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for k in range(len(rows) + 1):          # a row per cycle; data one cycle late
            ctx.set(dut.en, int(k < len(rows)))
            ctx.set(dut.mask, int(masks[k]) if k < len(rows) else 0)
            if k:
                ctx.set(dut.data, [int(x) for x in rows[k - 1]])
            await ctx.tick()
        ctx.set(dut.en, 0)
        while ctx.get(dut.busy):
            await ctx.tick()
        got["value"] = ctx.get(dut.value)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = b"".join(struct.pack("<H", int(x) if (mk >> k) & 1 else 0)
                    for row, mk in zip(rows, masks) for k, x in enumerate(row))
    assert got["value"] == crc32_reference(want)


def one(digests):
    """The digests of a one-core device: one per layer."""
    assert all(len(d) == 1 for d in digests)
    return [d for (d,) in digests]


PARAMS = golden.Params(T=8, alpha=0.5, v_th=0.5, a=0.5, beta=1.0, lr=0.125, loss_scale=8.0,
                       reset_grad="detach")


@pytest.mark.verilator
@pytest.mark.parametrize("lanes", [4, 8])      # one part of banks per address, and two
def test_core_answers_the_digest_of_its_weights_and_gradients(lanes):
    from spikeforge.sim.verilator.session import rtl_session
    cfg = preset("tiny", lanes=lanes)
    P = cfg.features.lanes
    rng = np.random.default_rng(11)
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=300.0) as link:
        assert link.request(Command.READ_DIGEST, bytes([0, 0])).status == Status.BAD_ARGUMENT
        acc = Device(link)
        assert acc.has_digest
        # a wider network first: its words stay in the banks the next network pads
        big = [_random_f16(rng, (8, 11)), _random_f16(rng, (8, 8))]
        acc.load_network([11, 8, 8], PARAMS, big)
        assert one(acc.digests("W")) == [digest_reference(W, P) for W in big]
        sizes = [11, 7, 5]       # 7 and 5 neurons: the last group of each is padded
        weights = [(rng.uniform(-1, 1, size=(o, i)) / np.sqrt(i)).astype(np.float16)
                   for i, o in zip(sizes[:-1], sizes[1:])]
        acc.load_network(sizes, PARAMS, weights)
        assert one(acc.digests("W")) == [digest_reference(W, P) for W in weights]
        assert one(acc.digests("dW")) == [digest_reference(np.zeros_like(W), P) for W in weights]
        # after a training sample: dW as the device reads it back, and as the golden model
        spikes = rng.random((PARAMS.T, sizes[0])) < 0.4
        acc.run(spikes, 2)
        traces = golden.forward(weights, spikes, PARAMS)
        grads = golden.backward(weights, traces, spikes, 2, PARAMS, golden.zero_grads(weights))
        assert any(np.any(g.dW != 0) for g in grads)
        got = one(acc.digests("dW"))
        assert got == [digest_reference(W, P) for W in acc.read_weights("dW")]
        assert got == [digest_reference(g.dW, P) for g in grads]
        # one word changed: the digest follows it
        W1 = weights[1].copy()
        W1.view(np.uint16)[4, 6] ^= np.uint16(0x0001)
        link.transact(Command.WRITE_WEIGHTS, struct.pack("<BHH", 1, 4, 6) +
                      W1[4:5, 6].astype("<f2").tobytes())
        assert one(acc.digests("W"))[1] == digest_reference(W1, P) != digest_reference(weights[1], P)
        # refused: wrong size, an unknown kind, a layer not loaded
        for payload in (bytes([0]), bytes([0, 0, 0]), bytes([0, 2]), bytes([0, 255]),
                        bytes([2, 0]), bytes([255, 1])):
            assert link.request(Command.READ_DIGEST, payload).status == Status.BAD_ARGUMENT, \
                payload.hex()
        assert one(acc.digests("W"))[1] == digest_reference(W1, P)


@pytest.mark.verilator
@pytest.mark.parametrize("cores", [1, 2])
def test_a_wrong_gradient_is_found_by_its_digest_and_named_by_the_values(tmp_path, capsys,
                                                                         monkeypatch, cores):
    """One dW bit of the golden twin flipped in the second sample: the digests differ (on
    two cores, those of the layer's blocks), the values read back name layer, neuron and
    input."""
    import json
    from spikeforge.sim import cli
    real_backward, calls = golden.backward, []

    def backward_with_one_bit_flipped(*args, **kw):
        grads = real_backward(*args, **kw)
        calls.append(1)
        if len(calls) == 2:
            grads[1].dW.view(np.uint16)[3, 5] ^= 0x0100
        return grads

    monkeypatch.setattr(golden, "backward", backward_with_one_bit_flipped)
    out = tmp_path / "r.json"
    rc = cli.main(["train", "--engine", "rtl", "--preset", "tiny", "--hidden", "24", "--T", "8",
                   "--samples", "3", "--test-samples", "2", "--no-progress", "--json", str(out),
                   "--cores", str(cores)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("spikeforge train: sample 1: the core differs from the golden "
                              "model: layer 1 dW: first difference at neuron 3, input 5: "), err[-1]
    report = json.loads(out.read_text())
    assert report["check"] == "digest" and report["digest_checks"] >= 3
    assert report["mismatch"]["where"] == {"neuron": 3, "input": 5}
