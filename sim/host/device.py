"""High-level host API of a spikeforge accelerator (one core, or the cores of a system).

:class:`Device` loads a network (layer table, constants, weights), runs
samples forward or forward + backward with a label, applies updates and reads
weights, spike / window / non-zero-gradient history, ``du`` and counters, all as
numpy arrays (fp16 values travel as little-endian float16, never hand-packed).

The command payloads are built and parsed by :class:`Plan` generators that
``yield (cmd, payload)`` and receive the response payload, so the same code
drives a device through :class:`~spikeforge.sim.host.driver.HostLink` (synchronous,
:class:`Device`) or from inside a cocotb test (:func:`drive_async`).
Payload layouts: ``docs/host-protocol.md``.

On a multi-core system (``hdl/system.py``) a :class:`CoreLink` routes every request
to one core (``ROUTE`` with an :data:`~spikeforge.hdl.protocol.ADDRESS`), so
``Device(CoreLink(link, k))`` is the one-core API for core ``k``;
:class:`SystemDevice` holds one per core and sends a request to several cores at
once (:meth:`SystemDevice.broadcast`), the cores then working in parallel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Generator

import numpy as np
from amaranth.lib import data

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.protocol import (CONSTANTS, COUNTERS, NO_LABEL, AddressMode, Command,
                                     GradientKind, HistoryKind, Phase, ResetGrad, RunMode, Status,
                                     WeightKind, pack, unpack)

__all__ = ["DeviceInfo", "LayerMap", "NetworkMap", "MapError", "Device",
           "drive_sync", "drive_async", "plans", "RunResult", "HISTORY",
           "route_payload", "parse_records", "CoreLink", "SystemDevice", "weights_digest",
           "DIGEST_VERSION"]

#: History kinds of READ_HISTORY by their short names.
HISTORY = {"s": HistoryKind.SPIKES, "m": HistoryKind.WINDOW, "nz": HistoryKind.NONZERO}
#: Weight kinds of READ_WEIGHTS by their names.
WEIGHTS = {"W": WeightKind.W, "dW": WeightKind.DW}


#: The first INFO version whose cores answer READ_DIGEST.
DIGEST_VERSION = 3


@lru_cache(maxsize=64)
def _digest_order(n_out: int, n_in: int, lanes: int):
    """Row and column of every word of READ_DIGEST's walk, in order, and which of them
    are neurons of the layer (the rest count as 0x0000)."""
    P = lanes
    groups = -(-n_out // P)
    b, j, k = np.meshgrid(np.arange(groups), np.arange(n_in), np.arange(P), indexing="ij")
    i = (b * P + (k - j) % P).reshape(-1)
    j = j.reshape(-1)
    valid = i < n_out
    return np.where(valid, i, 0), j, valid


def weights_digest(W, lanes: int) -> int:
    """The digest READ_DIGEST answers for a layer holding ``W`` (``N_out x N_in``, fp16)
    on a core of ``lanes`` banks: the CRC-32 of zlib of its words as the banks hold them
    (``spikeforge.hdl.protocol.READ_DIGEST``)."""
    W = np.asarray(W, dtype=np.float16)
    i, j, valid = _digest_order(W.shape[0], W.shape[1], int(lanes))
    words = np.where(valid, W.view(np.uint16)[i, j], np.uint16(0)).astype("<u2")
    return zlib.crc32(words.tobytes())


class MapError(ValueError):
    """A network does not fit the core (the message gives the numbers)."""


@dataclass(frozen=True)
class DeviceInfo:
    version: int
    lanes: int
    neurons_per_core: int
    max_fan_in: int
    max_time_steps: int
    max_layers: int
    modes: tuple
    inference_only: bool
    fma_stages: int
    weight_depth: int
    input_groups: int
    neuron_groups: int
    max_payload: int
    counters: int

    @classmethod
    def from_config(cls, config) -> "DeviceInfo":
        """What ``INFO`` answers for a core built from ``config`` (checks before a build):
        the same payload the RTL answers (:func:`spikeforge.hdl.core.info_payload`)."""
        from spikeforge.hdl.core import info_payload
        return cls.parse(pack(proto.INFO, info_payload(config)))

    @classmethod
    def parse(cls, p: bytes) -> "DeviceInfo":
        v = unpack(proto.INFO, p)
        names = tuple(n for n in ("detach", "through") if getattr(v.modes, n))
        return cls(v.version, v.lanes, v.neurons_per_core, v.max_fan_in, v.max_time_steps,
                   v.max_layers, names, bool(v.modes.inference_only), v.fma_stages,
                   v.weight_depth, v.input_groups, v.neuron_groups, v.max_payload, v.counters)


@dataclass(frozen=True)
class LayerMap:
    n_in: int
    n_out: int
    in_hg: int      # history group of the inputs
    out_g: int      # neuron group of the neurons (du / history of the layer)
    wbase: int      # first weight address


@dataclass(frozen=True)
class NetworkMap:
    """Where every layer of a chain of fully connected layers lives on one core."""
    sizes: tuple
    layers: tuple
    wcount: int
    input_groups: int
    lanes: int

    @classmethod
    def build(cls, sizes, info: DeviceInfo) -> "NetworkMap":
        sizes = tuple(int(n) for n in sizes)
        P = info.lanes
        if len(sizes) < 2:
            raise MapError(f"a network needs at least two layer sizes, not {list(sizes)}")
        if len(sizes) - 1 > info.max_layers:
            raise MapError(f"the network has {len(sizes) - 1} layers but the core holds at most "
                           f"{info.max_layers}")
        if sizes[0] > info.max_fan_in:
            raise MapError(f"the network has {sizes[0]} inputs but the core takes at most "
                           f"{info.max_fan_in}")
        if sum(sizes[1:]) > info.neurons_per_core:
            raise MapError(f"the network has {sum(sizes[1:])} neurons but the core holds at most "
                           f"{info.neurons_per_core}")
        layers = []
        in_hg, out_g, wbase = 0, 0, 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if n_in > info.max_fan_in:
                raise MapError(f"a layer has {n_in} inputs but the core's fan-in limit is "
                               f"{info.max_fan_in}")
            g_out = -(-n_out // P)
            layers.append(LayerMap(n_in, n_out, in_hg, out_g, wbase))
            in_hg = info.input_groups + out_g
            out_g += g_out
            wbase += g_out * n_in
        if out_g > info.neuron_groups:
            raise MapError(f"the network needs {out_g} neuron groups of {P} but the core has "
                           f"{info.neuron_groups}")
        if wbase > info.weight_depth:
            raise MapError(f"the network needs {wbase} words per weight bank but the core has "
                           f"{info.weight_depth}")
        return cls(sizes, tuple(layers), wbase, info.input_groups, P)

    def out_hg(self, l: int) -> int:
        return self.input_groups + self.layers[l].out_g


@dataclass
class RunResult:
    counts: np.ndarray      # spike count per output neuron
    prediction: int
    nonfinite: bool         # an inf or NaN was written during the run
    cycles: int | None = None


Plan = Generator[tuple, bytes, object]


def _f16_bytes(values) -> bytes:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float16)).astype("<f2").tobytes()


def _f16_from(payload: bytes) -> np.ndarray:
    return np.frombuffer(payload, dtype="<f2").astype(np.float16)


class plans:
    """Generators of one operation each: ``yield (cmd, payload)`` receives the response."""

    @staticmethod
    def info() -> Plan:
        p = yield (Command.INFO, b"")
        return DeviceInfo.parse(p)

    @staticmethod
    def configure(info: DeviceInfo, netmap: NetworkMap, params) -> Plan:
        c = params.consts
        mode = {"detach": ResetGrad.DETACH, "through": ResetGrad.THROUGH}[params.reset_grad]
        if params.T > info.max_time_steps:
            raise MapError(f"T = {params.T} time steps but the core holds at most "
                           f"{info.max_time_steps}")
        if params.reset_grad not in info.modes and not info.inference_only:
            raise MapError(f"reset_grad {params.reset_grad!r} is not built in this core; "
                           f"built: {list(info.modes)}")
        consts = np.array([getattr(c, name) for name in CONSTANTS], dtype=np.float16)
        yield (Command.SET_CONSTANTS, pack(proto.SET_CONSTANTS, {
            "T": params.T, "layers": len(netmap.layers), "reset_grad": mode,
            "wcount": netmap.wcount,
            "constants": dict(zip(CONSTANTS, (int(x) for x in consts.view(np.uint16))))}))
        for l, lm in enumerate(netmap.layers):
            yield (Command.SET_LAYER, pack(proto.SET_LAYER, {
                "layer": l, "n_in": lm.n_in, "n_out": lm.n_out, "in_hg": lm.in_hg,
                "out_g": lm.out_g, "wbase": lm.wbase}))

    @staticmethod
    def write_weights(info: DeviceInfo, layer: int, W: np.ndarray) -> Plan:
        W = np.asarray(W, dtype=np.float16)
        n_out, n_in = W.shape
        flat = W.reshape(-1)
        chunk = (info.max_payload - proto.nbytes(proto.WRITE_WEIGHTS)) // 2
        for start in range(0, flat.size, chunk):
            i, j = divmod(start, n_in)
            yield (Command.WRITE_WEIGHTS,
                   pack(proto.WRITE_WEIGHTS, {"layer": layer, "i": i, "j": j}) +
                   _f16_bytes(flat[start:start + chunk]))

    @staticmethod
    def read_weights(info: DeviceInfo, layer: int, shape,
                     which: WeightKind = WeightKind.W) -> Plan:
        n_out, n_in = shape
        total = n_out * n_in
        chunk = info.max_payload // 2
        parts = []
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            i, j = divmod(start, n_in)
            p = yield (Command.READ_WEIGHTS, pack(proto.READ_WEIGHTS, {
                "layer": layer, "i": i, "j": j, "which": which, "count": n}))
            parts.append(_f16_from(p))
        return np.concatenate(parts).reshape(n_out, n_in)

    @staticmethod
    def read_digest(layer: int, which: WeightKind = WeightKind.W) -> Plan:
        """READ_DIGEST: the CRC-32 of layer ``layer``'s ``W`` or ``dW``
        (:func:`weights_digest` of the values)."""
        p = yield (Command.READ_DIGEST, pack(proto.READ_DIGEST, {"layer": layer,
                                                                 "which": which}))
        return unpack(proto.DIGEST_RESULT, p).crc

    @staticmethod
    def _history_words(info: DeviceInfo, bits: np.ndarray, header: data.Layout):
        """``(start, bytes)`` of the ``(T, n)`` bits as one word per neuron (bit t = step
        t), in pieces that fit a payload after ``header``."""
        bits = np.asarray(bits, dtype=bool)
        T, n = bits.shape
        words = (bits.astype(np.uint16) << np.arange(T, dtype=np.uint16)[:, None]).sum(
            axis=0, dtype=np.uint16)
        chunk = (info.max_payload - proto.nbytes(header)) // 2
        for start in range(0, n, chunk):
            yield start, words[start:start + chunk].astype("<u2").tobytes()

    @staticmethod
    def load_spikes(info: DeviceInfo, spikes: np.ndarray) -> Plan:
        for start, words in plans._history_words(info, spikes, proto.LOAD_SPIKES):
            yield (Command.LOAD_SPIKES, pack(proto.LOAD_SPIKES, {"first": start}) + words)

    @staticmethod
    def load_history(info: DeviceInfo, which: str, bits: np.ndarray) -> Plan:
        """LOAD_HISTORY: the ``(T, n)`` spike (``"s"``) or window (``"m"``) bits of the
        inputs into the input groups."""
        for start, words in plans._history_words(info, bits, proto.LOAD_HISTORY):
            yield (Command.LOAD_HISTORY, pack(proto.LOAD_HISTORY, {
                "which": HISTORY[which], "first": start}) + words)

    @staticmethod
    def run_phase(phase: Phase, entry: int, label: int | None = None,
                  cont: bool = False, stage: int = 0, steps: int = 0) -> Plan:
        """RUN_PHASE: one phase on layer-table entry ``entry`` (``steps`` > 0: stage
        ``stage`` of a staged input gradient); returns whether a written value was inf or
        NaN."""
        p = yield (Command.RUN_PHASE, pack(proto.RUN_PHASE, {
            "phase": phase, "entry": entry, "label": NO_LABEL if label is None else int(label),
            "cont": int(cont), "stage": stage, "steps": steps}))
        return bool(unpack(proto.RUN_RESULT, p).flags.nonfinite)

    @staticmethod
    def write_acc(info: DeviceInfo, values: np.ndarray, group: int = 0) -> Plan:
        """WRITE_GRADIENTS: the ``(T, n)`` fp16 ``values`` into the accumulators of neurons
        (or inputs) ``group * lanes ..`` at steps ``0 .. T-1``."""
        values = np.asarray(values, dtype=np.float16)
        T, n = values.shape
        chunk = max(1, ((info.max_payload - proto.nbytes(proto.WRITE_GRADIENTS)) // 2) // T)
        for start in range(0, n, chunk):
            cnt = min(chunk, n - start)
            yield (Command.WRITE_GRADIENTS, pack(proto.WRITE_GRADIENTS, {
                "which": GradientKind.ACC, "group": group, "first": start, "count": cnt}) +
                _f16_bytes(values[:, start:start + cnt].T.reshape(-1)))

    @staticmethod
    def run(label: int | None) -> Plan:
        mode = RunMode.FORWARD if label is None else RunMode.TRAIN
        p = yield (Command.RUN, pack(proto.RUN, {
            "mode": mode, "label": 0 if label is None else int(label)}))
        k = (len(p) - proto.nbytes(proto.RUN_RESULT)) // 2
        counts = np.frombuffer(p[:2 * k], dtype="<u2").astype(np.int64)
        tail = unpack(proto.RUN_RESULT, p[2 * k:])
        return RunResult(counts, tail.prediction, bool(tail.flags.nonfinite))

    @staticmethod
    def update() -> Plan:
        yield (Command.UPDATE, b"")

    @staticmethod
    def read_history(info: DeviceInfo, which: str, base_group: int, n: int, T: int) -> Plan:
        words = []
        chunk = info.max_payload // 2
        for start in range(0, n, chunk):
            cnt = min(chunk, n - start)
            p = yield (Command.READ_HISTORY, pack(proto.READ_HISTORY, {
                "which": HISTORY[which], "group": base_group, "first": start, "count": cnt}))
            words.append(np.frombuffer(p, dtype="<u2"))
        w = np.concatenate(words)
        return ((w[None, :] >> np.arange(T)[:, None]) & 1).astype(bool)   # (T, n)

    @staticmethod
    def read_gradients(info: DeviceInfo, which: GradientKind, group: int, n: int,
                       T: int) -> Plan:
        parts = []
        chunk = max(1, (info.max_payload // 2) // T)
        for start in range(0, n, chunk):
            cnt = min(chunk, n - start)
            p = yield (Command.READ_GRADIENTS, pack(proto.READ_GRADIENTS, {
                "which": which, "group": group, "first": start, "count": cnt}))
            parts.append(_f16_from(p).reshape(cnt, T))
        return np.concatenate(parts).T.copy()       # (T, n)

    @staticmethod
    def read_counters(clear: bool = False) -> Plan:
        p = yield (Command.READ_COUNTERS, pack(proto.READ_COUNTERS, {"clear": int(clear)}))
        values = unpack(data.ArrayLayout(32, len(COUNTERS)), p)
        return {name: values[i] for i, name in enumerate(COUNTERS)}


def drive_sync(plan: Plan, transact: Callable[[int, bytes], bytes]):
    """Run ``plan`` to its end with a synchronous ``transact(cmd, payload) -> bytes``."""
    try:
        req = next(plan)
        while True:
            req = plan.send(transact(int(req[0]), bytes(req[1])))
    except StopIteration as stop:
        return stop.value


async def drive_async(plan: Plan, transact):
    """Run ``plan`` with an ``async transact(cmd, payload) -> bytes``."""
    try:
        req = next(plan)
        while True:
            req = plan.send(await transact(int(req[0]), bytes(req[1])))
    except StopIteration as stop:
        return stop.value


class Device:
    """A one-core accelerator behind a :class:`~spikeforge.sim.host.driver.HostLink` (or any
    object with ``transact(cmd, payload) -> bytes``)."""

    def __init__(self, link):
        self.link = link
        self.info: DeviceInfo = self._do(plans.info())
        self.netmap: NetworkMap | None = None
        self.params = None

    def _do(self, plan):
        return drive_sync(plan, lambda cmd, payload: self.link.transact(cmd, payload))

    def load_network(self, sizes, params, weights=None):
        """Load the layer table and constants (and weights when given; ``dW`` is cleared)."""
        self.netmap = NetworkMap.build(sizes, self.info)
        self.params = params
        self._do(plans.configure(self.info, self.netmap, params))
        if weights is not None:
            self.write_weights(weights)

    def write_weights(self, weights):
        for l, W in enumerate(weights):
            if W.shape != (self.netmap.sizes[l + 1], self.netmap.sizes[l]):
                raise MapError(f"weights[{l}] has shape {W.shape}, the network needs "
                               f"{(self.netmap.sizes[l + 1], self.netmap.sizes[l])}")
            self._do(plans.write_weights(self.info, l, W))

    def read_weights(self, which: str = "W"):
        return [self._do(plans.read_weights(self.info, l, (lm.n_out, lm.n_in),
                                            WEIGHTS[which]))
                for l, lm in enumerate(self.netmap.layers)]

    @property
    def has_digest(self) -> bool:
        """Whether the core answers READ_DIGEST (INFO version 3 on)."""
        return self.info.version >= DIGEST_VERSION

    def digests(self, which: str = "W") -> list[list[int]]:
        """The device's digest of every layer's ``W`` or ``dW`` (READ_DIGEST, one per layer
        here), to compare with :meth:`digests_of` the expected values."""
        return [[self._do(plans.read_digest(l, WEIGHTS[which]))]
                for l in range(len(self.netmap.layers))]

    def digests_of(self, weights) -> list[list[int]]:
        """What :meth:`digests` answers when the layers hold ``weights``."""
        return [[weights_digest(W, self.info.lanes)] for W in weights]

    def run(self, spikes, label=None) -> RunResult:
        """Load a sample's input spikes ``(T, N_in)`` and run it forward (and backward
        with ``label``, accumulating dW)."""
        self.load_spikes(spikes)
        return self.run_loaded(label)

    def load_spikes(self, spikes):
        spikes = np.asarray(spikes, dtype=bool)
        if spikes.shape != (self.params.T, self.netmap.sizes[0]):
            raise MapError(f"spikes have shape {spikes.shape}, the network needs "
                           f"{(self.params.T, self.netmap.sizes[0])}")
        self._do(plans.load_spikes(self.info, spikes))

    def run_loaded(self, label=None) -> RunResult:
        """Run the loaded input spikes forward (and backward with ``label``)."""
        return self._do(plans.run(label))

    def update(self):
        self._do(plans.update())

    def history(self, layer: int, which: str = "s"):
        lm = self.netmap.layers[layer]
        return self._do(plans.read_history(self.info, which, self.netmap.out_hg(layer),
                                           lm.n_out, self.params.T))

    def du(self, layer: int):
        lm = self.netmap.layers[layer]
        return self._do(plans.read_gradients(self.info, GradientKind.DU, lm.out_g, lm.n_out, self.params.T))

    def potentials(self, layer: int):
        lm = self.netmap.layers[layer]
        return self._do(plans.read_gradients(self.info, GradientKind.U, lm.out_g, lm.n_out, self.params.T))

    def counters(self, clear: bool = False) -> dict:
        return self._do(plans.read_counters(clear))


# --- multi-core systems ------------------------------------------------------------------

def route_payload(cmd: int, payload: bytes = b"", *, mode: AddressMode = AddressMode.CORE,
                  first: int = 0, count: int = 0) -> bytes:
    """The payload of a ``ROUTE`` request carrying ``cmd`` and its ``payload``."""
    return (pack(proto.ADDRESS, {"mode": mode, "first": first, "count": count}) +
            bytes([int(cmd)]) + bytes(payload))


def parse_records(payload: bytes, n: int) -> list[tuple[int, bytes]]:
    """The ``(status, payload)`` of each of ``n`` cores in the response to a ``ROUTE``
    to ``ALL`` or a ``RANGE`` (ascending core order)."""
    out, pos, size = [], 0, proto.nbytes(proto.ROUTE_RECORD)
    for k in range(n):
        if len(payload) - pos < size:
            raise ValueError(f"the response holds {k} core records, not {n}")
        rec = unpack(proto.ROUTE_RECORD, payload[pos:])
        pos += size
        if len(payload) - pos < rec.len:
            raise ValueError(f"core record {k} declares {rec.len} bytes but "
                             f"{len(payload) - pos} are left")
        out.append((int(rec.status), bytes(payload[pos:pos + rec.len])))
        pos += rec.len
    if pos != len(payload):
        raise ValueError(f"{len(payload) - pos} bytes follow the {n} core records")
    return out


class CoreLink:
    """A link to core ``core`` of a system: ``transact`` sends every request through
    ``ROUTE`` (errors come back as :class:`~spikeforge.sim.host.driver.DeviceError`
    from the routed core, or ``BAD_ARGUMENT`` for a core outside the system)."""

    def __init__(self, link, core: int):
        if not isinstance(core, int) or isinstance(core, bool) or not 0 <= core <= 0xFFFF:
            raise ValueError(f"core must be an integer from 0 to 65535, not {core!r}")
        self.link, self.core = link, core

    def transact(self, cmd: int, payload: bytes = b"", **kw) -> bytes:
        return self.link.transact(Command.ROUTE, route_payload(cmd, payload, first=self.core),
                                  **kw)

    @property
    def last_cycles(self):
        return getattr(self.link, "last_cycles", None)


class SystemDevice:
    """The ``cores`` cores of a multi-core system behind one link: ``self.core[k]`` is a
    :class:`Device` for core ``k``; :meth:`broadcast` runs one plan on several cores
    with one request (the cores work in parallel; results in ascending core order)."""

    def __init__(self, link, cores: int):
        if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
            raise ValueError(f"cores must be a positive integer, not {cores!r}")
        self.link, self.cores = link, cores
        self.core = [Device(CoreLink(link, k)) for k in range(cores)]

    def broadcast(self, make_plan, first: int = 0, count: int | None = None) -> list:
        """Run the one-request plan ``make_plan()`` on cores ``first .. first+count-1``
        (all cores by default) with a single ``ROUTE``; returns each core's result.
        A core that answers an error raises ``DeviceError`` naming it."""
        from .driver import DeviceError
        count = self.cores - first if count is None else count
        plan = make_plan()
        cmd, payload = next(plan)
        mode = AddressMode.ALL if (first, count) == (0, self.cores) else AddressMode.RANGE
        p = self.link.transact(Command.ROUTE, route_payload(cmd, payload, mode=mode,
                                                            first=first, count=count))
        results = []
        for k, (status, data_) in enumerate(parse_records(p, count)):
            if status != Status.OK:
                raise DeviceError(status, int(cmd), f"core {first + k}: {data_.hex()}")
            plan_k = make_plan() if k else plan
            if k:
                next(plan_k)
            try:
                plan_k.send(data_)
                raise ValueError("broadcast takes plans of one request")
            except StopIteration as stop:
                results.append(stop.value)
        return results
