"""``spikeforge train``: train a spiking network on a dataset with a training engine.

An *engine* runs the arithmetic of SPEC section 3; this module owns everything
around it (data, encoding, order of samples, metrics, progress, the JSON
report). Engines are listed in :data:`ENGINES`; each is a class built as
``Engine(sizes, params, weights=..., precision=...)`` with

* ``train_step(spikes, labels) -> StepStats`` -- one minibatch (spikes bool
  ``(B, T, N_in)``, labels ``(B,)``): forward, backward with ``dW`` accumulated
  over the samples in order, one update;
* ``evaluate(spikes, labels) -> EvalStats`` -- forward only (predictions);
* ``set_params(params)`` -- new run-time constants (no new weights);
* ``weights`` -- the current weights (one array per layer).

``golden`` is the golden model (``--precision fp16``, the contract, or
``float64``, its twin). A hardware engine registers itself in :data:`ENGINES`
the same way once it works.

What the run does, all from ``--seed``:
* initial weights: :func:`spikeforge.sim.golden.model.init_weights` (``U(-k, k)``,
  ``k = 1/sqrt(N_in)``, from ``default_rng([seed, 0x5EED, layer])``, rounded to fp16;
  the float64 twin starts from the same values);
* spikes: :func:`spikeforge.sim.golden.datasets.encode` with the run's seed, once per
  sample (with ``--reencode`` the training samples get fresh spikes every epoch,
  seed ``seed + 1000 * epoch``; the test set always uses ``seed``);
* sample order: ``default_rng([seed, 2, epoch]).permutation(N_train)`` each epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden
from spikeforge.sim.golden import float64 as golden64
from spikeforge.sim.cli import UsageError

__all__ = ["ENGINES", "GoldenEngine", "StepStats", "EvalStats", "TrainingDiverged",
           "DEFAULTS", "run", "add_arguments", "main"]

#: defaults of the plain ``spikeforge train --dataset digits`` (see docs/golden-model.md)
_P = golden.Params()
DEFAULTS = dict(hidden="128", T=_P.T, epochs=12, batch=1, lr=_P.lr, seed=0, alpha=_P.alpha,
                v_th=_P.v_th, a=_P.a, beta=_P.beta, loss_scale=_P.loss_scale,
                reset_grad=_P.reset_grad, precision="fp16", lr_decay=1.0)


class TrainingDiverged(RuntimeError):
    """NaN or inf appeared in weights or gradients."""


@dataclass
class StepStats:
    """What one minibatch did (sums over its samples)."""

    loss: float                       # sum of the per-sample losses
    correct: int                      # samples whose prediction (before the update) was right
    spikes: list[int]                 # per layer: spikes over all samples and steps
    slots: list[int]                  # per layer: B * T * N_out
    du_nonzero: list[int]             # per layer: du entries != 0
    nonfinite: str | None = None      # e.g. "the weight gradient dW of layer 1", or None


@dataclass
class EvalStats:
    predictions: np.ndarray
    loss: np.ndarray                  # per sample
    spikes: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)


class GoldenEngine:
    """The golden model as a training engine (fp16, the contract; or the float64 twin)."""

    name = "golden"

    def __init__(self, sizes, params: golden.Params, *, weights, precision="fp16"):
        if precision not in ("fp16", "float64"):
            raise UsageError(f"precision must be fp16 or float64, not {precision!r}")
        self.precision = precision
        self.model = golden if precision == "fp16" else golden64
        self.params = params
        self.weights = ([np.array(W, dtype=np.float16) for W in weights] if precision == "fp16"
                        else golden64.to_float64(weights))

    def set_params(self, params: golden.Params):
        self.params = params

    def train_step(self, spikes, labels) -> StepStats:
        res = self.model.train_step(self.weights, spikes, labels, self.params)
        nonfinite = None
        for l in range(len(self.weights)):
            for what, arr in (("the potential gradient du", res.grads[l].du),
                              ("the weight gradient dW", res.dWs[l]),
                              ("the weights", res.weights[l])):
                if not np.isfinite(arr).all():
                    nonfinite = nonfinite or f"{what} of layer {l}"
        self.weights = res.weights
        return StepStats(
            loss=float(res.loss.sum()),
            correct=int((np.argmax(res.counts, axis=-1) == labels).sum()),
            spikes=[int(tr.s.sum()) for tr in res.traces],
            slots=[int(tr.s.size) for tr in res.traces],
            du_nonzero=[int(np.count_nonzero(gr.du)) for gr in res.grads],
            nonfinite=nonfinite)

    def evaluate(self, spikes, labels, chunk=512) -> EvalStats:
        preds, losses = [], []
        spikes_l = slots_l = None
        for k in range(0, len(spikes), chunk):
            traces = self.model.forward(self.weights, spikes[k:k + chunk], self.params)
            counts = golden.spike_counts(traces[-1].s)
            preds.append(np.argmax(counts, axis=-1))
            losses.append(golden.loss_value(traces[-1].s, labels[k:k + chunk]))
            sp = [int(tr.s.sum()) for tr in traces]
            sl = [int(tr.s.size) for tr in traces]
            spikes_l = sp if spikes_l is None else [a + b for a, b in zip(spikes_l, sp)]
            slots_l = sl if slots_l is None else [a + b for a, b in zip(slots_l, sl)]
        return EvalStats(predictions=np.concatenate(preds), loss=np.concatenate(losses),
                         spikes=spikes_l, slots=slots_l)


#: engine name -> engine class (``--engine`` offers exactly these)
ENGINES: dict[str, type] = {"golden": GoldenEngine}


# ---------------------------------------------------------------------------
# Progress bar (stderr, only on a terminal)
# ---------------------------------------------------------------------------

class _Progress:
    def __init__(self, total, label, stream=sys.stderr, enabled=None):
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, n, extra=""):
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.2 and self.done < self.total):
            return
        self.last = now
        frac = self.done / max(self.total, 1)
        width = 30
        bar = "=" * int(frac * width) + (">" if frac < 1 else "") 
        rate = self.done / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {self.done}/{self.total} "
                          f"{rate:6.0f} samples/s {extra}\x1b[K")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

_OPTION_OF = {"T": "--T", "alpha": "--alpha", "v_th": "--v-th", "a": "--a", "beta": "--beta",
              "lr": "--lr", "loss_scale": "--loss-scale", "reset_grad": "--reset-grad"}


def _params(**kw) -> golden.Params:
    try:
        return golden.Params(**kw)
    except golden.ParamsError as exc:
        msg = str(exc)
        for name, opt in _OPTION_OF.items():
            msg = msg.replace(f"Params.{name} ", f"{opt} ")
        raise UsageError(msg) from None


def _parse_hidden(text) -> list[int]:
    text = str(text).strip()
    if text in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden must be layer sizes like 128 or 128,64 (positive integers), "
                         f"not {text!r}")
    return sizes


def _atomic_write_json(path, data):
    """Write ``data`` as JSON to ``path`` in one step (a temporary file renamed over it)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(*, dataset="digits", engine="golden", hidden=(128,), T=_P.T, epochs=12, batch=1,
        lr=_P.lr, lr_decay=1.0, seed=0, alpha=_P.alpha, v_th=_P.v_th, a=_P.a, beta=_P.beta,
        loss_scale=_P.loss_scale, reset_grad=_P.reset_grad, precision="fp16", limit=None,
        reencode=False, log=print, progress=None) -> dict:
    """Train and return the report (the JSON of ``--json``). Raises
    :class:`UsageError` for bad settings and :class:`TrainingDiverged` on NaN/inf."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; available: {', '.join(sorted(ENGINES))}")
    for name, value, lo in (("--epochs", epochs, 1), ("--batch", batch, 1)):
        if not isinstance(value, int) or value < lo:
            raise UsageError(f"{name} must be an integer >= {lo}, not {value!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a positive integer, not {limit!r}")
    if not (isinstance(lr_decay, (int, float)) and 0 < lr_decay <= 1):
        raise UsageError(f"--lr-decay must be in (0, 1], not {lr_decay!r}")
    params = _params(T=T, alpha=alpha, v_th=v_th, a=a, beta=beta, lr=lr,
                     loss_scale=loss_scale, reset_grad=reset_grad)
    try:
        data = D.load(dataset)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None
    if lr_decay != 1:   # the smallest learning rate must still give a valid neg_lr
        _params(**{**params.to_dict(), "lr": lr * lr_decay ** (epochs - 1)})

    sizes = [data.n_features, *hidden, data.n_classes]
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    n_train = len(x_train)
    weights0 = golden.init_weights(sizes, seed)
    eng = ENGINES[engine](sizes, params, weights=weights0, precision=precision)

    test_spikes = D.encode_batch(data.x_test, np.arange(len(data.x_test)), split="test",
                                 seed=seed, T=T)
    fixed_train = None if reencode else D.encode_batch(x_train, np.arange(n_train), split="train",
                                                       seed=seed, T=T)
    report = {
        "command": "train", "dataset": dataset, "engine": engine, "precision": precision,
        "sizes": sizes, "params": params.to_dict(), "constants": params.consts.to_dict(),
        "settings": {
            "epochs": epochs, "batch": batch, "seed": seed, "lr_decay": lr_decay,
            "train_samples": n_train, "test_samples": len(data.x_test), "reencode": reencode,
            "split": {"seed": D.SPLIT_SEED, "test_fraction": D.TEST_FRACTION},
            "encoding": "rate: spike when default_rng([seed', split_id, index]).random((T, N_in)) "
                        "< pixel/16; seed' = seed (test) and seed + 1000*epoch (train, reencode)",
            "init": "U(-1/sqrt(N_in), 1/sqrt(N_in)) from default_rng([seed, 0x5EED, layer]), "
                    "rounded to fp16",
            "order": "default_rng([seed, 2, epoch]).permutation(train_samples)",
        },
        "epochs": [],
    }
    log(f"training {'-'.join(map(str, sizes))} on {dataset} ({n_train} train / "
        f"{len(data.x_test)} test samples), engine {engine}, {precision}, T={T}, "
        f"batch {batch}, lr {lr}, {epochs} epoch(s), reset_grad {reset_grad}")
    t_start, cpu_start = time.monotonic(), time.process_time()
    for ep in range(1, epochs + 1):
        ep_lr = lr * lr_decay ** (ep - 1)
        if lr_decay != 1:
            eng.set_params(params.replace(lr=ep_lr))
        t0 = time.monotonic()
        if reencode:
            train_spikes = D.encode_batch(x_train, np.arange(n_train), split="train",
                                          seed=seed + 1000 * ep, T=T)
        else:
            train_spikes = fixed_train
        order = np.random.default_rng([seed, 2, ep]).permutation(n_train)
        bar = _Progress(n_train, f"epoch {ep}/{epochs}", enabled=progress)
        loss = 0.0
        correct = 0
        spikes = [0] * (len(sizes) - 1)
        slots = [0] * (len(sizes) - 1)
        du_nz = [0] * (len(sizes) - 1)
        for k in range(0, n_train, batch):
            idx = order[k:k + batch]
            st = eng.train_step(train_spikes[idx], y_train[idx])
            if st.nonfinite:
                bar.close()
                raise TrainingDiverged(f"NaN or inf in {st.nonfinite} in epoch {ep} "
                                       f"(after {k + len(idx)} of {n_train} samples); "
                                       "lower --lr or --loss-scale")
            loss += st.loss
            correct += st.correct
            spikes = [a + b for a, b in zip(spikes, st.spikes)]
            slots = [a + b for a, b in zip(slots, st.slots)]
            du_nz = [a + b for a, b in zip(du_nz, st.du_nonzero)]
            bar.update(len(idx), f"loss {loss / (k + len(idx)):.4f}")
        bar.close()
        t_train = time.monotonic() - t0
        ev_train = eng.evaluate(train_spikes, y_train)
        ev_test = eng.evaluate(test_spikes, data.y_test)
        rec = {
            "epoch": ep,
            "train_accuracy": float((ev_train.predictions == y_train).mean()),
            "test_accuracy": float((ev_test.predictions == data.y_test).mean()),
            "train_loss": loss / n_train,
            "test_loss": float(ev_test.loss.mean()),
            "train_accuracy_during_epoch": correct / n_train,
            "spike_density": [s / max(n, 1) for s, n in zip(spikes, slots)],
            "test_spike_density": [s / max(n, 1) for s, n in zip(ev_test.spikes, ev_test.slots)],
            "du_nonzero": [z / max(n, 1) for z, n in zip(du_nz, slots)],
            "lr": ep_lr,
            "train_seconds": t_train,
            "train_samples_per_s": n_train / max(t_train, 1e-9),
        }
        report["epochs"].append(rec)
        log(f"epoch {ep}/{epochs}: train acc {rec['train_accuracy']:.4f}  "
            f"test acc {rec['test_accuracy']:.4f}  loss {rec['train_loss']:.4f} "
            f"(test {rec['test_loss']:.4f})  spikes/slot "
            f"{' '.join(f'{d:.3f}' for d in rec['spike_density'])}  du!=0 "
            f"{' '.join(f'{d:.3f}' for d in rec['du_nonzero'])}  "
            f"{rec['train_samples_per_s']:.0f} samples/s")
    report["test_accuracy"] = report["epochs"][-1]["test_accuracy"]
    report["train_accuracy"] = report["epochs"][-1]["train_accuracy"]
    report["seconds"] = time.monotonic() - t_start
    report["cpu_seconds"] = time.process_time() - cpu_start
    log(f"final test accuracy {report['test_accuracy']:.4f} "
        f"({report['seconds']:.0f} s, {report['cpu_seconds']:.0f} s CPU)")
    return report


def add_arguments(p: argparse.ArgumentParser):
    d = DEFAULTS
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    p.add_argument("--engine", default="golden", choices=sorted([*ENGINES, "rtl"]),
                   help="training engine (default: golden)")
    p.add_argument("--precision", default=d["precision"], choices=["fp16", "float64"],
                   help="golden engine arithmetic: fp16 (the contract) or the float64 twin")
    p.add_argument("--hidden", default=d["hidden"],
                   help="hidden layer sizes, comma separated (default: %(default)s)")
    p.add_argument("--T", type=int, default=d["T"], help="time steps per sample (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d["epochs"], help="default: %(default)s")
    p.add_argument("--batch", type=int, default=d["batch"],
                   help="minibatch size; dW is summed over it (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d["lr"], help="learning rate (default: %(default)s)")
    p.add_argument("--lr-decay", type=float, default=d["lr_decay"],
                   help="learning rate multiplier per epoch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help="seed of weights, spikes and sample order (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=d["alpha"], help="decay (default: %(default)s)")
    p.add_argument("--v-th", type=float, default=d["v_th"], help="threshold (default: %(default)s)")
    p.add_argument("--a", type=float, default=d["a"],
                   help="surrogate half-width (default: %(default)s)")
    p.add_argument("--beta", type=float, default=d["beta"],
                   help="surrogate gain (default: %(default)s)")
    p.add_argument("--loss-scale", type=float, default=d["loss_scale"],
                   help="gradient scale against fp16 underflow (default: %(default)s)")
    p.add_argument("--reset-grad", default=d["reset_grad"], choices=list(golden.RESET_GRAD_MODES),
                   help="gradient through the reset (default: %(default)s)")
    p.add_argument("--reencode", action="store_true",
                   help="fresh training spikes every epoch (seed + 1000 * epoch); by default "
                        "every training sample is encoded once, with --seed")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training samples (quick runs)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the report as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (it is shown only on a terminal anyway)")
    from spikeforge.sim.engines.rtl import add_rtl_arguments
    add_rtl_arguments(p)


def main(args) -> int:
    if args.json is not None:
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            raise UsageError(f"--json {args.json!r}: the folder {directory!r} does not exist")
    if args.engine == "rtl":
        from spikeforge.sim.engines.rtl import main as rtl_main
        return rtl_main(args)
    try:
        report = run(dataset=args.dataset, engine=args.engine, hidden=_parse_hidden(args.hidden),
                     T=args.T, epochs=args.epochs, batch=args.batch, lr=args.lr,
                     lr_decay=args.lr_decay, seed=args.seed, alpha=args.alpha, v_th=args.v_th,
                     a=args.a, beta=args.beta, loss_scale=args.loss_scale,
                     reset_grad=args.reset_grad, precision=args.precision, limit=args.limit,
                     reencode=args.reencode, progress=args.progress)
    except TrainingDiverged as exc:
        print(f"spikeforge train: error: training diverged: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        _atomic_write_json(args.json, report)
    return 0
