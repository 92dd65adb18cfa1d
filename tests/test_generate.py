"""``spikeforge generate``: the Verilog and manifest of a multi-core system, its checks
of the core count and of ``--set``, nothing written on bad input, Verilator's lint on
the 4-core output and a 64-core elaboration."""

import json
import os
import subprocess

import pytest

from spikeforge.sim import cli
from spikeforge.sim.errors import UsageError
from spikeforge.sim.generate import build_config, mesh_for


def test_mesh_shapes():
    assert mesh_for(1) == (1, 1)
    assert mesh_for(4) == (2, 2)
    assert mesh_for(6) == (2, 3)
    assert mesh_for(64) == (8, 8)
    assert mesh_for(31) == (1, 31)
    assert mesh_for(1024) == (32, 32)
    for bad, near in ((37, "36 or 38"), (1025, "1024")):
        with pytest.raises(UsageError, match=f"--cores {bad} fits no mesh.*nearest: {near}"):
            mesh_for(bad)
    with pytest.raises(UsageError, match="--cores must be a positive integer, not 0"):
        mesh_for(0)


def test_set_keys_and_values():
    cfg = build_config(cores=2, lanes=2, sets=["neurons=32", "fan-in=16", "time_steps=4",
                                               "memory=lutram", "reset_grad_modes=detach+through"])
    f, i = cfg.features, cfg.implementation
    assert (f.rows, f.cols, f.lanes, f.neurons_per_core, f.max_fan_in, f.max_time_steps) == \
        (1, 2, 2, 32, 16, 4)
    assert i.memory == "lutram" and f.reset_grad_modes == ("detach", "through")
    with pytest.raises(UsageError, match="unknown key 'foo'; allowed: .*lanes"):
        build_config(sets=["foo=1"])
    with pytest.raises(UsageError, match="lanes takes an integer, not 'x'"):
        build_config(sets=["lanes=x"])
    with pytest.raises(UsageError, match="must be key=value"):
        build_config(sets=["lanes"])
    with pytest.raises(UsageError, match="lanes must be a power of two for this core, not 3"):
        build_config(sets=["lanes=3"])
    with pytest.raises(UsageError, match="unknown preset 'huge'; allowed: .*tiny"):
        build_config(preset_name="huge")


@pytest.mark.parametrize("argv, message", [
    (["--cores", "37"], "fits no mesh"),
    (["--cores", "4", "--set", "foo=1"], "unknown key"),
    (["--cores", "4", "--set", "max_payload=3"], "max_payload must be between"),
    (["--cores", "4", "--lanes", "0"], "lanes must be"),
])
def test_bad_input_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert cli.main(["generate", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _lint(path):
    from spikeforge.sim.verilator.harness import VERILATOR_WARNINGS_OFF, verilator_env
    cmd = ["verilator", "--lint-only", "--top-module", "spikeforge_top",
           *[f"-Wno-{w}" for w in VERILATOR_WARNINGS_OFF], str(path)]
    return subprocess.run(cmd, env={**os.environ, **verilator_env()}, capture_output=True,
                          text=True)


@pytest.mark.verilator
def test_four_cores_lint_clean_and_manifest(tmp_path, capsys):
    out = tmp_path / "g4"
    assert cli.main(["generate", "--cores", "4", "-o", str(out)]) == 0
    assert "2x2 mesh, 4 cores" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "spikeforge_top.v"]
    r = _lint(out / "spikeforge_top.v")
    assert r.returncode == 0, r.stderr[-3000:]
    man = json.loads((out / "manifest.json").read_text())
    assert man["mesh"]["rows"] == man["mesh"]["cols"] == 2 and man["mesh"]["cores"] == 4
    assert set(man["ports"]["interface"]["members"]) == {"rx", "tx", "rx_abort"}
    assert man["configuration"]["features"]["lanes"] == 4
    assert man["mapping_limits"]["neurons"] == 4 * 64
    assert man["host_protocol"]["max_request_payload"] == 1024 + 6
    assert man["memory_map"]["per_core"]["weights"]["banks"] == 4
    assert man["elaboration_seconds"] > 0
    # a second run into the same folder replaces both files
    assert cli.main(["generate", "--cores", "2", "-o", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["mesh"]["cores"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "spikeforge_top.v"]


def test_sixty_four_cores_elaborate(tmp_path):
    out = tmp_path / "g64"
    assert cli.main(["generate", "--preset", "mesh-8x8", "-o", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["mesh"]["cores"] == 64 and (man["mesh"]["rows"], man["mesh"]["cols"]) == (8, 8)
    text = (out / "spikeforge_top.v").read_text()
    assert text.count("spikeforge_core core (") == 64
