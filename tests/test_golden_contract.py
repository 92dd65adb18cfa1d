"""Independent contract check of the golden model against SPEC sections 2 and 3.

``tests/spec_reference.py`` is a scalar reference written from the SPEC alone (no
code shared with :mod:`spikeforge.sim.golden.model` or :mod:`spikeforge.sim.golden.fp16`). Here
the golden model is called through its public API only and compared with it bit
for bit (``uint16`` views: signed zeros and NaN patterns count) on random small
networks and directed edge cases. ``g_in`` is compared where the window bit of the
layer below is 1, the only entries the SPEC uses; every other result everywhere.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

import spec_reference as ref
from fp16_exact import fma_bits
from spikeforge.sim.golden import model as golden
from spikeforge.sim.golden.vectors import biased_operands

F16 = np.float16
MODES = ("detach", "through")


# ----------------------------------------------------------------------------- helpers

def ref_consts(p: golden.Params) -> ref.Consts:
    return ref.consts(p.T, p.alpha, p.v_th, p.a, p.beta, p.lr, p.loss_scale, p.reset_grad)


def _describe(x) -> str:
    return f"{int(np.asarray(x, dtype=np.float16).view(np.uint16)):#06x} ({float(x)!r})"


def check_bits(what: str, got, exp, mask=None):
    got = np.asarray(got)
    exp = np.asarray(exp)
    assert got.shape == exp.shape, f"{what}: shape {got.shape}, expected {exp.shape}"
    if exp.dtype == bool:
        assert got.dtype == bool, f"{what}: dtype {got.dtype}, expected bool"
        diff = got != exp
        if mask is not None:
            diff &= mask
        if diff.any():
            idx = tuple(int(k) for k in np.argwhere(diff)[0])
            raise AssertionError(f"{what}: {int(diff.sum())} of {diff.size} differ; first at "
                                 f"{idx}: expected {bool(exp[idx])}, got {bool(got[idx])}")
        return
    assert got.dtype == np.float16, f"{what}: dtype {got.dtype}, expected float16"
    diff = got.view(np.uint16) != exp.view(np.uint16)
    if mask is not None:
        diff &= np.asarray(mask, dtype=bool)
    if diff.any():
        idx = tuple(int(k) for k in np.argwhere(diff)[0])
        raise AssertionError(f"{what}: {int(diff.sum())} of {diff.size} differ; first at {idx}: "
                             f"expected {_describe(exp[idx])}, got {_describe(got[idx])}")


def compare_forward(tag, got_traces, exp_traces):
    assert len(got_traces) == len(exp_traces), f"{tag}: {len(got_traces)} traces"
    for l, (g, e) in enumerate(zip(got_traces, exp_traces)):
        check_bits(f"{tag} layer {l} u", g.u, e.u)
        check_bits(f"{tag} layer {l} s", g.s, e.s)
        check_bits(f"{tag} layer {l} m", g.m, e.m)


def compare_backward(tag, got_grads, exp_grads, exp_traces):
    assert len(got_grads) == len(exp_grads), f"{tag}: {len(got_grads)} grads"
    for l, (g, e) in enumerate(zip(got_grads, exp_grads)):
        check_bits(f"{tag} layer {l} du", g.du, e.du)
        check_bits(f"{tag} layer {l} dW", g.dW, e.dW)
        if l == 0:
            assert g.g_in is None or np.shape(g.g_in) == e.g_in.shape
        else:
            # only the entries where the layer below's window bit is 1 are used
            check_bits(f"{tag} layer {l} g_in (where m below)", g.g_in, e.g_in,
                       mask=exp_traces[l - 1].m)


def f16(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float16)


# ---------------------------------------------------------------- the reference's own FMA

def test_reference_fma_against_exact_integers():
    """My float64 FMA is the exact one (fp16_exact, integers only) on specials,
    ties, subnormals, overflow, cancellation and signed zeros."""
    rng = np.random.default_rng(1234)
    specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x3800,
                0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00, 0x1400, 0x0200]
    triples = [(a, b, c) for a in specials for b in specials for c in specials[::2]]
    a, b, c = biased_operands(rng, 12000)
    triples += list(zip(a.tolist(), b.tolist(), c.tolist()))
    u = rng.integers(0, 1 << 16, size=(6000, 3))
    triples += [tuple(int(v) for v in row) for row in u]
    bad = []
    for a, b, c in triples:
        a, b, c = int(a) & 0xFFFF, int(b) & 0xFFFF, int(c) & 0xFFFF
        got = ref.bits(ref.fma(ref.from_bits(a), ref.from_bits(b), ref.from_bits(c)))
        if got != fma_bits(a, b, c):
            bad.append((hex(a), hex(b), hex(c), hex(got), hex(fma_bits(a, b, c))))
    assert not bad, bad[:10]


def test_reference_rounding_of_rationals():
    """``round_rational`` against numpy's single rounding of doubles, and on ties."""
    rng = np.random.default_rng(5)
    xs = list(rng.standard_normal(3000) * 10.0 ** rng.integers(-9, 6, 3000))
    xs += [65519.99, 65520.0, -65520.0, 2.0 ** -25, 2.0 ** -25 * 3, -2.0 ** -26, 1e-12,
           1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 0.1, 1 / 3, -0.0 + 0.0]
    for x in xs:
        with np.errstate(over="ignore"):
            assert ref.bits(ref.round_rational(Fraction(x))) == ref.bits(F16(x)), x
    assert ref.bits(ref.round_rational(Fraction(1, 3))) == 0x3555
    assert ref.bits(ref.round_rational(Fraction(-1, 2 ** 30))) == 0x8000   # keeps its sign
    assert ref.bits(ref.round_rational(0)) == 0x0000


