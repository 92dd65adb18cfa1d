"""Golden model of spikeforge: SNN forward, BPTT backward and update in exact fp16.

This module *is* SPEC section 3: every fp16 value the hardware computes is
defined here, bit for bit, through the operations of :mod:`spikeforge.sim.golden.fp16`
(``fma``, ``add = fma(a, 1, c)``, ``mul = fma(a, b, -0)``, IEEE comparisons).
The work is vectorised over neurons (and over independent samples and time
steps), but every sum is accumulated one term at a time in the order the
contract fixes; nothing is reordered, fused or skipped that the contract does
not skip. ``docs/golden-model.md`` lists the equations and orders.

Entry points (the hardware is compared against these):

* :class:`Params` -- run-time constants, checked when created; the fp16
  constants (``alpha, v_th, a, beta, lo, hi, inv_T, gscale, neg_lr``) are
  derived once, each rounded to fp16 exactly once from the exact rational
  value (:attr:`Params.consts`).
* :func:`forward` -- one :class:`LayerTrace` (``u``, ``s``, ``m``) per layer.
* :func:`output_gradient` / :func:`loss_value` -- the loss of section 3.
* :func:`backward` -- one :class:`LayerGrad` (``du``, ``g_in``, ``dW``) per layer;
  ``dW`` continues a running minibatch accumulator when one is passed.
* :func:`update` -- ``W = fma(neg_lr, dW, W)``.
* :func:`train_step` -- one minibatch: forward, backward with ``dW``
  accumulated over the samples in order, one update.
* :func:`predict` -- the output with most spikes, lowest index on ties.

Shapes: ``weights`` is a list of float16 arrays ``(N_out, N_in)``, layer 0 first.
``spikes`` is bool ``(T, N_in)`` for one sample, or ``(B, T, N_in)`` for ``B``
samples (then every trace and gradient gets the same leading ``B`` and
``dW`` is accumulated over the ``B`` samples in order).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from . import fp16

__all__ = [
    "RESET_GRAD_MODES", "ParamsError", "Params", "Constants", "round_fp16",
    "LayerTrace", "LayerGrad", "StepResult",
    "forward", "output_gradient", "loss_value", "backward", "update",
    "zero_grads", "train_step", "predict", "spike_counts", "init_weights",
]

RESET_GRAD_MODES = ("detach", "through")

_F16 = np.float16
_POS_ZERO = _F16(0.0)
_MAX_T = 1024   # spike counts must stay below 2048 to convert exactly (SPEC section 2)


class ParamsError(ValueError):
    """A run-time parameter is out of range; the message names it and what is allowed."""


# ---------------------------------------------------------------------------
# Exact rounding of the host constants
# ---------------------------------------------------------------------------

def round_fp16(value) -> np.float16:
    """``value`` (int, float or :class:`fractions.Fraction`, taken exactly) rounded
    once to binary16: nearest, ties to even, subnormals kept, overflow to +-inf.

    An exact zero gives +0.0 (the constants are results of exact arithmetic,
    whose zero is +0 under round-to-nearest).
    """
    x = Fraction(value)
    if x == 0:
        return _F16(0.0)
    negative = x < 0
    mag = -x if negative else x
    # exponent e with 2**e <= mag < 2**(e+1)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if mag < Fraction(2) ** e:
        e -= 1
    e = max(e, -14)                         # below the normal range the quantum stays 2**-24
    quantum = Fraction(2) ** (e - 10)       # 11 significant bits
    n = round(mag / quantum)                # Fraction.__round__ rounds half to even
    result = n * quantum
    if result >= 65536:                     # 65520 and above round to infinity
        out = math.inf
    else:
        out = float(result)                 # exact: result is a binary16 value
    return _F16(-out if negative else out)


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Constants:
    """The fp16 run-time constants of SPEC section 3, as the host loads them."""

    alpha: np.float16
    v_th: np.float16
    a: np.float16
    beta: np.float16
    lo: np.float16       # fp16(v_th - a), from the exact values
    hi: np.float16       # fp16(v_th + a)
    inv_T: np.float16    # fp16(1 / T)
    gscale: np.float16   # fp16(loss_scale / T)
    neg_lr: np.float16   # fp16(-lr / loss_scale)

    def bits(self) -> dict[str, int]:
        """The 16-bit pattern of every constant (what the host writes)."""
        return {f.name: int(fp16.to_bits(getattr(self, f.name)))
                for f in dataclasses.fields(self)}

    def to_dict(self) -> dict:
        """Values and bit patterns, for reports."""
        return {f.name: {"value": float(getattr(self, f.name)),
                         "bits": f"0x{int(fp16.to_bits(getattr(self, f.name))):04x}"}
                for f in dataclasses.fields(self)}


def _check_number(name, value, *, positive=False, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, np.floating, np.integer)):
        raise ParamsError(f"Params.{name} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ParamsError(f"Params.{name} must be finite, not {v!r}")
    if positive and not v > 0:
        raise ParamsError(f"Params.{name} must be > 0, not {v!r}")
    if lo is not None and hi is not None and not lo <= v <= hi:
        raise ParamsError(f"Params.{name} must be between {lo} and {hi}, not {v!r}")
    return v


@dataclass(frozen=True)
class Params:
    """Run-time parameters of training (SPEC section 3), checked when created.

    The fields are the values the user chose (exact Python numbers); the fp16
    constants the model and the hardware use are derived from them once, in
    :attr:`consts` (each rounded to fp16 once from the exact value, so
    ``lo = fp16(v_th - a)``, not ``fp16(v_th) - fp16(a)``).

    * ``T``: time steps per sample (1 .. 1024).
    * ``alpha``: membrane decay, 0 .. 1.
    * ``v_th``: firing threshold (> 0); a neuron spikes when ``u >= v_th``.
    * ``a``: half-width of the rectangular surrogate window (> 0).
    * ``beta``: surrogate gain (> 0): ``ds/du ~ beta`` inside the window.
    * ``lr``: learning rate (> 0); the minibatch gradient is a *sum* over samples.
    * ``loss_scale``: gradients are computed times ``loss_scale`` (> 0) so they
      stay clear of fp16 underflow; the update divides it out (``neg_lr``).
    * ``reset_grad``: ``"detach"`` (default) or ``"through"``.

    The defaults are those of ``spikeforge train --dataset digits`` (see
    ``docs/golden-model.md`` for how they were chosen).
    """

    T: int = 16
    alpha: float = 0.25
    v_th: float = 0.25
    a: float = 0.5
    beta: float = 2.0
    lr: float = 0.01
    loss_scale: float = 8.0
    reset_grad: str = "detach"

    def __post_init__(self):
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)):
            raise ParamsError(f"Params.T must be an integer, not {self.T!r}")
        if not 1 <= int(self.T) <= _MAX_T:
            raise ParamsError(f"Params.T must be between 1 and {_MAX_T}, not {self.T}")
        object.__setattr__(self, "T", int(self.T))
        for name, kw in (("alpha", dict(lo=0.0, hi=1.0)), ("v_th", dict(positive=True)),
                         ("a", dict(positive=True)), ("beta", dict(positive=True)),
                         ("lr", dict(positive=True)), ("loss_scale", dict(positive=True))):
            v = _check_number(name, getattr(self, name), **kw)
            object.__setattr__(self, name, v)
        if self.reset_grad not in RESET_GRAD_MODES:
            raise ParamsError(f"Params.reset_grad must be one of {list(RESET_GRAD_MODES)}, "
                              f"not {self.reset_grad!r}")
        F = Fraction
        c = Constants(
            alpha=round_fp16(F(self.alpha)), v_th=round_fp16(F(self.v_th)),
            a=round_fp16(F(self.a)), beta=round_fp16(F(self.beta)),
            lo=round_fp16(F(self.v_th) - F(self.a)), hi=round_fp16(F(self.v_th) + F(self.a)),
            inv_T=round_fp16(F(1, self.T)), gscale=round_fp16(F(self.loss_scale) / self.T),
            neg_lr=round_fp16(-F(self.lr) / F(self.loss_scale)))
        for f in dataclasses.fields(c):
            v = getattr(c, f.name)
            if not np.isfinite(v):
                raise ParamsError(f"the fp16 constant {f.name} overflows to {float(v)} "
                                  "(fp16 stops at 65504); choose smaller values")
        for name, source, exact in (
                ("v_th", "v_th", F(self.v_th)), ("beta", "beta", F(self.beta)),
                ("gscale", "loss_scale / T", F(self.loss_scale) / self.T),
                ("neg_lr", "-lr / loss_scale", -F(self.lr) / F(self.loss_scale))):
            if getattr(c, name) == 0:
                raise ParamsError(f"the fp16 constant {name} = {source} = {float(exact)!r} "
                                  "underflows to zero (fp16 reaches down to 2**-24)")
        if not c.lo < c.hi:
            raise ParamsError(f"the surrogate window is empty in fp16: lo = {float(c.lo)} "
                              f"is not below hi = {float(c.hi)}")
        object.__setattr__(self, "_consts", c)

    @property
    def consts(self) -> Constants:
        """The fp16 constants (derived once, when the Params were created)."""
        return self._consts

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "Params":
        if not isinstance(data, dict):
            raise ParamsError(f"Params must come from a JSON object, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ParamsError(f"unknown Params field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**data)

    def replace(self, **changes) -> "Params":
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

@dataclass
class LayerTrace:
    """Forward trace of one layer, each ``(..., T, N_out)``: potentials ``u`` (fp16),
    spikes ``s`` (bool) and surrogate window bits ``m`` (bool)."""

    u: np.ndarray
    s: np.ndarray
    m: np.ndarray


@dataclass
class LayerGrad:
    """Backward result of one layer.

    ``du`` (fp16, ``(..., T, N_out)``): gradient of the potentials (times loss_scale).
    ``g_in`` (fp16, ``(..., T, N_in)``, ``None`` for layer 0): the gradient sent to
    the layer below. Only its entries where the layer below's window bit ``m``
    is 1 are ever used; the hardware may skip the others, so compare those only.
    ``dW`` (fp16, ``(N_out, N_in)``): the running weight-gradient accumulator after
    this sample (or these samples, in order).
    """

    du: np.ndarray
    g_in: np.ndarray | None
    dW: np.ndarray


@dataclass
class StepResult:
    """What :func:`train_step` did: new weights, the accumulated ``dW`` it applied,
    the traces and gradients of every sample (leading axis ``B``) and the outputs."""

    weights: list
    dWs: list
    traces: list
    grads: list
    counts: np.ndarray       # (B, K) output spike counts
    loss: np.ndarray         # (B,) float64 loss values (reporting only)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

def _check_weights(weights, dtype=np.float16, name="weights"):
    if not isinstance(weights, (list, tuple)) or not weights:
        raise ValueError(f"{name} must be a non-empty list of 2-D arrays, one per layer")
    for l, W in enumerate(weights):
        if not isinstance(W, np.ndarray) or W.ndim != 2 or W.dtype != dtype:
            desc = (f"{W.dtype} array of shape {W.shape}" if isinstance(W, np.ndarray)
                    else type(W).__name__)
            raise ValueError(f"{name}[{l}] must be a 2-D {np.dtype(dtype).name} array, not a {desc}")
        if l and W.shape[1] != weights[l - 1].shape[0]:
            raise ValueError(f"{name}[{l}] has {W.shape[1]} inputs but layer {l - 1} has "
                             f"{weights[l - 1].shape[0]} neurons")


def _check_spikes(spikes, weights, params):
    spikes = np.asarray(spikes)
    if spikes.dtype != np.bool_:
        raise ValueError(f"spikes must be a bool array, not {spikes.dtype}")
    if spikes.ndim not in (2, 3):
        raise ValueError(f"spikes must have shape (T, N_in) or (B, T, N_in), not {spikes.shape}")
    if spikes.shape[-2] != params.T:
        raise ValueError(f"spikes have {spikes.shape[-2]} time steps but Params.T is {params.T}")
    if spikes.shape[-1] != weights[0].shape[1]:
        raise ValueError(f"spikes have {spikes.shape[-1]} inputs but layer 0 takes "
                         f"{weights[0].shape[1]}")
    return spikes


def _check_labels(label, batch, n_classes):
    lab = np.asarray(label)
    if batch is None:
        if lab.ndim != 0:
            raise ValueError(f"label must be one integer for one sample, not shape {lab.shape}")
    elif lab.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},) for {batch} samples, not {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integers, not {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"labels must be between 0 and {n_classes - 1}, not {lab.min()}..{lab.max()}")
    return lab.reshape(-1)


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------

def _synaptic_input(W, s_in):
    """x[b, t, i] = sum of W[i, j] over the active j of s_in[b, t], ascending j,
    from +0.0, one fp16 add per term. Vectorised over (b, t, i): the j loop is
    the order of the terms of every element."""
    B, T, N_in = s_in.shape
    rows = s_in.reshape(B * T, N_in)
    x = np.zeros((B * T, W.shape[0]), dtype=_F16)          # +0.0
    # k-th active input of every (b, t) row, ascending j: step k adds the k-th term of
    # every row that has one (rows are independent; each row's terms stay in order)
    n_active = rows.sum(axis=1)
    if n_active.size == 0 or n_active.max() == 0:
        return x.reshape(B, T, -1)
    rank = np.cumsum(rows, axis=1) - 1                      # rank of each active j in its row
    r_idx, j_idx = np.nonzero(rows)                         # row-major: j ascending per row
    order = np.full((B * T, int(n_active.max())), -1, dtype=np.intp)
    order[r_idx, rank[r_idx, j_idx]] = j_idx
    WT = W.T                                                # WT[j] is the column W[:, j]
    for k in range(order.shape[1]):
        live = np.flatnonzero(order[:, k] >= 0)
        x[live] = fp16.add(x[live], WT[order[live, k]])
    return x.reshape(B, T, -1)


def _forward_layer(W, s_in, c):
    """One layer over all T steps for a batch ``s_in`` (B, T, N_in)."""
    x = _synaptic_input(W, s_in)
    B, T, N = x.shape
    u = np.empty((B, T, N), dtype=_F16)
    u_prev = np.zeros((B, N), dtype=_F16)                   # u[-1] = +0.0
    s_prev = np.zeros((B, N), dtype=np.bool_)               # s[-1] = 0
    for t in range(T):
        decayed = fp16.fma(c.alpha, u_prev, x[:, t])
        u_t = np.where(s_prev, x[:, t], decayed)             # hard reset the step after a spike
        u[:, t] = u_t
        s_prev = fp16.ge(u_t, c.v_th)
        u_prev = u_t
    s = fp16.ge(u, c.v_th)
    m = fp16.gt(u, c.lo) & fp16.lt(u, c.hi)
    return LayerTrace(u=u, s=s, m=m)


def forward(weights, spikes, params: Params) -> list[LayerTrace]:
    """Forward pass of SPEC section 3 for one sample ``(T, N_in)`` or a batch
    ``(B, T, N_in)`` of independent samples; one :class:`LayerTrace` per layer."""
    _check_weights(weights)
    spikes = _check_spikes(spikes, weights, params)
    return _run_layers(weights, spikes, lambda W, s_in: _forward_layer(W, s_in, params.consts))


def _run_layers(weights, spikes, layer):
    """``layer(W, s_in) -> LayerTrace`` layer after layer on one sample ``(T, N_in)`` or a
    batch; the traces keep a batch axis only where ``spikes`` has one (shared with the
    float64 twin)."""
    single = spikes.ndim == 2
    s_in = spikes[None] if single else spikes
    traces = []
    for W in weights:
        tr = layer(W, s_in)
        traces.append(tr)
        s_in = tr.s
    if single:
        traces = [LayerTrace(u=tr.u[0], s=tr.s[0], m=tr.m[0]) for tr in traces]
    return traces


def _as_batch(spikes, traces):
    """One sample's spikes and traces with a batch axis of one."""
    return spikes[None], [LayerTrace(u=tr.u[None], s=tr.s[None], m=tr.m[None]) for tr in traces]


