"""The network file: one file holding a trained or ported network, what it reached and where it came from.

Two kinds of network go in the same format:

* ``"integer"`` -- a network of SPEC section 8 (:class:`~spikeforge.sim.golden.integer.IntNetwork`),
  what ``spikeforge port`` writes and the inference build runs;
* ``"fp16"`` -- a training network of SPEC section 3 (:class:`Fp16Network`: fp16
  weights and the golden :class:`~spikeforge.sim.golden.model.Params`), what
  ``spikeforge train --save`` writes.

API (all there is)::

    save(path, network, *, metrics=None, provenance=None)   # atomic: temp file + rename
    load(path, *, kind=None) -> NetworkFile   # .network, .kind, .metrics, .provenance
    NetworkFileError               # one sentence: not a network file, bad content

``load`` also reads a NIR graph (a path ending in ``.nir``, through
:mod:`spikeforge.sim.interop.nir_io`) as an ``fp16`` network, so every command
that takes a network file takes a NIR graph too (``infer --network``, ``port
--from``).

``metrics`` holds accuracy numbers (the convention: ``"accuracy"`` -- test
accuracy of this network; ``"float_accuracy"`` -- of the float32 network it
came from; ``"source_accuracy"`` -- of the network file it was ported from);
``provenance`` how it was made (``"command"``, ``"dataset"``, ``"seed"``,
``"settings"``, ``"source"``...). Both must be JSON objects; they are stored as
given.

Format (version 1): a NumPy ``.npz`` archive (``numpy.savez``, uncompressed,
readable with ``allow_pickle=False``) whatever the file's name, holding

* ``header``: a 0-d unicode array, a JSON object with ``format =
  "spikeforge-network"``, ``version = 1``, ``kind``, ``sizes`` (``[N_in, ...,
  K]``), ``metrics``, ``provenance`` and, per kind:

  - ``integer``: ``B``, ``Q``, ``T``, ``readout`` and ``layers``, a list of
    ``{"theta": int, "leak_shift": int or null, "reset": str}``;
  - ``fp16``: ``params`` (the fields of ``Params``: ``T``, ``alpha``, ``v_th``,
    ``a``, ``beta``, ``lr``, ``loss_scale``, ``reset_grad``) and ``constants``
    (the 16-bit pattern of every fp16 constant, ``Params.consts.bits()``; checked
    on load against the constants the params give);

* ``W0``, ``W1``, ...: the weights of each layer (``N_out x N_in``): ``int8``
  for ``integer`` (B <= 8), ``float16`` for ``fp16``;
* ``b0``, ``b1``, ...: for ``integer``, the biases (``int64``).

Everything is checked on load, exactly as when the network is created; a file
that is not a network, or holds a bad one, raises :class:`NetworkFileError`.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from spikeforge.sim.files import atomic_output, input_file
from spikeforge.sim.golden import integer as I
from spikeforge.sim.golden import model as golden

__all__ = ["FORMAT", "VERSION", "KINDS", "NetworkFileError", "Fp16Network", "NetworkFile",
           "save", "load"]

FORMAT = "spikeforge-network"
VERSION = 1
KINDS = ("integer", "fp16")


class NetworkFileError(ValueError):
    """A network file cannot be read or written; one sentence naming the file and the problem."""


@dataclass(frozen=True, eq=False)
class Fp16Network:
    """A training network of SPEC section 3: fp16 weights (layer 0 first, each
    ``(N_out, N_in)``, stored as read-only copies) and its run-time :class:`Params`."""

    weights: tuple
    params: golden.Params

    def __post_init__(self):
        ws = []
        for l, W in enumerate(self.weights):
            arr = np.asarray(W)
            if arr.dtype != np.float16:
                raise NetworkFileError(f"layer {l} weights must be float16, not {arr.dtype}")
            if arr.ndim != 2 or min(arr.shape) < 1:
                raise NetworkFileError(f"layer {l} weights must be a non-empty (N_out, N_in) "
                                       f"matrix, not shape {arr.shape}")
            if not np.isfinite(arr).all():
                raise NetworkFileError(f"layer {l} weights hold NaN or inf")
            if ws and arr.shape[1] != ws[-1].shape[0]:
                raise NetworkFileError(f"layer {l} takes {arr.shape[1]} inputs but layer {l - 1} "
                                       f"has {ws[-1].shape[0]} neurons")
            arr = arr.copy()
            arr.setflags(write=False)
            ws.append(arr)
        if not ws:
            raise NetworkFileError("an fp16 network needs at least one layer, and it has none")
        if not isinstance(self.params, golden.Params):
            raise NetworkFileError(f"params must be golden Params, not {type(self.params).__name__}")
        object.__setattr__(self, "weights", tuple(ws))

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *(W.shape[0] for W in self.weights)]


@dataclass(frozen=True, eq=False)
class NetworkFile:
    """What :func:`load` returns."""

    network: object                     # IntNetwork or Fp16Network
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "integer" if isinstance(self.network, I.IntNetwork) else "fp16"

    @property
    def sizes(self) -> list[int]:
        return self.network.sizes


def _check_json_object(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NetworkFileError(f"{name} must be a dict (a JSON object), not {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise NetworkFileError(f"{name} must be JSON-serialisable ({exc})") from None


def _header_and_arrays(network, metrics, provenance):
    header = {"format": FORMAT, "version": VERSION}
    arrays = {}
    if isinstance(network, I.IntNetwork):
        header.update(kind="integer", sizes=network.sizes, B=network.B, Q=network.Q,
                      T=network.T, readout=network.readout,
                      layers=[{"theta": L.theta, "leak_shift": L.leak_shift, "reset": L.reset}
                              for L in network.layers])
        for l, L in enumerate(network.layers):
            arrays[f"W{l}"] = L.W.astype(np.int8)       # B <= 8: exact
            arrays[f"b{l}"] = L.b.astype(np.int64)
    elif isinstance(network, Fp16Network):
        header.update(kind="fp16", sizes=network.sizes, params=network.params.to_dict(),
                      constants=network.params.consts.bits())
        for l, W in enumerate(network.weights):
            arrays[f"W{l}"] = np.asarray(W, dtype=np.float16)
    else:
        raise NetworkFileError(f"only an IntNetwork or an Fp16Network can be saved, "
                               f"not {type(network).__name__}")
    header["metrics"] = metrics
    header["provenance"] = provenance
    return header, arrays


def save(path, network, *, metrics: dict | None = None, provenance: dict | None = None) -> None:
    """Write ``network`` with its ``metrics`` and ``provenance`` to ``path`` (the
    name is used as given); written to a temporary file in the same folder and
    renamed over ``path``, so a failed write leaves nothing behind."""
    metrics = _check_json_object("metrics", metrics)
    provenance = _check_json_object("provenance", provenance)
    header, arrays = _header_and_arrays(network, metrics, provenance)
    path = os.fspath(path)
    try:
        with atomic_output(path, NetworkFileError) as tmp, open(tmp, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    except OSError as exc:
        raise NetworkFileError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def _get(header, key, types, path):
    if key not in header:
        raise NetworkFileError(f"{path!r} is a network file without the {key!r} entry in its header")
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise NetworkFileError(f"{path!r} has a bad {key!r} in its header: {value!r}")
    return value


_KIND_USES = {"fp16": "an fp16 training network (spikeforge train --save)",
              "integer": "an integer inference network (spikeforge port)"}


def load(path, *, kind: str | None = None) -> NetworkFile:
    """Read a network file; :class:`NetworkFileError` (one sentence) if ``path``
    is not one, holds a network that breaks its contract, or (with ``kind``) holds
    another kind of network than ``kind`` (``"fp16"`` or ``"integer"``)."""
    if kind is not None and kind not in _KIND_USES:
        raise ValueError(f"kind must be one of {sorted(_KIND_USES)}, not {kind!r}")
    loaded = _load(path)
    if kind is not None and loaded.kind != kind:
        raise NetworkFileError(f"{os.fspath(path)!r} holds {_KIND_USES[loaded.kind]}; "
                               f"{_KIND_USES[kind]} is needed here")
    return loaded


def _load_nir(path) -> NetworkFile:
    """A NIR graph (``.nir``) as an fp16 training network (SPEC section 3): the weights
    and neuron constants of its nodes, the other constants from its metadata."""
    from spikeforge.sim.interop import nir_io
    try:
        net = nir_io.read_network(path)
        params = net.params()
    except (nir_io.NIRError, golden.ParamsError) as exc:
        raise NetworkFileError(str(exc)) from None
    return NetworkFile(network=Fp16Network(tuple(net.weights), params),
                       provenance={"nir": os.fspath(path),
                                   "nir_roundings": nir_io.summarize_warnings(net.warnings)})


def _load(path) -> NetworkFile:
    if os.fspath(path).endswith(".nir"):
        return _load_nir(path)
    path = input_file(path, "network file", NetworkFileError)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            files = {name: z[name] for name in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        raise NetworkFileError(f"{path!r} is not a spikeforge network file (not a NumPy .npz "
                               "archive)") from None
    if "header" not in files or files["header"].shape != () or files["header"].dtype.kind != "U":
        raise NetworkFileError(f"{path!r} is not a spikeforge network file (no JSON header entry)")
    try:
        header = json.loads(str(files["header"]))
    except ValueError:
        raise NetworkFileError(f"{path!r} is not a spikeforge network file "
                               "(its header is not JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise NetworkFileError(f"{path!r} is not a spikeforge network file "
                               f"(its header has no format {FORMAT!r})")
    version = header.get("version")
    if version != VERSION:
        raise NetworkFileError(f"{path!r} is network file version {version!r}; this spikeforge "
                               f"reads version {VERSION}")
    kind = header.get("kind")
    if kind not in KINDS:
        raise NetworkFileError(f"{path!r} holds a network of kind {kind!r}; known kinds: "
                               f"{', '.join(KINDS)}")
    sizes = _get(header, "sizes", list, path)
    n_layers = len(sizes) - 1
    if n_layers < 1:
        raise NetworkFileError(f"{path!r} has sizes {sizes!r}: at least two are needed")
    metrics = _get(header, "metrics", dict, path)
    provenance = _get(header, "provenance", dict, path)
    for l in range(n_layers):
        if f"W{l}" not in files:
            raise NetworkFileError(f"{path!r} has no weights W{l} for layer {l} of {n_layers}")
    try:
        if kind == "integer":
            layers_h = _get(header, "layers", list, path)
            if len(layers_h) != n_layers:
                raise NetworkFileError(f"{path!r} describes {len(layers_h)} layers in its header "
                                       f"but has sizes for {n_layers}")
            layers = []
            for l, Lh in enumerate(layers_h):
                if not isinstance(Lh, dict) or set(Lh) != {"theta", "leak_shift", "reset"}:
                    raise NetworkFileError(f"{path!r} has a bad description of layer {l}: {Lh!r}")
                if f"b{l}" not in files:
                    raise NetworkFileError(f"{path!r} has no bias b{l} for layer {l}")
                W, b = files[f"W{l}"], files[f"b{l}"]
                if W.dtype.kind != "i" or b.dtype.kind != "i":
                    raise NetworkFileError(f"{path!r} has non-integer weights or bias in layer {l}")
                layers.append(I.IntLayer(W=W, b=b, theta=Lh["theta"], leak_shift=Lh["leak_shift"],
                                         reset=Lh["reset"]))
            network = I.IntNetwork(layers=tuple(layers), B=_get(header, "B", int, path),
                                   Q=_get(header, "Q", int, path), T=_get(header, "T", int, path),
                                   readout=_get(header, "readout", str, path))
        else:
            params = golden.Params.from_dict(_get(header, "params", dict, path))
            network = Fp16Network(weights=tuple(files[f"W{l}"] for l in range(n_layers)),
                                  params=params)
            if _get(header, "constants", dict, path) != params.consts.bits():
                raise NetworkFileError(f"{path!r} records fp16 constants that differ from those "
                                       "its params give")
    except (I.IntNetworkError, golden.ParamsError) as exc:
        raise NetworkFileError(f"{path!r} holds a bad network: {exc}") from None
    except NetworkFileError as exc:
        msg = str(exc)
        if path not in msg:
            msg = f"{path!r} holds a bad network: {msg}"
        raise NetworkFileError(msg) from None
    if network.sizes != sizes:
        raise NetworkFileError(f"{path!r} records sizes {sizes} but its weights give "
                               f"{network.sizes}")
    return NetworkFile(network=network, metrics=metrics, provenance=provenance)
