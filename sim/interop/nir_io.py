"""NIR graphs in and out: networks of the training contract (SPEC section 3) as NIR.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes a
network in continuous time. A network of the training contract is a chain of
fully connected layers (weights ``N_out x N_in``, fp16, no bias) of LIF neurons
that share one decay ``alpha`` and one threshold ``v_th``. This module maps one
to the other; ``docs/interop.md`` has the table.

* :func:`from_nir` / :func:`read_network` -- a graph ``Input -> [Flatten] -> (Linear | Affine)
  -> (LIF | IF | Threshold) -> ... -> Output`` becomes a :class:`NIRNetwork`
  (sizes, fp16 weights, the fp16 ``alpha`` and ``v_th``, the training settings
  the graph carries, and one :class:`RoundingWarning` per value that rounds on
  its way to fp16). Whatever the contract cannot represent is refused with an
  :class:`NIRError` naming the node, the parameter and what is allowed.
* :func:`to_nir` / :func:`write_network` -- the inverse: fp16 weights and
  :class:`~spikeforge.sim.golden.model.Params` as ``Input -> Linear -> LIF ->
  ... -> Output`` (``IF`` when ``alpha = 1``). Reading back what was written
  gives the same weight bits and the same ``Params`` (so the same constants).

Time step. A LIF node ``tau dv/dt = (v_leak - v) + R I`` is discretised by
forward Euler with the time step ``dt``, as snnTorch's ``export_nir`` and
``import_nir`` do: ``v[t] = (1 - dt/tau) v[t-1] + (R dt / tau) I[t]``, so
``alpha = 1 - dt/tau`` and every input is scaled by the gain ``R dt / tau``.
``dt`` is, in order: the ``dt`` argument, the graph's ``metadata["dt"]``
(written by :func:`to_nir`), or :data:`DEFAULT_DT` = 1e-4, the fixed step of
snnTorch (it writes ``tau = dt/(1 - beta)``, ``r = tau/dt``). A gain within
:data:`GAIN_TOLERANCE` of 1 is 1 (the frameworks mean ``r = tau/dt`` and compute
it in float32); any other gain, per neuron, multiplies that neuron's row of
weights before the rounding to fp16. ``IF`` (``dv/dt = R I``) is ``alpha = 1``
with the per-step gain ``R`` (as snnTorch's ``import_nir`` reads it, which
requires ``R = 1``); ``Threshold`` is a neuron without memory, ``alpha = 0``.

Rounding reports. Weights and thresholds are converted to fp16 once (numpy's
correctly rounded float64 -> float16, or :func:`~spikeforge.sim.golden.model.round_fp16`
from the exact product when a gain applies); every element whose fp16 value is
not the graph's value is reported. ``alpha`` is derived in float64 (error below
2**-52); its rounding is reported when it moves the value by more than
:data:`ALPHA_TOLERANCE` = 2**-40, far below half an fp16 step anywhere (2**-25),
so float64 noise of the derivation is not reported and every real rounding is.

Time and size: linear in the number of weights (one numpy pass; the exact path
for a gain other than 1 is one Fraction per weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from spikeforge.sim.files import atomic_output, input_file
from spikeforge.sim.golden import model as golden

__all__ = ["NIRError", "RoundingWarning", "NIRNetwork", "DEFAULT_DT", "GAIN_TOLERANCE",
           "ALPHA_TOLERANCE", "from_nir", "read_network", "to_nir", "write_network",
           "summarize_warnings"]

#: snnTorch's fixed time step (``snntorch.export_nir`` writes ``tau = dt / (1 - beta)``)
DEFAULT_DT = 1e-4
#: a gain ``R dt / tau`` this close to 1 is taken as 1 (float32 noise of ``r = tau / dt``)
GAIN_TOLERANCE = 2.0 ** -20
#: ``alpha = 1 - dt / tau`` in float64: closer than this to its fp16 value is not a rounding
ALPHA_TOLERANCE = 2.0 ** -40
_HALF_SUBNORMAL = 2.0 ** -25     # values of smaller magnitude round to fp16 zero

#: Params fields that a graph's ``metadata["spikeforge"]`` may carry (training settings)
_TRAINING_FIELDS = ("T", "a", "beta", "lr", "loss_scale", "reset_grad")
_ALLOWED = "Input, Flatten, Linear, Affine, LIF, IF, Threshold and Output"
_NEURONS = ("LIF", "IF", "Threshold")
_FLATTEN = "Flatten"
_SYNAPSES = ("Linear", "Affine")


class NIRError(ValueError):
    """A NIR graph the training contract cannot represent, or a file that is not one;
    the message names the node, the parameter and what is allowed."""


@dataclass(frozen=True)
class RoundingWarning:
    """One value that changed on its way to fp16."""

    node: str            # NIR node name
    parameter: str       # "weight", "v_threshold", "alpha (1 - dt/tau)", ...
    index: tuple         # element index within the parameter (() for a scalar)
    before: float        # the graph's value (float64; with the gain applied for weights)
    after: float         # the fp16 value

    def __str__(self):
        where = f"[{', '.join(map(str, self.index))}]" if self.index else ""
        return (f"node {self.node!r} {self.parameter}{where}: {self.before!r} rounds to fp16 "
                f"{self.after!r}")


@dataclass
class NIRNetwork:
    """A network of the training contract read from a NIR graph.

    ``weights[l]`` is float16 ``(sizes[l+1], sizes[l])``; ``alpha`` and ``v_th``
    are the fp16 neuron constants; ``training`` holds the Params fields the graph's
    metadata carries (``T, a, beta, lr, loss_scale, reset_grad`` and the user
    values of ``alpha`` and ``v_th``, as :func:`to_nir` writes them), or is empty.
    ``layers`` names the (synapse, neuron) nodes of every layer."""

    sizes: list
    weights: list
    alpha: np.float16
    v_th: np.float16
    dt: float
    layers: list
    training: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    def params(self, **overrides) -> golden.Params:
        """The run-time Params: ``alpha`` and ``v_th`` from the graph, the other fields
        from ``overrides``, else the graph's metadata, else the Params defaults.

        When the metadata's user values of ``alpha`` and ``v_th`` round to the
        graph's fp16 values they are kept (so ``lo = fp16(v_th - a)`` is computed
        from the same exact values as before the export)."""
        bad = sorted(set(overrides) - set(_TRAINING_FIELDS))
        if bad:
            raise NIRError(f"Params field(s) {bad} cannot be set here: alpha and v_th come from "
                           f"the network's neuron nodes; allowed: {list(_TRAINING_FIELDS)}")
        kw = {k: self.training[k] for k in _TRAINING_FIELDS if k in self.training}
        kw.update(overrides)
        alpha, v_th = float(self.alpha), float(self.v_th)
        user_alpha, user_vth = self.training.get("alpha"), self.training.get("v_th")
        if user_alpha is not None and golden.round_fp16(Fraction(user_alpha)) == self.alpha:
            alpha = user_alpha
        if user_vth is not None and golden.round_fp16(Fraction(user_vth)) == self.v_th:
            v_th = user_vth
        return golden.Params(alpha=alpha, v_th=v_th, **kw)

    def check_dataset(self, n_features: int, n_classes: int, name: str = "the dataset"):
        """:class:`NIRError` unless the network takes ``n_features`` inputs and has at
        least ``n_classes`` outputs."""
        if self.sizes[0] != n_features:
            raise NIRError(f"the network takes {self.sizes[0]} inputs but {name} has "
                           f"{n_features} features; they must be equal")
        if self.sizes[-1] < n_classes:
            raise NIRError(f"the network has {self.sizes[-1]} outputs but {name} has "
                           f"{n_classes} classes; it needs at least one output per class")


def summarize_warnings(warnings) -> list[str]:
    """One line per (node, parameter): how many values rounded and the largest change."""
    groups = {}
    for w in warnings:
        g = groups.setdefault((w.node, w.parameter), [0, 0.0, 0.0])
        g[0] += 1
        d = abs(w.after - w.before)
        if d > g[1]:
            g[1] = d
        scale = abs(w.before)
        if scale > 0 and d / scale > g[2]:
            g[2] = d / scale
    return [f"node {node!r} {param}: {n} value(s) rounded to fp16, largest change {dmax:.3g} "
            f"(relative {rmax:.3g})" for (node, param), (n, dmax, rmax) in groups.items()]


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------

def _nir():
    try:
        import nir
    except ImportError:                                       # pragma: no cover
        raise NIRError("NIR support needs the package nir (pip install nir)") from None
    return nir


def _type(node) -> str:
    return type(node).__name__


def _chain(graph) -> list[str]:
    """The node names from the Input to the Output; NIRError unless the graph is a chain."""
    nir = _nir()
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NIRError(f"node {name!r} is a subgraph (snnTorch writes a recurrent layer such "
                           f"as RLeaky or RSynaptic so); allowed: a flat chain of {_ALLOWED} nodes")
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise NIRError(f"edge ({a!r}, {b!r}) names the node {end!r}, which the graph "
                               "does not have")
        if a == b:
            raise NIRError(f"edge ({a!r}, {b!r}) connects node {a!r} to itself (a recurrent "
                           "connection); the training contract is feed-forward")
    succ, pred = {n: [] for n in nodes}, {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    # a loop anywhere (depth-first search, iterative)
    colour = dict.fromkeys(nodes, 0)
    for root in nodes:
        if colour[root]:
            continue
        stack = [(root, iter(succ[root]))]
        colour[root] = 1
        while stack:
            n, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[n] = 2
                stack.pop()
            elif colour[nxt] == 1:
                raise NIRError(f"edge ({n!r}, {nxt!r}) closes a loop (a recurrent connection); "
                               "the training contract is feed-forward")
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes "
                       f"({', '.join(map(repr, inputs + outputs)) or 'none'}); allowed: exactly "
                       "one of each")
    for n in nodes:
        if len(set(succ[n])) > 1:
            raise NIRError(f"node {n!r} feeds {len(set(succ[n]))} nodes "
                           f"({', '.join(map(repr, sorted(set(succ[n]))))}); the training "
                           "contract is a chain (each node feeds exactly one)")
        if len(set(pred[n])) > 1:
            raise NIRError(f"node {n!r} has {len(set(pred[n]))} inputs "
                           f"({', '.join(map(repr, sorted(set(pred[n]))))}); the training "
                           "contract is a chain (each node has exactly one input)")
    order, n = [inputs[0]], inputs[0]
    while succ[n]:
        n = succ[n][0]
        order.append(n)
    if order[-1] != outputs[0]:
        raise NIRError(f"the chain from Input {inputs[0]!r} ends at node {order[-1]!r}, not at "
                       f"Output {outputs[0]!r}; the training contract is one chain from the "
                       "Input to the Output")
    missing = [n for n in nodes if n not in order]
    if missing:
        raise NIRError(f"node {missing[0]!r} is not on the chain from Input {inputs[0]!r} to "
                       f"Output {outputs[0]!r}; the training contract is one chain")
    return order


def _array(name, node, param, size=None):
    """A node's parameter as a float64 vector of ``size`` elements (a scalar or a
    length-1 array is broadcast); NIRError on a wrong shape or a non-finite value."""
    value = getattr(node, param, None)
    if value is None:
        raise NIRError(f"node {name!r} ({_type(node)}) has no parameter {param}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRError(f"node {name!r} parameter {param} is not numeric") from None
    if size is not None:
        if arr.size == 1:
            arr = np.full(size, arr.reshape(-1)[0])
        elif arr.shape != (size,):
            raise NIRError(f"node {name!r} parameter {param} has shape {arr.shape}; allowed: one "
                           f"value or one per neuron ({size},)")
    return arr


def _finite(name, param, arr, allow_inf=False):
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NIRError(f"node {name!r} parameter {param}{list(idx)} is {float(arr[idx])!r}; allowed: "
                       "finite numbers")


def _uniform(name, param, arr, what):
    if arr.size and not (arr == arr.reshape(-1)[0]).all():
        i = int(np.flatnonzero(arr != arr.reshape(-1)[0])[0])
        raise NIRError(f"node {name!r} has per-neuron {param} that differ ({param}[0] = "
                       f"{float(arr[0])!r}, {param}[{i}] = {float(arr[i])!r}); the training contract has one "
                       f"{what} for the whole network")
    return float(arr.reshape(-1)[0])


def _all_zero(name, param, arr, why):
    if (arr != 0).any():
        i = int(np.flatnonzero(arr != 0)[0])
        raise NIRError(f"node {name!r} has {param}[{i}] = {float(arr[i])!r}; allowed: {param} = 0 "
                       f"everywhere ({why})")


def _flatten(name, node, shape):
    """The shape after a Flatten node (dimensions without the batch, as NIR counts them);
    features are then in C (row-major) order."""
    nd = len(shape)
    try:
        start, end = int(node.start_dim), int(node.end_dim)
    except (TypeError, ValueError):
        raise NIRError(f"node {name!r} (Flatten) has start_dim {node.start_dim!r} and end_dim "
                       f"{node.end_dim!r}; allowed: integers") from None
    s0, e0 = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
    if not (0 <= s0 <= e0 < nd):
        raise NIRError(f"node {name!r} (Flatten) has start_dim {start} and end_dim {end}, "
                       f"which do not fit its input of shape {shape}; allowed: "
                       f"0 <= start_dim <= end_dim < {nd} (negative counts from the end)")
    return shape[:s0] + (int(np.prod(shape[s0:e0 + 1])),) + shape[e0 + 1:]


def _neuron(name, node, size, dt):
    """(alpha as float64, v_th as float64, per-neuron gain) of one neuron node."""
    kind = _type(node)
    if kind == "Threshold":
        thr = _array(name, node, "threshold", size)
        _finite(name, "threshold", thr)
        return 0.0, _uniform(name, "threshold", thr, "threshold"), np.ones(size), "threshold"
    thr = _array(name, node, "v_threshold", size)
    _finite(name, "v_threshold", thr)
    v_th = _uniform(name, "v_threshold", thr, "threshold")
    reset = getattr(node, "v_reset", None)
    if reset is not None:
        reset = _array(name, node, "v_reset", size)
        _all_zero(name, "v_reset", reset, "the contract resets to zero")
    r = _array(name, node, "r", size)
    _finite(name, "r", r)
    if kind == "IF":
        return 1.0, v_th, r, "v_threshold"
    # LIF
    v_leak = _array(name, node, "v_leak", size)
    _all_zero(name, "v_leak", v_leak, "the contract's potential decays towards zero")
    tau = _array(name, node, "tau", size)
    _finite(name, "tau", tau)
    t0 = _uniform(name, "tau", tau, "decay")
    alpha = 1.0 - dt / t0 if t0 > 0 else -math.inf
    # tau a little below dt (snnTorch's beta = 0 gives tau = fl32(dt)) is alpha = 0 in fp16
    if not alpha >= -_HALF_SUBNORMAL:
        raise NIRError(f"node {name!r} has tau = {t0!r} below the time step dt = {dt!r}, so "
                       f"alpha = 1 - dt/tau = {alpha!r} < 0; allowed: tau >= dt "
                       "(0 <= alpha <= 1)")
    gain = r * dt / tau
    return alpha, v_th, gain, "v_threshold"


def _round_weights(name, W, gain, warnings):
    """fp16 weights of one layer, with each row scaled by its gain; rounding reported."""
    if np.all(np.abs(gain - 1.0) <= GAIN_TOLERANCE):
        with np.errstate(over="ignore"):                      # overflow is refused below
            W16 = W.astype(np.float16)
        changed = W16.astype(np.float64) != W
        for idx in np.argwhere(changed):
            i, j = int(idx[0]), int(idx[1])
            warnings.append(RoundingWarning(name, "weight", (i, j), float(W[i, j]),
                                            float(W16[i, j])))
    else:
        W16 = np.empty(W.shape, dtype=np.float16)
        for i in range(W.shape[0]):
            g = Fraction(float(gain[i]))
            for j in range(W.shape[1]):
                exact = Fraction(float(W[i, j])) * g
                v = golden.round_fp16(exact)
                if W[i, j] == 0:                               # keep the sign of a zero
                    v = np.float16(math.copysign(0.0, float(W[i, j]) * float(gain[i])))
                W16[i, j] = v
                if not np.isfinite(v) or Fraction(float(v)) != exact:
                    warnings.append(RoundingWarning(name, f"weight x gain {float(gain[i])!r}",
                                                    (i, j), float(exact), float(v)))
    inf = np.isinf(W16)
    if inf.any():
        i, j = (int(k) for k in np.argwhere(inf)[0])
        raise NIRError(f"node {name!r} weight[{i}, {j}] = {float(W[i, j])!r} overflows fp16 "
                       "(the largest fp16 value is 65504); allowed: |weight| < 65520")
    return W16


def _training_metadata(graph) -> dict:
    meta = getattr(graph, "metadata", None) or {}
    sf = meta.get("spikeforge", {}) if isinstance(meta, dict) else {}
    out = {}
    if isinstance(sf, dict):
        for k in (*_TRAINING_FIELDS, "alpha", "v_th"):
            if k in sf:
                v = sf[k]
                if isinstance(v, bytes):
                    v = v.decode("utf8")
                elif isinstance(v, np.generic):
                    v = v.item()
                out[k] = v
    return out


def from_nir(graph, *, dt: float | None = None) -> NIRNetwork:
    """The training-contract network of a NIR graph (see the module doc); NIRError
    names what cannot be represented."""
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"expected a NIR graph (nir.NIRGraph), not {type(graph).__name__}")
    meta = getattr(graph, "metadata", None) or {}
    if dt is None:
        dt = meta.get("dt", DEFAULT_DT) if isinstance(meta, dict) else DEFAULT_DT
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise NIRError(f"the time step dt must be a number, not {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"the time step dt must be finite and > 0, not {dt!r}")
    order = _chain(graph)
    nodes = graph.nodes
    for n in order[1:-1]:
        kind = _type(nodes[n])
        if kind not in _SYNAPSES + _NEURONS + (_FLATTEN,):
            why = {"Conv1d": "the contract has fully connected layers only",
                   "Conv2d": "the contract has fully connected layers only",
                   "CubaLIF": "the contract has no synaptic current state",
                   "LI": "the contract's neurons spike and reset",
                   "I": "the contract's neurons spike and reset",
                   "Delay": "the contract has no delays"}.get(kind, "the contract cannot "
                                                                    "represent it")
            raise NIRError(f"node {n!r} is a {kind} node ({why}); allowed: {_ALLOWED}")
    inp = nodes[order[0]]
    shape = tuple(int(v) for v in np.asarray(inp.input_type["input"]).reshape(-1))
    body = []
    for n in order[1:-1]:
        if _type(nodes[n]) == _FLATTEN:
            shape = _flatten(n, nodes[n], shape)
        else:
            body.append(n)
    if len(shape) != 1:
        raise NIRError(f"Input node {order[0]!r} has shape {shape}; allowed: a flat vector of "
                       "features (one dimension), or a Flatten node that makes one")
    sizes = [shape[0]]
    if not body:
        raise NIRError("the graph has no layers between its Input and Output; allowed: "
                       "Input, then (Linear or Affine, then LIF, IF or Threshold) one or more "
                       "times, then Output")
    weights, layers, warnings = [], [], []
    alpha_ref = vth_ref = None                                  # (value, node) of layer 0
    k = 0
    while k < len(body):
        syn = body[k]
        if _type(nodes[syn]) not in _SYNAPSES:
            prev = f"after {body[k - 1]!r}" if k else "first"
            raise NIRError(f"node {syn!r} ({_type(nodes[syn])}) comes {prev} with no Linear "
                           "or Affine before it; allowed: each LIF, IF or Threshold node "
                           "follows one Linear or Affine node")
        if k + 1 >= len(body) or _type(nodes[body[k + 1]]) not in _NEURONS:
            nxt = (f"is followed by {body[k + 1]!r} ({_type(nodes[body[k + 1]])})"
                   if k + 1 < len(body) else "is the last node before the Output")
            raise NIRError(f"node {syn!r} ({_type(nodes[syn])}) {nxt}; allowed: each Linear "
                           "or Affine node is followed by one LIF, IF or Threshold node "
                           "(the network's outputs are spikes)")
        neu = body[k + 1]
        sn = nodes[syn]
        W = np.asarray(getattr(sn, "weight", None))
        if W.ndim != 2 or not np.issubdtype(W.dtype, np.number):
            raise NIRError(f"node {syn!r} parameter weight has shape {W.shape}; allowed: a 2-D "
                           "matrix (N_out, N_in)")
        W = W.astype(np.float64)
        _finite(syn, "weight", W)
        if W.shape[1] != sizes[-1]:
            raise NIRError(f"node {syn!r} weight has {W.shape[1]} inputs but the layer before "
                           f"it has {sizes[-1]} outputs; they must be equal")
        n_out = W.shape[0]
        if _type(sn) == "Affine":
            bias = _array(syn, sn, "bias", n_out)
            _all_zero(syn, "bias", bias, "the training contract has no bias: write a Linear "
                      "node, e.g. torch.nn.Linear(..., bias=False)")
        alpha64, v_th64, gain, thr_name = _neuron(neu, nodes[neu], n_out, dt)
        _finite(neu, "gain r*dt/tau" if _type(nodes[neu]) == "LIF" else "r", gain)
        if alpha_ref is None:
            alpha_ref, vth_ref = (alpha64, neu), (v_th64, neu)
        else:
            if alpha64 != alpha_ref[0]:
                raise NIRError(f"node {neu!r} has alpha = {alpha64!r} but node {alpha_ref[1]!r} "
                               f"has alpha = {alpha_ref[0]!r} (alpha = 1 - dt/tau; IF is 1, "
                               "Threshold 0); the training contract has one decay for the "
                               "whole network")
            if v_th64 != vth_ref[0]:
                raise NIRError(f"node {neu!r} has threshold {v_th64!r} but node {vth_ref[1]!r} "
                               f"has {vth_ref[0]!r}; the training contract has one threshold "
                               "for the whole network")
        if k == 0:
            a16 = golden.round_fp16(Fraction(alpha64))
            if a16 == 0:
                a16 = np.float16(0.0)                         # +0 (alpha64 may be -1e-8)
            if abs(float(a16) - alpha64) > ALPHA_TOLERANCE:
                warnings.append(RoundingWarning(neu, "alpha (1 - dt/tau)", (), alpha64,
                                                float(a16)))
            t16 = golden.round_fp16(Fraction(v_th64))
            if float(t16) != v_th64:
                warnings.append(RoundingWarning(neu, thr_name, (), v_th64, float(t16)))
            if not t16 > 0:
                raise NIRError(f"node {neu!r} has {thr_name} {v_th64!r}, which is "
                               f"{float(t16)!r} in fp16; allowed: a threshold > 0 (at least "
                               "2**-24)")
            if not np.isfinite(t16):
                raise NIRError(f"node {neu!r} has {thr_name} {v_th64!r}, which overflows fp16; "
                               "allowed: a threshold below 65520")
        weights.append(_round_weights(syn, W, gain, warnings))
        layers.append((syn, neu))
        sizes.append(n_out)
        k += 2
    out = nodes[order[-1]]
    oshape = np.asarray(out.output_type["output"]).reshape(-1)
    if oshape.size != 1 or int(oshape[0]) != sizes[-1]:
        raise NIRError(f"Output node {order[-1]!r} has shape {tuple(int(s) for s in oshape)} "
                       f"but the last layer has {sizes[-1]} neurons; they must be equal")
    return NIRNetwork(sizes=sizes, weights=weights, alpha=a16, v_th=t16, dt=dt, layers=layers,
                      training=_training_metadata(graph), warnings=warnings)


def read_network(path, *, dt: float | None = None) -> NIRNetwork:
    """:func:`from_nir` of the NIR file ``path`` (read with ``nir.read``)."""
    nir = _nir()
    path = input_file(path, "NIR file", NIRError)
    try:
        graph = nir.read(path)
    except Exception as exc:      # h5py / nir raise OSError, KeyError, ValueError, ...
        raise NIRError(f"{path!r} is not a readable NIR file ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    return from_nir(graph, dt=dt)


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------

def to_nir(weights, params: golden.Params, *, dt: float = DEFAULT_DT):
    """The NIR graph of an fp16 training network: ``input -> linear0 -> lif0 -> ... ->
    output`` (``if{l}`` instead of ``lif{l}`` when ``alpha = 1``).

    Weights are written as float32 (exact for fp16), ``tau = dt / (1 - alpha)``
    and ``r = tau / dt`` in float64 from the fp16 ``alpha``, ``v_threshold`` the
    fp16 ``v_th``, ``v_leak = v_reset = 0``. ``metadata`` holds ``dt`` and, under
    ``"spikeforge"``, every Params field (the user values), so that
    :func:`from_nir` gives back the same Params."""
    nir = _nir()
    if not isinstance(params, golden.Params):
        raise NIRError(f"params must be spikeforge.sim.golden.model.Params, not "
                       f"{type(params).__name__}")
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"the time step dt must be finite and > 0, not {dt!r}")
    if not isinstance(weights, (list, tuple)) or not weights:
        raise NIRError("weights must be a non-empty list of fp16 arrays (N_out, N_in), one per "
                       "layer")
    for l, W in enumerate(weights):
        if not isinstance(W, np.ndarray) or W.ndim != 2 or W.dtype != np.float16:
            desc = f"{W.dtype} array of shape {W.shape}" if isinstance(W, np.ndarray) else \
                type(W).__name__
            raise NIRError(f"weights[{l}] must be a 2-D float16 array (the training contract's "
                           f"fp16 weights), not a {desc}")
        if l and W.shape[1] != weights[l - 1].shape[0]:
            raise NIRError(f"weights[{l}] has {W.shape[1]} inputs but layer {l - 1} has "
                           f"{weights[l - 1].shape[0]} neurons; they must be equal")
        if not np.isfinite(W).all():
            i, j = (int(k) for k in np.argwhere(~np.isfinite(W))[0])
            raise NIRError(f"weights[{l}][{i}, {j}] is {float(W[i, j])!r}; only finite weights "
                           "can be exported")
    c = params.consts
    alpha = Fraction(float(c.alpha))
    nodes = {"input": nir.Input(input_type={"input": np.array([weights[0].shape[1]])})}
    edges, prev = [], "input"
    for l, W in enumerate(weights):
        n = W.shape[0]
        lin = f"linear{l}"
        nodes[lin] = nir.Linear(weight=W.astype(np.float32))
        thr = np.full(n, float(c.v_th), dtype=np.float64)
        if alpha == 1:
            neu = f"if{l}"
            nodes[neu] = nir.IF(r=np.ones(n), v_threshold=thr, v_reset=np.zeros(n))
        else:
            neu = f"lif{l}"
            tau = np.full(n, dt / float(1 - alpha))     # 1 - alpha is exact in float64
            nodes[neu] = nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(n), v_threshold=thr,
                                 v_reset=np.zeros(n))
        edges += [(prev, lin), (lin, neu)]
        prev = neu
    nodes["output"] = nir.Output(output_type={"output": np.array([weights[-1].shape[0]])})
    edges.append((prev, "output"))
    meta = {"dt": dt, "spikeforge": {k: v for k, v in params.to_dict().items()}}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_network(path, weights, params: golden.Params, *, dt: float = DEFAULT_DT):
    """Write :func:`to_nir` of the network to ``path`` with ``nir.write``, in one step
    (a temporary file renamed over ``path``: nothing half-written)."""
    nir = _nir()
    graph = to_nir(weights, params, dt=dt)
    with atomic_output(path, NIRError) as tmp:
        nir.write(tmp, graph)
    return graph
