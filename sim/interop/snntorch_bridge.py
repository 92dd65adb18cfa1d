"""snnTorch on the other side of a NIR file: train, export, import and evaluate there.

Used by ``tests/test_nir_snntorch.py`` and ``scripts/bench_nir_roundtrip.py`` to
measure what a network keeps when it crosses between snnTorch and spikeforge.
Needs ``torch``, ``snntorch`` and ``nirtorch`` (snnTorch's NIR code imports it);
:func:`missing` names whichever is absent.

* :func:`make_network` -- ``Linear(bias=False) -> snn.Leaky -> ...`` with one
  ``beta`` and one ``threshold`` per layer written as per-neuron vectors (what
  ``snntorch.export_nir`` needs to type-check the graph), ``init_hidden=True``.
* :func:`train` -- surrogate-gradient training on given spike trains (Adam,
  the loss of SPEC section 3: ``sum_k (count_k / T - y_k)^2 / 2``, batch mean).
* :func:`counts` -- output spike counts of a network (float32, snnTorch's own
  arithmetic) for spikes ``(N, T, F)``; :func:`predict` -- the most spikes,
  lowest index on ties (as the golden model).
* :func:`export` / :func:`import_graph` -- snnTorch's own ``export_to_nir`` and
  ``import_from_nir``.
* :func:`simulate` -- a float64 numpy reference of one LIF convention or another
  (reset to zero or by subtraction, reset in the step of the spike or the next,
  ``>=`` or ``>``, decay of the potential only or of the input too), to measure
  each difference of convention on its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["missing", "make_network", "train", "counts", "predict", "export", "import_graph",
           "simulate", "leaky_layers"]


def missing() -> str | None:
    """``None`` if torch, snntorch and nirtorch import, else a sentence naming the absent one."""
    for mod, pip in (("torch", "torch==2.13.0"), ("snntorch", "snntorch"),
                     ("nirtorch", "nirtorch"), ("nir", "nir")):
        try:
            __import__(mod)
        except ImportError:
            return f"needs {mod} (pip install {pip})"
    return None


def make_network(sizes, *, beta, threshold, reset_mechanism="zero", reset_delay=True, seed=0,
                 init_weights=None):
    """A feed-forward snnTorch network of ``sizes``; ``init_weights`` (list of
    ``(N_out, N_in)`` arrays) replaces torch's initialisation when given."""
    import torch
    import snntorch as snn
    torch.manual_seed(seed)
    layers = []
    for l in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[l], sizes[l + 1], bias=False)
        if init_weights is not None:
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(np.asarray(init_weights[l], dtype=np.float32)))
        n = sizes[l + 1]
        layers += [lin, snn.Leaky(beta=torch.full((n,), float(beta)),
                                  threshold=torch.full((n,), float(threshold)),
                                  reset_mechanism=reset_mechanism, reset_delay=reset_delay,
                                  init_hidden=True)]
    return torch.nn.Sequential(*layers)


def leaky_layers(net):
    import snntorch as snn
    return [m for m in net.modules() if isinstance(m, snn.Leaky)]


def _reset(net):
    for m in leaky_layers(net):
        m.reset_mem()


def _run(net, x):
    """x: float tensor (B, T, F) -> output spikes summed over time (B, K)."""
    _reset(net)
    total = 0
    for t in range(x.shape[1]):
        out = net(x[:, t])
        if isinstance(out, tuple):                 # a GraphModule returns (spikes, state)
            out = out[0]
        total = total + out
    return total


def train(net, spikes, labels, *, epochs, batch=32, lr=2e-3, seed=0, n_classes=None, log=None):
    """Train ``net`` in place on bool spikes ``(N, T, F)``; returns per-epoch mean losses."""
    import torch
    spikes = np.asarray(spikes)
    labels = np.asarray(labels)
    T = spikes.shape[1]
    K = n_classes or int(labels.max()) + 1
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = np.random.default_rng([seed, 7])
    x_all = torch.as_tensor(spikes, dtype=torch.float32)
    y_all = torch.nn.functional.one_hot(torch.as_tensor(labels), K).float()
    history = []
    for ep in range(epochs):
        order = gen.permutation(len(spikes))
        total = 0.0
        for k in range(0, len(order), batch):
            idx = torch.as_tensor(order[k:k + batch])
            rate = _run(net, x_all[idx]) / T
            loss = ((rate - y_all[idx]) ** 2).sum(dim=1).mul(0.5).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(order))
        if log:
            log(f"snntorch epoch {ep + 1}/{epochs}: loss {history[-1]:.4f}")
    return history


