"""Golden model (SPEC section 3): parameters, hand-worked cases of every equation,
and a bit-for-bit comparison with a scalar re-implementation written here."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from spikeforge.sim.golden import model as G
from spikeforge.sim.golden.model import LayerTrace, Params, ParamsError

F16 = np.float16


def bits(x):
    return np.asarray(x, dtype=F16).view(np.uint16)


def assert_bits_equal(a, b, what=""):
    a, b = np.asarray(a, dtype=F16), np.asarray(b, dtype=F16)
    assert a.shape == b.shape, what
    bad = np.flatnonzero(bits(a).ravel() != bits(b).ravel())
    assert not bad.size, (f"{what}: {bad.size} elements differ, first at {bad[0]}: "
                          f"{a.ravel()[bad[0]]!r} vs {b.ravel()[bad[0]]!r}")


# ---------------------------------------------------------------------------
# Constants and Params
# ---------------------------------------------------------------------------

def test_round_fp16_matches_numpy_single_rounding_of_float64():
    # numpy converts float64 -> float16 with one correct rounding; float64 values are
    # exact rationals, so round_fp16 must agree on all of them.
    rng = np.random.default_rng(1)
    vals = np.concatenate([
        rng.standard_normal(3000) * np.exp2(rng.integers(-30, 18, 3000)),
        # exact ties between neighbours, normal and subnormal, and around the overflow edge
        (np.arange(1, 200) + 0.5) * 2.0 ** -24, (2048 + np.arange(0, 100) + 0.5) * 2.0 ** -10,
        [65504.0, 65519.99, 65520.0, 65536.0, -65520.0, 2.0 ** -25, 2.0 ** -25 * 1.0001,
         2.0 ** -26, -2.0 ** -25, 6.1e-5, 1.0 / 3, 0.1, -0.1],
    ])
    with np.errstate(over="ignore"):
        expected = np.float64(vals).astype(F16)
    for v, want in zip(vals, expected):
        assert bits(G.round_fp16(float(v))) == bits(want), v
    assert bits(G.round_fp16(0)) == 0x0000
    assert bits(G.round_fp16(Fraction(1, 3))) == bits(F16(1 / 3))


def test_params_defaults_and_constants():
    p = Params()
    c = p.consts
    assert (p.T, p.alpha, p.v_th, p.a, p.reset_grad) == (16, 0.25, 0.25, 0.5, "detach")
    assert c.lo == F16(-0.25) and c.hi == F16(0.75) and c.inv_T == F16(0.0625)
    assert c.gscale == G.round_fp16(Fraction(p.loss_scale) / 16)
    assert c.neg_lr == G.round_fp16(-Fraction(p.lr) / Fraction(p.loss_scale))
    for name, b in c.bits().items():
        assert bits(getattr(c, name)) == b


def test_constants_are_rounded_once_from_exact_values():
    # v_th - a in exact arithmetic, then one rounding: 0.1 - 0.3 (the float64 values)
    p = Params(v_th=0.1, a=0.3, T=3, lr=0.01, loss_scale=3.0)
    exact_lo = Fraction(0.1) - Fraction(0.3)
    assert p.consts.lo == G.round_fp16(exact_lo)
    assert p.consts.inv_T == F16(1 / 3)          # 1/3 in float64 rounds the same way
    assert p.consts.gscale == F16(1.0)
    # -0.01 / 3 is not exact in float64; the constant comes from the exact quotient
    assert p.consts.neg_lr == G.round_fp16(-Fraction(0.01) / 3)
    # fp16(v_th) - fp16(a) is another value here: the contract rounds once
    assert p.consts.lo == F16(-0.199951171875)
    assert F16(float(F16(0.1)) - float(F16(0.3))) == F16(-0.2000732421875)


@pytest.mark.parametrize("kwargs,words", [
    ({"T": 0}, ["T", "0"]), ({"T": 2.5}, ["T", "2.5"]), ({"T": True}, ["T", "True"]),
    ({"T": 5000}, ["T", "5000"]),
    ({"alpha": 1.5}, ["alpha", "1.5"]), ({"alpha": -0.1}, ["alpha", "-0.1"]),
    ({"alpha": float("nan")}, ["alpha", "nan"]), ({"v_th": 0.0}, ["v_th", "0.0"]),
    ({"a": -1.0}, ["a", "-1.0"]), ({"beta": "1"}, ["beta", "'1'"]), ({"lr": 0}, ["lr", "0"]),
    ({"loss_scale": float("inf")}, ["loss_scale", "inf"]),
    ({"reset_grad": "sideways"}, ["reset_grad", "sideways", "detach", "through"]),
    ({"loss_scale": 1e6, "T": 1}, ["gscale", "overflows"]),
    ({"lr": 1e-9, "loss_scale": 1024.0}, ["neg_lr", "underflows"]),
    ({"v_th": 1000.0, "a": 1e-4}, ["window", "lo"]),
])
def test_bad_params_are_named(kwargs, words):
    with pytest.raises(ParamsError) as info:
        Params(**kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_params_json_round_trip_and_frozen():
    p = Params(T=4, alpha=0.5, lr=0.01, reset_grad="through")
    again = Params.from_dict(json.loads(p.to_json()))
    assert again == p and again.consts == p.consts
    with pytest.raises(Exception):
        p.T = 3
    with pytest.raises(ParamsError, match="unknown Params field"):
        Params.from_dict({"T": 4, "gamma": 1})


# ---------------------------------------------------------------------------
# Forward, hand-worked
# ---------------------------------------------------------------------------

def one_layer(w):
    w = np.atleast_2d(np.asarray(w, dtype=F16))
    return [w]


def spk(*rows):
    return np.array(rows, dtype=bool)


def test_spike_then_reset_on_next_step():
    p = Params(T=4, alpha=0.5, v_th=0.25, a=0.5)
    W = one_layer([[0.25]])                  # exactly the threshold
    tr = G.forward(W, spk([1], [0], [1], [1]), p)[0]
    # t0: u = fma(0.5, 0, 0.25) = 0.25 >= 0.25 -> spike
    # t1: reset: u = x = +0 (not 0.5 * 0.25)
    # t2: u = fma(0.5, 0, 0.25) = 0.25 -> spike; t3: reset, u = x = 0.25 -> spike again
    assert tr.u.ravel().tolist() == [0.25, 0.0, 0.25, 0.25]
    assert tr.s.ravel().tolist() == [True, False, True, True]
    assert bits(tr.u[1, 0]) == 0x0000


def test_threshold_is_greater_or_equal_and_decay_is_fma():
    p = Params(T=3, alpha=0.25, v_th=0.25, a=0.5)
    below = np.nextafter(F16(0.25), F16(0))
    tr = G.forward(one_layer([[below]]), spk([1], [0], [1]), p)[0]
    # t0: u = b < v_th, no spike; t1: u = fma(0.25, b, +0); t2: u = fma(0.25, u1, b) >= v_th
    u1 = F16(float(below) * 0.25)
    u2 = F16(float(u1) * 0.25 + float(below))
    assert tr.u.ravel().tolist() == [below, u1, u2]
    assert tr.s.ravel().tolist() == [False, False, True]


def test_window_edges_are_exclusive():
    p = Params(T=1, v_th=0.25, a=0.5)        # lo = -0.25, hi = 0.75
    lo, hi = F16(-0.25), F16(0.75)
    w = [lo, np.nextafter(lo, F16(1)), np.nextafter(hi, F16(0)), hi, F16(0.0), F16(-3.0)]
    W = [np.array(w, dtype=F16)[:, None]]
    tr = G.forward(W, spk([1]), p)[0]
    assert tr.m[0].tolist() == [False, True, True, False, True, False]
    assert tr.s[0].tolist() == [False, False, True, True, False, False]


def test_synaptic_sum_is_ascending_from_plus_zero_and_skips_inactive():
    p = Params(T=2)
    e = 2.0 ** -11
    W = [np.array([[1.0, e, e, np.inf, -0.0]], dtype=F16)]
    # t0: inputs 0,1,2 active: ((0 + 1) + e) + e = 1 (each tie rounds to even);
    # descending order would give 1 + 2e. Input 3 (inf) is inactive: skipped, not 0*inf.
    # t1: only input 4 (-0.0) active: +0 + -0 = +0
    tr = G.forward(W, spk([1, 1, 1, 0, 0], [0, 0, 0, 0, 1]), p)[0]
    assert tr.u[0, 0] == F16(1.0)
    assert bits(tr.u[1, 0]) == 0x0000         # reset after the spike: u = x = +0


def test_loss_gradient():
    p = Params(T=3, loss_scale=6.0)          # inv_T = fp16(1/3), gscale = 2
    s = np.zeros((3, 3), dtype=bool)
    s[:, 0] = True                            # class 0: 3 spikes
    s[1, 1] = True                            # class 1: 1 spike
    r, e, g = G.output_gradient(s, 1, p)
    inv_T = F16(1 / 3)
    assert r.tolist() == [F16(3.0 * float(inv_T)), inv_T, 0.0]
    assert e.tolist() == [r[0], F16(float(inv_T) - 1.0), 0.0]
    assert bits(e[2]) == 0x0000               # 0 - 0 = +0
    assert g.tolist() == [F16(float(e[0]) * 2), F16(float(e[1]) * 2), 0.0]
    assert G.loss_value(s, 1) == pytest.approx(0.5 * (1 + (1 / 3 - 1) ** 2))


# ---------------------------------------------------------------------------
# Backward, hand-worked (traces are given directly: backward only reads u, s, m)
# ---------------------------------------------------------------------------

def trace(u, s, m):
    return LayerTrace(u=np.array(u, dtype=F16), s=np.array(s, dtype=bool),
                      m=np.array(m, dtype=bool))


@pytest.mark.parametrize("mode", ["detach", "through"])
def test_du_spike_reset_and_window(mode):
    # one output neuron (K=1, label 0), T=2, alpha=0.25, beta=1, gscale=4
    p = Params(T=2, alpha=0.25, beta=1.0, loss_scale=8.0, reset_grad=mode)
    W = [np.array([[1.0]], dtype=F16)]
    x = spk([1], [1])
    tr = trace([[0.5], [0.125]], [[1], [0]], [[1], [1]])
    # count 1 -> r = 0.5, e = -0.5, g = -2 at every t
    du = G.backward(W, [tr], x, 0, p)[0].du
    assert du[1, 0] == F16(-2.0)              # s=0: fma(0.25, du[2]=0, -2)
    if mode == "detach":
        assert du[0, 0] == F16(-2.0)          # spike: du = term, the alpha path is cut
    else:
        # ds = fma(-(0.25 * 0.5), du[1] = -2, g = -2) = -1.75; du = term (spike)
        assert du[0, 0] == F16(-1.75)


def test_zero_gradient_path_outside_window():
    p = Params(T=3, alpha=0.5, beta=1.0)
    W = [np.array([[0.5, 0.25], [0.125, 1.0]], dtype=F16)]
    x = spk([1, 1], [1, 1], [1, 1])
    # neuron 0: always above hi (m=0): du = +0, no dW, no contribution anywhere
    # neuron 1: inside the window only at t=0, s=0 everywhere
    tr = trace([[2.0, 0.1], [2.0, -1.0], [2.0, -1.0]], [[1, 0], [1, 0], [1, 0]],
               [[0, 1], [0, 0], [0, 0]])
    gr = G.backward(W, [tr], x, 1, p)[0]
    assert (bits(gr.du[:, 0]) == 0).all()
    assert (bits(gr.dW[0]) == 0).all()
    # neuron 1: label -> r=0, e=-1, g = -1 * 8/3 rounded; term only at t=0
    g = F16(-1.0) * p.consts.gscale
    assert (bits(gr.du[1:, 1]) == 0).all()
    assert gr.du[0, 1] == g
    assert gr.dW[1].tolist() == [g, g]


def test_input_gradient_order_and_skipped_zeros():
    # T=1, K=3, label 0, gscale = 1: s = [0, 1, 1] -> e = g = [-1, 1, 1]; m = 1 -> du = g
    p = Params(T=1, beta=1.0, loss_scale=1.0)
    e = 2.0 ** -11
    W = [np.ones((2, 2), dtype=F16),
         np.array([[-1.0, 0.5], [e, np.inf], [e, 0.25]], dtype=F16)]
    tr0 = trace([[0.0, 0.0]], [[1, 1]], [[1, 1]])
    tr1 = trace([[0.0, 0.5, 0.5]], [[0, 1, 1]], [[1, 1, 1]])
    gr = G.backward(W, [tr0, tr1], spk([1, 1]), 0, p)
    assert gr[1].du[0].tolist() == [-1.0, 1.0, 1.0]
    # ascending i: fma(e, 1, fma(e, 1, fma(-1, -1, +0))) = 1 (ties to even);
    # descending i would give 1 + 2e
    assert gr[1].g_in[0, 0] == F16(1.0)
    assert gr[1].g_in[0, 1] == F16(np.inf)
    # neuron 1 outside its window: du = +0 is not a term (0 * inf would give NaN)
    tr1b = trace([[0.0, 0.5, 0.5]], [[0, 1, 1]], [[1, 0, 1]])
    gr = G.backward(W, [tr0, tr1b], spk([1, 1]), 0, p)
    assert bits(gr[1].du[0, 1]) == 0x0000
    assert gr[1].g_in[0, 0] == F16(1.0)              # 1 + e ties to 1
    assert gr[1].g_in[0, 1] == F16(-0.25)            # -0.5 + 0.25, inf skipped


def test_dW_order_t_descending_within_a_sample():
    # K=2, label 0, neuron 1, T=4, gscale=2, alpha=0.5, beta=1.
    # neuron 1 spikes twice -> g = 0.5 * 2 = 1; t=3: du = 1 (m=1); t=2: s=0, m=1:
    # du = fma(0.5, 1, 1) = 1.5; t=1, t=0: m=0, s=1: du = +0.
    p = Params(T=4, alpha=0.5, beta=1.0, loss_scale=8.0)
    W = [np.zeros((2, 1), dtype=F16)]
    x = spk([1], [1], [1], [1])
    tr = trace([[0, 0.3]] * 4, [[0, 1], [0, 1], [0, 0], [0, 0]], [[0, 0], [0, 0], [0, 1], [0, 1]])
    start = [np.full((2, 1), 2048.0, dtype=F16)]
    gr = G.backward(W, [tr], x, 0, p, dWs=start)[0]
    assert gr.du[:, 1].tolist() == [0.0, 0.0, 1.5, 1.0]
    # t descending: (2048 + 1) -> 2048 (tie to even), + 1.5 -> 2050.
    # t ascending would give (2048 + 1.5) -> 2050, + 1 -> 2052.
    assert gr.dW[1, 0] == F16(2050.0)
    assert start[0][1, 0] == F16(2048.0)       # the accumulator passed in is not modified


def test_dW_order_across_samples_and_train_step():
    # two samples, input active only at t=3; neuron 1 (not the label) spikes 3 times
    # in sample A (g = 0.75 * 2 = 1.5) and 2 times in sample B (g = 1)
    p = Params(T=4, alpha=0.5, beta=1.0, loss_scale=8.0)
    W = [np.zeros((2, 1), dtype=F16)]
    x = np.zeros((2, 4, 1), dtype=bool)
    x[:, 3, 0] = True
    sA = [[0, 1], [0, 1], [0, 1], [0, 0]]
    sB = [[0, 1], [0, 1], [0, 0], [0, 0]]
    m = [[0, 0], [0, 0], [0, 0], [0, 1]]
    u = [[0, 0.3]] * 4
    tr = LayerTrace(u=np.array([u, u], dtype=F16), s=np.array([sA, sB], dtype=bool),
                    m=np.array([m, m], dtype=bool))
    start = [np.full((2, 1), 2048.0, dtype=F16)]
    gr = G.backward(W, [tr], x, np.array([0, 0]), p, dWs=start)[0]
    assert gr.du[:, 3, 1].tolist() == [1.5, 1.0]
    # in order: (2048 + 1.5) -> 2050, + 1 -> 2052 (tie to even); reversed gives 2050
    assert gr.dW[1, 0] == F16(2052.0)
    # the same, one sample at a time through the accumulator
    one = G.backward(W, [LayerTrace(tr.u[0], tr.s[0], tr.m[0])], x[0], 0, p, dWs=start)
    two = G.backward(W, [LayerTrace(tr.u[1], tr.s[1], tr.m[1])], x[1], 0, p,
                     dWs=[one[0].dW])
    assert_bits_equal(two[0].dW, gr.dW)


def test_update_is_fused_and_keeps_zero_signs():
    p = Params(lr=0.75, loss_scale=1.0)      # neg_lr = -0.75
    W = [np.array([[1.0, -0.0, 0.0, 0.3]], dtype=F16)]
    dW = [np.array([[np.nextafter(F16(1), F16(2)), 0.0, -0.0, 0.0]], dtype=F16)]
    new = G.update(W, dW, p)[0]
    d = float(dW[0][0, 0])
    assert new[0, 0] == G.round_fp16(Fraction(-0.75) * Fraction(d) + 1)
    assert bits(new[0, 1]) == bits(F16(-0.0))   # -0 + (-0.75 * +0 = -0) = -0
    assert bits(new[0, 2]) == bits(F16(0.0))    # +0 + (-0.75 * -0 = +0) = +0
    assert new[0, 3] == W[0][0, 3]


def test_update_matches_exact_fma_on_random_values():
    rng = np.random.default_rng(7)
    p = Params(lr=0.0123, loss_scale=3.0)
    W = [(rng.standard_normal((20, 30)) * 0.3).astype(F16)]
    dW = [(rng.standard_normal((20, 30)) * 4).astype(F16)]
    new = G.update(W, dW, p)[0]
    nl = Fraction(float(p.consts.neg_lr))
    for (i, j), w in np.ndenumerate(W[0]):
        assert new[i, j] == G.round_fp16(nl * Fraction(float(dW[0][i, j])) + Fraction(float(w)))


def test_predict_ties_take_lowest_index():
    p = Params(T=2)
    W = [np.array([[0.0], [1.0], [1.0], [0.5]], dtype=F16)]
    assert G.predict(W, spk([1], [1]), p) == 1
    batch = np.array([spk([1], [1]), spk([0], [0])])
    assert G.predict(W, batch, p).tolist() == [1, 0]


def test_bad_inputs_are_named():
    p = Params(T=2)
    W = [np.zeros((3, 4), dtype=F16)]
    with pytest.raises(ValueError, match="time steps"):
        G.forward(W, np.zeros((3, 4), bool), p)
    with pytest.raises(ValueError, match="inputs"):
        G.forward(W, np.zeros((2, 5), bool), p)
    with pytest.raises(ValueError, match="bool"):
        G.forward(W, np.zeros((2, 4)), p)
    with pytest.raises(ValueError, match="float16"):
        G.forward([np.zeros((3, 4))], np.zeros((2, 4), bool), p)
    with pytest.raises(ValueError, match="layer 0 has 3"):
        G.forward(W + [np.zeros((2, 2), dtype=F16)], np.zeros((2, 4), bool), p)
    tr = G.forward(W, np.zeros((2, 4), bool), p)
    with pytest.raises(ValueError, match="labels? must be between 0 and 2"):
        G.backward(W, tr, np.zeros((2, 4), bool), 3, p)


def test_batch_equals_samples_one_by_one():
    rng = np.random.default_rng(3)
    p = Params(T=5, reset_grad="through", lr=0.1)
    W = [(rng.uniform(-0.5, 0.5, (7, 6))).astype(F16), (rng.uniform(-0.5, 0.5, (4, 7))).astype(F16)]
    x = rng.random((3, 5, 6)) < 0.5
    y = np.array([2, 0, 3])
    step = G.train_step(W, x, y, p)
    dWs = G.zero_grads(W)
    for b in range(3):
        tr = G.forward(W, x[b], p)
        for l in range(2):
            for f in ("u", "s", "m"):
                assert_bits_equal(getattr(tr[l], f), getattr(step.traces[l], f)[b], f)
        gr = G.backward(W, tr, x[b], int(y[b]), p, dWs=dWs)
        dWs = [g.dW for g in gr]
        for l in range(2):
            assert_bits_equal(gr[l].du, step.grads[l].du[b], "du")
        assert_bits_equal(gr[1].g_in, step.grads[1].g_in[b], "g_in")
    for l in range(2):
        assert_bits_equal(dWs[l], step.dWs[l], "dW")
    for Wn, Wr in zip(step.weights, G.update(W, dWs, p)):
        assert_bits_equal(Wn, Wr, "W")


# ---------------------------------------------------------------------------
# Independent scalar re-implementation (plain Python, exact rationals)
# ---------------------------------------------------------------------------

def _round16(x: Fraction) -> float:
    """Round an exact rational to binary16 (nearest, ties to even) as a Python float;
    written apart from the model (integer significand search)."""
    if x == 0:
        return 0.0
    sign = -1.0 if x < 0 else 1.0
    x = abs(x)
    e = -24                                   # smallest quantum 2**-24
    while x >= Fraction(2) ** (e + 11):        # find the quantum that keeps 11 bits
        e += 1
    if e > 5:
        return sign * math.inf
    q = Fraction(2) ** e
    n, rem = divmod(x, q)
    n = int(n)
    if rem * 2 > q or (rem * 2 == q and n % 2 == 1):
        n += 1
    if n * q >= 65536:
        return sign * math.inf
    return sign * float(n * q)


def _fma_ref(a: float, b: float, c: float) -> float:
    """round(a*b + c) once, with IEEE signs of zero; finite operands only."""
    assert all(math.isfinite(v) for v in (a, b, c)), (a, b, c)
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact != 0:
        return _round16(exact)
    product_zero = a == 0 or b == 0
    product_negative = math.copysign(1, a) * math.copysign(1, b) < 0
    if product_zero and c == 0 and product_negative and math.copysign(1, c) < 0:
        return -0.0                           # (-0) + (-0)
    return 0.0                                # every other exact zero is +0 (nearest)


def _add_ref(a, c):
    return _fma_ref(a, 1.0, c)


def _mul_ref(a, b):
    return _fma_ref(a, b, -0.0)


class ScalarModel:
    """SPEC section 3 neuron by neuron, term by term, with Python floats holding fp16 values."""

    def __init__(self, p: Params):
        c = p.consts
        self.T, self.mode = p.T, p.reset_grad
        self.alpha, self.v_th, self.beta = float(c.alpha), float(c.v_th), float(c.beta)
        self.lo, self.hi = float(c.lo), float(c.hi)
        self.inv_T, self.gscale, self.neg_lr = float(c.inv_T), float(c.gscale), float(c.neg_lr)

    def forward(self, Ws, s_in):
        traces = []
        for W in Ws:
            n_out, n_in = len(W), len(W[0])
            u = [[0.0] * n_out for _ in range(self.T)]
            s = [[False] * n_out for _ in range(self.T)]
            m = [[False] * n_out for _ in range(self.T)]
            for i in range(n_out):
                u_prev, s_prev = 0.0, False
                for t in range(self.T):
                    x = 0.0
                    for j in range(n_in):
                        if s_in[t][j]:
                            x = _add_ref(x, W[i][j])
                    ut = x if s_prev else _fma_ref(self.alpha, u_prev, x)
                    u[t][i] = ut
                    s[t][i] = ut >= self.v_th
                    m[t][i] = self.lo < ut < self.hi
                    u_prev, s_prev = ut, s[t][i]
            traces.append((u, s, m))
            s_in = s
        return traces

    def backward(self, Ws, traces, s_in0, label, dWs):
        u, s, m = traces[-1]
        K = len(Ws[-1])
        g_out = []
        for k in range(K):
            count = sum(1 for t in range(self.T) if s[t][k])
            r = _mul_ref(float(count), self.inv_T)
            e = _add_ref(r, -(1.0 if k == label else 0.0))
            g_out.append(_mul_ref(e, self.gscale))
        g = [list(g_out) for _ in range(self.T)]
        out = [None] * len(Ws)
        for l in range(len(Ws) - 1, -1, -1):
            W = Ws[l]
            u, s, m = traces[l]
            n_out, n_in = len(W), len(W[0])
            s_in = s_in0 if l == 0 else traces[l - 1][1]
            du = [[0.0] * n_out for _ in range(self.T)]
            for i in range(n_out):
                nxt = 0.0
                for t in range(self.T - 1, -1, -1):
                    if self.mode == "detach":
                        ds = g[t][i]
                    else:
                        ds = _fma_ref(-_mul_ref(self.alpha, u[t][i]), nxt, g[t][i])
                    term = _mul_ref(self.beta, ds) if m[t][i] else 0.0
                    d = term if s[t][i] else _fma_ref(self.alpha, nxt, term)
                    du[t][i] = d
                    nxt = d
            g_in = None
            if l:
                g_in = [[0.0] * n_in for _ in range(self.T)]
                for t in range(self.T):
                    for j in range(n_in):
                        acc = 0.0
                        for i in range(n_out):
                            if du[t][i] != 0:
                                acc = _fma_ref(W[i][j], du[t][i], acc)
                        g_in[t][j] = acc
            dW = dWs[l]
            for i in range(n_out):
                for j in range(n_in):
                    for t in range(self.T - 1, -1, -1):
                        if du[t][i] != 0 and s_in[t][j]:
                            dW[i][j] = _add_ref(dW[i][j], du[t][i])
            out[l] = (du, g_in)
            g = g_in
        return out

    def update(self, Ws, dWs):
        return [[[_fma_ref(self.neg_lr, dW[i][j], W[i][j]) for j in range(len(W[0]))]
                 for i in range(len(W))] for W, dW in zip(Ws, dWs)]


def _lists(a):
    return np.asarray(a).astype(float).tolist()


@pytest.mark.parametrize("seed,mode", [(0, "detach"), (1, "through"), (2, "detach"),
                                       (3, "through")])
def test_fp16_model_matches_scalar_reference_bit_for_bit(seed, mode):
    rng = np.random.default_rng(100 + seed)
    sizes = [7, 6, 5, 3]
    T, B = 5, 3
    p = Params(T=T, alpha=float(rng.choice([0.25, 0.5, 0.9])), v_th=0.3, a=0.45,
               beta=float(rng.choice([1.0, 0.75, 2.5])), lr=0.37, loss_scale=12.0,
               reset_grad=mode)
    Ws = [(rng.uniform(-0.7, 0.9, (n_out, n_in))).astype(F16)
          for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    x = rng.random((B, T, sizes[0])) < 0.55
    y = rng.integers(0, sizes[-1], B)
    ref = ScalarModel(p)
    Wr = [_lists(W) for W in Ws]
    for step in range(2):                      # two minibatches: checks the update too
        res = G.train_step(Ws, x, y, p)
        dWr = [[[0.0] * len(W[0]) for _ in W] for W in Wr]
        for b in range(B):
            xb = x[b].tolist()
            tr = ref.forward(Wr, xb)
            for l, (u, s, m) in enumerate(tr):
                assert_bits_equal(res.traces[l].u[b], np.array(u, dtype=F16), f"u l{l} b{b}")
                assert (res.traces[l].s[b] == np.array(s)).all()
                assert (res.traces[l].m[b] == np.array(m)).all()
            grads = ref.backward(Wr, tr, xb, int(y[b]), dWr)
            for l, (du, g_in) in enumerate(grads):
                assert_bits_equal(res.grads[l].du[b], np.array(du, dtype=F16), f"du l{l} b{b}")
                if l:
                    assert_bits_equal(res.grads[l].g_in[b], np.array(g_in, dtype=F16),
                                      f"g_in l{l} b{b}")
        for l in range(len(Ws)):
            assert_bits_equal(res.dWs[l], np.array(dWr[l], dtype=F16), f"dW l{l}")
        Wr = ref.update(Wr, dWr)
        for l in range(len(Ws)):
            assert_bits_equal(res.weights[l], np.array(Wr[l], dtype=F16), f"W l{l}")
        Ws = res.weights
        x = rng.random((B, T, sizes[0])) < 0.55
    # the random networks must exercise the interesting paths
    assert any(tr.s.any() for tr in res.traces) and any((~tr.m).any() for tr in res.traces)
