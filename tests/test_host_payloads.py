"""The command payload layouts of hdl/protocol.py against the byte tables of
docs/host-protocol.md (little-endian; references built with ``struct`` here)."""

import struct

import numpy as np
import pytest

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import preset
from spikeforge.hdl.protocol import Command, pack, unpack
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import DeviceInfo, NetworkMap, plans


def _collect(plan):
    """Every (cmd, payload) a plan sends, answering each with enough zero bytes for any response (the counters)."""
    sent = []
    try:
        req = next(plan)
        while True:
            sent.append((int(req[0]), bytes(req[1])))
            req = plan.send(bytes(max(72, 4 * len(proto.COUNTERS))))
    except StopIteration:
        return sent


def test_layout_sizes_match_the_command_table():
    sizes = {proto.INFO: 21, proto.SET_CONSTANTS: 24, proto.SET_LAYER: 13,
             proto.WRITE_WEIGHTS: 5, proto.READ_WEIGHTS: 8, proto.LOAD_SPIKES: 2,
             proto.RUN: 3, proto.RUN_RESULT: 3, proto.READ_HISTORY: 7,
             proto.READ_GRADIENTS: 7, proto.READ_COUNTERS: 1, proto.READ_DIGEST: 2,
             proto.DIGEST_RESULT: 4}
    for layout, size in sizes.items():
        assert proto.nbytes(layout) == size


def test_configure_sends_the_documented_bytes():
    info = DeviceInfo.from_config(preset("digits"))
    netmap = NetworkMap.build([64, 128, 10], info)
    params = golden.Params(T=16, reset_grad="detach")
    sent = _collect(plans.configure(info, netmap, params))
    c = params.consts
    consts = np.array([c.alpha, c.v_th, c.lo, c.hi, c.beta, c.inv_T, c.gscale, c.neg_lr],
                      dtype=np.float16).view(np.uint16)
    want = struct.pack("<HBBI8H", 16, 2, 0, netmap.wcount, *consts)
    assert sent[0] == (Command.SET_CONSTANTS, want)
    for l, lm in enumerate(netmap.layers):
        assert sent[1 + l] == (Command.SET_LAYER, struct.pack(
            "<BHHHHI", l, lm.n_in, lm.n_out, lm.in_hg, lm.out_g, lm.wbase))


@pytest.mark.parametrize("label, want", [(None, b"\x00\x00\x00"), (7, b"\x01\x07\x00"),
                                         (300, b"\x01\x2c\x01")])
def test_run_request_bytes(label, want):
    assert _collect(plans.run(label)) == [(Command.RUN, want)]


def test_run_result_and_info_are_read_by_field():
    tail = unpack(proto.RUN_RESULT, b"\x34\x12\x01")
    assert (tail.prediction, tail.flags.nonfinite) == (0x1234, 1)
    raw = struct.pack("<BHHHBBBB", 1, 16, 256, 128, 16, 3, 0b101, 6) + \
        (70000).to_bytes(3, "little") + struct.pack("<HHHB", 8, 19, 1024, 18)
    info = DeviceInfo.parse(raw)
    assert (info.version, info.lanes, info.neurons_per_core, info.max_fan_in) == (1, 16, 256, 128)
    assert (info.max_time_steps, info.max_layers, info.fma_stages) == (16, 3, 6)
    assert info.modes == ("detach",) and info.inference_only is True
    assert (info.weight_depth, info.input_groups, info.neuron_groups) == (70000, 8, 19)
    assert (info.max_payload, info.counters) == (1024, 18)


def test_read_requests_bytes():
    info = DeviceInfo.from_config(preset("tiny"))
    assert _collect(plans.read_history(info, "nz", 3, 5, 4))[0][1] == \
        struct.pack("<BHHH", 2, 3, 0, 5)
    assert _collect(plans.read_counters(True))[0][1] == b"\x01"
    assert pack(proto.READ_WEIGHTS, {"layer": 1, "i": 2, "j": 3, "which": proto.WeightKind.DW,
                                     "count": 4}) == struct.pack("<BHHBH", 1, 2, 3, 1, 4)


def test_info_from_config_follows_the_config():
    info = DeviceInfo.from_config(preset("digits-through"))
    assert info.modes == ("detach", "through") and not info.inference_only
    assert info.max_payload == preset("digits").implementation.max_payload
    assert DeviceInfo.from_config(preset("inference")).inference_only


def test_read_digest_request_and_response_bytes():
    plan = plans.read_digest(2, proto.WeightKind.DW)
    assert next(plan) == (Command.READ_DIGEST, b"\x02\x01")
    assert Command.READ_DIGEST == 0x2E
    with pytest.raises(StopIteration) as stop:
        plan.send(struct.pack("<I", 0xCBF43926))
    assert stop.value.value == 0xCBF43926