def _without_batch(grads):
    """The gradients of a batch of one without its batch axis (``dW`` has none)."""
    return [LayerGrad(du=r.du[0], g_in=None if r.g_in is None else r.g_in[0], dW=r.dW)
            for r in grads]


def spike_counts(s_out) -> np.ndarray:
    """Spike count per output, summed over the time axis (``(..., T, K)`` -> ``(..., K)``)."""
    return np.asarray(s_out).sum(axis=-2)


# ---------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------

def output_gradient(s_out, label, params: Params):
    """The loss gradient of SPEC section 3 from the output spikes ``(..., T, K)``.

    Returns ``(r, e, g)``, fp16 arrays ``(..., K)``: ``r = fp16(count) * inv_T``,
    ``e = r - y`` (``fma(r, 1, -y)``), ``g = e * gscale``; ``g`` is the gradient
    for ``s[t]_k`` at every t.
    """
    c = params.consts
    counts = spike_counts(s_out)
    K = counts.shape[-1]
    label = np.asarray(label)
    y = (np.arange(K) == label[..., None]).astype(_F16)
    r = fp16.mul(fp16.from_int(counts), c.inv_T)
    e = fp16.add(r, fp16.neg(y))
    g = fp16.mul(e, c.gscale)
    return r, e, g


def loss_value(s_out, label, T: int | None = None) -> np.ndarray:
    """``sum_k (count_k / T - y_k)**2 / 2`` in float64 (for reports; not part of the
    hardware contract). ``s_out`` is ``(..., T, K)`` bool."""
    s_out = np.asarray(s_out)
    T = s_out.shape[-2] if T is None else T
    counts = spike_counts(s_out).astype(np.float64)
    K = counts.shape[-1]
    y = (np.arange(K) == np.asarray(label)[..., None]).astype(np.float64)
    return 0.5 * np.sum((counts / T - y) ** 2, axis=-1)


