"""``spikeforge train``: train a spiking network on a dataset with a training engine.

This module is the one training loop: data, encoding, order of samples, epochs,
metrics, progress (``tqdm``), the JSON report. The arithmetic is an *engine*'s
(the interface: :mod:`spikeforge.sim.engines.base`); :data:`ENGINES` lists them:

* ``golden`` -- the golden model (:mod:`spikeforge.sim.engines.golden`;
  ``--precision fp16``, the contract, or ``float64``, its twin);
* ``rtl`` -- the Verilator model of a one-core accelerator, checked bit for bit
  against the golden model (:mod:`spikeforge.sim.engines.rtl`);
* ``fpga`` -- the accelerator on a board over its UART (``--port``), checked the
  same way (:mod:`spikeforge.sim.engines.fpga`).

A new engine is one line in :data:`ENGINES` and a class with the same interface; its own options come from its ``add_arguments``, its own
report keys from its ``report()``.

What the run does, all from ``--seed``:
* initial weights: :func:`spikeforge.sim.golden.model.init_weights` (``U(-k, k)``,
  ``k = 1/sqrt(N_in)``, from ``default_rng([seed, 0x5EED, layer])``, rounded to fp16;
  the float64 twin starts from the same values);
* spikes: :func:`spikeforge.sim.golden.datasets.encode` with the run's seed, once per
  sample (with ``--reencode`` the training samples get fresh spikes every epoch,
  seed ``seed + 1000 * epoch``; the test set always uses ``seed``);
* sample order: ``default_rng([seed, 2, epoch]).permutation(N_train)`` each epoch;
  minibatches of ``--batch`` samples in that order (the last of an epoch may be
  shorter); ``--samples K`` stops after K samples (the epochs needed, in place of
  ``--epochs``).

After every epoch the engine evaluates the test set (``--test-samples N``: its
first N) and, where the engine says it is cheap, the whole training set.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time

import numpy as np
from tqdm import tqdm

from spikeforge.sim.files import output_folder, write_json
from spikeforge.sim.engines.base import EvalStats, StepStats
from spikeforge.sim.engines.compare import Mismatch
from spikeforge.sim.engines.golden import GoldenEngine
from spikeforge.sim.errors import UsageError, parse_hidden
from spikeforge.sim import energy as E
from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden

__all__ = ["ENGINES", "engine_class", "GoldenEngine", "StepStats", "EvalStats",
           "TrainingDiverged", "DEFAULTS", "run", "add_arguments", "main"]

#: defaults of the plain ``spikeforge train --dataset digits`` (see docs/golden-model.md)
_P = golden.Params()
DEFAULTS = dict(hidden="128", T=_P.T, epochs=12, batch=1, lr=_P.lr, seed=0, alpha=_P.alpha,
                v_th=_P.v_th, a=_P.a, beta=_P.beta, loss_scale=_P.loss_scale,
                reset_grad=_P.reset_grad, precision="fp16", lr_decay=1.0)

#: engine name -> ``"module:Class"`` (imported when used) or the class itself;
#: ``--engine`` offers exactly these.
ENGINES: dict[str, str | type] = {
    "golden": "spikeforge.sim.engines.golden:GoldenEngine",
    "rtl": "spikeforge.sim.engines.rtl:RtlEngine",
    "fpga": "spikeforge.sim.engines.fpga:FpgaEngine",
}


def engine_class(name: str) -> type:
    """The engine class registered as ``name``."""
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    entry = ENGINES[name]
    if isinstance(entry, type):
        return entry
    module, _, cls = entry.partition(":")
    return getattr(importlib.import_module(module), cls)


class TrainingDiverged(RuntimeError):
    """NaN or inf appeared in weights or gradients."""


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


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _density(counts, totals):
    return [c / max(n, 1) for c, n in zip(counts, totals)]


def _rate(per_s):
    return f"{per_s:.0f}" if per_s >= 10 else f"{per_s:.2f}"


def _fmt(value, spec=".4f"):
    return "-" if value is None else format(value, spec)


def run(*, dataset="digits", engine="golden", hidden=(128,), T=_P.T, epochs=12, batch=1,
        lr=_P.lr, lr_decay=1.0, seed=0, alpha=_P.alpha, v_th=_P.v_th, a=_P.a, beta=_P.beta,
        loss_scale=_P.loss_scale, reset_grad=_P.reset_grad, precision="fp16", limit=None,
        samples=None, test_samples=None, reencode=False, engine_options=None, log=print,
        progress=None, initial_weights=None, network=None, export=None, plot=None,
        save=None) -> dict:
    """Train and return the report (the JSON of ``--json``). Raises
    :class:`UsageError` for bad settings and :class:`TrainingDiverged` on NaN/inf.
    Where a hardware engine differs from the golden model the run stops; the report
    then has ``"mismatch"`` (sample, message, coordinates).

    ``initial_weights`` (fp16 arrays, one per layer, e.g. from a NIR graph named
    ``network``) replace the seeded initial weights and fix the layer sizes (``hidden``
    is then not used). ``export`` writes the trained network as a NIR graph, ``save``
    as a spikeforge network file (:mod:`spikeforge.sim.network_file`, with the test
    accuracy it reached), ``plot`` draws the per-epoch metrics to a PNG (all only when
    the run ends without a mismatch)."""
    engine_cls = engine_class(engine)
    for name, value, lo in (("--epochs", epochs, 1), ("--batch", batch, 1)):
        if not isinstance(value, int) or value < lo:
            raise UsageError(f"{name} must be an integer >= {lo}, not {value!r}")
    for name, value, lo in (("--limit", limit, 1), ("--samples", samples, 1),
                            ("--test-samples", test_samples, 0)):
        if value is not None and (not isinstance(value, int) or value < lo):
            kind = "positive" if lo else "non-negative"
            raise UsageError(f"{name} must be a {kind} integer, not {value!r}")
    if not (isinstance(lr_decay, (int, float)) and 0 < lr_decay <= 1):
        raise UsageError(f"--lr-decay must be in (0, 1], not {lr_decay!r}")
    params = _params(T=T, alpha=alpha, v_th=v_th, a=a, beta=beta, lr=lr,
                     loss_scale=loss_scale, reset_grad=reset_grad)
    if export is not None and precision != "fp16":
        raise UsageError(f"--export writes fp16 networks; the run's precision is {precision}")
    if save is not None and precision != "fp16":
        raise UsageError(f"--save writes fp16 networks; the run's precision is {precision}")
    for option, path in (("--export", export), ("--plot", plot), ("--save", save)):
        if path is not None:
            output_folder(path, UsageError, option)
    try:
        n_outputs = None if initial_weights is None else initial_weights[-1].shape[0]
        data = D.load(dataset, n_outputs=n_outputs)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None

    if initial_weights is None:
        sizes = [data.n_features, *hidden, data.n_classes]
    else:
        sizes = [initial_weights[0].shape[1], *(w.shape[0] for w in initial_weights)]
        if sizes[0] != data.n_features:
            raise UsageError(f"the network {network or ''} takes {sizes[0]} inputs but "
                             f"{dataset!r} has {data.n_features} features; they must be equal")
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    n_train = len(x_train)
    if samples is not None:
        epochs = math.ceil(samples / n_train)
    total = n_train * epochs if samples is None else samples
    if lr_decay != 1:   # the smallest learning rate must still give a valid neg_lr
        _params(**{**params.to_dict(), "lr": lr * lr_decay ** (epochs - 1)})
    n_test = len(data.x_test) if test_samples is None else min(test_samples, len(data.x_test))
    if initial_weights is None:
        weights0 = golden.init_weights(sizes, seed)
    else:
        weights0 = [np.asarray(w, dtype=np.float16).copy() for w in initial_weights]
    eng = engine_cls(sizes, params, weights=weights0, precision=precision,
                     **(engine_options or {}))

    try:
        test_spikes = D.split_spikes(data, "test", np.arange(n_test), seed=seed, T=T)
        fixed_train = None if reencode else D.split_spikes(data, "train", np.arange(n_train),
                                                           seed=seed, T=T)
    except D.DatasetError as exc:
        raise UsageError(str(exc)) from None
    if reencode and data.spikes_train is not None:
        raise UsageError(f"--reencode needs features to encode; {dataset!r} holds spike trains")
    y_test = data.y_test[:n_test]
    report = {
        "command": "train", "dataset": dataset, "engine": engine, "precision": precision,
        "sizes": sizes, "params": params.to_dict(), "constants": params.consts.to_dict(),
        "network": network,
        "batch": batch, "seed": seed,
        "settings": {
            "epochs": epochs, "batch": batch, "seed": seed, "lr_decay": lr_decay,
            "train_samples": n_train, "test_samples": n_test, "samples": samples,
            "reencode": reencode,
            "split": {"seed": D.SPLIT_SEED, "test_fraction": D.TEST_FRACTION},
            "encoding": "rate: spike when default_rng([seed', split_id, index]).random((T, N_in)) "
                        "< pixel/16; seed' = seed (test) and seed + 1000*epoch (train, reencode)",
            "init": "U(-1/sqrt(N_in), 1/sqrt(N_in)) from default_rng([seed, 0x5EED, layer]), "
                    "rounded to fp16",
            "order": "default_rng([seed, 2, epoch]).permutation(train_samples)",
        },
        "epochs": [],
    }
    length = f"{epochs} epoch(s)" if samples is None else f"{samples} samples"
    log(f"training {'-'.join(map(str, sizes))} on {dataset} ({n_train} train / "
        f"{n_test} test samples), {eng.describe()}, T={T}, "
        f"batch {batch}, lr {lr}, {length}, reset_grad {reset_grad}")
    t_start, cpu_start = time.monotonic(), time.process_time()
    done = 0
    stage = "training"
    line = None
    try:
        with eng:
            try:
                for ep in range(1, epochs + 1):
                    ep_lr = lr * lr_decay ** (ep - 1)
                    if lr_decay != 1:
                        eng.set_params(params.replace(lr=ep_lr))
                    if reencode:
                        train_spikes = D.split_spikes(data, "train", np.arange(n_train),
                                                      seed=seed + 1000 * ep, T=T)
                    else:
                        train_spikes = fixed_train
                    order = np.random.default_rng([seed, 2, ep]).permutation(n_train)
                    todo = order[:min(n_train, total - done)]
                    stage = "training"
                    rec = _train_epoch(eng, ep, epochs, todo, batch, train_spikes, y_train,
                                       progress, done)
                    rec["lr"] = ep_lr
                    done += len(todo)
                    stage = "inference"
                    _evaluate(eng, rec, train_spikes, y_train, test_spikes, y_test)
                    report["epochs"].append(rec)
                    log(f"epoch {ep}/{epochs}: train acc {_fmt(rec['train_accuracy'])}  "
                        f"test acc {_fmt(rec['test_accuracy'])}  loss {rec['train_loss']:.4f} "
                        f"(test {_fmt(rec['test_loss'])})  spikes/slot "
                        f"{' '.join(f'{d:.3f}' for d in rec['spike_density'])}  du!=0 "
                        f"{' '.join(f'{d:.3f}' for d in rec['du_nonzero'])}  "
                        f"{_rate(rec['train_samples_per_s'])} samples/s")
            except Mismatch as exc:
                _record_mismatch(report, eng, exc, stage)
            engine_report = eng.report()
            if "mismatch" not in report:
                line = eng.summary(engine_report)
    except Mismatch as exc:            # in the engine's own first check, when it started
        _record_mismatch(report, eng, exc, "loading")
        engine_report = eng.report()
    report.update(engine_report)
    if "counters_per_sample" in engine_report and "config" in engine_report:
        report["energy"] = _energy(engine_report, sizes, params)
        log(E.summary_line(report["energy"]))
    last = report["epochs"][-1] if report["epochs"] else {}
    report.update({
        "samples": done, "test_samples": n_test,
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "seconds": time.monotonic() - t_start, "cpu_seconds": time.process_time() - cpu_start,
    })
    if "mismatch" not in report:
        log(f"final test accuracy {_fmt(report['test_accuracy'])} "
            f"({report['seconds']:.0f} s, {report['cpu_seconds']:.0f} s CPU)")
    if line:
        log(line)
    if "mismatch" not in report:
        if export is not None:
            from spikeforge.sim.interop import nir_io
            try:
                nir_io.write_network(export, eng.weights, params)
            except nir_io.NIRError as exc:
                raise UsageError(str(exc)) from None
            report["exported"] = export
            log(f"trained network written to {export} (NIR)")
        if save is not None:
            from spikeforge.sim import network_file as NF
            try:
                NF.save(save, NF.Fp16Network(tuple(eng.weights), params),
                        metrics={"accuracy": report["test_accuracy"],
                                 "test_samples": n_test, "samples": done},
                        provenance={"command": "train", "dataset": dataset, "engine": engine,
                                    "seed": seed, "network": network,
                                    "settings": report["settings"]})
            except NF.NetworkFileError as exc:
                raise UsageError(str(exc)) from None
            report["saved"] = save
            log(f"trained network written to {save} (spikeforge network file)")
        if plot is not None and report["epochs"]:
            from spikeforge.sim import plot as P
            try:
                P.plot_training(report, plot, title=f"{'-'.join(map(str, sizes))} on {dataset}, "
                                                     f"{engine} engine")
            except P.PlotError as exc:
                raise UsageError(str(exc)) from None
            report["plot"] = plot
            log(f"training curves drawn to {plot}")
    return report


def _energy(engine_report, sizes, params) -> dict:
    """The energy estimate of a hardware run (docs/energy.md) from its counters per
    training sample, with the off-chip bytes of a network whose weights stay on chip."""
    from spikeforge.hdl.config import BuildConfig
    config = BuildConfig.from_dict(engine_report["config"])
    offchip = E.offchip_bytes_per_sample(sizes, params.T)
    events = E.core_events(engine_report["counters_per_sample"],
                           geometry=E.geometry_of(config), sizes=sizes, T=params.T,
                           reset_grad=params.reset_grad,
                           dram_bytes=offchip["bytes_per_sample"])
    out = E.estimate(events, samples=1)
    out["offchip"] = offchip
    return out


def _record_mismatch(report, eng, exc, stage):
    """Say where the engine differed from the golden model; note it in the report."""
    if stage == "training":
        sample = exc.sample
        print(f"spikeforge train: sample {sample}: {eng.hardware} differs from the golden "
              f"model: {exc}", file=sys.stderr)
    else:
        sample = getattr(exc, "sample", None)
        print(f"spikeforge train: {eng.hardware} differs from the golden model in {stage}: "
              f"{exc}", file=sys.stderr)
    report["mismatch"] = {"sample": sample, "message": str(exc), "where": exc.where}


def _train_epoch(eng, ep, epochs, order, batch, train_spikes, y_train, progress, first) -> dict:
    """Train on the samples ``order`` in minibatches; the epoch's training numbers.
    ``first``: the samples trained before this epoch."""
    n = len(order)
    n_layers = len(eng.weights)
    loss, correct = 0.0, 0
    spikes, slots, du_nz = [0] * n_layers, [0] * n_layers, [0] * n_layers
    t0 = time.monotonic()
    with tqdm(total=n, desc=f"epoch {ep}/{epochs}", unit="sample", leave=False, file=sys.stderr,
              disable=None if progress is None else not progress) as bar:
        for k in range(0, n, batch):
            idx = order[k:k + batch]
            try:
                st = eng.train_step(train_spikes[idx], y_train[idx])
            except Mismatch as exc:
                if not hasattr(exc, "sample"):      # the engine did not say which one
                    exc.sample = first + k          # the minibatch's first sample
                raise
            if st.nonfinite:
                raise TrainingDiverged(f"NaN or inf in {st.nonfinite} in epoch {ep} "
                                       f"(after {k + len(idx)} of {n} samples); "
                                       "lower --lr or --loss-scale")
            loss += st.loss
            correct += st.correct
            spikes = [a + b for a, b in zip(spikes, st.spikes)]
            slots = [a + b for a, b in zip(slots, st.slots)]
            du_nz = [a + b for a, b in zip(du_nz, st.du_nonzero)]
            bar.set_postfix_str(f"loss {loss / (k + len(idx)):.4f}", refresh=False)
            bar.update(len(idx))
    t_train = time.monotonic() - t0
    return {
        "epoch": ep,
        "train_accuracy": None, "test_accuracy": None,
        "train_loss": loss / n, "test_loss": None,
        "train_accuracy_during_epoch": correct / n,
        "spike_density": _density(spikes, slots),
        "test_spike_density": None,
        "du_nonzero": _density(du_nz, slots),
        "lr": None,
        "train_seconds": t_train,
        "train_samples_per_s": n / max(t_train, 1e-9),
    }


def _evaluate(eng, rec, train_spikes, y_train, test_spikes, y_test):
    """Accuracies (and the test set's loss and spike density) after an epoch, into ``rec``;
    the training set only where the engine evaluates it cheaply."""
    if eng.train_eval:
        ev = eng.evaluate(train_spikes, y_train)
        rec["train_accuracy"] = float((ev.predictions == y_train).mean())
    if len(y_test):
        ev = eng.evaluate(test_spikes, y_test)
        rec["test_accuracy"] = float((ev.predictions == y_test).mean())
        rec["test_loss"] = float(ev.loss.mean())
        rec["test_spike_density"] = _density(ev.spikes, ev.slots)


def add_arguments(p: argparse.ArgumentParser):
    d = DEFAULTS
    p.add_argument("--dataset", default="digits",
                   help="digits (scikit-learn's 8x8 digits, shipped) or FILE.npz with x_train, "
                        "y_train, x_test, y_test (features in [0, 1], or spike trains as booleans "
                        "(N, T, features)); default: digits")
    p.add_argument("--network", metavar="FILE", default=None,
                   help="start from this network: a NIR graph (.nir: weights and neuron "
                        "constants from its nodes, the other constants from its metadata unless "
                        "given here) or an fp16 network file of --save (its constants unless "
                        "given here)")
    p.add_argument("--save", metavar="NET", default=None,
                   help="write the trained network (weights, constants, accuracy) as a "
                        "spikeforge network file, for train --network, infer and port --from")
    p.add_argument("--export", metavar="FILE.nir", default=None,
                   help="write the trained network as a NIR graph")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="draw accuracy, loss, spike density and du sparsity per epoch")
    p.add_argument("--engine", default="golden", choices=sorted(ENGINES),
                   help="training engine (default: golden)")
    p.add_argument("--precision", default=d["precision"], choices=["fp16", "float64"],
                   help="arithmetic: fp16 (the contract) or the golden model's float64 twin")
    p.add_argument("--hidden", default=None,
                   help=f"hidden layer sizes, comma separated (default: {d['hidden']})")
    p.add_argument("--T", type=int, default=None, help=f"time steps per sample (default: {d['T']})")
    p.add_argument("--epochs", type=int, default=d["epochs"], help="default: %(default)s")
    p.add_argument("--batch", type=int, default=d["batch"],
                   help="minibatch size; dW is summed over it (default: %(default)s)")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {d['lr']})")
    p.add_argument("--lr-decay", type=float, default=d["lr_decay"],
                   help="learning rate multiplier per epoch (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d["seed"],
                   help="seed of weights, spikes and sample order (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=None, help=f"decay (default: {d['alpha']})")
    p.add_argument("--v-th", type=float, default=None, help=f"threshold (default: {d['v_th']})")
    p.add_argument("--a", type=float, default=None,
                   help=f"surrogate half-width (default: {d['a']})")
    p.add_argument("--beta", type=float, default=None,
                   help=f"surrogate gain (default: {d['beta']})")
    p.add_argument("--loss-scale", type=float, default=None,
                   help=f"gradient scale against fp16 underflow (default: {d['loss_scale']})")
    p.add_argument("--reset-grad", default=None, choices=list(golden.RESET_GRAD_MODES),
                   help=f"gradient through the reset (default: {d['reset_grad']})")
    p.add_argument("--reencode", action="store_true",
                   help="fresh training spikes every epoch (seed + 1000 * epoch); by default "
                        "every training sample is encoded once, with --seed")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only the first N training samples (quick runs)")
    p.add_argument("--samples", type=int, default=None, metavar="K",
                   help="stop after K training samples, over as many epochs as they take "
                        "(in place of --epochs)")
    p.add_argument("--test-samples", type=int, default=None, metavar="N",
                   help="test accuracy on the first N test samples (default: all)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the report as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (it is shown only on a terminal anyway)")
    for name in ENGINES:
        engine_class(name).add_arguments(p.add_argument_group(f"{name} engine"))


#: the run's constants options: argparse leaves them None when not given, so that a
#: network file's own values can take their place
_CONSTANTS = ("T", "alpha", "v_th", "a", "beta", "lr", "loss_scale", "reset_grad")


def _constants(args) -> tuple[dict, list | None, str]:
    """The constants, initial weights and hidden sizes of the run: from ``--network`` (a
    NIR graph or an fp16 network file) where given, the options the user set taking
    precedence, else the defaults."""
    given = {k: getattr(args, k) for k in _CONSTANTS if getattr(args, k) is not None}
    if args.network is None:
        hidden = parse_hidden(args.hidden if args.hidden is not None else DEFAULTS["hidden"])
        return {**{k: DEFAULTS[k] for k in _CONSTANTS}, **given}, None, hidden
    if args.hidden is not None:
        raise UsageError("--hidden cannot be set with --network: the network's layers define "
                         "the sizes")
    if not str(args.network).endswith(".nir"):
        return _network_file_constants(args.network, given)
    from spikeforge.sim.interop import nir_io
    for key in ("alpha", "v_th"):
        if key in given:
            raise UsageError(f"{_OPTION_OF[key]} cannot be set with --network: the network's "
                             "neuron nodes define it")
    try:
        net = nir_io.read_network(args.network)
        params = net.params(**given)
    except (nir_io.NIRError, golden.ParamsError) as exc:
        raise UsageError(str(exc)) from None
    for line in nir_io.summarize_warnings(net.warnings):
        print(f"spikeforge train: {line}", file=sys.stderr)
    values = {k: getattr(params, k) for k in _CONSTANTS}
    return values, net.weights, None


def _network_file_constants(path, given):
    """Constants and weights of an fp16 network file; the options given win."""
    from spikeforge.sim import network_file as NF
    try:
        loaded = NF.load(path, kind="fp16")
    except NF.NetworkFileError as exc:
        raise UsageError(f"--network: {exc}") from None
    params = loaded.network.params
    values = {**{k: getattr(params, k) for k in _CONSTANTS}, **given}
    return values, [np.array(w) for w in loaded.network.weights], None


def main(args) -> int:
    if args.json is not None:
        output_folder(args.json, UsageError, "--json")
    constants, weights, hidden = _constants(args)
    try:
        report = run(dataset=args.dataset, engine=args.engine, hidden=hidden,
                     epochs=args.epochs, batch=args.batch, lr_decay=args.lr_decay,
                     seed=args.seed, precision=args.precision, limit=args.limit,
                     samples=args.samples, test_samples=args.test_samples,
                     reencode=args.reencode,
                     engine_options=engine_class(args.engine).options_from(args),
                     progress=args.progress, initial_weights=weights, network=args.network,
                     export=args.export, plot=args.plot, save=args.save, **constants)
    except TrainingDiverged as exc:
        print(f"spikeforge train: error: training diverged: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        write_json(args.json, report, UsageError, default=_json_default)
    return 1 if "mismatch" in report else 0