# ------------------------------------------------------------------------ constants

def _random_user_value(rng, lo_exp, hi_exp):
    kind = rng.integers(0, 4)
    v = float(2.0 ** rng.uniform(lo_exp, hi_exp))
    if kind == 0:
        return v                                     # a Python float, not fp16-exact
    if kind == 1:
        return F16(v) if np.isfinite(F16(v)) and F16(v) > 0 else v   # an fp16 value
    if kind == 2:
        return float(F16(v)) if F16(v) > 0 else v    # an fp16-exact Python float
    return int(max(1, round(v))) if v >= 1 else v    # an int


def _random_params(rng, mode=None):
    while True:
        T = int(rng.integers(1, 9)) if rng.random() < 0.8 else int(rng.integers(1, 1025))
        alpha = [0.0, 0.25, 0.5, 0.75, 1.0, float(rng.random()), F16(rng.random())][
            rng.integers(0, 7)]
        v_th = _random_user_value(rng, -4, 2)
        a = _random_user_value(rng, -6, 1)
        beta = _random_user_value(rng, -3, 3)
        lr = float(2.0 ** rng.uniform(-14, -2))
        loss_scale = _random_user_value(rng, -8, 12)
        try:
            return golden.Params(T=T, alpha=alpha, v_th=v_th, a=a, beta=beta, lr=lr,
                                 loss_scale=loss_scale,
                                 reset_grad=mode or MODES[rng.integers(0, 2)])
        except golden.ParamsError:
            continue


def test_params_constants_random():
    rng = np.random.default_rng(77)
    for n in range(600):
        p = _random_params(rng)
        c = ref_consts(p)
        got = p.consts.bits()
        exp = c.bits()
        assert got == exp, (f"Params(T={p.T}, alpha={p.alpha!r}, v_th={p.v_th!r}, a={p.a!r}, "
                            f"beta={p.beta!r}, lr={p.lr!r}, loss_scale={p.loss_scale!r}): "
                            f"{ {k: (hex(exp[k]), hex(got[k])) for k in exp if exp[k] != got[k]} }"
                            " (expected, got)")


def test_params_constants_directed():
    # lo, hi rounded once from the exact difference of the user values
    for v_th, a in [(0.3, 0.2), (0.1, 0.05), (1 / 3, 1 / 7), (0.7, 0.3000001), (10.3, 0.05)]:
        p = golden.Params(T=4, v_th=v_th, a=a)
        exp = ref.consts(4, 0.25, v_th, a, 2.0, 0.01, 8.0)
        assert p.consts.bits() == exp.bits(), (v_th, a, p.consts.bits(), exp.bits())
    # given as fp16 values, once from the exact difference of the fp16 values
    p = golden.Params(T=3, v_th=F16(0.3), a=F16(0.2))
    c = ref.consts(3, 0.25, F16(0.3), F16(0.2), 2.0, 0.01, 8.0)
    assert p.consts.bits() == c.bits()
    assert ref.bits(c.lo) == ref.bits(ref.fma(F16(0.3), ref.ONE, ref.neg(F16(0.2))))
    # a tiny negative lo keeps its sign; an exact zero is +0
    p = golden.Params(T=4, v_th=0.5, a=0.5 + 2.0 ** -30)
    assert p.consts.bits()["lo"] == 0x8000
    p = golden.Params(T=4, v_th=0.5, a=0.5)
    assert p.consts.bits()["lo"] == 0x0000
    # inv_T, gscale, neg_lr rounded once
    p = golden.Params(T=3, lr=0.01, loss_scale=3.0)
    c = ref.consts(3, 0.25, 0.25, 0.5, 2.0, 0.01, 3.0)
    assert p.consts.bits() == c.bits()
    assert c.bits()["inv_T"] == 0x3555 and c.bits()["gscale"] == 0x3C00


def test_params_constants_where_readings_differ():
    """Where the user values are not fp16, ``fp16(V_th - a)`` of the exact user values
    differs from ``fp16(fp16(V_th) - fp16(a))``; SPEC/docs: rounded once (the former)."""
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(4000):
        v_th = float(rng.uniform(0.05, 2))
        a = float(rng.uniform(0.01, 1))
        once = ref.round_rational(Fraction(v_th) - Fraction(a))
        twice = ref.fma(F16(v_th), ref.ONE, ref.neg(F16(a)))
        if ref.bits(once) == ref.bits(twice):
            continue
        try:
            p = golden.Params(T=4, v_th=v_th, a=a)
        except golden.ParamsError:
            continue
        found += 1
        assert p.consts.bits()["lo"] == ref.bits(once), (v_th, a)
        if found > 50:
            break
    assert found > 10