# ---------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------

def _du_layer(tr: LayerTrace, g, c, mode):
    """du over t = T-1 .. 0 for a batch; ``g`` is (B, T, N) or (B, 1, N)."""
    B, T, N = tr.u.shape
    du = np.empty((B, T, N), dtype=_F16)
    du_next = np.zeros((B, N), dtype=_F16)                  # du[T] = +0.0
    g = np.broadcast_to(g, (B, T, N))
    if mode == "detach":
        # term = m ? beta * g : +0 does not depend on du: computed for every t at once
        terms = np.where(tr.m, fp16.mul(c.beta, g), _POS_ZERO)
    else:
        neg_alpha_u = fp16.neg(fp16.mul(c.alpha, tr.u))     # -(alpha * u[t]), every t
    for t in range(T - 1, -1, -1):
        if mode == "detach":
            term = terms[:, t]
        else:   # through: ds = fma(-(alpha * u[t]), du[t+1], g[t])
            ds = fp16.fma(neg_alpha_u[:, t], du_next, g[:, t])
            term = np.where(tr.m[:, t], fp16.mul(c.beta, ds), _POS_ZERO)
        du_t = np.where(tr.s[:, t], term, fp16.fma(c.alpha, du_next, term))
        du[:, t] = du_t
        du_next = du_t
    return du


