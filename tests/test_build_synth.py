"""``spikeforge build --synth-only`` and the mapper fallback, on a small block."""

import json

import pytest
from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.boards import build as flow
from spikeforge.boards.registry import BLOCKS, BOARDS, Block
from spikeforge.sim import cli


class Mul(wiring.Component):
    """A registered 16x16 multiplier behind a stream (one DSP)."""

    i: In(stream.Signature(data.StructLayout({"a": 16, "b": 16})))
    o: Out(stream.Signature(32))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload.a * self.i.payload.b),
                         self.o.valid.eq(self.i.valid)]
        return m


def test_classic_abc_script_keeps_the_other_options():
    board = BOARDS["ulx3s-85f"]
    abc9 = flow._synth_overrides(board, "abc9")
    abc = flow._synth_overrides(board, "abc")
    assert abc9["synth_opts"] == board.synth_opts and "stat -json" in abc9["script_after_synth"]
    assert "-abc9" not in abc["synth_opts"] and "-run :map_luts" in abc["synth_opts"]
    assert "abc -dress -lut 4:7" in abc["script_after_synth"]
    assert "-run map_cells:" in abc["script_after_synth"]


def test_ice40_keeps_its_own_mapping_script():
    """synth_ice40 maps with ABC itself: no ECP5 steps in an iCE40 build's script."""
    board = BOARDS["icebreaker"]
    over = flow._synth_overrides(board, "abc")
    assert over["synth_opts"] == board.synth_opts
    assert "ecp5" not in over["script_after_synth"] and "4:7" not in over["script_after_synth"]
    assert "stat -json" in over["script_after_synth"]


def test_bad_pnr_minutes_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["build", "--board", "ulx3s-85f", "--pnr-minutes", "0",
                     "-o", str(tmp_path / "x")])
    assert code == 2
    assert "--pnr-minutes" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.bitstream
def test_synth_only_reports_yosys_cells(tmp_path, monkeypatch):
    monkeypatch.setitem(BLOCKS, "mul-test", Block("mul-test", lambda config: Mul(), "test"))
    out = tmp_path / "mul"
    assert cli.main(["build", "--board", "ulx3s-85f", "--block", "mul-test", "--synth-only",
                     "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    cells = report["yosys_cells"]
    assert report["synth_only"] and report["mapper"] == "abc9"
    assert report["fmax_mhz"] is None and report["bitstream"] is None
    assert not (out / "top.tim").exists()           # nextpnr never ran
    assert report["dsps"] == cells["MULT18X18D"] == 1
    assert report["luts"] == cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) > 0
    assert report["ffs"] == sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))


@pytest.mark.bitstream
def test_failed_abc9_falls_back_to_the_classic_mapper(tmp_path, monkeypatch):
    """When the ABC9 run fails the way it did on the core, the flow maps again with
    the classic ABC and says so."""
    monkeypatch.setitem(BLOCKS, "mul-test", Block("mul-test", lambda config: Mul(), "test"))
    real = flow._run_script
    calls = []

    def run(out, *args, **kwargs):
        calls.append((out / "top.ys").read_text())
        if len(calls) == 1:
            (out / "top.rpt").write_text("Executing ABC9 pass.\nERROR: call stack exhausted\n")
            raise flow.BuildError("Yosys failed")
        return real(out, *args, **kwargs)

    monkeypatch.setattr(flow, "_run_script", run)
    out = tmp_path / "mul"
    assert cli.main(["build", "--board", "ulx3s-85f", "--block", "mul-test", "--synth-only",
                     "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert len(calls) == 2 and "-abc9" in calls[0] and "abc -dress" in calls[1]
    assert report["mapper"] == "abc" and "ABC9 failed" in report["mapper_note"]
    assert report["dsps"] == 1 and report["luts"] > 0


@pytest.mark.parametrize("log,abc9", [
    ("2.46.17.4. Executing ABC9_EXE pass (technology mapping using ABC9).\n"
     "wasm trap: call stack exhausted\n", True),
    ("2.46.17.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design).\n"
     "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed\n", True),
    ("2.3. Executing HIERARCHY pass (managing design hierarchy).\n"
     "ERROR: Module `\\foo' referenced in module `\\top' is not part of the design.\n", False),
])
def test_which_yosys_failures_fall_back(tmp_path, log, abc9):
    (tmp_path / "top.rpt").write_text(log)
    assert flow._abc9_failed(tmp_path) is abc9
