"""``spikeforge port``: a trained non-spiking network ported to an integer spiking network (SPEC section 8).

Two sources:

* by default, a float32 ReLU MLP (``64-256-10``, ``--hidden``) trained here with
  numpy (:func:`train_float`: cross-entropy, AdamW, minibatches, deterministic from
  ``--seed``), on inputs rate-coded over ``T`` steps like the spiking network's
  (``--train-noise``; its accuracy is measured on the clean test pixels);
* ``--from NET``: an fp16 training network written by ``spikeforge train --save``
  (SPEC section 3: no bias, LIF with decay ``alpha``, hard reset at ``v_th``).

The port (:func:`port_float`), layer by layer, data-based normalisation:

1. ``lambda_0 = 1`` (input spikes are rate-coded pixels in [0, 1]); ``lambda_l``
   = the ``--percentile`` of layer ``l``'s ReLU activations on the training set
   (all neurons and samples, strictly positive values; the last layer only in
   ``spikes`` readout);
2. ``W'_l = W_l * lambda_{l-1} / lambda_l``, ``b'_l = b_l / lambda_l``: a unit
   activation becomes one threshold crossing per step;
3. per-layer scale ``s_l = (2**(B-1) - 1) / max |W'_l|``: ``W = round(s_l W')``
   (B-bit), threshold ``theta_l = round(s_l)``, bias ``b = round(s_l b')`` plus, with
   ``--bias-shift half``, ``round(theta_l / (2 T))`` (over ``T`` steps that adds
   ``theta/2``, the same as starting every potential at half the threshold: spike
   counts round to nearest instead of down);
4. integrate-and-fire (``leak_shift none``) with ``subtract`` reset (``--reset``),
   readout ``potential`` (the last layer sums its input over the ``T`` steps; good
   at small ``T``) or ``spikes`` (``--readout``; ``auto`` takes the better of the
   two on the training set).

:func:`port_fp16` maps a spikeforge training network directly: its threshold
``v_th`` and weights on one scale per layer, ``zero`` reset (the hard reset of
section 3), readout ``spikes`` (how it was trained), no bias, and the leak ``k``
in ``none, 0..6`` whose output spike rates are closest to the fp16 network's on
the first 300 training samples (``--leak-shift auto``, the default with ``--from``).

Accuracies (``accuracy``: spiking, integer golden model; ``float_accuracy``: the
float32 network; ``source_accuracy``: the fp16 network of ``--from``) are on the
test set with the rate encoder of :mod:`spikeforge.sim.golden.datasets` and
``--seed``; they go to stdout, to ``--json`` and into the network file.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from spikeforge.sim.files import output_folder, write_json
from spikeforge.sim.errors import UsageError, parse_hidden
from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import integer as I
from spikeforge.sim.golden import model as golden
from spikeforge.sim import network_file as NF

__all__ = ["FloatNet", "train_float", "float_accuracy", "activations", "port_float",
           "port_fp16", "evaluate", "spiking_accuracy", "encode_split", "run", "add_arguments", "main",
           "DEFAULTS"]

DEFAULTS = dict(hidden="256", percentile=99.9, seed=0, epochs=150, batch=32, lr=3e-3,
                weight_decay=1e-2, Q=16, readout="potential", reset="subtract",
                bias_shift="half")


# ---------------------------------------------------------------------------
# The float32 ReLU network
# ---------------------------------------------------------------------------

class FloatNet:
    """A float32 MLP: ReLU on every layer but the last (logits). ``weights[l]`` is
    ``(N_out, N_in)``, ``biases[l]`` ``(N_out,)``."""

    def __init__(self, weights, biases):
        self.weights = [np.asarray(W, dtype=np.float32) for W in weights]
        self.biases = [np.asarray(b, dtype=np.float32) for b in biases]

    @property
    def sizes(self):
        return [self.weights[0].shape[1], *(W.shape[0] for W in self.weights)]

    def forward(self, x):
        """Activations of every layer (ReLU for hidden layers, logits for the last)."""
        acts = []
        a = np.asarray(x, dtype=np.float32)
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W.T + b
            a = z if l == len(self.weights) - 1 else np.maximum(z, 0)
            acts.append(a)
        return acts

    def predict(self, x):
        return np.argmax(self.forward(x)[-1], axis=-1)


def train_float(x, y, sizes, *, seed=0, epochs=150, batch=32, lr=3e-3, weight_decay=1e-2,
                noise_T=None, log=None) -> FloatNet:
    """Train a float32 ReLU MLP with softmax cross-entropy and Adam (numpy only).

    Deterministic from ``seed``: He-uniform initial weights from
    ``default_rng([seed, 0xF10A7, l])``, zero biases, sample order per epoch from
    ``default_rng([seed, 0xF10A7, 1000 + epoch])``; decoupled weight decay on the
    weights (not the biases); learning rate cosine-annealed to zero.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    n = len(x)
    Ws, bs = [], []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        rng = np.random.default_rng([seed, 0xF10A7, l])
        k = math.sqrt(6.0 / n_in)
        Ws.append(rng.uniform(-k, k, size=(n_out, n_in)).astype(np.float32))
        bs.append(np.zeros(n_out, dtype=np.float32))
    params = Ws + bs
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    steps_total = epochs * math.ceil(n / batch)
    L = len(Ws)
    for ep in range(epochs):
        order = np.random.default_rng([seed, 0xF10A7, 1000 + ep]).permutation(n)
        noise = np.random.default_rng([seed, 0xF10A7, 2000 + ep])
        for k0 in range(0, n, batch):
            idx = order[k0:k0 + batch]
            xb, yb = x[idx], y[idx]
            if noise_T is not None:
                xb = (noise.binomial(noise_T, xb) / noise_T).astype(np.float32)
            acts = [xb]
            for l in range(L):
                z = acts[-1] @ Ws[l].T + bs[l]
                acts.append(z if l == L - 1 else np.maximum(z, 0))
            logits = acts[-1]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            g = p / len(yb)
            gW, gb = [None] * L, [None] * L
            for l in range(L - 1, -1, -1):
                gW[l] = g.T @ acts[l]
                gb[l] = g.sum(axis=0)
                if l:
                    g = (g @ Ws[l]) * (acts[l] > 0)
            step += 1
            lr_t = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps_total))
            grads = gW + gb
            for i, (prm, gr) in enumerate(zip(params, grads)):
                m[i] = b1 * m[i] + (1 - b1) * gr
                v[i] = b2 * v[i] + (1 - b2) * gr * gr
                mh = m[i] / (1 - b1 ** step)
                vh = v[i] / (1 - b2 ** step)
                if i < L:
                    prm *= np.float32(1 - lr_t * weight_decay)   # decoupled (AdamW) decay
                prm -= (lr_t * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        if log is not None and (ep + 1) % 20 == 0:
            net = FloatNet(Ws, bs)
            log(f"float32 epoch {ep + 1}/{epochs}: train acc {(net.predict(x) == y).mean():.4f}")
    return FloatNet(Ws, bs)


def float_accuracy(net: FloatNet, x, y) -> float:
    return float((net.predict(x) == np.asarray(y)).mean())


def activations(net: FloatNet, x):
    return net.forward(x)


# ---------------------------------------------------------------------------
# The port
# ---------------------------------------------------------------------------

def _percentile_scale(a, percentile):
    pos = a[a > 0]
    if pos.size == 0:
        return 1.0
    return float(np.percentile(pos, percentile))


def _check_fits(l, Q, theta, b):
    """Threshold and biases must fit the Q-bit potentials; never clipped silently."""
    need = max(theta, int(np.max(np.abs(b))) if b.size else 0)
    qmax = 2 ** (Q - 1) - 1
    if need > qmax:
        bits = need.bit_length() + 1
        raise I.IntNetworkError(f"layer {l} needs a threshold or bias of {need}, beyond the "
                                f"{Q}-bit potentials (at most {qmax}); use --Q {bits} or more")


def port_float(net: FloatNet, x_train, *, B: int, T: int, Q: int = 16, percentile: float = 99.9,
               readout: str = "potential", reset: str = "subtract", bias_shift: str = "half",
               leak_shift=None) -> tuple[I.IntNetwork, dict]:
    """The integer network of a float32 ReLU MLP (see the module doc); also
    returns what was chosen per layer (``lambda``, scale, theta) for the record."""
    acts = net.forward(x_train)
    L = len(net.weights)
    lambdas = [1.0]
    for l in range(L):
        if l == L - 1 and readout == "potential":
            lambdas.append(1.0)            # the last layer's scale does not change its argmax
        else:
            lambdas.append(_percentile_scale(acts[l], percentile))
    wmax = 2 ** (B - 1) - 1
    weights, biases, thetas, record = [], [], [], []
    for l in range(L):
        Wn = net.weights[l].astype(np.float64) * lambdas[l] / lambdas[l + 1]
        bn = net.biases[l].astype(np.float64) / lambdas[l + 1]
        m = float(np.max(np.abs(Wn)))
        s = wmax / m if m > 0 else 1.0
        W = np.clip(np.round(Wn * s), -wmax - 1, wmax).astype(np.int64)
        theta = max(1, int(round(s)))
        b = np.round(bn * s)
        if bias_shift == "half" and not (l == L - 1 and readout == "potential"):
            b = b + round(theta / (2 * T))
        b = b.astype(np.int64)
        _check_fits(l, Q, theta, b)
        weights.append(W)
        biases.append(b)
        thetas.append(theta)
        record.append({"lambda": lambdas[l + 1], "scale": s, "theta": theta})
    intnet = I.make_network(weights, biases, thetas, B=B, Q=Q, T=T, readout=readout,
                            leak_shift=leak_shift, reset=reset)
    return intnet, {"layers": record}


def port_fp16(net: NF.Fp16Network, *, B: int, T: int, Q: int, leak_shift) -> I.IntNetwork:
    """Direct integer mapping of a spikeforge training network (see the module doc)."""
    v_th = float(net.params.consts.v_th)
    wmax = 2 ** (B - 1) - 1
    weights, biases, thetas = [], [], []
    for W in net.weights:
        Wf = W.astype(np.float64)
        m = float(np.max(np.abs(Wf)))
        s = wmax / m if m > 0 else 1.0
        weights.append(np.clip(np.round(Wf * s), -wmax - 1, wmax).astype(np.int64))
        biases.append(np.zeros(W.shape[0], dtype=np.int64))
        thetas.append(max(1, int(round(v_th * s))))
        _check_fits(len(thetas) - 1, Q, thetas[-1], biases[-1])
    return I.make_network(weights, biases, thetas, B=B, Q=Q, T=T, readout="spikes",
                          leak_shift=leak_shift, reset="zero")


def encode_split(data: D.Dataset, split: str, *, seed: int, T: int, limit=None):
    x, y = data.split(split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return D.encode_batch(x, np.arange(len(x)), split=split, seed=seed, T=T), y


def evaluate(intnet: I.IntNetwork, spikes, labels, chunk=256) -> tuple[float, float]:
    """Accuracy of the integer golden model on ``spikes`` and its mean SOPs per sample."""
    correct = 0
    sops = 0
    for k in range(0, len(spikes), chunk):
        res = I.forward(intnet, spikes[k:k + chunk])
        correct += int((res.predictions == labels[k:k + chunk]).sum())
        sops += int(res.sops.sum())
    n = max(len(labels), 1)
    return correct / n, sops / n


def spiking_accuracy(intnet: I.IntNetwork, spikes, labels) -> float:
    return evaluate(intnet, spikes, labels)[0]


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def _parse_leak(text):
    """``none``, ``auto`` or an integer 0..15."""
    text = str(text).strip().lower()
    if text in ("none", "auto"):
        return None if text == "none" else "auto"
    try:
        k = int(text)
    except ValueError:
        k = -1
    if not 0 <= k <= 15:
        raise UsageError(f"--leak-shift must be none, auto or an integer in 0..15, not {text!r}")
    return k


def _parse_noise(text, T):
    text = str(text).strip().lower()
    if text == "none":
        return None
    if text == "t":
        return T
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"--train-noise must be T, none or a positive integer, not {text!r}")
    return n


def _check_choice(option, value, allowed):
    if value not in allowed:
        raise UsageError(f"{option} must be one of {', '.join(map(str, allowed))}, not {value!r}")


def _load_dataset(name):
    try:
        return D.load(name)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None


_TRAINED: dict = {}      # the last float32 networks trained by run(), by their settings


def run(*, dataset="digits", bits, T, hidden="256", percentile=99.9, seed=0, source=None,
        Q=16, readout="potential", reset="subtract", bias_shift="half", leak_shift="none",
        epochs=150, train_noise="T", log=print):
    """Port a network; returns ``(IntNetwork, metrics, provenance)`` (what goes in
    the network file; the report of ``--json`` is ``{"metrics":..., "provenance":...}``)."""
    _check_choice("--bits", bits, I.WEIGHT_BITS)
    if isinstance(T, bool) or not isinstance(T, int) or not 1 <= T <= I.MAX_T:
        raise UsageError(f"--T must be an integer in 1..{I.MAX_T}, not {T!r}")
    lo_q, hi_q = I.Q_RANGE
    if isinstance(Q, bool) or not isinstance(Q, int) or not lo_q <= Q <= hi_q:
        raise UsageError(f"--Q must be an integer in {lo_q}..{hi_q}, not {Q!r}")
    if not (isinstance(percentile, (int, float)) and 0 < percentile <= 100):
        raise UsageError(f"--percentile must be in (0, 100], not {percentile!r}")
    _check_choice("--readout", readout, ("potential", "spikes", "auto"))
    _check_choice("--reset", reset, I.RESETS)
    _check_choice("--bias-shift", bias_shift, ("half", "none"))
    if not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"--epochs must be a positive integer, not {epochs!r}")
    leak = _parse_leak(leak_shift)
    data = _load_dataset(dataset)
    t0 = time.monotonic()
    test_spikes, y_test = encode_split(data, "test", seed=seed, T=T)
    settings = dict(dataset=dataset, bits=bits, T=T, Q=Q, percentile=percentile, seed=seed,
                    readout=readout, reset=reset, bias_shift=bias_shift,
                    leak_shift="none" if leak is None else leak)
    provenance = {"command": "port", "dataset": dataset, "seed": seed,
                  "encoding": "datasets.encode (rate coding) with --seed, test split"}
    metrics = {}
    if source is None:
        sizes = [data.n_features, *parse_hidden(hidden), data.n_classes]
        noise_T = _parse_noise(train_noise, T)
        if leak == "auto":
            raise UsageError("--leak-shift auto is for --from networks; use none or 0..15")
        log(f"training a float32 ReLU network {'-'.join(map(str, sizes))} on {dataset} "
            f"({epochs} epochs, seed {seed}, input noise "
            f"{'none' if noise_T is None else f'rate-coded over {noise_T} steps'})")
        key = (dataset, tuple(sizes), seed, epochs, noise_T)
        if key not in _TRAINED:            # one process porting at several B trains once
            if len(_TRAINED) >= 16:
                _TRAINED.clear()
            _TRAINED[key] = train_float(data.x_train, data.y_train, sizes, seed=seed,
                                        epochs=epochs, noise_T=noise_T)
        fnet = _TRAINED[key]
        f_acc = float_accuracy(fnet, data.x_test, data.y_test)
        metrics["float_accuracy"] = f_acc
        settings.update(hidden=sizes[1:-1], epochs=epochs,
                        train_noise="none" if noise_T is None else noise_T)
        provenance["float_network"] = {
            "sizes": sizes, "activation": "ReLU (logits in the last layer)",
            "training": f"softmax cross-entropy, AdamW (lr 3e-3, weight decay 1e-2, cosine), "
                        f"batch 32, {epochs} epochs, seed {seed}; inputs "
                        + ("clean" if noise_T is None else
                           f"Binomial({noise_T}, pixel)/{noise_T} per minibatch"),
            "train_accuracy": float_accuracy(fnet, data.x_train, data.y_train),
            "test_accuracy": f_acc}
        candidates = ("potential", "spikes") if readout == "auto" else (readout,)
        choice = {}
        for ro in candidates:
            try:
                choice[ro] = port_float(fnet, data.x_train, B=bits, T=T, Q=Q, percentile=percentile,
                                        readout=ro, reset=reset, bias_shift=bias_shift,
                                        leak_shift=leak)
            except I.IntNetworkError as exc:
                raise UsageError(f"the ported network is not valid: {exc}") from None
        if readout == "auto":
            train_spikes, y_train = encode_split(data, "train", seed=seed, T=T)
            scores = {ro: spiking_accuracy(choice[ro][0], train_spikes, y_train) for ro in choice}
            chosen = max(candidates, key=lambda ro: (scores[ro], ro == "potential"))
            provenance["readout_choice"] = {"train_accuracy": scores, "chosen": chosen}
            log("readout on the training set: " + ", ".join(
                f"{ro} {acc:.4f}" for ro, acc in scores.items()) + f"; chosen {chosen}")
        else:
            chosen = readout
        intnet, record = choice[chosen]
        provenance["port"] = {"method": "percentile normalisation, per-layer scale, IF neurons",
                              **record}
    else:
        if leak is None and leak_shift is None:
            leak = "auto"
        try:
            src = NF.load(source, kind="fp16")
        except NF.NetworkFileError as exc:
            raise UsageError(f"--from: {exc}") from None
        fp = src.network
        if fp.sizes[0] != data.n_features or fp.sizes[-1] != data.n_classes:
            raise UsageError(f"--from {source!r} has sizes {fp.sizes}, which do not fit {dataset} "
                             f"({data.n_features} inputs, {data.n_classes} classes)")
        settings.update(source=os.fspath(source), readout="spikes", reset="zero",
                        bias_shift="none")
        log(f"porting the fp16 network {'-'.join(map(str, fp.sizes))} of {source!r}")
        src_spikes, _ = encode_split(data, "test", seed=seed, T=fp.params.T)
        src_acc = float(np.mean(golden.predict(list(fp.weights), src_spikes, fp.params) == y_test))
        metrics["source_accuracy"] = src_acc
        if "float_accuracy" in src.metrics:
            metrics["float_accuracy"] = src.metrics["float_accuracy"]
        ks = [None, *range(7)] if leak == "auto" else [leak]
        # the leak whose integer network fires most like the fp16 one: output spike rates
        # on the first 300 training samples (accuracy there is near 1 for every k)
        x_tr, y_tr = data.x_train[:300], data.y_train[:300]
        ref_spikes = D.encode_batch(x_tr, np.arange(len(x_tr)), split="train", seed=seed,
                                    T=fp.params.T)
        ref_rate = golden.spike_counts(golden.forward(list(fp.weights), ref_spikes,
                                                      fp.params)[-1].s) / fp.params.T
        train_spikes = D.encode_batch(x_tr, np.arange(len(x_tr)), split="train", seed=seed, T=T)
        scores, nets = {}, {}
        for k in ks:
            try:
                nets[k] = port_fp16(fp, B=bits, T=T, Q=Q, leak_shift=k)
            except I.IntNetworkError as exc:
                raise UsageError(f"the ported network is not valid: {exc}") from None
            res = I.forward(nets[k], train_spikes)
            scores[k] = {"rate_distance": float(np.abs(res.counts / T - ref_rate).mean()),
                         "train_accuracy": float((res.predictions == y_tr).mean())}
        best = min(ks, key=lambda k: scores[k]["rate_distance"])
        intnet = nets[best]
        settings["leak_shift"] = "none" if best is None else best
        provenance["source"] = {"file": os.fspath(source), "sizes": fp.sizes,
                                "params": fp.params.to_dict(), "metrics": src.metrics,
                                "provenance": src.provenance,
                                "test_accuracy_fp16_golden": src_acc}
        provenance["port"] = {
            "method": "direct: weights on one scale per layer, theta = round(v_th * scale), "
                      "zero reset, no bias, spikes readout",
            "leak_choice": {("none" if k is None else str(k)): v for k, v in scores.items()},
            "thetas": [L.theta for L in intnet.layers]}
        if len(ks) > 1:
            log("leak_shift, mean |output rate - fp16 rate| on 300 training samples: " + ", ".join(
                f"{'none' if k is None else k} {v['rate_distance']:.4f}" for k, v in scores.items())
                + f"; chosen {'none' if best is None else best}")
    acc, sops = evaluate(intnet, test_spikes, y_test)
    metrics["accuracy"] = acc
    metrics["sops_per_sample"] = sops
    provenance["settings"] = settings
    provenance["network"] = intnet.describe()
    provenance["seconds"] = time.monotonic() - t0
    parts = [f"spiking (B={bits}, T={T}) {acc:.4f}"]
    if "float_accuracy" in metrics:
        parts.insert(0, f"float32 {metrics['float_accuracy']:.4f}")
    if "source_accuracy" in metrics:
        parts.insert(0, f"fp16 source {metrics['source_accuracy']:.4f}")
    log(f"{intnet.describe()}")
    log("test accuracy: " + ", ".join(parts) +
        f"; {sops:.0f} SOPs per sample")
    return intnet, metrics, provenance


