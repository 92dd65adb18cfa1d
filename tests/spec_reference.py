"""A scalar reference of SPEC section 3, written from the SPEC alone.

Not a test file: ``tests/test_golden_contract.py`` imports it to judge
:mod:`spikeforge.sim.golden.model`. It shares no code with the golden model (nor with
:mod:`spikeforge.sim.golden.fp16`): plain Python loops over neurons, time steps and
terms, every value a numpy ``float16`` scalar, and every arithmetic operation
the single fp16 FMA below (SPEC section 2):

* ``fma(a, b, c)``: the binary16 product ``a*b`` is exact in binary64, its sum
  with a binary16 addend is exact whenever the result is finite in binary16
  (or the two are too far apart for the binary64 rounding to matter), so the
  binary64 value of ``a*b + c`` rounded once to binary16 is the correctly
  rounded FMA; every NaN result is the canonical ``0x7E00``.
* ``add(a, c) = fma(a, 1, c)``, ``mul(a, b) = fma(a, b, -0.0)``.
* comparisons are IEEE ordered comparisons (NaN compares false).

The constants are rounded to fp16 once from the exact rational value of the
user's numbers (:func:`round_rational`, its own rounding routine).

Shapes follow the golden model's API so that results compare directly: ``u``,
``du``, ``g_in`` are ``(T, N)`` float16 arrays, ``s``, ``m`` ``(T, N)`` bool,
``dW`` ``(N_out, N_in)`` float16; ``weights[l]`` is ``(N_out, N_in)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

NAN_BITS = 0x7E00
F16 = np.float16
POS_ZERO = F16(0.0)
NEG_ZERO = F16(-0.0)
ONE = F16(1.0)
_CANONICAL_NAN = np.array([NAN_BITS], dtype=np.uint16).view(np.float16)[0]


def bits(x) -> int:
    """The 16-bit pattern of an fp16 scalar."""
    return int(np.asarray(x, dtype=np.float16).view(np.uint16))


def from_bits(b: int):
    return np.array([b], dtype=np.uint16).view(np.float16)[0]


# ----------------------------------------------------------------------------- fp16 ops

def fma(a, b, c):
    """``round(a*b + c)`` to binary16, rounded once (see the module docstring)."""
    v = float(a) * float(b) + float(c)     # binary64: product exact, sum exact or harmless
    if v != v:
        return _CANONICAL_NAN
    with np.errstate(over="ignore"):
        return F16(v)                       # one rounding, nearest-even, subnormals, +-inf


def add(a, c):
    return fma(a, ONE, c)


def mul(a, b):
    return fma(a, b, NEG_ZERO)


def neg(a):
    """Sign flip (exact); NaN stays NaN."""
    return from_bits(bits(a) ^ 0x8000)


def ge(a, b) -> bool:
    return float(a) >= float(b)


def gt(a, b) -> bool:
    return float(a) > float(b)


def lt(a, b) -> bool:
    return float(a) < float(b)


def is_nonzero(a) -> bool:
    """IEEE ``a != 0``: -0.0 is zero, a NaN is non-zero."""
    return float(a) != 0.0


# ----------------------------------------------------------------------- constants

def round_rational(q) -> np.float16:
    """Exact rational ``q`` rounded once to binary16 (nearest, ties to even,
    subnormals kept, overflow to +-inf). An exact zero is +0; a non-zero value
    that rounds to zero keeps its sign."""
    q = Fraction(q)
    if q == 0:
        return POS_ZERO
    neg_ = q < 0
    mag = -q if neg_ else q
    if mag >= Fraction(65520):                 # halfway between 65504 and 2**16
        return F16(-math.inf) if neg_ else F16(math.inf)
    # exponent e with 2**e <= mag < 2**(e+1)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1
    if Fraction(2) ** (e + 1) <= mag:
        e += 1
    ulp = Fraction(2) ** max(e - 10, -24)
    n = mag / ulp
    k = n.numerator // n.denominator
    rest = n - k
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and k % 2 == 1):
        k += 1
    val = F16(float(k * ulp))                  # representable: exact conversion
    assert Fraction(float(val)) == k * ulp
    return F16(-val) if neg_ else val          # -(+0) is -0: a tiny negative keeps its sign


def exact(x) -> Fraction:
    """The exact rational value of a user number (int, float, Fraction, numpy float)."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    return Fraction(*float(x).as_integer_ratio())   # numpy floats widen exactly to float


