"""`spikeforge bench noc`: argument errors and the ideal-throughput bound (no simulation)."""

import pytest

from spikeforge.sim.cli import main
from spikeforge.sim.noc.run import Run, ideal_throughput, traffic_matrix


@pytest.mark.parametrize("argv,words", [
    (["--mesh", "4by4"], "ROWSxCOLS"),
    (["--mesh", "1x1"], "one node"),
    (["--mesh", "40x4"], "rows must be"),
    (["--pattern", "tornado"], "allowed: uniform, transpose, hotspot"),
    (["--rates", "0"], "outside (0, 1]"),
    (["--rates", "fast"], "not a number"),
    (["--payload", "1"], "outside 2..200"),
    (["--buffer-depth", "0"], "router_buffer_depth must be between 1 and 64, not 0"),
    (["--flit-width", "8"], "flit_width must be between 16 and 256, not 8"),
])
def test_bad_arguments_exit_2_with_one_sentence(argv, words, capsys, tmp_path):
    out = tmp_path / "n.json"
    assert main(["bench", "noc", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0
    assert not out.exists()


def test_ideal_throughput_bounds():
    # 4x4 uniform (no self traffic): 64/15 flits cross the bisection per unit load over 4 links.
    assert ideal_throughput("uniform", 4, 4) == pytest.approx(4 / (64 / 15))
    # Transpose on 4x4: 4 nodes' flits cross each way of the middle cuts over 4 links:
    # the cut bound meets the injection port.
    assert ideal_throughput("transpose", 4, 4) == pytest.approx(1.0)
    assert ideal_throughput("uniform", 1, 2) == 1.0
    # Hotspot: the hotspot's ejection port binds: 15 * 0.25 + 0.75 (uniform share) flits per unit load.
    assert ideal_throughput("hotspot", 4, 4) == pytest.approx(1 / (15 * 0.25 + 0.75))
    assert ideal_throughput("all-to-one", 4, 4) == pytest.approx(1 / 15)
    for pattern in ("uniform", "transpose", "hotspot", "all-to-one"):
        for row in traffic_matrix(pattern, 3, 3):
            assert sum(row) == pytest.approx(1.0) or sum(row) == 0


def test_run_rejects_bad_lengths():
    with pytest.raises(ValueError, match="len_min"):
        Run(len_min=1)
    assert Run(load=0.5, len_min=3).rate == round(0.5 / 4 * 65536)