# ------------------------------------------------------------------ random networks

def _weights(rng, n_out, n_in, regime):
    if regime == "coarse":          # multiples of 1/16: exact hits of lo, hi, V_th
        W = rng.integers(-24, 25, size=(n_out, n_in)) / 16.0
    elif regime == "tiny":          # subnormal products, underflow to signed zeros
        W = rng.standard_normal((n_out, n_in)) * 2.0 ** rng.uniform(-26, -1, (n_out, n_in))
    elif regime == "huge":          # overflow to inf, inf - inf = NaN
        W = rng.choice([-1, 1], size=(n_out, n_in)) * rng.uniform(2.0 ** 13, 65504,
                                                                   (n_out, n_in))
        W[rng.random((n_out, n_in)) < 0.3] *= 2.0 ** -15
        z = rng.random((n_out, n_in))
        W[z < 0.04] = np.inf                         # inactive inf weights are not terms
        W[z > 0.97] = -np.inf
    else:                           # plain: uniform, scaled to the fan-in
        W = rng.uniform(-1, 1, (n_out, n_in)) * rng.uniform(0.5, 3) / math.sqrt(n_in) * 1.2
    W = W.astype(np.float16)
    z = rng.random((n_out, n_in))
    W[z < 0.05] = F16(0.0)
    W[z > 0.96] = F16(-0.0)
    return W


def _case(seed, mode):
    rng = np.random.default_rng([seed, 0xC0DE])
    regime = ["plain", "plain", "coarse", "coarse", "tiny", "huge"][seed % 6]
    L = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 9)) for _ in range(L + 1)]
    sizes[-1] = max(sizes[-1], 2) if rng.random() < 0.8 else sizes[-1]
    T = int(rng.integers(1, 9))
    weights = [_weights(rng, sizes[l + 1], sizes[l], regime) for l in range(L)]
    density = float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.8, 1.0, rng.random()]))
    B = 3
    spikes = rng.random((B, T, sizes[0])) < density
    labels = rng.integers(0, sizes[-1], B)
    if regime == "coarse":
        kw = dict(alpha=[0.0, 0.25, 0.5, 0.75, 1.0][rng.integers(0, 5)],
                  v_th=[0.25, 0.5, 0.75, 1.0][rng.integers(0, 4)],
                  a=[0.125, 0.25, 0.5][rng.integers(0, 3)], beta=[0.5, 1.0, 2.0][rng.integers(0, 3)],
                  lr=0.01, loss_scale=[1.0, 8.0, 64.0][rng.integers(0, 3)])
    elif regime == "tiny":
        kw = dict(alpha=float(rng.choice([0.25, 0.5, 0.9, float(rng.random())])),
                  v_th=float(2.0 ** rng.uniform(-14, -6)), a=float(2.0 ** rng.uniform(-15, -6)),
                  beta=float(rng.choice([0.5, 1.0, 0.3])),
                  lr=2.0 ** -30, loss_scale=float(T) * 2.0 ** -int(rng.integers(20, 25)))
    elif regime == "huge":
        kw = dict(alpha=float(rng.choice([0.5, 1.0, 0.9])), v_th=float(rng.uniform(1, 4)),
                  a=float(rng.uniform(1, 8)), beta=float(rng.choice([1.0, 4.0, 64.0])),
                  lr=0.01, loss_scale=float(rng.choice([8.0, 1024.0])))
    else:
        kw = dict(alpha=float(rng.random()), v_th=float(rng.uniform(0.1, 1.0)),
                  a=float(rng.uniform(0.1, 1.0)), beta=float(rng.uniform(0.3, 4.0)),
                  lr=float(rng.uniform(0.001, 0.1)), loss_scale=float(rng.choice([1.0, 8.0, 100.0])))
    try:
        params = golden.Params(T=T, reset_grad=mode, **kw)
    except golden.ParamsError:
        params = golden.Params(T=T, reset_grad=mode)
    return weights, spikes, labels, params