def _input_gradient(W, du):
    """g_in[b, t, j] = sum over the i with du[b, t, i] != 0, ascending i, from +0.0,
    of acc = fma(W[i, j], du[b, t, i], acc). Vectorised over (b, t, j)."""
    B, T, N_out = du.shape
    acc = np.zeros((B, T, W.shape[1]), dtype=_F16)
    nz = fp16.ne(du, _POS_ZERO)
    for i in np.flatnonzero(nz.any(axis=(0, 1))):           # ascending i
        mask = nz[:, :, i]
        acc[mask] = fp16.fma(W[i, :], du[:, :, i][mask][:, None], acc[mask])
    return acc


def _accumulate_dW(dW, du, s_in):
    """dW[i, j] += du[b, t, i] for du != 0 and s_in[b, t, j], samples in order,
    t descending within a sample, one fp16 add per term (in place)."""
    nz = fp16.ne(du, _POS_ZERO)
    B, T, _ = du.shape
    for b in range(B):
        for t in range(T - 1, -1, -1):
            rows = np.flatnonzero(nz[b, t])
            if not rows.size:
                continue
            cols = np.flatnonzero(s_in[b, t])
            if not cols.size:
                continue
            ix = np.ix_(rows, cols)
            dW[ix] = fp16.add(dW[ix], du[b, t, rows][:, None])
    return dW


