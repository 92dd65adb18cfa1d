"""Accuracy of the DNN-to-SNN port (``spikeforge port``) per weight bits B and time steps T.

For every seed and T the float32 ReLU network is trained (its input noise
follows T, as ``spikeforge port`` does by default) and ported at every B with
the command's own code (:func:`spikeforge.sim.port.run`); the spiking accuracy
is the integer golden model's on the digits test set, beside the float32
network's. Optional:

* ``--variants``: at one (B, T) (``--variant-at``, default 8,8), the port with
  other choices (readout, reset, bias shift, percentile, training noise), one
  change at a time, to show what each gives;
* ``--fp16-epochs E``: train an fp16 spiking network with the golden model of
  SPEC section 3 (exactly ``spikeforge train --epochs E``: batch 1, the default
  constants, T = 16, seed 0), save it as a network file and port it (``--from``)
  at every B, recording the fp16 accuracy before and the integer accuracy after.

Writes JSON (``--json``): the table rows, the mean over seeds per (B, T), the
variants, the fp16 port and the target check (B = 8, T = 8 within 1 point of
float32, on the mean over seeds and on every seed).

    python scripts/bench_port.py --seeds 0,1,2,3 --variants --json out/bench_port.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from spikeforge.sim import network_file as NF
from spikeforge.sim import port as P


def _ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def _quiet(*_a, **_k):
    pass


def _port(**kw):
    net, metrics, prov = P.run(log=_quiet, **kw)
    return metrics, prov


def table(seeds, bits, Ts, hidden, epochs, log):
    rows = []
    for seed in seeds:
        for T in Ts:
            for B in bits:
                t0 = time.monotonic()
                m, prov = _port(bits=B, T=T, hidden=hidden, seed=seed, epochs=epochs)
                row = {"seed": seed, "B": B, "T": T, "float_accuracy": m["float_accuracy"],
                       "accuracy": m["accuracy"], "gap": m["float_accuracy"] - m["accuracy"],
                       "sops_per_sample": m["sops_per_sample"],
                       "thetas": [L["theta"] for L in prov["port"]["layers"]],
                       "seconds": time.monotonic() - t0}
                rows.append(row)
                log(f"seed {seed} T={T:2d} B={B}: float32 {row['float_accuracy']:.4f} "
                    f"spiking {row['accuracy']:.4f} (gap {100 * row['gap']:+.2f} points) "
                    f"{row['sops_per_sample']:.0f} SOPs/sample")
    return rows


def summary(rows, bits, Ts):
    out = []
    for T in Ts:
        for B in bits:
            sel = [r for r in rows if r["B"] == B and r["T"] == T]
            if not sel:
                continue
            out.append({"B": B, "T": T, "seeds": len(sel),
                        "float_accuracy": float(np.mean([r["float_accuracy"] for r in sel])),
                        "accuracy": float(np.mean([r["accuracy"] for r in sel])),
                        "accuracy_min": float(np.min([r["accuracy"] for r in sel])),
                        "gap": float(np.mean([r["gap"] for r in sel])),
                        "gap_max": float(np.max([r["gap"] for r in sel])),
                        "sops_per_sample": float(np.mean([r["sops_per_sample"] for r in sel]))})
    return out


VARIANTS = [
    ("default (potential readout, subtract reset, bias shift half, p99.9, noise T)", {}),
    ("readout spikes", {"readout": "spikes"}),
    ("readout auto", {"readout": "auto"}),
    ("reset zero", {"reset": "zero"}),
    ("bias shift none", {"bias_shift": "none"}),
    ("percentile 99", {"percentile": 99.0}),
    ("percentile 99.99", {"percentile": 99.99}),
    ("percentile 100 (max)", {"percentile": 100.0}),
    ("float32 trained on clean inputs", {"train_noise": "none"}),
    ("leak_shift 3", {"leak_shift": "3"}),
]


def variants(seeds, B, T, hidden, epochs, log):
    out = []
    for name, kw in VARIANTS:
        accs, floats = [], []
        for seed in seeds:
            m, prov = _port(bits=B, T=T, hidden=hidden, seed=seed, epochs=epochs, **kw)
            accs.append(m["accuracy"])
            floats.append(m["float_accuracy"])
        rec = {"variant": name, "settings": kw, "B": B, "T": T, "seeds": list(seeds),
               "accuracy": accs, "float_accuracy": floats,
               "mean_accuracy": float(np.mean(accs)),
               "mean_gap": float(np.mean(floats) - np.mean(accs))}
        out.append(rec)
        log(f"variant {name}: spiking {rec['mean_accuracy']:.4f} "
            f"(gap {100 * rec['mean_gap']:+.2f} points, mean of {len(seeds)} seeds)")
    return out


def train_fp16(epochs, seed=0, log=_quiet):
    """``spikeforge train --epochs E`` (batch 1, default constants, 64-128-10): the same
    initial weights, spikes and sample order as the command, through the golden
    model's ``train_step`` one sample at a time."""
    from spikeforge.sim.golden import datasets as D
    from spikeforge.sim.golden import model as golden
    data = D.load("digits")
    params = golden.Params()
    sizes = [data.n_features, 128, data.n_classes]
    weights = golden.init_weights(sizes, seed)
    n = len(data.x_train)
    train = D.encode_batch(data.x_train, np.arange(n), split="train", seed=seed, T=params.T)
    test = D.encode_batch(data.x_test, np.arange(len(data.x_test)), split="test", seed=seed,
                          T=params.T)
    acc = None
    for ep in range(1, epochs + 1):
        order = np.random.default_rng([seed, 2, ep]).permutation(n)
        for k in order:
            weights = golden.train_step(weights, train[[k]], data.y_train[[k]], params).weights
        preds = np.concatenate([golden.predict(weights, test[i:i + 128], params)
                                for i in range(0, len(test), 128)])
        acc = float((preds == data.y_test).mean())
        log(f"fp16 epoch {ep}/{epochs}: test accuracy {acc:.4f}")
    return NF.Fp16Network(weights=tuple(weights), params=params), acc