class Coverage:
    def __init__(self):
        self.n = {}

    def add(self, key, count):
        self.n[key] = self.n.get(key, 0) + int(count)

    def record(self, traces, grads, c):
        for l, tr in enumerate(traces):
            u = tr.u.astype(np.float64)
            self.add("spike", tr.s.sum())
            self.add("reset", tr.s[:-1].sum())                # a spike reset on the next step
            self.add("window", tr.m.sum())
            self.add("outside window", (~tr.m).sum())
            self.add("u == v_th", (u == float(c.v_th)).sum())
            self.add("u == lo", (u == float(c.lo)).sum())
            self.add("u == hi", (u == float(c.hi)).sum())
            self.add("u nan", np.isnan(u).sum())
            self.add("u inf", np.isinf(u).sum())
            self.add("u -0", (tr.u.view(np.uint16) == 0x8000).sum())
        for l, g in enumerate(grads):
            du = g.du
            self.add("du zero", (du.astype(np.float64) == 0).sum())
            self.add("du nonzero", (du.astype(np.float64) != 0).sum())
            self.add("du -0", (du.view(np.uint16) == 0x8000).sum())
            self.add("du nan", np.isnan(du.astype(np.float64)).sum())
            self.add("du inf", np.isinf(du.astype(np.float64)).sum())
            self.add("dW nan", np.isnan(g.dW.astype(np.float64)).sum())
            self.add("du subnormal", ((np.abs(du.astype(np.float64)) < 2.0 ** -14)
                                      & (du.astype(np.float64) != 0)).sum())
            if l:
                self.add("g_in -0", (g.g_in.view(np.uint16) == 0x8000).sum())


def _check_case(seed, mode, cov=None):
    weights, spikes, labels, params = _case(seed, mode)
    weights_before = [w.copy() for w in weights]
    spikes_before = spikes.copy()
    c = ref_consts(params)
    tag = f"seed {seed} {mode} sizes {[w.shape[1] for w in weights] + [weights[-1].shape[0]]} T {params.T}"
    exp_w, exp_dWs, exp_trs, exp_grs = ref.train_step(weights, spikes, labels, c)
    # one sample at a time, chained through dWs (the reference's minibatch is exactly that)
    dWs_got = None
    for b in range(len(labels)):
        exp_tr, exp_gr = exp_trs[b], exp_grs[b]
        got_tr = golden.forward(weights, spikes[b], params)
        compare_forward(f"{tag} sample {b} forward", got_tr, exp_tr)
        _, r, e, g = ref.loss(exp_tr[-1].s, int(labels[b]), c)
        gr, ge, gg = golden.output_gradient(exp_tr[-1].s, int(labels[b]), params)
        check_bits(f"{tag} sample {b} r", gr, r)
        check_bits(f"{tag} sample {b} e", ge, e)
        check_bits(f"{tag} sample {b} g", gg, g)
        got_gr = golden.backward(weights, got_tr, spikes[b], int(labels[b]), params, dWs_got)
        compare_backward(f"{tag} sample {b} backward", got_gr, exp_gr, exp_tr)
        assert golden.predict(weights, spikes[b], params) == ref.predict_from_trace(exp_tr), \
            f"{tag} sample {b} predict"
        dWs_got = [x.dW for x in got_gr]
        if b == 0:
            got_first_dWs = dWs_got
        if cov is not None:
            cov.record(exp_tr, exp_gr, c)
    exp_first_dWs = [x.dW for x in exp_grs[0]]
    # the minibatch of 3 samples in one call
    step = golden.train_step(weights, spikes, labels, params)
    for l in range(len(weights)):
        check_bits(f"{tag} train_step dWs[{l}]", step.dWs[l], exp_dWs[l])
        check_bits(f"{tag} train_step weights[{l}]", step.weights[l], exp_w[l])
        check_bits(f"{tag} update weights[{l}]", golden.update(weights, exp_dWs, params)[l],
                   exp_w[l])
        for b in range(len(labels)):
            check_bits(f"{tag} train_step sample {b} u[{l}]", step.traces[l].u[b],
                       exp_trs[b][l].u)
            check_bits(f"{tag} train_step sample {b} du[{l}]", step.grads[l].du[b],
                       exp_grs[b][l].du)
    counts = np.array([[int(x) for x in ref.loss(t[-1].s, 0, c)[0]] for t in exp_trs])
    assert np.array_equal(np.asarray(step.counts), counts), f"{tag} train_step counts"
    # the batch API: (B, T, N_in), dW over the samples in order
    btr = golden.forward(weights, spikes, params)
    bgr = golden.backward(weights, btr, spikes, labels, params)
    for l in range(len(weights)):
        check_bits(f"{tag} batch backward dW[{l}]", bgr[l].dW, exp_dWs[l])
        for b in range(len(labels)):
            check_bits(f"{tag} batch forward u[{l}] sample {b}", btr[l].u[b], exp_trs[b][l].u)
            check_bits(f"{tag} batch forward s[{l}] sample {b}", btr[l].s[b], exp_trs[b][l].s)
            check_bits(f"{tag} batch forward m[{l}] sample {b}", btr[l].m[b], exp_trs[b][l].m)
            check_bits(f"{tag} batch backward du[{l}] sample {b}", bgr[l].du[b],
                       exp_grs[b][l].du)
            if l:
                check_bits(f"{tag} batch backward g_in[{l}] sample {b} (where m below)",
                           bgr[l].g_in[b], exp_grs[b][l].g_in, mask=exp_trs[b][l - 1].m)
    preds = golden.predict(weights, spikes, params)
    assert [int(x) for x in preds] == [ref.predict_from_trace(t) for t in exp_trs], \
        f"{tag} batch predict"
    # nothing the caller passed was modified (dWs "left untouched")
    for l in range(len(weights)):
        check_bits(f"{tag} weights[{l}] unchanged", weights[l], weights_before[l])
        check_bits(f"{tag} first sample's dW[{l}] unchanged after chaining",
                   got_first_dWs[l], exp_first_dWs[l])
    assert np.array_equal(spikes, spikes_before)