@dataclass(frozen=True)
class Consts:
    T: int
    alpha: np.float16
    v_th: np.float16
    a: np.float16
    beta: np.float16
    lo: np.float16
    hi: np.float16
    inv_T: np.float16
    gscale: np.float16
    neg_lr: np.float16
    reset_grad: str = "detach"

    def bits(self) -> dict:
        return {k: bits(getattr(self, k)) for k in
                ("alpha", "v_th", "a", "beta", "lo", "hi", "inv_T", "gscale", "neg_lr")}


def consts(T, alpha, v_th, a, beta, lr, loss_scale, reset_grad="detach") -> Consts:
    """SPEC section 3's run-time constants, each rounded to fp16 once, on the host,
    from the exact value of the user's numbers (``lo = fp16(V_th - a)`` of the exact
    difference)."""
    al, vt, aa, be, lr_, ls = (exact(x) for x in (alpha, v_th, a, beta, lr, loss_scale))
    return Consts(
        T=int(T),
        alpha=round_rational(al), v_th=round_rational(vt), a=round_rational(aa),
        beta=round_rational(be),
        lo=round_rational(vt - aa), hi=round_rational(vt + aa),
        inv_T=round_rational(Fraction(1, int(T))),
        gscale=round_rational(ls / int(T)),
        neg_lr=round_rational(-lr_ / ls),
        reset_grad=reset_grad,
    )


# ----------------------------------------------------------------------- forward

@dataclass
class Trace:
    u: np.ndarray   # (T, N) float16
    s: np.ndarray   # (T, N) bool
    m: np.ndarray   # (T, N) bool


def forward_layer(W, s_in, c: Consts) -> Trace:
    W = np.asarray(W, dtype=np.float16)
    s_in = np.asarray(s_in, dtype=bool)
    T, n_in = s_in.shape
    n_out = W.shape[0]
    assert W.shape == (n_out, n_in)
    u = np.zeros((T, n_out), dtype=np.float16)
    s = np.zeros((T, n_out), dtype=bool)
    m = np.zeros((T, n_out), dtype=bool)
    for i in range(n_out):
        u_prev = POS_ZERO           # u[-1] = 0
        s_prev = False              # s[-1] = 0
        for t in range(T):
            x = POS_ZERO
            for j in range(n_in):   # ascending j, active inputs only
                if s_in[t, j]:
                    x = add(x, W[i, j])
            ut = x if s_prev else fma(c.alpha, u_prev, x)
            st = ge(ut, c.v_th)
            mt = gt(ut, c.lo) and lt(ut, c.hi)
            u[t, i] = ut
            s[t, i] = st
            m[t, i] = mt
            u_prev, s_prev = ut, st
    return Trace(u, s, m)


def forward(weights, spikes, c: Consts) -> list[Trace]:
    traces = []
    s_in = np.asarray(spikes, dtype=bool)
    for W in weights:
        tr = forward_layer(W, s_in, c)
        traces.append(tr)
        s_in = tr.s
    return traces


# ----------------------------------------------------------------------- loss

def loss(s_out, label: int, c: Consts):
    """``(count, r, e, g)`` of the last layer: count ints, the rest fp16 ``(K,)``."""
    s_out = np.asarray(s_out, dtype=bool)
    T, K = s_out.shape
    count = [0] * K
    for t in range(T):
        for k in range(K):
            if s_out[t, k]:
                count[k] += 1
    r = np.zeros(K, dtype=np.float16)
    e = np.zeros(K, dtype=np.float16)
    g = np.zeros(K, dtype=np.float16)
    for k in range(K):
        assert count[k] < 2048
        rk = mul(F16(count[k]), c.inv_T)           # fp16(count) exact
        yk = ONE if k == label else POS_ZERO
        ek = fma(rk, ONE, neg(yk))                  # r - y = r + (-y)
        gk = mul(ek, c.gscale)
        r[k], e[k], g[k] = rk, ek, gk
    return count, r, e, g


# ----------------------------------------------------------------------- backward

@dataclass
class Grad:
    du: np.ndarray             # (T, N_out) float16
    g_in: np.ndarray           # (T, N_in) float16 (computed everywhere)
    dW: np.ndarray             # (N_out, N_in) float16 running accumulator


