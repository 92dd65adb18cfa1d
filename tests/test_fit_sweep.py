"""scripts/fit_sweep.py: which points fit a board, by how much they do not, and the
largest that fits; checked on rows built by hand against the ULX3S-85F's totals."""

from script_loader import load_script
from spikeforge.boards.registry import BOARDS


def _script():
    return load_script("fit_sweep")


def _row(cores, lanes, luts, brams=10, dsps=10, **extra):
    board = BOARDS["ulx3s-85f"]
    row = {"config": f"p-c{cores}-p{lanes}", "cores": cores, "lanes": lanes,
           "total_lanes": cores * lanes, "luts": luts, "brams": brams, "dsps": dsps,
           "target_mhz": 100.0, "placed": False, "fmax_mhz": None, "timing_met": None,
           "luts_pct": round(100 * luts / board.luts_total, 1), **extra}
    return row


def test_a_point_over_the_device_names_each_resource_and_the_margin():
    mod = _script()
    board = BOARDS["ulx3s-85f"]
    assert mod.fit(_row(1, 2, 1000), board) == []
    over = mod.fit(_row(4, 8, 100_368, brams=260), board)
    # 100,368 of 83,640 LUT4 is 20.0 % over; 260 of 208 DP16KD 25.0 % over
    assert over == ["LUTs 100,368 of 83,640, 20.0 % over", "BRAMs 260 of 208, 25.0 % over"]


def test_the_largest_point_that_fits_and_the_largest_that_meets_the_clock():
    mod = _script()
    board = BOARDS["ulx3s-85f"]
    rows = [_row(1, 4, 20_000), _row(2, 8, 60_000), _row(4, 8, 90_000)]
    for r in rows:
        r["fits"] = not mod.fit(r, board)
    v = mod.verdict(rows)
    assert v["largest_fit"] == "p-c2-p8" and v["largest_fit_at_target"] is None
    assert "no point placed" in v["verdict"]
    rows[0].update(placed=True, fmax_mhz=104.0, timing_met=True)
    rows[1].update(placed=True, fmax_mhz=71.0, timing_met=False)
    v = mod.verdict(rows)
    assert v["largest_fit_at_target"] == "p-c1-p4" and "104.0 MHz" in v["verdict"]
    rows[0].update(fmax_mhz=90.0, timing_met=False)
    assert "no placed point meets 100 MHz" in mod.verdict(rows)["verdict"]


def test_the_pack_command_is_the_build_scripts_without_its_outputs(tmp_path):
    (tmp_path / "build_top.sh").write_text(
        '"$YOSYS" -q -l top.rpt top.ys\n'
        '"$NEXTPNR_ECP5" --quiet --report nextpnr-report.json --timing-allow-fail --log top.tim '
        '--85k --package CABGA381 --speed 6 --json top.json --lpf top.lpf --textcfg top.config\n')
    var, *args = _script()._nextpnr_args(tmp_path)
    assert var == "NEXTPNR_ECP5"
    assert args == ["--85k", "--package", "CABGA381", "--speed", "6", "--json", "top.json",
                    "--lpf", "top.lpf"]
