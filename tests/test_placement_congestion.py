"""The wire-demand estimate of ``scripts/placement_congestion.py`` on a placed design
small enough to work out by hand: RUDY adds ``(w + h) / (w * h)`` to every tile of a
net's ``w`` x ``h`` bounding box."""

import json

import pytest

from script_loader import load_script


def _cell(bel, conns):
    return {"type": "TRELLIS_COMB", "attributes": {"NEXTPNR_BEL": bel},
            "port_directions": {p: d for p, (d, _) in conns.items()},
            "connections": {p: bits for p, (_, bits) in conns.items()}}


def _design():
    # net 10: blkA.a (X1/Y1) drives blkB.b (X3/Y2): a 3 x 2 box, 5/6 per tile
    # net 20: blkC.c drives blkD.d, both in X1/Y1: a 1 x 1 box, 2 there
    return {"modules": {"top": {"cells": {
        "blkA.a": _cell("X1/Y1/SLICEA", {"F": ("output", [10])}),
        "blkB.b": _cell("X3/Y2/SLICEB", {"A": ("input", [10])}),
        "blkC.c": _cell("X1/Y1/SLICEC", {"F": ("output", [20])}),
        "blkD.d": _cell("X1/Y1/SLICED", {"A": ("input", [20]), "B": ("input", ["0"])}),
    }, "netnames": {}}}}


def test_rudy_map_and_the_blocks_behind_the_hottest_tile():
    mod = load_script("placement_congestion")
    # 4 x 3 tiles; the hottest is X1/Y1 (2 + 5/6), the hot fraction picks it alone
    r = mod.analyse(_design(), depth=1, hot=1 / 12)
    assert r["grid"] == [4, 3] and r["cells"] == 4 and r["nets"] == 2
    assert r["wire_length"] == (3 + 2 - 2) + 0
    assert r["rudy"]["max"] == round(2 + 5 / 6, 2)
    assert r["rudy"]["median"] == 0          # 6 of the 12 tiles lie in no box
    shares = {b["block"]: b["hot_demand_share"] for b in r["hot_blocks"]}
    assert shares == {"blkC": round(2 / (2 + 5 / 6), 4), "blkA": round((5 / 6) / (2 + 5 / 6), 4)}
    lengths = {b["block"]: b["wire_length_share"] for b in r["hot_blocks"]}
    assert lengths == {"blkA": 1.0, "blkC": 0.0}


def test_bad_input_is_one_sentence(tmp_path, capsys):
    mod = load_script("placement_congestion")
    unplaced = _design()
    for cell in unplaced["modules"]["top"]["cells"].values():
        cell["attributes"] = {}
    with pytest.raises(ValueError, match="not placed"):
        mod.analyse(unplaced)
    with pytest.raises(ValueError, match="hot must be"):
        mod.analyse(_design(), hot=0)
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"modules": {}}))
    out = tmp_path / "out.json"
    assert mod.main([str(path), "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a nextpnr design" in err and not out.exists()