def zero_grads(weights) -> list[np.ndarray]:
    """A fresh dW accumulator (+0.0) per layer."""
    return [np.zeros_like(W) for W in weights]


def backward(weights, traces, spikes, label, params: Params, dWs=None) -> list[LayerGrad]:
    """Backward pass of SPEC section 3 for one sample (or a batch, in order).

    ``traces`` come from :func:`forward` on the same ``spikes``; ``label`` is an
    int (or ``(B,)`` ints). ``dWs`` is the running minibatch accumulator (one
    fp16 array per layer, left untouched); ``None`` starts from +0.0. Each
    :class:`LayerGrad` ``.dW`` is the accumulator after these samples.
    """
    _check_weights(weights)
    spikes = _check_spikes(spikes, weights, params)
    single = spikes.ndim == 2
    labels = _check_labels(label, None if single else spikes.shape[0], weights[-1].shape[0])
    if len(traces) != len(weights):
        raise ValueError(f"{len(traces)} traces for {len(weights)} layers")
    if dWs is None:
        dWs = zero_grads(weights)
    else:
        _check_weights(list(dWs), name="dWs")
        if [d.shape for d in dWs] != [W.shape for W in weights]:
            raise ValueError("dWs must have the shapes of the weights")
    c = params.consts
    if single:
        spikes, traces = _as_batch(spikes, traces)
    _, _, g_out = output_gradient(traces[-1].s, labels, params)
    g = g_out[:, None, :]                                   # the same for every t
    results = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        W = weights[l]
        du = _du_layer(traces[l], g, c, params.reset_grad)
        s_in = spikes if l == 0 else traces[l - 1].s
        g_in = _input_gradient(W, du) if l else None
        dW = _accumulate_dW(dWs[l].copy(), du, s_in)
        results[l] = LayerGrad(du=du, g_in=g_in, dW=dW)
        g = g_in
    return _without_batch(results) if single else results