def fp16_port(epochs, bits, Ts, log, keep=None, existing=None):
    t0 = time.monotonic()
    if existing is not None:
        loaded = NF.load(existing)
        acc = loaded.metrics.get("accuracy")
        out = {"fp16_file": existing, "fp16_provenance": loaded.provenance,
               "fp16_test_accuracy": acc, "ported": []}
    else:
        net, acc = train_fp16(epochs, log=log)
        out = {"fp16_epochs": epochs, "fp16_test_accuracy": acc,
               "fp16_seconds": time.monotonic() - t0, "ported": []}
    with tempfile.TemporaryDirectory() as tmp:
        if existing is not None:
            path = existing
        else:
            path = keep or os.path.join(tmp, "fp16.net")
            NF.save(path, net, metrics={"accuracy": acc},
                    provenance={"command": "scripts/bench_port.py (spikeforge train "
                                           f"--epochs {epochs} equivalent)",
                                "dataset": "digits", "seed": 0, "epochs": epochs})
        for T in Ts:
            for B in bits:
                m, prov = _port(bits=B, T=T, source=path, leak_shift="auto")
                rec = {"B": B, "T": T, "source_accuracy": m["source_accuracy"],
                       "accuracy": m["accuracy"], "sops_per_sample": m["sops_per_sample"],
                       "leak_shift": prov["settings"]["leak_shift"],
                       "leak_choice": prov["port"]["leak_choice"]}
                out["ported"].append(rec)
                log(f"fp16 network ({m['source_accuracy']:.4f}) ported to B={B} T={T}: "
                    f"{m['accuracy']:.4f} (leak_shift {rec['leak_shift']})")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bits", default="4,8")
    p.add_argument("--T", dest="Ts", default="1,2,4,8,16,32")
    p.add_argument("--seeds", default="0")
    p.add_argument("--hidden", default="256")
    p.add_argument("--epochs", type=int, default=150, help="float32 training epochs")
    p.add_argument("--variants", action="store_true", help="also the variants at --variant-at")
    p.add_argument("--variant-at", default="8,8", help="B,T of the variants (default 8,8)")
    p.add_argument("--fp16-epochs", type=int, default=0,
                   help="train an fp16 network for E epochs and port it (0: skip)")
    p.add_argument("--fp16-file", default=None,
                   help="port this fp16 network file (from an earlier --fp16-keep) instead of "
                        "training one")
    p.add_argument("--fp16-T", default="8,16", help="T of the fp16 ports (default 8,16)")
    p.add_argument("--fp16-keep", default=None, help="keep the fp16 network file here")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    seeds, bits, Ts = _ints(args.seeds), _ints(args.bits), _ints(args.Ts)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t0 = time.monotonic()
    report = {"benchmark": "port", "dataset": "digits", "hidden": args.hidden,
              "float_epochs": args.epochs, "seeds": seeds, "bits": bits, "T": Ts}
    rows = table(seeds, bits, Ts, args.hidden, args.epochs, log)
    report["rows"] = rows
    report["summary"] = summary(rows, bits, Ts)
    at = [r for r in report["summary"] if r["B"] == 8 and r["T"] == 8]
    if at:
        r = at[0]
        report["target"] = {"B": 8, "T": 8, "max_gap": 0.01, "mean_gap": r["gap"],
                            "worst_seed_gap": r["gap_max"], "met_on_mean": r["gap"] <= 0.01,
                            "met_on_every_seed": r["gap_max"] <= 0.01}
    if args.variants:
        vb, vt = _ints(args.variant_at)
        report["variants"] = variants(seeds, vb, vt, args.hidden, args.epochs, log)
    if args.fp16_epochs or args.fp16_file:
        report["fp16_port"] = fp16_port(args.fp16_epochs, bits, _ints(args.fp16_T), log,
                                        keep=args.fp16_keep, existing=args.fp16_file)
    report["seconds"] = time.monotonic() - t0
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = args.json + f".tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
