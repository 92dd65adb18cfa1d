"""A scalar reference of SPEC section 8 (integer inference), written from the SPEC alone.

Not a test file: ``tests/test_integer_golden.py`` imports it to judge
:mod:`spikeforge.sim.golden.integer`. It shares no code with the golden model:
plain Python integers and loops over samples' time steps, neurons and inputs.

A network here is a plain description: a list of layers, each a dict with
``W`` (list of rows of ints, ``N_out x N_in``), ``b`` (list of ints), ``theta``
(int), ``leak`` (``None`` or k in 0..15) and ``reset`` (``"subtract"`` or
``"zero"``); plus ``Q`` (potential bits) and ``readout`` (``"spikes"`` or
``"potential"``). Input spikes are a list of T lists of N_in booleans.
"""

from __future__ import annotations


def shift_right_floor(v: int, k: int) -> int:
    """Arithmetic shift right: floor(v / 2**k), rounding toward minus infinity
    (written with floor division, not with the shift operator)."""
    return v // (2 ** k)


def saturate(v: int, Q: int) -> int:
    lo = -(2 ** (Q - 1))
    hi = 2 ** (Q - 1) - 1
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


def run_layer(layer, s_in, Q, fire=True):
    """One layer over all T steps of one sample; returns (spikes[t][i], v[T-1][i])."""
    W, b, theta = layer["W"], layer["b"], layer["theta"]
    k, reset = layer["leak"], layer["reset"]
    n_out = len(W)
    v = [0] * n_out
    out = []
    for t in range(len(s_in)):
        row = []
        for i in range(n_out):
            x = 0
            for j, active in enumerate(s_in[t]):
                if active:
                    x += W[i][j]
            if k is None:
                l = v[i]
            else:
                l = v[i] - shift_right_floor(v[i], k)
            vp = saturate(l + x + b[i], Q)
            spike = False
            if fire and vp >= theta:
                spike = True
                if reset == "subtract":
                    v[i] = vp - theta
                else:
                    v[i] = 0
            else:
                v[i] = vp
            row.append(spike)
        out.append(row)
    return out, list(v)


def first_argmax(values):
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best


def run_sample(layers, Q, readout, s_in):
    """One sample: dict with per-layer spikes and final potentials, the output
    counts, the prediction and the SOPs per layer."""
    spikes, pots, sops = [], [], []
    s = s_in
    for l, layer in enumerate(layers):
        active = sum(1 for row in s for a in row if a)
        sops.append(active * len(layer["W"]))
        fire = not (l == len(layers) - 1 and readout == "potential")
        s, v = run_layer(layer, s, Q, fire=fire)
        spikes.append(s)
        pots.append(v)
    counts = [sum(1 for t in range(len(s)) if s[t][i]) for i in range(len(layers[-1]["W"]))]
    scores = counts if readout == "spikes" else pots[-1]
    return {"spikes": spikes, "potentials": pots, "counts": counts,
            "prediction": first_argmax(scores), "sops": sops}
