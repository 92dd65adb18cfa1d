"""Verilator stress tests of whole meshes (through the harness).

Two kinds per mesh size, on the same build of
:class:`~spikeforge.sim.noc.traffic.TrafficBench`:

* RTL traffic: every node's generator runs a pattern (uniform, transpose,
  hotspot, all-to-one) at a load past saturation with random packet lengths
  while every local port refuses 30 % of the cycles; then injection stops.
  Every packet must arrive exactly once, in order per (source, destination),
  intact, and the network must drain within :func:`~spikeforge.sim.noc.run.drain_bound`.
* Python traffic: Python drives every local port itself (random stalls on both
  sides), checks delivery on its own and checks that the RTL checkers agree
  and flag injected faults.
"""

import pytest

from spikeforge.sim.noc.run import Run, python_traffic, run_traffic

pytestmark = pytest.mark.verilator

MESHES = [(1, 2), (2, 2), (3, 3), (4, 4)]
PATTERNS = ["uniform", "transpose", "hotspot", "all-to-one"]


@pytest.mark.parametrize("rows,cols", MESHES, ids=[f"{r}x{c}" for r, c in MESHES])
def test_rtl_traffic_with_back_pressure(rows, cols):
    runs = [Run(pattern=p, load=load, len_min=2, len_mask=3, stall=0.3, warm=0, cycles=3000,
                seed=7 + i)
            for i, p in enumerate(PATTERNS) for load in (0.3, 1.0)]
    results = run_traffic(rows, cols, runs, build_for="tests")
    for res in results:
        where = f"{rows}x{cols} {res.run.pattern} load {res.run.load}"
        assert res.drained, f"{where}: not drained within {res.drain_bound} cycles"
        assert res.drain_cycles <= res.drain_bound
        assert (res.lost, res.duplicated, res.reordered, res.corrupt) == (0, 0, 0, 0), where
        assert res.packets_delivered == res.packets_injected > 50, where


@pytest.mark.parametrize("rows,cols", MESHES, ids=[f"{r}x{c}" for r, c in MESHES])
def test_python_traffic_checks_the_checkers(rows, cols):
    per_node = {2: 40, 4: 25, 9: 12, 16: 8}[rows * cols]
    python_traffic(rows, cols, pattern="uniform", packets_per_node=per_node, seed=rows * 10 + cols)


def test_python_traffic_all_to_one_and_hotspot():
    python_traffic(2, 2, pattern="all-to-one", packets_per_node=20, out_stall=0.6)
    python_traffic(2, 2, pattern="hotspot", packets_per_node=20)
