"""The float64 twin's gradients equal PyTorch autograd's on random networks.

The PyTorch network below is written from the usual LIF description, not from
the golden model: the membrane ``u[t] = alpha * u[t-1] * (1 - s[t-1]) + W s_in[t]``
(hard reset, the reset spike detached or not), spikes through a custom autograd
function (forward ``u >= v_th``, backward ``beta * 1{lo < u < hi}``) and the loss
``loss_scale * sum_k (count_k / T - y_k)**2 / 2``. Autograd then gives ``du``
(the gradient of every ``u[t]``), ``g_in`` (the gradient reaching the spikes of
the layer below from the layer above) and ``dW``.
"""

import numpy as np
import pytest

from spikeforge.sim.golden import model as G
from spikeforge.sim.golden import float64 as G64

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install torch==2.13.0): "
                    "the autograd cross-check of the float64 twin is skipped")

TOL = 1e-9


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, v_th, lo, hi, beta):
        ctx.save_for_backward(u)
        ctx.window = (lo, hi, beta)
        return (u >= v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        lo, hi, beta = ctx.window
        return grad * beta * ((u > lo) & (u < hi)).to(u.dtype), None, None, None, None


def torch_network(Ws, x, label, p):
    """Returns (loss, us[l][t], s_up[l][t], W tensors): s_up[l][t] is the copy of layer
    l's spikes that feeds layer l+1 (its .grad is the g_in of layer l+1)."""
    T = p.T
    lo, hi = p.v_th - p.a, p.v_th + p.a
    Wt = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in Ws]
    inputs = [torch.tensor(x[t], dtype=torch.float64) for t in range(T)]
    us, ups = [], []
    for W in Wt:
        u_prev = torch.zeros(W.shape[0], dtype=torch.float64)
        s_prev = torch.zeros(W.shape[0], dtype=torch.float64)
        layer_u, layer_up = [], []
        for t in range(T):
            keep = 1.0 - (s_prev.detach() if p.reset_grad == "detach" else s_prev)
            u = p.alpha * u_prev * keep + W @ inputs[t]
            u.retain_grad()
            s = _Spike.apply(u, p.v_th, lo, hi, p.beta)
            up = s * 1.0                     # the spikes as the layer above sees them
            up.retain_grad()
            layer_u.append(u)
            layer_up.append(up)
            u_prev, s_prev = u, s
        us.append(layer_u)
        ups.append(layer_up)
        inputs = layer_up
    counts = torch.stack(ups[-1]).sum(0)
    y = torch.zeros_like(counts)
    y[label] = 1.0
    loss = p.loss_scale * 0.5 * ((counts / T - y) ** 2).sum()
    return loss, us, ups, Wt


def random_case(seed, sizes, T, mode, batch=None):
    """A random network, parameters and input whose gradient reaches every layer
    (the first of seed*1000, seed*1000+1, ... that gives one: deterministic)."""
    for k in range(100):
        rng = np.random.default_rng(seed * 1000 + k)
        p = G.Params(T=T, alpha=float(rng.uniform(0.1, 0.95)),
                     v_th=float(rng.uniform(0.2, 0.6)), a=float(rng.uniform(0.3, 1.0)),
                     beta=float(rng.uniform(0.5, 3.0)), lr=0.05,
                     loss_scale=float(rng.choice([1.0, 8.0, 100.0])), reset_grad=mode)
        Ws = [rng.uniform(-0.5, 0.8, (n_out, n_in)) / np.sqrt(n_in) * 1.5
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        shape = (T, sizes[0]) if batch is None else (batch, T, sizes[0])
        x = rng.random(shape) < 0.5
        y = rng.integers(0, sizes[-1], None if batch is None else batch)
        grads = G64.backward(Ws, G64.forward(Ws, x, p), x, y, p)
        if all((g.du != 0).mean() > 0.05 for g in grads):
            return p, Ws, x, y
    raise AssertionError("no random case with gradients in every layer")


@pytest.mark.parametrize("mode", ["detach", "through"])
@pytest.mark.parametrize("seed", range(4))
def test_twin_gradients_equal_autograd(seed, mode):
    sizes = [[12, 9, 5], [10, 16, 8, 4], [20, 6], [8, 12, 10, 7, 3]][seed]
    T = [6, 8, 5, 7][seed]
    p, Ws, x, label = random_case(seed, sizes, T, mode)
    label = int(label)

    traces = G64.forward(Ws, x, p)
    grads = G64.backward(Ws, traces, x, label, p)
    loss, us, ups, Wt = torch_network(Ws, x, label, p)
    loss.backward()

    for l in range(len(Ws)):
        u_t = torch.stack(us[l]).detach().numpy()
        s_t = torch.stack(ups[l]).detach().numpy() > 0
        np.testing.assert_allclose(traces[l].u, u_t, rtol=0, atol=1e-12)
        assert (traces[l].s == s_t).all()
        du_t = torch.stack([u.grad if u.grad is not None else torch.zeros_like(u)
                            for u in us[l]]).numpy()
        np.testing.assert_allclose(grads[l].du, du_t, rtol=TOL, atol=TOL, err_msg=f"du layer {l}")
        np.testing.assert_allclose(grads[l].dW, Wt[l].grad.numpy(), rtol=TOL, atol=TOL,
                                   err_msg=f"dW layer {l}")
        if l:
            g_t = torch.stack([s.grad for s in ups[l - 1]]).numpy()
            np.testing.assert_allclose(grads[l].g_in, g_t, rtol=TOL, atol=TOL,
                                       err_msg=f"g_in layer {l}")
        # the surrogate window cuts some paths and not others
        assert 0 < (grads[l].du != 0).mean() < 1 or l == len(Ws) - 1
    assert np.isclose(G.loss_value(traces[-1].s, label) * p.loss_scale, loss.item())


@pytest.mark.parametrize("mode", ["detach", "through"])
def test_twin_minibatch_sums_and_update_equal_autograd(mode):
    sizes, T, B = [10, 12, 4], 6, 4
    p, Ws, x, y = random_case(11, sizes, T, mode, batch=B)
    step = G64.train_step(Ws, x, y, p)
    total = None
    for b in range(B):
        loss, _, _, Wt = torch_network(Ws, x[b], int(y[b]), p)
        loss.backward()
        g = [W.grad.numpy() for W in Wt]
        total = g if total is None else [a + c for a, c in zip(total, g)]
    for l in range(len(Ws)):
        np.testing.assert_allclose(step.dWs[l], total[l], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(step.weights[l], Ws[l] - p.lr / p.loss_scale * total[l],
                                   rtol=TOL, atol=TOL)