# ---------------------------------------------------------------------------
# Update, minibatch step, inference
# ---------------------------------------------------------------------------

def update(weights, dWs, params: Params) -> list[np.ndarray]:
    """``W = fma(neg_lr, dW, W)`` for every weight (new arrays; the caller resets dW)."""
    _check_weights(weights)
    _check_weights(list(dWs), name="dWs")
    return [fp16.fma(params.consts.neg_lr, dW, W) for W, dW in zip(weights, dWs)]


def train_step(weights, spikes, labels, params: Params) -> StepResult:
    """One minibatch: forward every sample (independent, weights fixed), backward
    with ``dW`` accumulated from +0.0 over the samples in the order given, then one
    :func:`update`. ``spikes`` is ``(B, T, N_in)``, ``labels`` ``(B,)``."""
    return _train_step(forward, backward, update, weights, spikes, labels, params)


def _train_step(forward, backward, update, weights, spikes, labels, params) -> StepResult:
    """:func:`train_step` from a model's forward, backward and update (shared with the
    float64 twin)."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"train_step takes a batch of spikes (B, T, N_in), not shape {spikes.shape}")
    traces = forward(weights, spikes, params)
    grads = backward(weights, traces, spikes, labels, params)
    dWs = [gr.dW for gr in grads]
    new = update(weights, dWs, params)
    return StepResult(weights=new, dWs=dWs, traces=traces, grads=grads,
                      counts=spike_counts(traces[-1].s),
                      loss=loss_value(traces[-1].s, np.asarray(labels)))


def predict(weights, spikes, params: Params):
    """Class with most output spikes (lowest index on ties); an int for one sample,
    an int array for a batch."""
    traces = forward(weights, spikes, params)
    return np.argmax(spike_counts(traces[-1].s), axis=-1)


def init_weights(sizes: Sequence[int], seed: int, *, gain: float = 1.0) -> list[np.ndarray]:
    """Deterministic initial weights for layer sizes ``[N_in, N_1, ..., K]``.

    Layer ``l`` draws ``W ~ U(-k, k)``, ``k = gain / sqrt(N_in)``, in float64 from
    ``numpy.random.default_rng([seed, 0x5EED, l])``, then rounds once to fp16.
    The float64 twin starts from the same (fp16-valued) weights.
    """
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer sizes must be at least two positive integers, not {sizes}")
    out = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        rng = np.random.default_rng([int(seed), 0x5EED, l])
        k = gain / math.sqrt(n_in)
        out.append(rng.uniform(-k, k, size=(n_out, n_in)).astype(np.float16))
    return out
