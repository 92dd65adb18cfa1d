"""Golden model of SPEC section 8: the integer, event-driven inference forward pass.

This module *is* section 8: every potential, spike and prediction the
inference build computes is defined here, bit for bit. The work is vectorised
with numpy over samples and neurons (time steps run in order, since each
depends on the previous one); every value is an exact integer (``int64``).

* :class:`IntLayer` / :class:`IntNetwork` -- a ported network, checked when
  created (one sentence naming the bad value and what is allowed).
* :func:`forward` -- the forward pass over ``T`` steps of a batch of input
  spikes; an :class:`IntResult` with per-layer spikes, final potentials,
  SOP counts, the readout scores and the predictions.
* :func:`predict` -- the predictions only.

The arithmetic, per layer, neuron ``i`` and step ``t`` (``v[-1] = 0``):

* ``x[t]_i`` = exact sum of ``W[i, j]`` over the active ``j`` of ``s_in[t]``;
* ``l = v[t-1]_i`` when ``leak_shift`` is ``None`` (integrate-and-fire), else
  ``v[t-1]_i - (v[t-1]_i >> k)`` (arithmetic shift: rounds toward minus
  infinity; ``k = 0`` therefore gives ``l = 0``);
* ``v' = sat_Q(l + x[t]_i + b_i)``, clamped to ``[-2**(Q-1), 2**(Q-1) - 1]``;
* ``s[t]_i = v' >= theta``; ``v[t]_i = v' - theta`` (``subtract``) or ``0``
  (``zero``) where it spiked, else ``v'``.

Readout of the last layer: ``spikes`` (most output spikes) or ``potential``
(the last layer never spikes nor resets; the largest ``v[T-1]``); ties go to
the lowest index in both. A synaptic operation (SOP) is one weight added for
one active input and one neuron: a layer does ``N_out`` SOPs per active input
per step (in ``potential`` readout the last layer's SOPs count too).

``x`` is computed with a float64 matrix product (BLAS), which is exact here:
every partial sum is an integer of magnitude at most ``N_in * 2**(B-1)``, far
below ``2**53`` (checked when the network is created).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["IntNetworkError", "IntLayer", "IntNetwork", "IntResult", "forward", "predict",
           "make_network", "WEIGHT_BITS", "RESETS", "READOUTS", "LEAK_SHIFTS", "Q_RANGE", "MAX_T"]

WEIGHT_BITS = (4, 8)
RESETS = ("subtract", "zero")
READOUTS = ("spikes", "potential")
LEAK_SHIFTS = tuple(range(16))          # or None: integrate-and-fire
Q_RANGE = (2, 32)                       # potential bits allowed by the model
MAX_T = 1024
_EXACT = 2 ** 53                        # float64 sums of integers are exact below this


class IntNetworkError(ValueError):
    """An integer network is malformed; the message is one sentence naming the value."""


def _as_int_array(name, value, ndim):
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise IntNetworkError(f"{name} must be an array of integers, not dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise IntNetworkError(f"{name} must have {ndim} dimension(s), not shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise IntNetworkError(f"{name} must hold integers, and it holds non-integer values")
        if arr.size and np.max(np.abs(arr)) >= 2 ** 62:
            raise IntNetworkError(f"{name} holds values too large for any allowed bit width")
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True, eq=False)
class IntLayer:
    """One fully connected layer of an integer network (SPEC section 8).

    * ``W``: ``(N_out, N_in)`` signed integers (B-bit two's complement, checked by
      the :class:`IntNetwork` that holds the layer, which knows ``B``).
    * ``b``: ``(N_out,)`` bias, added every step (signed Q-bit).
    * ``theta``: the layer's threshold, an integer ``> 0`` (signed Q-bit).
    * ``leak_shift``: ``k`` in 0..15, or ``None`` for integrate-and-fire.
    * ``reset``: ``"subtract"`` (``v - theta``) or ``"zero"``.

    The arrays are stored as read-only ``int64`` copies.
    """

    W: np.ndarray
    b: np.ndarray
    theta: int
    leak_shift: int | None = None
    reset: str = "subtract"

    def __post_init__(self):
        W = _as_int_array("W", self.W, 2)
        if W.shape[0] < 1 or W.shape[1] < 1:
            raise IntNetworkError(f"W must have at least one row and one column, not shape {W.shape}")
        b = _as_int_array("b", self.b, 1)
        if b.shape != (W.shape[0],):
            raise IntNetworkError(f"b must have one entry per neuron, shape ({W.shape[0]},), "
                                  f"not {b.shape}")
        if not _is_int(self.theta):
            raise IntNetworkError(f"theta must be an integer, not {self.theta!r}")
        if self.theta <= 0:
            raise IntNetworkError(f"theta must be > 0, not {int(self.theta)}")
        if self.leak_shift is not None and (not _is_int(self.leak_shift)
                                            or not 0 <= self.leak_shift <= 15):
            raise IntNetworkError(f"leak_shift must be an integer in 0..15 or None "
                                  f"(integrate-and-fire), not {self.leak_shift!r}")
        if self.reset not in RESETS:
            raise IntNetworkError(f"reset must be one of {list(RESETS)}, not {self.reset!r}")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "theta", int(self.theta))
        if self.leak_shift is not None:
            object.__setattr__(self, "leak_shift", int(self.leak_shift))

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]


@dataclass(frozen=True, eq=False)
class IntNetwork:
    """A chain of :class:`IntLayer` run for ``T`` steps (SPEC section 8), checked when created.

    * ``layers``: layer 0 first; layer ``l + 1`` takes layer ``l``'s outputs.
    * ``B``: weight bits, 4 or 8; every weight in ``[-2**(B-1), 2**(B-1) - 1]``.
    * ``Q``: potential bits (2..32); bias and threshold in ``[-2**(Q-1), 2**(Q-1) - 1]``.
    * ``T``: time steps per sample (1..1024).
    * ``readout``: ``"spikes"`` or ``"potential"`` (see the module doc).
    """

    layers: tuple
    B: int
    Q: int
    T: int
    readout: str = "spikes"

    def __post_init__(self):
        if not _is_int(self.B) or int(self.B) not in WEIGHT_BITS:
            raise IntNetworkError(f"B (weight bits) must be one of {list(WEIGHT_BITS)}, "
                                  f"not {self.B!r}")
        lo_q, hi_q = Q_RANGE
        if not _is_int(self.Q) or not lo_q <= self.Q <= hi_q:
            raise IntNetworkError(f"Q (potential bits) must be an integer in {lo_q}..{hi_q}, "
                                  f"not {self.Q!r}")
        if not _is_int(self.T) or not 1 <= self.T <= MAX_T:
            raise IntNetworkError(f"T must be an integer in 1..{MAX_T}, not {self.T!r}")
        if self.readout not in READOUTS:
            raise IntNetworkError(f"readout must be one of {list(READOUTS)}, not {self.readout!r}")
        layers = tuple(self.layers)
        if not layers:
            raise IntNetworkError("an integer network needs at least one layer, and it has none")
        for l, layer in enumerate(layers):
            if not isinstance(layer, IntLayer):
                raise IntNetworkError(f"layer {l} must be an IntLayer, not {type(layer).__name__}")
        B, Q = int(self.B), int(self.Q)
        wlo, whi = -(2 ** (B - 1)), 2 ** (B - 1) - 1
        qlo, qhi = -(2 ** (Q - 1)), 2 ** (Q - 1) - 1
        for l, layer in enumerate(layers):
            if l and layer.n_in != layers[l - 1].n_out:
                raise IntNetworkError(
                    f"layer {l} takes {layer.n_in} inputs but layer {l - 1} has "
                    f"{layers[l - 1].n_out} neurons")
            wmin, wmax = int(layer.W.min()), int(layer.W.max())
            if wmin < wlo or wmax > whi:
                bad = wmin if wmin < wlo else wmax
                raise IntNetworkError(f"layer {l} has weight {bad} outside the {B}-bit range "
                                      f"{wlo}..{whi}")
            bmin, bmax = int(layer.b.min()), int(layer.b.max())
            if bmin < qlo or bmax > qhi:
                bad = bmin if bmin < qlo else bmax
                raise IntNetworkError(f"layer {l} has bias {bad} outside the {Q}-bit range "
                                      f"{qlo}..{qhi}")
            if layer.theta > qhi:
                raise IntNetworkError(f"layer {l} has threshold {layer.theta} outside the "
                                      f"{Q}-bit range 1..{qhi}")
            if layer.n_in * 2 ** (B - 1) >= _EXACT:
                raise IntNetworkError(f"layer {l} has {layer.n_in} inputs, too many for an "
                                      f"exact sum (at most {_EXACT // 2 ** (B - 1) - 1})")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "Q", Q)
        object.__setattr__(self, "T", int(self.T))

    @property
    def sizes(self) -> list[int]:
        """``[N_in, N_1, ..., K]``."""
        return [self.layers[0].n_in, *(layer.n_out for layer in self.layers)]

    def describe(self) -> str:
        leaks = ",".join("none" if L.leak_shift is None else str(L.leak_shift) for L in self.layers)
        resets = ",".join(L.reset for L in self.layers)
        return (f"{'-'.join(map(str, self.sizes))} B={self.B} Q={self.Q} T={self.T} "
                f"readout={self.readout} theta={[L.theta for L in self.layers]} "
                f"leak_shift={leaks} reset={resets}")


@dataclass
class IntResult:
    """What :func:`forward` computed for a batch of ``N`` samples.

    * ``spikes[l]``: bool ``(N, T, N_out)``, the spikes of layer ``l`` (all False
      for the last layer in ``potential`` readout);
    * ``potentials[l]``: int64 ``(N, N_out)``, ``v[T-1]`` of layer ``l``;
    * ``counts``: int64 ``(N, K)``, spikes per output over the ``T`` steps;
    * ``scores``: what the readout compares (``counts`` or the last ``potentials``);
    * ``predictions``: int64 ``(N,)``, the argmax of ``scores``, lowest index on ties;
    * ``sops``: int64 ``(N, L)``, synaptic operations per sample and layer.
    """

    spikes: list
    potentials: list
    counts: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    sops: np.ndarray


def _check_spikes(spikes, net: IntNetwork):
    s = np.asarray(spikes)
    if s.dtype != bool:
        raise IntNetworkError(f"input spikes must be a bool array, not dtype {s.dtype}")
    single = s.ndim == 2
    if single:
        s = s[None]
    if s.ndim != 3 or s.shape[1] != net.T or s.shape[2] != net.layers[0].n_in:
        raise IntNetworkError(f"input spikes must have shape (T, N_in) or (N, T, N_in) with "
                              f"T = {net.T} and N_in = {net.layers[0].n_in}, not {np.shape(spikes)}")
    return s, single


def _layer(layer: IntLayer, s_in, Q, *, fire=True):
    """One layer over all steps: ``s_in`` bool (N, T, N_in) -> spikes (N, T, N_out), v[T-1]."""
    n, T, n_in = s_in.shape
    # x[n, t, i] = sum of W[i, j] over active j: exact in float64 (see module doc)
    x = (s_in.reshape(n * T, n_in).astype(np.float64) @ layer.W.T.astype(np.float64))
    x = x.astype(np.int64).reshape(n, T, layer.n_out)
    qlo, qhi = -(2 ** (Q - 1)), 2 ** (Q - 1) - 1
    k, theta, b = layer.leak_shift, layer.theta, layer.b
    v = np.zeros((n, layer.n_out), dtype=np.int64)
    s_out = np.zeros((n, T, layer.n_out), dtype=bool)
    for t in range(T):
        leaked = v if k is None else v - (v >> k)          # >> on int64 is arithmetic
        vp = np.clip(leaked + x[:, t] + b, qlo, qhi)
        if fire:
            s = vp >= theta
            s_out[:, t] = s
            if layer.reset == "subtract":
                v = np.where(s, vp - theta, vp)
            else:
                v = np.where(s, 0, vp)
        else:
            v = vp
    return s_out, v


def forward(net: IntNetwork, spikes) -> IntResult:
    """The forward pass of SPEC section 8 for input spikes bool ``(T, N_in)`` or
    ``(N, T, N_in)``; the result always has the leading sample axis ``N``."""
    if not isinstance(net, IntNetwork):
        raise IntNetworkError(f"forward needs an IntNetwork, not {type(net).__name__}")
    s, _ = _check_spikes(spikes, net)
    all_spikes, potentials, sops = [], [], []
    last = len(net.layers) - 1
    for l, layer in enumerate(net.layers):
        sops.append(s.sum(axis=(1, 2), dtype=np.int64) * layer.n_out)
        fire = not (l == last and net.readout == "potential")
        s, v = _layer(layer, s, net.Q, fire=fire)
        all_spikes.append(s)
        potentials.append(v)
    counts = all_spikes[-1].sum(axis=1, dtype=np.int64)
    scores = counts if net.readout == "spikes" else potentials[-1]
    return IntResult(spikes=all_spikes, potentials=potentials, counts=counts, scores=scores,
                     predictions=np.argmax(scores, axis=-1).astype(np.int64),
                     sops=np.stack(sops, axis=1))


def predict(net: IntNetwork, spikes) -> np.ndarray:
    """Predicted class per sample (int64 ``(N,)``; for one ``(T, N_in)`` sample, ``(1,)``)."""
    return forward(net, spikes).predictions


def make_network(weights: Sequence, biases: Sequence, thetas: Sequence, *, B: int, Q: int,
                 T: int, readout: str = "spikes", leak_shift=None, reset="subtract") -> IntNetwork:
    """Convenience: an :class:`IntNetwork` from per-layer lists (``leak_shift`` and
    ``reset`` are one value for every layer, or a list with one per layer)."""
    n = len(weights)
    if len(biases) != n or len(thetas) != n:
        raise IntNetworkError(f"weights, biases and thetas must have one entry per layer "
                              f"({n}), not {len(biases)} and {len(thetas)}")
    leaks = list(leak_shift) if isinstance(leak_shift, (list, tuple)) else [leak_shift] * n
    resets = list(reset) if isinstance(reset, (list, tuple)) else [reset] * n
    if len(leaks) != n or len(resets) != n:
        raise IntNetworkError(f"leak_shift and reset must have one entry per layer ({n})")
    layers = tuple(IntLayer(W=W, b=b, theta=th, leak_shift=k, reset=r)
                   for W, b, th, k, r in zip(weights, biases, thetas, leaks, resets))
    return IntNetwork(layers=layers, B=B, Q=Q, T=T, readout=readout)