def backward_layer(W, trace: Trace, s_in, G, c: Consts, dW) -> Grad:
    """One layer, t = T-1 .. 0. ``G[t, i]`` is the gradient arriving for ``s[t]_i``;
    ``dW`` is the running accumulator (copied, not modified)."""
    W = np.asarray(W, dtype=np.float16)
    s_in = np.asarray(s_in, dtype=bool)
    T, n_out = trace.u.shape
    n_in = W.shape[1]
    du = np.zeros((T, n_out), dtype=np.float16)
    g_in = np.zeros((T, n_in), dtype=np.float16)
    dW = np.array(dW, dtype=np.float16, copy=True)
    du_next = [POS_ZERO] * n_out                    # du[T] = 0
    for t in range(T - 1, -1, -1):
        for i in range(n_out):
            g = G[t, i]
            if c.reset_grad == "detach":
                term = mul(c.beta, g) if trace.m[t, i] else POS_ZERO
            elif c.reset_grad == "through":
                ds = fma(neg(mul(c.alpha, trace.u[t, i])), du_next[i], g)
                term = mul(c.beta, ds) if trace.m[t, i] else POS_ZERO
            else:
                raise ValueError(c.reset_grad)
            du[t, i] = term if trace.s[t, i] else fma(c.alpha, du_next[i], term)
        # input gradient: ascending i over du != 0, from +0.0
        for j in range(n_in):
            acc = POS_ZERO
            for i in range(n_out):
                if is_nonzero(du[t, i]):
                    acc = fma(W[i, j], du[t, i], acc)
            g_in[t, j] = acc
        # weight gradient: every i with du != 0, every j active in s_in[t]
        for i in range(n_out):
            if not is_nonzero(du[t, i]):
                continue
            for j in range(n_in):
                if s_in[t, j]:
                    dW[i, j] = add(dW[i, j], du[t, i])
        du_next = [du[t, i] for i in range(n_out)]
    return Grad(du, g_in, dW)


def backward(weights, traces, spikes, label: int, c: Consts, dWs=None) -> list[Grad]:
    """All layers, last first in the computation; returned layer 0 first."""
    L = len(weights)
    if dWs is None:
        dWs = [np.zeros(np.shape(W), dtype=np.float16) for W in weights]
    T = traces[-1].s.shape[0]
    K = traces[-1].s.shape[1]
    _, _, _, g = loss(traces[-1].s, label, c)
    G = np.zeros((T, K), dtype=np.float16)
    for t in range(T):
        for k in range(K):
            G[t, k] = g[k]                           # the same g at every t
    grads: list[Grad | None] = [None] * L
    for l in range(L - 1, -1, -1):
        s_in = spikes if l == 0 else traces[l - 1].s
        gr = backward_layer(weights[l], traces[l], s_in, G, c, dWs[l])
        grads[l] = gr
        G = gr.g_in                                  # g[t] of the layer below
    return grads


def update(weights, dWs, c: Consts) -> list[np.ndarray]:
    out = []
    for W, dW in zip(weights, dWs):
        W = np.asarray(W, dtype=np.float16)
        new = np.zeros(W.shape, dtype=np.float16)
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                new[i, j] = fma(c.neg_lr, dW[i, j], W[i, j])
        out.append(new)
    return out


def train_step(weights, spikes_batch, labels, c: Consts):
    """One minibatch: forward every sample with fixed weights, dW accumulated from
    +0.0 over the samples in order, then one update. Returns
    ``(new_weights, dWs, traces_per_sample, grads_per_sample)``."""
    dWs = [np.zeros(np.shape(W), dtype=np.float16) for W in weights]
    all_traces, all_grads = [], []
    for spikes, label in zip(spikes_batch, labels):
        tr = forward(weights, spikes, c)
        gr = backward(weights, tr, spikes, int(label), c, dWs)
        dWs = [g.dW for g in gr]
        all_traces.append(tr)
        all_grads.append(gr)
    return update(weights, dWs, c), dWs, all_traces, all_grads


def predict(weights, spikes, c: Consts) -> int:
    return predict_from_trace(forward(weights, spikes, c))


def predict_from_trace(traces) -> int:
    s_out = traces[-1].s
    T, K = s_out.shape
    count = [sum(1 for t in range(T) if s_out[t, k]) for k in range(K)]
    best = 0
    for k in range(1, len(count)):
        if count[k] > count[best]:                   # strict: lowest index wins ties
            best = k
    return best
