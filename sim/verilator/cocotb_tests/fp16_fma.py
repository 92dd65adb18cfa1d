"""cocotb check of the FMA, the PE array and the add lane against the golden
:func:`spikeforge.sim.golden.fp16.fma` / :func:`~spikeforge.sim.golden.fp16.add`.

Arguments (``harness.cocotb_args()``): ``lanes`` (0 for a single :class:`FMA`, whose payload
is one operand struct; P for a P-lane :class:`PEArray`), ``latency``, ``directed`` (bool: send
the directed cases first), ``count`` (random operand triples), ``seed``, ``in_stall`` and
``out_stall`` (probabilities that ``i.valid`` / ``o.ready`` are low in a cycle), ``op``
(``"fma"``, the default, or ``"add"`` for :class:`~spikeforge.hdl.fp16_add.FPAdd`, whose payload
is ``{a, c}``; its vectors are the ``a`` and ``c`` of the FMA vectors plus, with ``sweep``, every
binary16 pattern as ``a`` against each of the ``sweep`` addends).

One stream transfer can happen every cycle, so the driver wakes once per clock edge
(a transfer boundary) and does the least it can there; expectations are computed in bulk
with numpy before the run and compared after it.
"""

import numpy as np

import cocotb
from cocotb.triggers import RisingEdge

from spikeforge.sim.golden import fp16
from spikeforge.sim.verilator.cocotb_util import reset, start_clock
from spikeforge.sim.golden.vectors import biased_operands, directed_operands
from spikeforge.sim.verilator.harness import cocotb_args


def _add_vectors(args):
    a, _, c, _ = _vectors(args)
    sweep = [int(x, 0) if isinstance(x, str) else int(x) for x in args.get("sweep", [])]
    if sweep:
        every = np.arange(1 << 16, dtype=np.uint16)
        a = np.concatenate([a] + [every] * len(sweep))
        c = np.concatenate([c] + [np.full(1 << 16, x, np.uint16) for x in sweep])
    expected = fp16.to_bits(fp16.add(fp16.from_bits(a), fp16.from_bits(c)))
    return a, c, expected


def _vectors(args):
    parts = []
    if args.get("directed", True):
        parts.append(directed_operands())
    if args.get("count", 0):
        parts.append(biased_operands(np.random.default_rng(args.get("seed", 0)), args["count"]))
    a, b, c = (np.concatenate([p[k] for p in parts]) for k in range(3))
    expected = fp16.to_bits(fp16.fma(fp16.from_bits(a), fp16.from_bits(b), fp16.from_bits(c)))
    return a, b, c, expected


def _pattern(rng, n, p):
    """Per-cycle enables (True = active) with probability ``p`` of a stall."""
    if not p:
        return None
    return (rng.random(n) >= p).tolist()


@cocotb.test()
async def fma_matches_golden(dut):
    args = cocotb_args()
    lanes = args.get("lanes", 0)
    width = max(lanes, 1)
    if args.get("op", "fma") == "add":
        a, c, expected = _add_vectors(args)
        b = np.full_like(a, 0x3C00)                 # shown in messages as fma(a, 1.0, c)
        n = a.size
        payloads = (a.astype(np.int64) | c.astype(np.int64) << 16).tolist()
    else:
        a, b, c, expected = _vectors(args)
        pad = (-a.size) % width                         # fill the last transfer with zeros
        a, b, c = (np.concatenate([x, np.zeros(pad, np.uint16)]) for x in (a, b, c))
        expected = np.concatenate([expected, np.zeros(pad, np.uint16)])
        n = a.size // width
        # One payload per transfer: lane k's operands at bits 48k (a, b, c in that order).
        lane_words = (a.astype(object) | b.astype(object) << 16
                      | c.astype(object) << 32).reshape(n, width)
        payloads = [sum(int(w) << (48 * k) for k, w in enumerate(row)) for row in lane_words]
    rng = np.random.default_rng(args.get("seed", 0) + 1000)
    horizon = 4 * n + 100
    in_en = _pattern(rng, horizon, args.get("in_stall", 0.0))
    out_en = _pattern(rng, horizon, args.get("out_stall", 0.0))

    start_clock(dut)
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await reset(dut)

    i_payload, i_valid, i_ready = dut.i__payload, dut.i__valid, dut.i__ready
    o_payload, o_valid, o_ready = dut.o__payload, dut.o__valid, dut.o__ready
    got = []
    sent = 0
    cycle = 0
    latency = args.get("latency", 0)
    # Cycles with the output ready and the pipeline full before the first result is allowed.
    limit = horizon + 8 * n + latency + 100
    valid_now = 0
    ready_now = 0
    while len(got) < n:
        v = 1 if sent < n and (in_en is None or in_en[cycle % horizon]) else 0
        r = 1 if out_en is None or out_en[cycle % horizon] else 0
        if v != valid_now:
            i_valid.value = valid_now = v
        if v:
            i_payload.value = payloads[sent]
        if r != ready_now:
            o_ready.value = ready_now = r
        await RisingEdge(dut.clk)
        # Values read here are those the flops sampled at this edge.
        if v and i_ready.value:
            sent += 1
        if r and o_valid.value:
            got.append(o_payload.value.to_unsigned())
        cycle += 1
        assert cycle < limit, f"only {len(got)} of {n} results after {cycle} cycles"
    i_valid.value = 0
    o_ready.value = 1
    # Nothing more may come out: the pipeline must not duplicate results.
    for _ in range(latency + 3):
        await RisingEdge(dut.clk)
        assert not o_valid.value, "the pipeline produced more results than it was given"

    mask = (1 << 16) - 1
    out = np.array([[(word >> (16 * k)) & mask for k in range(width)] for word in got],
                   dtype=np.uint16).reshape(-1)
    bad = np.nonzero(out != expected)[0]
    if bad.size:
        rows = [f"fma({a[j]:#06x}, {b[j]:#06x}, {c[j]:#06x}) = {out[j]:#06x}, "
                f"golden {expected[j]:#06x}" for j in bad[:12]]
        raise AssertionError(f"{bad.size} of {out.size} results differ:\n" + "\n".join(rows))
    dut._log.info("%d results (%d transfers) in %d cycles", out.size, n, cycle)