def add_arguments(p: argparse.ArgumentParser):
    d = DEFAULTS
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    p.add_argument("--bits", type=int, required=True, help="weight bits B: 4 or 8")
    p.add_argument("--T", type=int, default=None,
                   help="time steps per sample (required, except with --from: its T)")
    p.add_argument("--hidden", default=d["hidden"],
                   help="hidden sizes of the float32 network, comma separated (default: %(default)s)")
    p.add_argument("--percentile", type=float, default=d["percentile"],
                   help="activation percentile that becomes one spike per step (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help="seed of the float32 training and of the spike encoding (default: %(default)s)")
    p.add_argument("--from", dest="source", metavar="NET", default=None,
                   help="port this fp16 training network file instead of training a float32 one")
    p.add_argument("-o", "--output", metavar="NET", required=True, help="network file to write")
    p.add_argument("--Q", type=int, default=d["Q"], help="potential bits (default: %(default)s)")
    p.add_argument("--readout", default=d["readout"], choices=["potential", "spikes", "auto"],
                   help="readout of the last layer; auto: the better on the training set "
                        "(default: %(default)s)")
    p.add_argument("--reset", default=d["reset"], choices=list(I.RESETS),
                   help="reset after a spike (default: %(default)s; --from always uses zero)")
    p.add_argument("--bias-shift", default=d["bias_shift"], choices=["half", "none"],
                   help="add theta/(2T) to every bias: counts round to nearest (default: %(default)s)")
    p.add_argument("--leak-shift", default=None,
                   help="leak k in 0..15, none (integrate-and-fire) or auto (--from only: the best "
                        "on the training set); default: none, or auto with --from")
    p.add_argument("--epochs", type=int, default=d["epochs"],
                   help="float32 training epochs (default: %(default)s)")
    p.add_argument("--train-noise", default="T",
                   help="float32 training inputs: T (rate-coded over --T steps, the default), "
                        "an integer number of steps, or none (clean pixels)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the accuracies and settings as JSON")


def main(args) -> int:
    for option, path in (("-o", args.output), ("--json", args.json)):
        if path is None:
            continue
        output_folder(path, UsageError, option)
    T = args.T
    if T is None:
        if args.source is None:
            raise UsageError("--T (time steps per sample) is required unless --from gives a network")
        try:
            T = NF.load(args.source).network.params.T
        except NF.NetworkFileError as exc:
            raise UsageError(str(exc)) from None
        except AttributeError:
            raise UsageError(f"--from {args.source!r} is not an fp16 training network; "
                             "give --T") from None
    leak = args.leak_shift
    if leak is None:
        leak = "auto" if args.source is not None else "none"
    intnet, metrics, provenance = run(
        dataset=args.dataset, bits=args.bits, T=T, hidden=args.hidden,
        percentile=args.percentile, seed=args.seed, source=args.source, Q=args.Q,
        readout=args.readout, reset=args.reset, bias_shift=args.bias_shift, leak_shift=leak,
        epochs=args.epochs, train_noise=args.train_noise)
    try:
        NF.save(args.output, intnet, metrics=metrics, provenance=provenance)
    except NF.NetworkFileError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output}")
    if args.json is not None:
        write_json(args.json, {"command": "port", "network": os.fspath(args.output),
                                       "metrics": metrics, "provenance": provenance})
    return 0
