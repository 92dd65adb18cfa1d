"""cocotb check of a host port top: a byte stream in, the expected responses out.

Arguments: ``data`` (hex of the bytes to send), ``expected`` (list of
``[status, cmd, payload hex]``), ``rx_stall`` and ``tx_stall`` (probabilities of
a stalled cycle on each side).
"""

import random

import cocotb

from spikeforge.sim.verilator.cocotb_tests.host_bridge import pulse_reset, pump
from spikeforge.sim.verilator.cocotb_util import start_clock
from spikeforge.sim.verilator.harness import cocotb_args
from spikeforge.sim.host.driver import split_responses


@cocotb.test()
async def host_port_answers_every_frame(dut):
    args = cocotb_args()
    data = bytes.fromhex(args["data"])
    expected = [(s, c, bytes.fromhex(p)) for s, c, p in args["expected"]]
    start_clock(dut)
    await pulse_reset(dut, 2)
    out, _cycles = await pump(dut, data, len(expected), 40 * len(data) + 10_000,
                              rx_stall=args.get("rx_stall", 0.0),
                              tx_stall=args.get("tx_stall", 0.0), rng=random.Random(7))
    responses, rest = split_responses(out)
    assert rest == b""
    got = [(r.status, r.cmd, r.payload) for r in responses]
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"response {k}: got {g}, expected {e}"
