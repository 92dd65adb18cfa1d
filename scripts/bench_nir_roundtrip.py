"""Round trips through NIR between snnTorch and spikeforge on the digits, with accuracies.

Two directions, full-size digits (1438 training / 359 test samples, the
project's split and rate encoder, T = 16, seed 0, the same spikes for both
frameworks):

1. **snnTorch -> spikeforge.** A 64-128-10 snnTorch network (``Linear(bias=False)``
   + ``snn.Leaky(beta, threshold, reset_mechanism)``, Adam, the rate loss of SPEC
   section 3) is trained in snnTorch, exported with snnTorch's own
   ``export_to_nir``, written and read with ``nir.write`` / ``nir.read``,
   imported by :func:`spikeforge.sim.interop.nir_io.read_network` and evaluated by
   the golden model (``predict``). Once with ``reset_mechanism="zero"`` (the
   contract's reset) and once with snnTorch's default ``"subtract"`` (which
   snnTorch's export writes as ``v_reset = 0`` all the same).
2. **spikeforge -> snnTorch.** The default ``spikeforge train --dataset digits``
   run (golden model, fp16, 64-128-10, T = 16, alpha = v_th = 0.25, a = 0.5,
   beta = 2, lr = 0.01, batch 1, ``--epochs`` epochs, the same initial weights,
   sample order and encoding as ``sim/train.py``) is exported by
   :func:`~spikeforge.sim.interop.nir_io.write_network`, imported by snnTorch's
   ``import_from_nir`` and evaluated there (float32).

For every network it also records each difference of convention on its own
(a float64 reference, :func:`spikeforge.sim.interop.snntorch_bridge.simulate`):
``>=`` against ``>``, reset to zero against subtraction, the reset applied in
the step of the spike or in the next, the decay of the input too; the number of
neuron-steps where the potential equals the threshold exactly (the only place
``>=`` and ``>`` differ); and how many test predictions each pair of evaluations
agree on.

With ``--rtl-samples N`` the snnTorch-trained network (reset to zero) also runs
on the Verilator model of one core (preset ``digits``) for the first N test
samples, every output count checked against the golden model.

Usage: ``python scripts/bench_nir_roundtrip.py [--json FILE] [--epochs 12]
[--torch-epochs 10] [--rtl-samples N]``. About 1 minute of CPU without the RTL
part (most of it the fp16 training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

from spikeforge.sim.golden import datasets as D
from spikeforge.sim.golden import model as golden
from spikeforge.sim.interop import nir_io
from spikeforge.sim.interop import snntorch_bridge as B


def _acc(pred, y):
    return float((np.asarray(pred) == y).mean())


def _threshold_hits(weights, spikes, params):
    """Per layer: neuron-steps with u == v_th exactly in the golden forward, and all slots."""
    tr = golden.forward(weights, spikes, params)
    v = params.consts.v_th
    return [int((t.u == v).sum()) for t in tr], [int(t.u.size) for t in tr]


def _golden_strict(weights, spikes, params):
    """Golden predictions with ``u > v_th``: in fp16, ``u > v`` is ``u >= next_fp16_above(v)``
    (the forward uses v_th only for the spike; the window constants do not matter)."""
    up = float(np.nextafter(params.consts.v_th, np.float16(np.inf)))
    return golden.predict(weights, spikes, params.replace(v_th=up))


def _conventions(weights, spikes, y, alpha, v_th):
    """Accuracy of the same weights under each convention (float64 reference)."""
    W = [np.asarray(w, dtype=np.float64) for w in weights]
    cases = {
        "spikeforge (zero, next step, >=)": {},
        "> instead of >=": dict(fire=">"),
        "reset in the same step (zero)": dict(reset_timing="same"),
        "subtract, next step (snnTorch reset_delay=True)": dict(reset="subtract"),
        "subtract, same step (snnTorch reset_delay=False)": dict(reset="subtract",
                                                                 reset_timing="same"),
        "input decayed too (u = a u + (1-a) x)": dict(decay_input=True),
    }
    base = None
    out = {}
    for name, kw in cases.items():
        c = B.simulate(W, spikes, alpha=alpha, v_th=v_th, **kw)
        p = B.predict(c)
        if base is None:
            base = p
        out[name] = {"accuracy": _acc(p, y), "agree_with_spikeforge_convention": _acc(p, base)}
    c32 = B.simulate(W, spikes, alpha=alpha, v_th=v_th, dtype=np.float32)
    out["spikeforge convention in float32"] = {
        "accuracy": _acc(B.predict(c32), y),
        "agree_with_spikeforge_convention": _acc(B.predict(c32), base)}
    return out


def _train_golden(data, train_spikes, params, epochs, seed, log):
    sizes = [data.n_features, 128, data.n_classes]
    W = golden.init_weights(sizes, seed)
    for ep in range(1, epochs + 1):
        order = np.random.default_rng([seed, 2, ep]).permutation(len(train_spikes))
        for i in order:
            W = golden.train_step(W, train_spikes[i:i + 1], data.y_train[i:i + 1], params).weights
        log(f"golden epoch {ep}/{epochs} done")
    return W


def _rtl_accuracy(weights, params, spikes, labels, golden_pred):
    """Inference on the Verilator model of one core; RtlTrainer.evaluate checks every
    sample's output counts against the golden model (a Mismatch stops it)."""
    from spikeforge.hdl.config import preset
    from spikeforge.sim.engines.rtl import RtlTrainer
    sizes = tuple([weights[0].shape[1], *(w.shape[0] for w in weights)])
    w0, c0 = time.monotonic(), time.process_time()
    with RtlTrainer(preset("digits"), sizes, params, [w.copy() for w in weights]) as tr:
        acc = tr.evaluate(spikes, labels)
    n = len(spikes)
    return {"samples": n, "accuracy": acc,
            "golden_accuracy_same_samples": _acc(golden_pred[:n], labels),
            "output_counts_checked_bit_exact": True,
            "wall_seconds": time.monotonic() - w0, "cpu_seconds": time.process_time() - c0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--epochs", type=int, default=12, help="golden training epochs (default 12)")
    ap.add_argument("--torch-epochs", type=int, default=10, help="snnTorch epochs (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtl-samples", type=int, default=0,
                    help="also run the snnTorch-trained network (reset zero) on the Verilator "
                         "model of one core (preset digits) for the first N test samples, every "
                         "output count checked against the golden model (default 0: skip)")
    args = ap.parse_args(argv)
    reason = B.missing()
    if reason:
        raise SystemExit(f"bench_nir_roundtrip: {reason}")
    import torch
    import nir
    torch.set_num_threads(1)
    log = print
    T, seed = 16, args.seed
    data = D.load("digits")
    tr = D.split_spikes(data, "train", np.arange(len(data.y_train)), seed=seed, T=T)
    te = D.split_spikes(data, "test", np.arange(len(data.y_test)), seed=seed, T=T)
    params = golden.Params(T=T)
    alpha, v_th = params.alpha, params.v_th
    res = {"settings": {"T": T, "seed": seed, "sizes": [64, 128, 10], "alpha": alpha,
                        "v_th": v_th, "train_samples": len(tr), "test_samples": len(te),
                        "golden_epochs": args.epochs, "torch_epochs": args.torch_epochs,
                        "torch": torch.__version__,
                        "snntorch": __import__("snntorch").__version__,
                        "nir": nir.version, "python": platform.python_version()}}
    tmp = tempfile.mkdtemp(prefix="bench_nir_")

    # 1. snnTorch -> spikeforge
    res["snntorch_to_spikeforge"] = {}
    for reset in ("zero", "subtract"):
        c0 = time.process_time()
        net = B.make_network([64, 128, 10], beta=alpha, threshold=v_th, reset_mechanism=reset,
                             seed=seed)
        B.train(net, tr, data.y_train, epochs=args.torch_epochs, batch=32, lr=2e-3, seed=seed)
        train_cpu = time.process_time() - c0
        p_torch = B.predict(B.counts(net, te))
        path = os.path.join(tmp, f"snntorch_{reset}.nir")
        nir.write(path, B.export(net, 64))
        imp = nir_io.read_network(path)
        p16 = imp.params(T=T)
        p_gold = golden.predict(imp.weights, te, p16)
        # snnTorch itself on the fp16-rounded weights: separates rounding from arithmetic
        net16 = B.make_network([64, 128, 10], beta=alpha, threshold=v_th, reset_mechanism=reset,
                               init_weights=imp.weights)
        p_torch16 = B.predict(B.counts(net16, te))
        hits, slots = _threshold_hits(imp.weights, te, p16)
        p_strict = _golden_strict(imp.weights, te, p16)
        p_ref = B.predict(B.simulate([w.astype(np.float64) for w in imp.weights], te,
                                     alpha=alpha, v_th=v_th, reset=reset))
        n_w = sum(w.size for w in imp.weights)
        rounded = [w for w in imp.warnings if w.parameter == "weight"]
        rec = {
            "snntorch_accuracy": _acc(p_torch, data.y_test),
            "snntorch_accuracy_fp16_weights": _acc(p_torch16, data.y_test),
            "golden_accuracy": _acc(p_gold, data.y_test),
            "agree_golden_vs_snntorch": _acc(p_gold, p_torch),
            "agree_golden_vs_snntorch_fp16_weights": _acc(p_gold, p_torch16),
            "golden_accuracy_with_strict_threshold": _acc(p_strict, data.y_test),
            "agree_golden_strict_vs_golden": _acc(p_strict, p_gold),
            "agree_snntorch_fp16_weights_vs_float64_same_reset": _acc(p_torch16, p_ref),
            "weights": n_w, "weights_rounded": len(rounded),
            "largest_relative_weight_rounding": max(
                (abs(w.after - w.before) / abs(w.before) for w in rounded if w.before), default=0),
            "other_warnings": [str(w) for w in imp.warnings if w.parameter != "weight"],
            "imported_alpha": float(imp.alpha), "imported_v_th": float(imp.v_th),
            "u_equals_v_th": hits, "neuron_steps": slots,
            "conventions_float64": _conventions(imp.weights, te, data.y_test, alpha, v_th),
            "train_cpu_seconds": train_cpu,
        }
        if reset == "zero" and args.rtl_samples > 0:
            rec["rtl"] = _rtl_accuracy(imp.weights, p16, te[:args.rtl_samples],
                                       data.y_test[:args.rtl_samples], p_gold)
            log(f"snnTorch (zero) -> RTL core: {rec['rtl']}")
        res["snntorch_to_spikeforge"][reset] = rec
        log(f"snnTorch ({reset}) -> spikeforge: snnTorch {rec['snntorch_accuracy']:.4f}, "
            f"golden {rec['golden_accuracy']:.4f}, agree {rec['agree_golden_vs_snntorch']:.4f}")

    # 2. spikeforge -> snnTorch
    c0 = time.process_time()
    W = _train_golden(data, tr, params, args.epochs, seed, log)
    train_cpu = time.process_time() - c0
    p_gold = golden.predict(W, te, params)
    path = os.path.join(tmp, "spikeforge.nir")
    nir_io.write_network(path, W, params)
    back = nir_io.read_network(path)
    identical = (all(np.array_equal(a.view(np.uint16), b.view(np.uint16))
                     for a, b in zip(W, back.weights))
                 and back.params() == params and back.warnings == [])
    tnet = B.import_graph(nir.read(path))
    c_t = B.counts(tnet, te)
    p_t = B.predict(c_t)
    lk = B.leaky_layers(tnet)
    hits, slots = _threshold_hits(W, te, params)
    p_strict = _golden_strict(W, te, params)
    p_ref = B.predict(B.simulate([w.astype(np.float64) for w in W], te, alpha=alpha, v_th=v_th))
    rec = {
        "golden_accuracy_with_strict_threshold": _acc(p_strict, data.y_test),
        "agree_golden_strict_vs_golden": _acc(p_strict, p_gold),
        "agree_golden_vs_float64": _acc(p_gold, p_ref),
        "agree_snntorch_vs_float64": _acc(p_t, p_ref),
        "golden_accuracy": _acc(p_gold, data.y_test),
        "golden_train_accuracy": _acc(golden.predict(W, tr, params), data.y_train),
        "snntorch_accuracy": _acc(p_t, data.y_test),
        "agree_snntorch_vs_golden": _acc(p_t, p_gold),
        "snntorch_modules": [{"beta": float(m.beta.reshape(-1)[0]),
                              "threshold": float(m.threshold.reshape(-1)[0]),
                              "reset_mechanism": m.reset_mechanism,
                              "reset_delay": bool(m.reset_delay)} for m in lk],
        "round_trip_bit_identical": bool(identical),
        "nir_file_bytes": os.path.getsize(path),
        "u_equals_v_th": hits, "neuron_steps": slots,
        "conventions_float64": _conventions(W, te, data.y_test, alpha, v_th),
        "train_cpu_seconds": train_cpu,
    }
    res["spikeforge_to_snntorch"] = rec
    log(f"spikeforge -> snnTorch: golden {rec['golden_accuracy']:.4f}, snnTorch "
        f"{rec['snntorch_accuracy']:.4f}, agree {rec['agree_snntorch_vs_golden']:.4f}, "
        f"round trip identical {identical}")
    text = json.dumps(res, indent=2)
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        t = f"{args.json}.tmp-{os.getpid()}"
        with open(t, "w") as f:
            f.write(text + "\n")
        os.replace(t, args.json)
    else:
        print(text)
    return res


if __name__ == "__main__":
    main()
