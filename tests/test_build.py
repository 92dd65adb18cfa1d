"""``spikeforge build``: argument errors, the boundary wrapper, and one real small build."""

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.boards import build as flow
from spikeforge.boards.clocks import plan_pll
from spikeforge.boards.registry import BLOCKS, BOARDS, Block
from spikeforge.boards.wrapper import BoundaryTop
from spikeforge.sim import cli


class Tiny(wiring.Component):
    """A registered 16x16 multiplier behind a stream: small, and it needs one DSP."""

    i: In(stream.Signature(data.StructLayout({"a": 16, "b": 16})))
    o: Out(stream.Signature(32))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload.a * self.i.payload.b),
                         self.o.valid.eq(self.i.valid)]
        return m


class WithUart(Tiny):
    rx: In(1)
    tx: Out(1)


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("extra,bad,allowed", [
    (["--board", "de10-nano"], "de10-nano", sorted(BOARDS)),
    (["--board", "ulx3s-85f", "--block", "gpu"], "gpu", sorted(BLOCKS)),
    (["--board", "ulx3s-85f", "--lanes", "0"], "0", ["lanes", "between 1 and"]),
    (["--board", "ulx3s-85f", "--lanes", "-3"], "-3", ["lanes", "between 1 and"]),
    (["--board", "ulx3s-85f", "--stages", "0"], "0", ["fma_stages", "between 1 and"]),
    (["--board", "ulx3s-85f", "--cores", "0"], "0", ["cores", "between 1 and"]),
    (["--board", "ulx3s-85f", "--preset", "huge"], "huge", ["tiny", "digits"]),
    (["--board", "ulx3s-85f", "--target-mhz", "900"], "900", ["10 to 400 MHz"]),
    (["--board", "icebreaker", "--target-mhz", "-5"], "-5", ["positive"]),
    (["--board", "ulx3s-85f", "--placer", "annealer"], "annealer", ["heap", "static"]),
    (["--board", "ulx3s-85f", "--router", "maze"], "maze", ["router1", "router2"]),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, bad, allowed):
    out_dir = tmp_path / "out"
    code, out, err = _run(["build", *extra, "-o", str(out_dir)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert bad in lines[0] and all(a in lines[0] for a in allowed), lines[0]
    assert not out_dir.exists()


def test_bad_argument_from_the_console_command(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    beside = Path(sys.executable).with_name("spikeforge")   # this interpreter's install first
    exe = str(beside) if beside.exists() else shutil.which("spikeforge")
    proc = subprocess.run([exe, "build", "--board", "nope", "-o", str(out_dir)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown board 'nope'" in proc.stderr and "ulx3s-85f" in proc.stderr
    assert list(out_dir.iterdir()) == []


def test_build_is_registered_with_the_cli():
    assert cli.COMMANDS["build"][0] == "spikeforge.boards.build"


def test_options_set_the_configuration_fields(tmp_path):
    """--lanes, --stages and --cores land in the fields they name; the report's option
    values come back from the configuration."""
    req = flow.resolve("ulx3s-85f", "pe-array", lanes=8, stages=4, out_dir=tmp_path)
    assert (req.config.features.lanes, req.config.implementation.fma_stages) == (8, 4)
    assert req.options == {"lanes": 8, "stages": 4}
    req = flow.resolve("ulx3s-85f", "router", cores=6, preset_name="tiny", out_dir=tmp_path)
    assert (req.config.features.rows, req.config.features.cols) == (2, 3)   # 6 = 2 x 3
    assert req.config.features.lanes == 4                                   # the tiny preset's
    assert req.options == {"cores": 6}
    assert flow.resolve("icebreaker", "fma", out_dir=tmp_path).options == {"stages": 6}


def test_the_placer_reaches_nextpnr_and_the_cache_key(tmp_path):
    """--placer static goes on nextpnr's command line; heap (nextpnr's default) adds
    nothing; the two plans differ, so a cached build of one is not taken for the other."""
    scripts = {}
    for placer in flow.PLACERS:
        req = flow.resolve("ulx3s-85f", "fma", out_dir=tmp_path, placer=placer)
        top, _ = flow._design(req)
        plan = flow._plan(req.board, top, "abc9", req.placer)
        scripts[placer] = plan.files["build_top.sh"]
        assert req.placer == placer
    assert "--placer static" in scripts["static"]
    assert "--placer" not in scripts["heap"]


def test_the_router_reaches_nextpnr(tmp_path):
    """--router router2 goes on nextpnr's command line; router1 (nextpnr's default)
    adds nothing."""
    scripts = {}
    for router in flow.ROUTERS:
        req = flow.resolve("ulx3s-85f", "fma", out_dir=tmp_path, router=router)
        top, _ = flow._design(req)
        scripts[router] = flow._plan(req.board, top, "abc9", req.placer,
                                     req.router).files["build_top.sh"]
        assert req.router == router
    assert "--router router2" in scripts["router2"]
    assert "--router" not in scripts["router1"]


# ---------------------------------------------------------------------------- pieces

def test_pll_plans():
    assert plan_pll("ecp5", 25, 100).out_mhz == 100
    assert plan_pll("ecp5", 25, 25).bypass
    assert plan_pll("ice40", 12, 24).out_mhz == 24
    p = plan_pll("ecp5", 25, 93)
    assert abs(p.out_mhz - 93) < 0.5
    # the VCO stays inside the ECP5 range
    d = p.params
    assert 400 <= 25 / d["CLKI_DIV"] * d["CLKFB_DIV"] * d["CLKOP_DIV"] <= 800
    with pytest.raises(ValueError, match="allowed"):
        plan_pll("ice40", 12, 500)


def test_wrapper_registers_every_port_and_wires_board_ports(monkeypatch):
    board = BOARDS["ulx3s-85f"]
    top = BoundaryTop(WithUart(), board, plan_pll("ecp5", 25, 100),
                      board_ports={"rx": ("uart", 0, "rx"), "tx": ("uart", 0, "tx")})
    assert (top.in_bits, top.out_bits) == (32 + 1 + 1, 32 + 1 + 1)
    plan = board.make_platform().build(top, name="top", do_build=False)
    lpf = plan.files["top.lpf"]
    for pin in ("M1", "L4", "R1", "B2"):     # uart rx, tx, the stimulus button, the LED
        assert f'SITE "{pin}"' in lpf
    with pytest.raises(ValueError, match="nope"):
        BoundaryTop(top.block, board, plan_pll("ecp5", 25, 100), board_ports={"nope": ("led", 1)})


class Narrow(wiring.Component):
    a: In(3)
    o: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.eq(self.a.xor())
        return m


def test_wrapper_on_the_icebreaker_pll_and_narrow_ports():
    board = BOARDS["icebreaker"]
    top = BoundaryTop(Narrow(), board, plan_pll("ice40", 12, 24))
    assert (top.in_bits, top.out_bits) == (3, 1)
    plan = board.make_platform().build(top, name="top", do_build=False)
    assert "SB_PLL40_PAD" in plan.files["top.il"]
    assert "set_io clk12_0__io 35" in plan.files["top.pcf"]


def test_parse_reports_counts_the_named_cells():
    pnr = {"utilization": {"TRELLIS_COMB": {"used": 10, "available": 83640},
                           "TRELLIS_FF": {"used": 7, "available": 83640},
                           "MULT18X18D": {"used": 2, "available": 156}},
           "fmax": {"$glbnet$clk": {"achieved": 123.456, "constraint": 100.0}}}
    fields = flow.parse_reports(BOARDS["ulx3s-85f"], pnr)
    assert (fields["luts"], fields["ffs"], fields["dsps"], fields["brams"]) == (10, 7, 2, 0)
    assert fields["fmax_mhz"] == 123.46
    netlist = {"modules": {"top": {"cells": {"a": {"type": "SB_DFFE"}, "b": {"type": "SB_LUT4"},
                                             "c": {"type": "SB_DFF"}}}}}
    assert flow.parse_reports(BOARDS["icebreaker"], {"utilization": {}}, netlist)["ffs"] == 2


# ---------------------------------------------------------------------------- one real build

@pytest.mark.bitstream
def test_real_build_writes_a_sane_report(tmp_path, monkeypatch):
    """One real build (about 15 s): the report's keys and types, its numbers against
    nextpnr's text log, and the summary on the terminal."""
    out_dir = tmp_path / "tiny"
    monkeypatch.setitem(BLOCKS, "tiny-test", Block("tiny-test", lambda config: Tiny(), "test"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["build", "--board", "ulx3s-85f", "--block", "tiny-test",
                         "-o", str(out_dir)])
    printed = printed.getvalue()
    assert code == 0, printed
    report = json.loads((out_dir / "report.json").read_text())
    for key in flow.REPORT_KEYS:
        assert key in report, key
    types = {"board": str, "device": str, "luts": int, "luts_total": int, "ffs": int,
             "dsps": int, "dsps_total": int, "brams": int, "brams_total": int,
             "fmax_mhz": float, "target_mhz": float, "timing_met": bool, "seconds": float,
             "bitstream": str}
    for key, kind in types.items():
        assert isinstance(report[key], kind), (key, report[key])
    assert (report["board"], report["device"]) == ("ulx3s-85f", "LFE5U-85F")
    assert (report["luts_total"], report["dsps_total"], report["brams_total"]) == (83640, 156, 208)
    assert report["target_mhz"] == 100.0
    # The multiplier survived the wrapper: one DSP, and every boundary bit has its register.
    assert report["dsps"] == 1
    assert report["ffs"] >= 2 * (32 + 2)
    assert 0 < report["luts"] < 200
    assert report["timing_met"] == (report["fmax_mhz"] >= 100.0)
    assert report["seconds"] > 0
    bit = out_dir / "top.bit"
    assert report["bitstream"] == str(bit.resolve()) and bit.stat().st_size > 100_000

    log = (out_dir / "top.tim").read_text()
    # the routed (last) fmax line, and the constraint nextpnr derived through the PLL
    last = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz \(\w+ at ([\d.]+) MHz\)", log)[-1]
    assert report["fmax_mhz"] == pytest.approx(float(last[0]), abs=0.01)
    assert float(last[1]) == report["target_mhz"]
    for key, cell in (("luts", "TRELLIS_COMB"), ("ffs", "TRELLIS_FF"), ("dsps", "MULT18X18D"),
                      ("brams", "DP16KD")):
        used = re.search(rf"{cell}:\s+(\d+)/\s*(\d+)", log)
        assert report[key] == int(used.group(1)), key
        if key != "ffs":
            assert report[f"{key}_total"] == int(used.group(2)), key
    # the summary on the terminal
    assert "tiny-test on ulx3s-85f (LFE5U-85F)" in printed
    assert re.search(r"fmax\s+[\d.]+ MHz\s+\(target 100 MHz: (met|NOT MET)\)", printed)
    assert "placing and routing with nextpnr" in printed


@pytest.mark.bitstream
def test_a_second_build_of_the_same_design_is_cached_and_a_missed_clock_fails(tmp_path,
                                                                               monkeypatch,
                                                                               capsys):
    """A block of the accelerator (the fp16 add lane, about 30 s) built twice into one
    folder: the second returns the first report (``cached``) without running the tools.
    Built again at a clock it cannot reach, the build fails with one sentence naming fmax
    and target, and keeps its report."""
    out_dir = tmp_path / "fpadd"
    argv = ["build", "--board", "ulx3s-85f", "--block", "fp16-add", "--clock", "50",
            "-o", str(out_dir)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    first = json.loads((out_dir / "report.json").read_text())
    assert first["target_mhz"] == 50 and first["timing_met"] is True
    assert first["block"] == "fp16-add" and first["dsps"] == 0 and 0 < first["luts"] < 1000
    assert "cached" not in first and first["cache_key"]
    (out_dir / "top.tim").unlink()          # the tools would write it again
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert "unchanged since the build" in out
    assert not (out_dir / "top.tim").exists()
    assert json.loads((out_dir / "report.json").read_text()) == first
    # an unreachable clock: a real build again (another plan), exit 1 and one sentence
    argv[argv.index("50")] = "400"
    code, out, err = _run(argv, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "misses timing" in lines[0] and "400 MHz target" in lines[0]
    report = json.loads((out_dir / "report.json").read_text())
    assert report["timing_met"] is False and report["target_mhz"] == 400
    assert f"reaches {report['fmax_mhz']:g} MHz" in lines[0]
    assert report["cache_key"] != first["cache_key"]


# the tops are made to look at, not to build
@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_the_whole_accelerator_is_the_default_and_its_options_are_checked(tmp_path, capsys):
    req = flow.resolve("icebreaker", None, preset_name="up5k", out_dir=tmp_path)
    assert req.whole and req.block == "accelerator" and req.preset == "up5k"
    assert req.options == {"lanes": 1, "stages": 3, "cores": 1}
    top, extra = flow._design(req)
    assert type(top.accelerator).__name__ == "Accelerator"
    assert extra["baud"] == 3_000_000 and extra["uart_cycles_per_bit"] == 8   # 24 MHz / 3 MBd
    req = flow.resolve("ulx3s-85f", None, preset_name="tiny", cores=2, out_dir=tmp_path)
    top, extra = flow._design(req)
    assert type(top.accelerator).__name__ == "System" and extra["top"] == "System"
    # an inference build holds one core: one sentence, nothing written
    out_dir = tmp_path / "out"
    code, out, err = _run(["build", "--board", "ulx3s-85f", "--preset", "inference-int8",
                           "--cores", "2", "-o", str(out_dir)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "one per top, not 2 cores" in err and not out_dir.exists()