N_SEEDS = 150


@pytest.mark.parametrize("mode", MODES)
def test_random_networks(mode):
    cov = Coverage()
    failures = []
    for seed in range(N_SEEDS):
        try:
            _check_case(seed, mode, cov)
        except AssertionError as exc:
            failures.append(f"{exc}".splitlines()[0])
    assert not failures, f"{len(failures)} of {N_SEEDS} cases disagree:\n" + "\n".join(failures[:12])
    # the random cases do reach the interesting corners
    for key in ("spike", "reset", "window", "outside window", "u == v_th", "u == lo", "u == hi",
                "u nan", "u inf", "u -0", "du zero", "du nonzero", "du -0", "du nan",
                "du inf", "dW nan", "du subnormal", "g_in -0"):
        assert cov.n.get(key, 0) > 0, f"no case reached {key!r}: {cov.n}"


# ------------------------------------------------------------------ directed cases

def _params(mode="detach", **kw):
    base = dict(T=4, alpha=0.5, v_th=0.5, a=0.25, beta=2.0, lr=0.01, loss_scale=8.0)
    base.update(kw)
    return golden.Params(reset_grad=mode, **base)


def _full_check(weights, spikes, label, params):
    c = ref_consts(params)
    exp_tr = ref.forward(weights, spikes, c)
    got_tr = golden.forward(weights, spikes, params)
    compare_forward("forward", got_tr, exp_tr)
    exp_gr = ref.backward(weights, exp_tr, spikes, label, c)
    got_gr = golden.backward(weights, got_tr, spikes, label, params)
    compare_backward("backward", got_gr, exp_gr, exp_tr)
    new_exp = ref.update(weights, [g.dW for g in exp_gr], c)
    new_got = golden.update(weights, [g.dW for g in got_gr], params)
    for l in range(len(weights)):
        check_bits(f"update {l}", new_got[l], new_exp[l])
    assert golden.predict(weights, spikes, params) == ref.predict(weights, spikes, c)
    return exp_tr, exp_gr


@pytest.mark.parametrize("mode", MODES)
def test_potential_exactly_at_lo_hi_and_threshold(mode):
    params = _params(mode, alpha=0.5, v_th=0.5, a=0.25)    # lo 0.25, hi 0.75
    c = ref_consts(params)
    assert (float(c.lo), float(c.v_th), float(c.hi)) == (0.25, 0.5, 0.75)
    # neuron 0: u = 0.25 (= lo), neuron 1: 0.5 (= v_th), neuron 2: 0.75 (= hi),
    # neuron 3: just above lo, neuron 4: just below hi
    W1 = f16([[0.25], [0.5], [0.75], [0.2502], [0.7495]])
    W2 = f16([[1.0, -0.5, 0.25, 0.125, 2.0], [-1.0, 0.5, 0.75, 0.5, -0.25]])
    spikes = np.array([[1], [0], [1], [1]], dtype=bool)
    tr, gr = _full_check([W1, W2], spikes, 1, params)
    u = tr[0].u.astype(np.float64)
    assert u[0].tolist() == [0.25, 0.5, 0.75, float(F16(0.2502)), float(F16(0.7495))]
    assert tr[0].s[0].tolist() == [False, True, True, False, True]
    assert tr[0].m[0].tolist() == [False, True, False, True, True]
    # the spike resets the next step: u[1] = x[1] = 0 for neurons 1, 2
    assert u[1, 1] == 0.0 and u[1, 2] == 0.0 and u[1, 0] == 0.125


@pytest.mark.parametrize("mode", MODES)
def test_all_zero_input(mode):
    params = _params(mode, T=5)
    W = [f16(np.random.default_rng(0).uniform(-1, 1, (4, 6))),
         f16(np.random.default_rng(1).uniform(-1, 1, (3, 4)))]
    spikes = np.zeros((5, 6), dtype=bool)
    tr, gr = _full_check(W, spikes, 2, params)
    assert all((t.u.view(np.uint16) == 0).all() for t in tr)      # +0.0 everywhere
    assert all((g.dW.view(np.uint16) == 0).all() for g in gr)


