#!/usr/bin/env python3
"""The memories of one core: the bits that hold data against the bits allocated.

    python scripts/core_memories.py --preset digits
    python scripts/core_memories.py --preset digits --organisation before --json mem.json

For every memory of the lane datapath (and the command unit's request staging) it
lists the words and width the core's geometry gives (``CoreGeometry``), the
primitive it maps to on the ECP5 (``DP16KD`` block RAM, ``TRELLIS_DPR16X4``
distributed RAM, flip-flops), how many of them, and the efficiency: data bits over
allocated bits (a DP16KD is 18,432 bits, a DPR16X4 cell 64, one copy per read port).

``--organisation now`` is the one ``hdl/core/lane_datapath.py`` builds; ``before``
is the organisation before the memories were repacked (every bank its own memory,
histories written bit by bit): the same model, for the before/after table. The
mapping model follows what Yosys 0.70's ``memory_libmap`` chose on the ``digits``
core (checked against ``yosys stat`` of a full synthesis: ``docs/core.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from spikeforge.hdl.config import PRESETS, preset
from spikeforge.hdl.core.defs import CoreGeometry

DP16KD_BITS = 18 * 1024
#: DP16KD shapes (depth, width); a width of 9, 18 or 36 holds 8, 16 or 32 data bits per
#: word in this core (the ninth bits are the parity bits, never used here).
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
DPR_BITS = 64            # TRELLIS_DPR16X4: 16 words of 4 bits


def bram_blocks(depth: int, width: int, lanes: int = 1) -> int:
    """DP16KD blocks for ``lanes`` side-by-side ``width``-bit lanes of ``depth`` words
    (one copy), the cheapest shape; lanes written alone need whole lanes per block."""
    best = None
    for d, w in DP16KD_SHAPES:
        data_w = w - w // 9            # usable data bits of a word
        if width <= data_w:
            per_word = data_w // width   # lanes side by side in one word
            n = math.ceil(lanes / per_word) * math.ceil(depth / d)
        else:
            n = lanes * math.ceil(width / data_w) * math.ceil(depth / d)
        best = n if best is None else min(best, n)
    return best


def dpr_cells(depth: int, width: int) -> int:
    return math.ceil(depth / 16) * math.ceil(width / 4)


def memories(geo: CoreGeometry, organisation: str = "now") -> list[dict]:
    """One row per memory: name, words, width, banks, read ports, primitive, count,
    data bits, allocated bits."""
    P, TM = geo.lanes, geo.max_time_steps
    train = not geo.inference_only
    before = organisation == "before"
    rows = []

    def bram(name, depth, width, banks, ports, *, wide, holds):
        # wide: the P banks are one memory of P lanes (shared address, lane enables)
        if wide:
            n = bram_blocks(depth, width, banks) * ports
        else:
            n = bram_blocks(depth, width) * banks * ports
        rows.append(dict(memory=name, holds=holds, words=depth, width=width, banks=banks,
                         read_ports=ports, primitive="DP16KD", count=n,
                         data_bits=depth * width * banks, allocated_bits=n * DP16KD_BITS))

    def dpr(name, depth, width, banks, ports, *, bit_writes, holds):
        per = (dpr_cells(depth, 1) * width) if bit_writes else dpr_cells(depth, width)
        n = per * banks * ports
        rows.append(dict(memory=name, holds=holds, words=depth, width=width, banks=banks,
                         read_ports=ports, primitive="TRELLIS_DPR16X4", count=n,
                         data_bits=depth * width * banks, allocated_bits=n * DPR_BITS))

    bram("W", geo.weight_depth, 16, P, 1, wide=False, holds="weights (skewed)")
    if train or before:
        bram("dW", geo.weight_depth, 16, P, 1, wide=not before, holds="weight gradients")
    bram("acc", geo.acc_depth, 16, P, 2, wide=not before, holds="x / u / g / g_in sums")
    if train or before:
        bram("du", geo.du_depth, 16, P, 2, wide=not before, holds="du of every layer")
    if geo.through:
        bram("u", geo.du_depth, 16, P, 1, wide=not before, holds="potentials (through)")
    dpr("s history", geo.hist_groups, TM, P, 2, bit_writes=before, holds="spikes")
    dpr("m history", geo.hist_groups, TM, P, 1, bit_writes=before, holds="window bits")
    if train or before:
        dpr("du!=0 history", geo.hist_groups, TM, P, 2 if before else 1,
            bit_writes=before, holds="non-zero du bits")
    if before:
        rows.append(dict(memory="acc written bits", holds="one bit per acc word",
                         words=geo.acc_depth, width=1, banks=1, read_ports=1,
                         primitive="FF", count=geo.acc_depth, data_bits=geo.acc_depth,
                         allocated_bits=geo.acc_depth))
    else:
        # a row of flags per accumulator group, written whole (read-modify-write through
        # the LUT RAM's asynchronous port), and a register per row: written since the reset
        groups = 1 << geo.acc_group_bits
        dpr("acc written bits", groups, 1 << geo.time_bits, 1, 1, bit_writes=False,
            holds="one bit per acc word")
        rows.append(dict(memory="acc written rows", holds="one bit per acc group",
                         words=groups, width=1, banks=1, read_ports=1, primitive="FF",
                         count=groups, data_bits=groups, allocated_bits=groups))
    words = max(1, geo.config.implementation.max_payload // 2)
    bram("request staging", words, 16, 1, 1, wide=False, holds="a request's data")
    for r in rows:
        r["efficiency"] = round(r["data_bits"] / r["allocated_bits"], 3)
    return rows


def totals(rows: list[dict]) -> dict:
    out = {}
    for prim in ("DP16KD", "TRELLIS_DPR16X4", "FF"):
        sel = [r for r in rows if r["primitive"] == prim]
        if sel:
            data = sum(r["data_bits"] for r in sel)
            alloc = sum(r["allocated_bits"] for r in sel)
            out[prim] = dict(count=sum(r["count"] for r in sel), data_bits=data,
                             allocated_bits=alloc, efficiency=round(data / alloc, 3))
    data = sum(r["data_bits"] for r in rows)
    alloc = sum(r["allocated_bits"] for r in rows)
    out["all"] = dict(data_bits=data, allocated_bits=alloc, efficiency=round(data / alloc, 3))
    return out


def table(rows: list[dict], tot: dict) -> str:
    lines = ["| memory | holds | words x width x banks | read ports | primitive | count | "
             "data bits | allocated bits | efficiency |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['memory']} | {r['holds']} | {r['words']} x {r['width']} x "
                     f"{r['banks']} | {r['read_ports']} | {r['primitive']} | {r['count']:,} | "
                     f"{r['data_bits']:,} | {r['allocated_bits']:,} | {r['efficiency']:.0%} |")
    for prim, t in tot.items():
        count = f"{t['count']:,}" if "count" in t else ""
        lines.append(f"| **{prim}** | | | | | {count} | {t['data_bits']:,} | "
                     f"{t['allocated_bits']:,} | **{t['efficiency']:.0%}** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits", choices=sorted(PRESETS))
    ap.add_argument("--lanes", type=int, help="change the preset's lanes")
    ap.add_argument("--organisation", choices=("now", "before", "both"), default="both")
    ap.add_argument("--json", type=Path, help="write the rows and totals here")
    args = ap.parse_args(argv)
    cfg = preset(args.preset) if args.lanes is None else preset(args.preset, lanes=args.lanes)
    geo = CoreGeometry(cfg)
    out = {"preset": args.preset, "lanes": geo.lanes, "geometry": geo.to_dict()}
    orgs = ("before", "now") if args.organisation == "both" else (args.organisation,)
    for org in orgs:
        rows = memories(geo, org)
        tot = totals(rows)
        out[org] = {"rows": rows, "totals": tot}
        print(f"## {args.preset}, {geo.lanes} lanes: organisation {org}\n")
        print(table(rows, tot))
        print()
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
