"""Float64 twin of the golden model: the equations of SPEC section 3 without fp16.

Same entry points and shapes as :mod:`spikeforge.sim.golden.model` (``forward``,
``backward``, ``update``, ``train_step``, ``predict``, taking the same
:class:`~spikeforge.sim.golden.model.Params`), but every value is float64 and the
constants are the exact user values in float64 (``lo = v_th - a``,
``inv_T = 1/T``, ``gscale = loss_scale/T``, ``neg_lr = -lr/loss_scale``), not
their fp16 roundings. Sums are matrix products (their order only matters at
the 1e-16 level). It measures what fp16 costs in accuracy, and its gradients
are checked against PyTorch autograd in the tests.

``u[t] = x[t] if s[t-1] else alpha*u[t-1] + x[t]``, ``s = u >= v_th``,
``m = lo < u < hi``; backward as in :mod:`golden` with ``term = m * beta * ds``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import (LayerGrad, LayerTrace, Params, StepResult, _as_batch, _check_labels,
                     _check_spikes, _check_weights, _run_layers, _train_step, _without_batch,
                     spike_counts)

__all__ = ["Constants64", "constants", "forward", "output_gradient", "backward", "update",
           "zero_grads", "train_step", "predict", "to_float64"]

_F64 = np.float64


@dataclass(frozen=True)
class Constants64:
    alpha: float
    v_th: float
    a: float
    beta: float
    lo: float
    hi: float
    inv_T: float
    gscale: float
    neg_lr: float


def constants(params: Params) -> Constants64:
    """The run-time constants in float64, from the exact user values."""
    p = params
    return Constants64(alpha=p.alpha, v_th=p.v_th, a=p.a, beta=p.beta,
                       lo=p.v_th - p.a, hi=p.v_th + p.a, inv_T=1.0 / p.T,
                       gscale=p.loss_scale / p.T, neg_lr=-p.lr / p.loss_scale)


def to_float64(weights) -> list[np.ndarray]:
    """Copies of (fp16) weights as float64 (exact)."""
    return [np.asarray(W, dtype=_F64).copy() for W in weights]


def _forward_layer(W, s_in, c):
    x = s_in.astype(_F64) @ W.T                              # (B, T, N_out)
    B, T, N = x.shape
    u = np.empty((B, T, N))
    u_prev = np.zeros((B, N))
    s_prev = np.zeros((B, N), dtype=np.bool_)
    for t in range(T):
        u_t = np.where(s_prev, x[:, t], c.alpha * u_prev + x[:, t])
        u[:, t] = u_t
        s_prev = u_t >= c.v_th
        u_prev = u_t
    return LayerTrace(u=u, s=u >= c.v_th, m=(u > c.lo) & (u < c.hi))


def forward(weights, spikes, params: Params) -> list[LayerTrace]:
    """Forward pass in float64; ``spikes`` (T, N_in) or (B, T, N_in)."""
    _check_weights(weights, _F64)
    spikes = _check_spikes(spikes, weights, params)
    c = constants(params)
    return _run_layers(weights, spikes, lambda W, s_in: _forward_layer(W, s_in, c))


def output_gradient(s_out, label, params: Params):
    """``(r, e, g)`` in float64: ``r = count/T``, ``e = r - y``, ``g = e*loss_scale/T``."""
    c = constants(params)
    counts = spike_counts(s_out).astype(_F64)
    K = counts.shape[-1]
    y = (np.arange(K) == np.asarray(label)[..., None]).astype(_F64)
    r = counts * c.inv_T
    e = r - y
    return r, e, e * c.gscale


def _du_layer(tr, g, c, mode):
    B, T, N = tr.u.shape
    du = np.empty((B, T, N))
    du_next = np.zeros((B, N))
    for t in range(T - 1, -1, -1):
        g_t = g[:, t] if g.shape[1] > 1 else g[:, 0]
        ds = g_t if mode == "detach" else g_t - (c.alpha * tr.u[:, t]) * du_next
        term = np.where(tr.m[:, t], c.beta * ds, 0.0)
        du_t = np.where(tr.s[:, t], term, c.alpha * du_next + term)
        du[:, t] = du_t
        du_next = du_t
    return du


def zero_grads(weights) -> list[np.ndarray]:
    return [np.zeros_like(W) for W in weights]


def backward(weights, traces, spikes, label, params: Params, dWs=None) -> list[LayerGrad]:
    """Backward pass in float64 (same contract as :func:`golden.backward`)."""
    _check_weights(weights, _F64)
    spikes = _check_spikes(spikes, weights, params)
    single = spikes.ndim == 2
    labels = _check_labels(label, None if single else spikes.shape[0], weights[-1].shape[0])
    if dWs is None:
        dWs = zero_grads(weights)
    c = constants(params)
    if single:
        spikes, traces = _as_batch(spikes, traces)
    _, _, g_out = output_gradient(traces[-1].s, labels, params)
    g = g_out[:, None, :]
    results = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        W = weights[l]
        du = _du_layer(traces[l], g, c, params.reset_grad)
        s_in = spikes if l == 0 else traces[l - 1].s
        g_in = du @ W if l else None
        dW = dWs[l] + np.einsum("bti,btj->ij", du, s_in.astype(_F64))
        results[l] = LayerGrad(du=du, g_in=g_in, dW=dW)
        g = g_in
    return _without_batch(results) if single else results


def update(weights, dWs, params: Params) -> list[np.ndarray]:
    c = constants(params)
    return [W + c.neg_lr * dW for W, dW in zip(weights, dWs)]


def train_step(weights, spikes, labels, params: Params) -> StepResult:
    return _train_step(forward, backward, update, weights, spikes, labels, params)


def predict(weights, spikes, params: Params):
    traces = forward(weights, spikes, params)
    return np.argmax(spike_counts(traces[-1].s), axis=-1)
