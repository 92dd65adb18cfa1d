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


class _ECP5:
    """Stands for an ECP5 platform: :func:`spikeforge.hdl.fp16.dsp_registers` looks only at
    ``family``."""
    family = "ecp5"


def _mult18x18d_model() -> str:
    """A behavioural MULT18X18D (unsigned; A, B and output registers on CLK0/CE0/RST0
    when their ``REG_*_CLK`` is ``"CLK0"``, as the Lattice sysDSP guide describes them)."""
    bits = lambda p, n: ", ".join(f"{p}{i}" for i in range(n))
    ins = [f"A{i}" for i in range(18)] + [f"B{i}" for i in range(18)] + \
        [f"C{i}" for i in range(18)] + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB",
                                        "CLK0", "CE0", "RST0"]
    params = [f"REG_{r}_{k}" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
              for k in ("CLK", "CE", "RST")] + [
        "GSR", "RESETMODE", "MULT_BYPASS", "CAS_MATCH_REG", "SOURCEB_MODE", "HIGHSPEED_CLK"]
    return "\n".join([
        f"module MULT18X18D({', '.join(ins)}, {bits('P', 36)});",
        *[f'  parameter {p} = "NONE";' for p in params],
        *[f"  input {p};" for p in ins],
        *[f"  output P{i};" for i in range(36)],
        f"  wire [17:0] a = {{{', '.join(f'A{i}' for i in reversed(range(18)))}}};",
        f"  wire [17:0] b = {{{', '.join(f'B{i}' for i in reversed(range(18)))}}};",
        "  reg [17:0] ra, rb; reg [35:0] rp;",
        '  wire [17:0] ia = REG_INPUTA_CLK == "CLK0" ? ra : a;',
        '  wire [17:0] ib = REG_INPUTB_CLK == "CLK0" ? rb : b;',
        "  wire [35:0] m = ia * ib;",
        '  wire [35:0] p = REG_OUTPUT_CLK == "CLK0" ? rp : m;',
        "  always @(posedge CLK0) if (RST0) begin ra <= 0; rb <= 0; rp <= 0; end",
        "    else if (CE0) begin ra <= a; rb <= b; rp <= m; end",
        f"  assign {{{', '.join(f'P{i}' for i in reversed(range(36)))}}} = p;",
        "endmodule", ""])


@pytest.mark.parametrize("stages", [DEFAULT_STAGES, 8])
def test_fma_ecp5_dsp_registers(stages):
    """The ECP5 form of the lane (the product in a MULT18X18D with its own input and
    output registers) against the golden fma, with stalls on both sides."""
    from amaranth.back import verilog
    from spikeforge.hdl.fp16 import dsp_registers
    assert dsp_registers(_ECP5(), stages) and not dsp_registers(None, stages)
    dut = FMA(stages=stages)
    text = verilog.convert(dut, name="fp16_fma", platform=_ECP5(), emit_src=False,
                           strip_internal_attrs=True)
    assert text.count("MULT18X18D #(") == 1 and " * " not in text
    result = harness.run(verilog_text=text + _mult18x18d_model(), name="fp16_fma",
                         test_module=TEST, args={"latency": dut.latency, "lanes": 0,
                                                 "count": 60_000, "seed": 4 + stages,
                                                 "in_stall": 0.2, "out_stall": 0.4})
    assert (result.tests, result.failed) == (1, 0)