@pytest.mark.parametrize("mode", MODES)
def test_label_whose_output_never_spikes(mode):
    params = _params(mode, T=6, v_th=0.5, a=0.5)       # lo 0: u = 0 is outside the window
    W = [f16([[0.3, 0.4, 0.1], [0.2, -0.1, 0.6], [0.05, 0.05, 0.05]]),
         f16([[0.9, 0.2, 0.0], [0.1, 0.1, 0.1], [-0.3, 0.4, -0.5]])]
    spikes = np.random.default_rng(4).random((6, 3)) < 0.7
    c = ref_consts(params)
    tr, gr = _full_check(W, spikes, 2, params)
    cnt, r, e, g = ref.loss(tr[-1].s, 2, c)
    assert cnt[2] == 0 and cnt[0] > 0 and float(e[2]) == -1.0
    assert tr[-1].m[:, 2].any() and (gr[-1].du[:, 2] != 0).any()
    _full_check(W, spikes, 0, params)


@pytest.mark.parametrize("mode", MODES)
def test_inactive_inf_weights_are_not_terms(mode):
    params = _params(mode, T=3)
    W = [f16([[np.inf, 0.3, -np.inf], [0.6, np.nan, 0.1]]), f16([[1.0, 0.5], [0.5, 1.0]])]
    spikes = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=bool)
    _full_check(W, spikes, 0, params)


@pytest.mark.parametrize("mode", MODES)
def test_signed_zero_gradients(mode):
    """gscale a subnormal: g = e * gscale rounds to -0.0 for e = -0.5, so du = -0.0
    appears; it counts as zero (no dW term, no g_in term)."""
    T = 4
    params = _params(mode, T=T, alpha=0.5, v_th=0.5, a=0.5, beta=1.0,
                     loss_scale=T * 2.0 ** -24, lr=2.0 ** -40)
    c = ref_consts(params)
    assert ref.bits(c.gscale) == 0x0001
    W = [f16([[0.3, 0.2], [-0.1, 0.2], [0.2, 0.2]]),
         f16([[0.125, 0.125, 0.1], [0.25, 0.3, 0.2], [0.2, 0.1, 0.3]])]
    spikes = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=bool)
    tr, gr = _full_check(W, spikes, 0, params)
    _full_check(W, spikes, 1, params)
    _full_check(W, spikes, 2, params)


def test_predict_ties_lowest_index():
    params = _params(T=2, v_th=0.5, a=0.25)
    W = [f16([[0.1], [1.0], [1.0], [0.7]])]
    spikes = np.ones((2, 1), dtype=bool)
    c = ref_consts(params)
    assert ref.predict(W, spikes, c) == 1
    assert golden.predict(W, spikes, params) == 1
    W0 = [f16([[0.1], [0.2], [0.0]])]                    # nothing spikes: index 0
    assert golden.predict(W0, spikes, params) == ref.predict(W0, spikes, c) == 0


@pytest.mark.parametrize("mode", MODES)
def test_minibatch_of_three(mode):
    params = _params(mode, T=5, alpha=0.75, v_th=0.4, a=0.35, beta=1.5, lr=0.05)
    c = ref_consts(params)
    rng = np.random.default_rng(11)
    W = [f16(rng.uniform(-0.8, 0.8, (5, 7))), f16(rng.uniform(-0.8, 0.8, (4, 5)))]
    spikes = rng.random((3, 5, 7)) < 0.5
    labels = np.array([3, 0, 3])
    exp_w, exp_dWs, exp_trs, exp_grs = ref.train_step(W, spikes, labels, c)
    step = golden.train_step(W, spikes, labels, params)
    for l in range(2):
        check_bits(f"dWs[{l}]", step.dWs[l], exp_dWs[l])
        check_bits(f"weights[{l}]", step.weights[l], exp_w[l])
        assert (exp_dWs[l] != 0).any()
    # the accumulation order is the samples' order: another order can round differently
    order = [2, 0, 1]
    _, dWs_perm, _, _ = ref.train_step(W, spikes[order], labels[order], c)
    step_perm = golden.train_step(W, spikes[order], labels[order], params)
    for l in range(2):
        check_bits(f"permuted dWs[{l}]", step_perm.dWs[l], dWs_perm[l])


@pytest.mark.parametrize("mode", MODES)
def test_overflow_inf_and_nan(mode):
    """x overflows to +-inf; fma(alpha, -inf, +inf) is NaN (never spikes, never resets,
    outside the window); active inf weights of both signs make a NaN sum; a NaN du is
    a term (du != 0)."""
    params = _params(mode, T=4, alpha=1.0, v_th=1.0, a=2.0, beta=4.0, loss_scale=1024.0)
    W0 = f16([[60000, 60000, -60000, -60000, 0.0],
              [0.5, 0.5, 0.25, 0.25, 0.0],
              [np.inf, 0.0, 0.0, 0.0, -np.inf],
              [1.5, -0.5, 0.5, 0.0, 0.25]])
    W1 = f16([[30000, 1.0, 0.5, 2.0], [-30000, 2.0, 1.0, 0.5], [0.5, -1.0, 1.0, 1.0]])
    W2 = f16([[3.0, -3.0, 0.5], [1.0, 1.0, 1.0]])
    spikes = np.array([[0, 0, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 1], [0, 1, 1, 0, 1]],
                      dtype=bool)
    tr, gr = _full_check([W0, W1, W2], spikes, 1, params)
    u0 = tr[0].u.astype(np.float64)
    assert u0[0, 0] == -np.inf and np.isnan(u0[1, 0]) and np.isnan(u0[3, 0])
    assert np.isnan(u0[2, 2])
    _full_check([W0, W1, W2], spikes, 0, params)


