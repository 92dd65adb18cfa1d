"""The FMA and the PE array on Verilator, bit for bit against the golden fma.

Every run sends all directed cases (about 10,000, see
:func:`spikeforge.sim.golden.vectors.directed_operands`) and biased random vectors:
200,000 through the FMA with the output always ready, 100,000 more with random
stalls on both sides, and 120,000 through a 4-lane PE array with stalls.
"""

import pytest

from spikeforge.hdl.fp16 import DEFAULT_STAGES, FMA
from spikeforge.hdl.pe_array import PEArray
from spikeforge.sim.verilator import harness

pytestmark = pytest.mark.verilator

TEST = "spikeforge.sim.verilator.cocotb_tests.fp16_fma"


def run(dut, **args):
    return harness.run(dut, name="fp16_fma" if isinstance(dut, FMA) else "pe_array",
                       test_module=TEST, args={"latency": dut.latency, **args})


def test_fma_full_rate():
    result = run(FMA(), lanes=0, count=200_000, seed=1)
    assert (result.tests, result.failed) == (1, 0)


def test_fma_back_pressure():
    run(FMA(), lanes=0, count=100_000, seed=2, in_stall=0.2, out_stall=0.4)


def test_pe_array_4_lanes_back_pressure():
    run(PEArray(lanes=4, stages=DEFAULT_STAGES), lanes=4, count=120_000, seed=3,
        in_stall=0.2, out_stall=0.3)