def counts(net, spikes, chunk=512) -> np.ndarray:
    """Output spike counts ``(N, K)`` (int) of ``net`` on bool spikes ``(N, T, F)``."""
    import torch
    out = []
    with torch.no_grad():
        for k in range(0, len(spikes), chunk):
            x = torch.as_tensor(np.asarray(spikes[k:k + chunk]), dtype=torch.float32)
            out.append(_run(net, x).numpy())
    c = np.concatenate(out)
    assert np.array_equal(c, np.round(c))
    return c.astype(np.int64)


def predict(c) -> np.ndarray:
    """The output with most spikes, lowest index on ties (numpy argmax)."""
    return np.argmax(c, axis=-1)


def export(net, n_inputs):
    """snnTorch's own NIR export (``snntorch.export_nir.export_to_nir``)."""
    import warnings
    import torch
    from snntorch.export_nir import export_to_nir
    with warnings.catch_warnings():     # snnTorch 1.0 calls nirtorch's deprecated extractor
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message="nirtorch.extract_nir_graph is being deprecated")
        return export_to_nir(net, torch.zeros(1, n_inputs), ignore_dims=[0])


def import_graph(graph):
    """snnTorch's own NIR import (``snntorch.import_nir.import_from_nir``); its progress
    print goes nowhere."""
    import contextlib
    import io
    from snntorch.import_nir import import_from_nir
    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(graph)


def simulate(weights, spikes, *, alpha, v_th, reset="zero", reset_timing="next", fire=">=",
             decay_input=False, dtype=np.float64):
    """Output spike counts ``(N, K)`` of a LIF chain in ``dtype`` arithmetic, with the
    conventions chosen:

    * ``reset``: ``"zero"`` (u = 0) or ``"subtract"`` (u -= v_th);
    * ``reset_timing``: ``"next"`` -- applied at the start of the next step, before
      the decay (spikeforge; snnTorch ``reset_delay=True``) -- or ``"same"`` --
      applied right after the spike, so the next step decays the reset value
      (snnTorch ``reset_delay=False``, SpikingJelly, NIR read literally);
    * ``fire``: ``">="`` (spikeforge, SpikingJelly) or ``">"`` (snnTorch, NIR);
    * ``decay_input``: ``u = alpha u + (1 - alpha) x`` (SpikingJelly's default
      ``decay_input=True``) instead of ``u = alpha u + x``.

    ``spikeforge`` is reset zero, timing next, ``>=``, no input decay (timing does
    not matter for a reset to zero: both give ``u[t+1] = x[t+1]``)."""
    s = np.asarray(spikes, dtype=dtype)
    a, th = dtype(alpha), dtype(v_th)
    for W in weights:
        W = np.asarray(W, dtype=dtype)
        N, T, _ = s.shape
        x = s @ W.T                                        # (N, T, out)
        if decay_input:
            x = x * (dtype(1) - a)
        u = np.zeros((N, W.shape[0]), dtype=dtype)
        prev = np.zeros((N, W.shape[0]), dtype=bool)
        out = np.zeros((N, T, W.shape[0]), dtype=bool)
        for t in range(T):
            if reset_timing == "next":                     # snnTorch reset_delay=True
                if reset == "zero":
                    u = a * np.where(prev, dtype(0), u) + x[:, t]
                else:                                      # the subtraction is not decayed
                    u = a * u + x[:, t] - prev * th
            else:
                u = a * u + x[:, t]
            st = (u >= th) if fire == ">=" else (u > th)
            if reset_timing == "same":
                u = np.where(st, dtype(0), u) if reset == "zero" else u - st * th
            out[:, t] = st
            prev = st
        s = out.astype(dtype)
    return s.sum(axis=1).astype(np.int64)