@pytest.mark.parametrize("mode", MODES)
def test_negative_zero_potential(mode):
    """u = fma(alpha, -2**-24, +0) = -2**-25 rounds to -0.0 (ties to even) and
    keeps its sign; -(alpha * -0.0) in the reset-through term is +0.0."""
    params = _params(mode, T=4, alpha=0.5, v_th=2.0 ** -20, a=2.0 ** -21, beta=1.0,
                     loss_scale=4 * 2.0 ** -20, lr=2.0 ** -30)
    tiny = ref.from_bits(0x8001)                            # -2**-24
    W0 = np.array([[tiny, F16(0)], [F16(2.0 ** -21), F16(-2.0 ** -22)]], dtype=np.float16)
    W1 = f16([[0.5, 0.75], [-0.25, 1.0]])
    spikes = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], dtype=bool)
    tr, gr = _full_check([W0, W1], spikes, 1, params)
    assert tr[0].u[1, 0].view(np.uint16) == 0x8000
    _full_check([W0, W1], spikes, 0, params)


def test_negative_zero_du_is_not_a_term():
    """du = -0.0 counts as zero: with an inf weight on its row, counting it as a g_in
    term would give fma(inf, -0.0, acc) = NaN where the window bit below is 1.

    gscale = 2**-24; output 0 (the label) spikes twice in T = 4, so e = -0.5 and
    g = -2**-25, which rounds (tie, to even) to -0.0; beta * -0.0 = -0.0 (an fp16
    multiply adds -0.0), so du of output 0 is -0.0 at every step (detach)."""
    params = _params("detach", T=4, alpha=0.5, v_th=0.5, a=0.5, beta=1.0,
                     loss_scale=4 * 2.0 ** -24, lr=2.0 ** -30)
    W0 = f16([[0.25], [0.6]])            # hidden 0 never spikes, always in the window
    W1 = f16([[np.inf, 0.4], [0.0, 0.1]])
    spikes = np.ones((4, 1), dtype=bool)
    tr, gr = _full_check([W0, W1], spikes, 0, params)
    assert tr[0].m[:, 0].all() and not tr[0].s[:, 0].any()
    assert (gr[1].du[:, 0].view(np.uint16) == 0x8000).all()
    assert (gr[1].g_in[:, 0].view(np.uint16) == 0x0000).all()
    _full_check([W0, W1], spikes, 0, params.replace(reset_grad="through"))


@pytest.mark.parametrize("mode", MODES)
def test_digits_sized_network_two_minibatches(mode):
    """A wider network at the default constants (T = 16): 40-24-10, two minibatches
    of 2 samples, the second on the weights the first update produced."""
    params = golden.Params(reset_grad=mode)
    c = ref_consts(params)
    rng = np.random.default_rng([7, 1 if mode == "detach" else 2])
    sizes = [40, 24, 10]
    W = [f16(rng.uniform(-1, 1, (sizes[l + 1], sizes[l])) * 1.5 / math.sqrt(sizes[l]))
         for l in range(2)]
    for batch in range(2):
        x = rng.random(sizes[0])
        spikes = rng.random((2, params.T, sizes[0])) < x
        labels = rng.integers(0, 10, 2)
        exp_w, exp_dWs, exp_trs, exp_grs = ref.train_step(W, spikes, labels, c)
        step = golden.train_step(W, spikes, labels, params)
        for l in range(2):
            check_bits(f"batch {batch} dWs[{l}]", step.dWs[l], exp_dWs[l])
            check_bits(f"batch {batch} weights[{l}]", step.weights[l], exp_w[l])
            for b in range(2):
                check_bits(f"batch {batch} sample {b} u[{l}]", step.traces[l].u[b],
                           exp_trs[b][l].u)
                check_bits(f"batch {batch} sample {b} du[{l}]", step.grads[l].du[b],
                           exp_grs[b][l].du)
                if l:
                    check_bits(f"batch {batch} sample {b} g_in[{l}]", step.grads[l].g_in[b],
                               exp_grs[b][l].g_in, mask=exp_trs[b][l - 1].m)
        assert sum(int((g[0].du != 0).sum()) for g in exp_grs) > 0
        W = exp_w


def _operand_pairs(rng, n):
    """``(b, c)`` bit patterns from the biased families (ties, subnormals, overflow,
    cancellation, signed zeros), as float16 arrays."""
    _, b, c = biased_operands(rng, n)
    b = np.asarray(b, dtype=np.int64).astype(np.uint16).view(np.float16)
    c = np.asarray(c, dtype=np.int64).astype(np.uint16).view(np.float16)
    return b, c


