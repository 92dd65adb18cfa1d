"""Host API of the integer inference core (SPEC section 8, ``hdl/inference``).

:class:`InferenceDevice` checks that an :class:`~spikeforge.sim.golden.integer.IntNetwork`
fits the core (:func:`plan_network`: one sentence with the numbers when it does
not), loads it (network settings, layer table, packed weights, biases) and runs
samples: input bitmaps in, the last layer's spike counts or final potentials out,
with the run's busy cycles and SOPs. Every payload is packed with ``Layout.const``
(:func:`spikeforge.hdl.protocol.pack`) and read with ``Layout.from_bits``
(:func:`~spikeforge.hdl.protocol.unpack`); weights are packed ``16 // B`` per word
exactly as ``INF_SET_LAYER`` in :mod:`spikeforge.hdl.protocol` says.

The requests are built by generators that ``yield (cmd, payload, timeout_cycles)``
and receive the response payload, so the same code drives the core through a
:class:`~spikeforge.sim.host.driver.HostLink` (:class:`InferenceDevice`) or from an
Amaranth simulation testbench.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.protocol import InferenceCommand as C, Readout, ResetKind, pack, unpack
from spikeforge.sim.golden import integer as I

__all__ = ["InferenceInfo", "FitError", "LayerPlan", "plan_network", "network_requests",
           "run_requests", "InferenceDevice", "drive"]


class FitError(ValueError):
    """A network does not fit the inference core (one sentence with the numbers)."""


@dataclass(frozen=True)
class InferenceInfo:
    version: int
    kind: int
    lanes: int
    weight_bits: int
    potential_bits: int
    weights_per_word: int
    group: int
    max_neurons: int
    max_fan_in: int
    max_time_steps: int
    max_layers: int
    weight_depth: int
    bias_rows: int
    step_words: int
    max_payload: int
    counters: int

    @classmethod
    def parse(cls, payload: bytes) -> "InferenceInfo":
        v = unpack(proto.INF_INFO, payload)
        return cls(**{name: int(getattr(v, name)) for name in cls.__dataclass_fields__})

    @classmethod
    def from_config(cls, config) -> "InferenceInfo":
        """What INFO answers for a core built from ``config`` (checks before a build)."""
        from spikeforge.hdl.inference import InferenceGeometry, info_fields
        return cls.parse(pack(proto.INF_INFO, info_fields(InferenceGeometry(config))))

    @property
    def pieces(self) -> int:
        return max(1, self.group // 16)


@dataclass(frozen=True)
class LayerPlan:
    n_in: int
    n_out: int
    groups: int
    wbase: int
    bbase: int


def plan_network(net: I.IntNetwork, info: InferenceInfo) -> list[LayerPlan]:
    """Where each layer goes in the core; raises :class:`FitError` when it does not fit."""
    if net.B > info.weight_bits:
        raise FitError(f"the network has {net.B}-bit weights and the core holds "
                       f"{info.weight_bits}-bit weights")
    if net.Q > info.potential_bits:
        raise FitError(f"the network has {net.Q}-bit potentials and the core holds "
                       f"{info.potential_bits}-bit potentials")
    if net.T > info.max_time_steps:
        raise FitError(f"the network runs T = {net.T} steps and the core at most "
                       f"{info.max_time_steps}")
    if len(net.layers) > info.max_layers:
        raise FitError(f"the network has {len(net.layers)} layers and the core at most "
                       f"{info.max_layers}")
    plans, wbase, bbase = [], 0, 0
    for l, layer in enumerate(net.layers):
        if layer.n_in > info.max_fan_in:
            raise FitError(f"layer {l} has {layer.n_in} inputs and the core a fan-in of at "
                           f"most {info.max_fan_in}")
        if layer.n_out > info.max_neurons:
            raise FitError(f"layer {l} has {layer.n_out} neurons and the core at most "
                           f"{info.max_neurons} per layer")
        groups = -(-layer.n_out // info.group)
        plans.append(LayerPlan(layer.n_in, layer.n_out, groups, wbase, bbase))
        wbase += groups * layer.n_in
        bbase += groups
    if wbase > info.weight_depth:
        raise FitError(f"the network needs {wbase} weight words per lane "
                       f"({info.group} neurons per word row) and the core holds "
                       f"{info.weight_depth}")
    if bbase > info.bias_rows:
        raise FitError(f"the network needs {bbase} bias rows and the core holds "
                       f"{info.bias_rows}")
    return plans


def _words(seq: np.ndarray) -> bytes:
    return np.asarray(seq, dtype=np.uint16).astype("<u2").tobytes()


def pack_weights(layer: I.IntLayer, plan: LayerPlan, info: InferenceInfo) -> np.ndarray:
    """uint16 ``(groups * n_in, lanes)``: row ``g * n_in + j``, lane ``l`` holds the
    weights of neurons ``g * group + l * per_word + p`` for input ``j`` in bits
    ``p * B ..`` (``B`` of the core; missing neurons 0)."""
    G, P, B, L = info.group, info.weights_per_word, info.weight_bits, info.lanes
    W = np.zeros((plan.groups * G, plan.n_in), dtype=np.int64)
    W[:plan.n_out] = layer.W
    W = W.reshape(plan.groups, L, P, plan.n_in) & ((1 << B) - 1)
    words = np.zeros((plan.groups, plan.n_in, L), dtype=np.int64)
    for p in range(P):
        words |= np.transpose(W[:, :, p, :], (0, 2, 1)) << (p * B)
    return words.reshape(plan.groups * plan.n_in, L).astype(np.uint16)


def pack_spikes(spikes: np.ndarray, info: InferenceInfo) -> bytes:
    """The LOAD_SPIKES pieces (from piece 0) of one sample's bool ``(T, N_in)`` input."""
    T, n_in = spikes.shape
    G, SW, pieces = info.group, info.step_words, info.pieces
    bits = np.zeros((T, SW * G), dtype=np.uint8)
    bits[:, :n_in] = spikes
    nw = -(-n_in // G)
    used = (T - 1) * SW + nw                       # words up to the last step's last word
    flat = bits.reshape(T * SW, G)[:used]
    per_piece = flat.reshape(used * pieces, min(G, 16))
    weights = (1 << np.arange(per_piece.shape[1], dtype=np.int64))
    return _words(per_piece.astype(np.int64) @ weights)


def _chunks(header_layout, field, start, words: np.ndarray, max_payload, step=1):
    """(payload) requests of 16-bit ``words`` after a header, split to fit the payload."""
    hdr = proto.nbytes(header_layout)
    per = ((max_payload - hdr) // 2) // step * step
    for k in range(0, len(words), per):
        yield pack(header_layout, {field: start + k // step}) + _words(words[k:k + per])


def network_requests(net: I.IntNetwork, info: InferenceInfo):
    """Generator of ``(cmd, payload, timeout)`` loading ``net`` (see module doc)."""
    plans = plan_network(net, info)
    readout = Readout.POTENTIAL if net.readout == "potential" else Readout.SPIKES
    yield C.SET_NETWORK, pack(proto.INF_SET_NETWORK, {"T": net.T, "layers": len(net.layers),
                                                      "Q": net.Q, "readout": readout}), None
    L, G = info.lanes, info.group
    for l, (layer, plan) in enumerate(zip(net.layers, plans)):
        leak = ({"shift": 0, "none": 1} if layer.leak_shift is None
                else {"shift": layer.leak_shift, "none": 0})
        yield C.SET_LAYER, pack(proto.INF_SET_LAYER, {
            "layer": l, "n_in": plan.n_in, "n_out": plan.n_out, "wbase": plan.wbase,
            "bbase": plan.bbase, "theta": layer.theta, "leak": leak,
            "reset": ResetKind.ZERO if layer.reset == "zero" else ResetKind.SUBTRACT}), None
        words = pack_weights(layer, plan, info).reshape(-1)
        for payload in _chunks(proto.INF_WRITE_WEIGHTS, "addr", plan.wbase, words,
                               info.max_payload, step=L):
            yield C.WRITE_WEIGHTS, payload, None
        b = np.zeros(plan.groups * G, dtype=np.int64)
        b[:plan.n_out] = layer.b
        for payload in _chunks(proto.INF_WRITE_BIASES, "row", plan.bbase, b & 0xFFFF,
                               info.max_payload, step=G):
            yield C.WRITE_BIASES, payload, None


def run_requests(net: I.IntNetwork, info: InferenceInfo, spikes: np.ndarray):
    """Generator running one sample (bool ``(T, N_in)``); returns
    ``(results int64 (K,), cycles, sops)``."""
    data = pack_spikes(np.asarray(spikes, dtype=bool), info)
    per = (info.max_payload - proto.nbytes(proto.INF_LOAD_SPIKES)) // 2 * 2
    for k in range(0, len(data), per):
        yield C.LOAD_SPIKES, pack(proto.INF_LOAD_SPIKES, {"piece": k // 2}) + data[k:k + per], None
    # a run: at most every input of every step and layer, plus the group overheads
    bound = sum((-(-L.n_out // info.group)) * net.T * (L.n_in + 8 * info.step_words + 16)
                for L in net.layers) + 1000
    r = unpack(proto.INF_RUN_RESULT, (yield C.RUN, b"", bound))
    K = net.layers[-1].n_out
    out, first = [], 0
    per_read = info.max_payload // 2
    while first < K:
        n = min(per_read, K - first)
        p = yield C.READ_RESULTS, pack(proto.INF_READ_RESULTS, {"first": first, "count": n}), None
        out.append(np.frombuffer(p, dtype="<i2" if net.readout == "potential" else "<u2"))
        first += n
    return np.concatenate(out).astype(np.int64), int(r.cycles), int(r.sops)


def drive(link, gen):
    """Run a request generator over a :class:`~spikeforge.sim.host.driver.HostLink`."""
    try:
        cmd, payload, timeout = next(gen)
        while True:
            kw = {} if timeout is None else {"timeout_cycles": int(timeout)}
            cmd, payload, timeout = gen.send(link.transact(int(cmd), payload, **kw))
    except StopIteration as stop:
        return stop.value


class InferenceDevice:
    """An integer inference core behind a :class:`~spikeforge.sim.host.driver.HostLink`."""

    def __init__(self, link):
        self.link = link
        self.info = InferenceInfo.parse(link.transact(C.INFO))
        if self.info.kind != proto.INFERENCE_KIND_INTEGER:
            raise FitError(f"the device is not an integer inference core (kind {self.info.kind})")
        self.net = None

    def load(self, net: I.IntNetwork) -> list[LayerPlan]:
        plans = plan_network(net, self.info)
        drive(self.link, network_requests(net, self.info))
        self.net = net
        return plans

    def run(self, spikes) -> tuple[np.ndarray, int, int]:
        """One sample: ``(results, busy cycles, SOPs)``."""
        return drive(self.link, run_requests(self.net, self.info, spikes))

    def counters(self, clear: bool = False) -> dict:
        p = self.link.transact(C.READ_COUNTERS, pack(proto.INF_READ_COUNTERS, {"clear": int(clear)}))
        return {name: int.from_bytes(p[4 * i:4 * i + 4], "little")
                for i, name in enumerate(proto.INF_COUNTERS)}