def test_update_is_one_fused_rounding():
    """``W = fma(neg_lr, dW, W)`` element-wise on hard operands, through the public API;
    includes a case where float32 double rounding or a separately rounded product
    differs."""
    rng = np.random.default_rng(21)
    for lr_bits in (0x3B76, 0x1C00, 0x0001, 0x3555, 0x2E66):
        lr = float(ref.from_bits(lr_bits))
        params = _params(lr=lr, loss_scale=1.0)
        c = ref_consts(params)
        assert ref.bits(c.neg_lr) == lr_bits | 0x8000
        dW, W = _operand_pairs(rng, 3000)
        got = golden.update([W.reshape(60, 50)], [dW.reshape(60, 50)], params)[0].reshape(-1)
        exp = np.array([ref.fma(c.neg_lr, d, w) for d, w in zip(dW, W)], dtype=np.float16)
        check_bits(f"update neg_lr {lr_bits:#06x}", got, exp)
    # float32 double rounding / unfused would give 0x39A8 here, the fused result is 0x39A9
    params = _params(lr=float(ref.from_bits(15222)), loss_scale=1.0)
    got = golden.update([np.array([[ref.from_bits(14759 | 0x8000)]])],
                        [np.array([[ref.from_bits(4719)]])], params)[0]
    assert ref.bits(got[0, 0]) == ref.bits(ref.neg(ref.fma(ref.from_bits(15222), ref.from_bits(4719),
                                                           ref.from_bits(14759))))


def test_decay_is_one_fused_rounding():
    """``u[1] = fma(alpha, u[0], x[1])`` for many neurons at once: input 0 (t = 0) sets
    u[0] = W[i, 0], input 1 (t = 1) gives x[1] = W[i, 1]."""
    rng = np.random.default_rng(22)
    for alpha_bits in (15222, 0x3800, 0x3BFF, 0x0001, 0x3C00, 0x0000):
        alpha = float(ref.from_bits(alpha_bits))
        params = _params(T=2, alpha=alpha, v_th=65000.0, a=100.0)
        c = ref_consts(params)
        b, x = _operand_pairs(rng, 2000)
        W = np.stack([b, x], axis=1)
        spikes = np.array([[1, 0], [0, 1]], dtype=bool)
        u = golden.forward([W], spikes, params)[0].u
        # u[0] = +0 + b: a -0.0 weight gives +0.0
        exp_u0 = np.array([ref.add(ref.POS_ZERO, bi) for bi in b], dtype=np.float16)
        check_bits(f"u[0] alpha {alpha_bits:#06x}", u[0], exp_u0)
        exp = np.array([x1 if ref.ge(u0, c.v_th) else ref.fma(c.alpha, u0, x1)
                        for u0, x1 in zip(exp_u0, [ref.add(ref.POS_ZERO, xi) for xi in x])],
                       dtype=np.float16)
        check_bits(f"u[1] alpha {alpha_bits:#06x}", u[1], exp)
    params = _params(T=2, alpha=float(ref.from_bits(15222)), v_th=1.0, a=0.5)
    W = np.array([[ref.from_bits(4719), ref.from_bits(14759)]], dtype=np.float16)
    u = golden.forward([W], np.array([[1, 0], [0, 1]], dtype=bool), params)[0].u
    assert ref.bits(u[1, 0]) == 0x39A9 and float(u[1, 0]) == 0.70751953125


def test_output_gradient_any_T():
    """``r = fp16(count) * inv_T``, ``e = r - y``, ``g = e * gscale`` for T up to 1024
    (counts convert exactly), on spike trains built to have chosen counts."""
    rng = np.random.default_rng(31)
    for _ in range(60):
        T = int(rng.choice([1, 3, 7, 9, 16, 100, 333, 1000, 1023, 1024]))
        K = int(rng.integers(1, 11))
        params = _params(T=T, loss_scale=float(rng.choice([1.0, 8.0, 3.0, 1000.0, 2.0 ** -10])))
        c = ref_consts(params)
        counts = rng.integers(0, T + 1, K)
        counts[rng.random(K) < 0.2] = T
        s_out = np.zeros((T, K), dtype=bool)
        for k in range(K):
            s_out[rng.permutation(T)[:counts[k]], k] = True
        label = int(rng.integers(0, K))
        cnt, r, e, g = ref.loss(s_out, label, c)
        assert cnt == counts.tolist()
        gr, ge, gg = golden.output_gradient(s_out, label, params)
        check_bits(f"T {T} r", gr, r)
        check_bits(f"T {T} e", ge, e)
        check_bits(f"T {T} g", gg, g)
        assert np.array_equal(golden.spike_counts(s_out), counts)


def test_params_json_round_trip_keeps_constants():
    rng = np.random.default_rng(41)
    for _ in range(200):
        p = _random_params(rng)
        q = golden.Params.from_dict(p.to_dict())
        assert q.consts.bits() == p.consts.bits() == ref_consts(p).bits(), p
        r = golden.Params.from_dict(json.loads(p.to_json()))
        assert r.consts.bits() == p.consts.bits(), p
