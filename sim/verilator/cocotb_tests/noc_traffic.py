"""cocotb side of the NoC stress tests and benchmark, on :class:`~spikeforge.sim.noc.traffic.TrafficBench`.

``rtl_traffic``: for each run in ``args["runs"]``, reset, program the
generators, let the clock run (Python sleeps on one timer per phase: warm-up,
measurement window, cool-down), stop injection, wait for ``drained`` (bounded),
then read every counter and table and append them to ``args["out"]`` (JSON).
The host side (:mod:`spikeforge.sim.noc.run`) turns them into verdicts and
numbers.

``python_traffic``: the same mesh driven from Python at every local port (one
coroutine, woken once per cycle for all ports, with random stalls on both
sides); Python checks delivery itself, then checks that the RTL checkers
counted the same, then feeds them a lost, a duplicated, a swapped and a
corrupted packet and checks that each is flagged.
"""

from __future__ import annotations

import json
import random

import cocotb
from cocotb.triggers import RisingEdge, Timer, with_timeout

from spikeforge.sim.verilator.cocotb_util import CLOCK_NS, reset, start_clock
from spikeforge.sim.verilator.harness import cocotb_args
from spikeforge.sim.noc.traffic import PATTERNS, SCALARS, TABLES, payload_word


async def _read(dut, node, sel, addr):
    dut.rd_node.value = node
    dut.rd_sel.value = sel
    dut.rd_addr.value = addr
    await Timer(1, "ns")
    return int(dut.rd_data.value)


async def read_counters(dut, nodes, *, tables=("sent", "received"), hist=True, hop_tables=True,
                        max_hops=0, hist_bins=256):
    """Every node's scalar counters and the requested tables."""
    out = []
    for node in range(nodes):
        rec = {name: await _read(dut, node, 0, i) for i, name in enumerate(SCALARS)}
        for t in tables:
            rec[t] = [await _read(dut, node, TABLES[t], a) for a in range(nodes)]
        if hop_tables:
            rec["hop_count"] = [await _read(dut, node, TABLES["hop_count"], h) for h in range(max_hops + 1)]
            rec["hop_sum"] = [await _read(dut, node, TABLES["hop_sum"], h) for h in range(max_hops + 1)]
        if hist:
            top = min(rec["lat_max"], hist_bins - 1) if rec["lat_count"] else -1
            rec["hist"] = [await _read(dut, node, TABLES["hist"], b) for b in range(top + 1)]
        out.append(rec)
    return out


async def _cycles(dut, n):
    if n > 0:
        await Timer(n * CLOCK_NS, "ns")


@cocotb.test()
async def rtl_traffic(dut):
    args = cocotb_args()
    nodes = args["nodes"]
    start_clock(dut)
    results = []
    for run in args["runs"]:
        dut.ext.value = 0
        dut.enable.value = 0
        dut.measure.value = 0
        dut.pattern.value = PATTERNS[run["pattern"]]
        dut.rate.value = run["rate"]
        dut.hotspot.value = run.get("hotspot", 0)
        dut.hot_rate.value = run.get("hot_rate", 0)
        dut.len_min.value = run["len_min"]
        dut.len_mask.value = run.get("len_mask", 0)
        dut.stall.value = run.get("stall", 0)
        dut.seed.value = run.get("seed", 1)
        await reset(dut)
        dut.enable.value = 1
        await _cycles(dut, run.get("warm", 0))
        dut.measure.value = 1
        await _cycles(dut, run["cycles"])
        dut.measure.value = 0
        await _cycles(dut, run.get("cool", 0))
        dut.enable.value = 0
        stop = int(dut.cycle.value)
        bound = run["drain_bound"]
        drained = True
        try:
            await with_timeout(_wait_drained(dut), bound * CLOCK_NS, "ns")
        except Exception:  # cocotb's SimTimeoutError
            drained = False
        drain_cycles = int(dut.cycle.value) - stop
        rec = {"run": run, "drained": drained, "drain_cycles": drain_cycles,
               "tx_total": int(dut.tx_total.value), "rx_total": int(dut.rx_total.value),
               "nodes": await read_counters(dut, nodes, max_hops=args["max_hops"],
                                            hist=run.get("hist", True))}
        results.append(rec)
    with open(args["out"], "w") as fh:
        json.dump(results, fh)


async def _wait_drained(dut):
    await RisingEdge(dut.clk)
    while not int(dut.drained.value):
        await RisingEdge(dut.drained)


def _bench_packet(fmt, src, dst, seq_word, length, ts=0):
    """Words of a bench-format packet as the core sends them (header, seq, timestamp, data)."""
    words = [seq_word, ts] + [payload_word(src, seq_word, k, fmt.flit_width) for k in range(2, length)]
    return fmt.packet(dst=fmt.coords(dst), payload=words)


@cocotb.test()
async def python_traffic(dut):
    from spikeforge.hdl.noc.packet import PacketFormat

    args = cocotb_args()
    rows, cols, width = args["rows"], args["cols"], args["flit_width"]
    fmt = PacketFormat(rows, cols, width)
    nodes = rows * cols
    rng = random.Random(args.get("seed", 1))
    start_clock(dut)
    dut.ext.value = 1
    dut.enable.value = 0
    dut.measure.value = 0
    dut.stall.value = 0
    await reset(dut)

    # Traffic: per node, packets to random destinations (including itself), seq per pair.
    count = args["packets_per_node"]
    seqs = {}
    queues = {n: [] for n in range(nodes)}
    expect = {}  # (src, dst) -> list of packets (word lists)
    for src in range(nodes):
        for _ in range(count):
            dst = _pick(rng, args["pattern"], src, nodes, rows, cols)
            s = seqs.get((src, dst), 0)
            seqs[src, dst] = s + 1
            words = _bench_packet(fmt, src, dst, s, rng.randrange(2, 6))
            queues[src].append(words)
            expect.setdefault((src, dst), []).append(words)
    got = await _drive_all(dut, fmt, queues, rng, args["in_stall"], args["out_stall"],
                                     args["timeout_cycles"])
    for (src, dst), packets in expect.items():
        mine = [p for p in got[dst] if fmt.unpack_header(p[0]).src_x == fmt.coords(src)[0]
                and fmt.unpack_header(p[0]).src_y == fmt.coords(src)[1]]
        stamped = [[fmt.pack_header(fmt.unpack_header(p[0]), src_x=fmt.coords(src)[0],
                                    src_y=fmt.coords(src)[1])] + p[1:] for p in packets]
        assert mine == stamped, f"packets from {src} to {dst} lost, duplicated, reordered or corrupted"
    assert sum(len(v) for v in got.values()) == nodes * count

    # The RTL checkers saw the same traffic and agree.
    counters = await read_counters(dut, nodes, tables=("received", "expected"), hist=False,
                                   hop_tables=False)
    for dst, rec in enumerate(counters):
        assert rec["rx_packets"] == len(got[dst])
        assert (rec["ahead"], rec["behind"], rec["corrupt"]) == (0, 0, 0), rec
        for src in range(nodes):
            assert rec["received"][src] == seqs.get((src, dst), 0)
            assert rec["expected"][src] == seqs.get((src, dst), 0)

    # Faults the checkers must flag: a lost packet (seq skipped), a duplicate, a swap, corruption.
    src, dst = 0, nodes - 1
    s = seqs.get((src, dst), 0)
    bad = _bench_packet(fmt, src, dst, s, 4)
    bad[3] ^= 1
    faults = [
        _bench_packet(fmt, src, dst, s + 1, 3),      # s is missing: ahead
        _bench_packet(fmt, src, dst, s + 1, 3),      # again: behind (duplicate)
        _bench_packet(fmt, src, dst, s + 3, 3),      # s + 2 comes later: ahead
        _bench_packet(fmt, src, dst, s + 2, 3),      # late: behind (reordered)
        bad,                                         # corrupted payload word
    ]
    await _drive_all(dut, fmt, {src: faults}, rng, 0.0, 0.0, args["timeout_cycles"])
    rec = (await read_counters(dut, nodes, tables=("received",), hist=False, hop_tables=False))[dst]
    base = counters[dst]
    assert rec["rx_packets"] - base["rx_packets"] == 5
    assert rec["ahead"] - base["ahead"] == 2, rec
    assert rec["behind"] - base["behind"] == 2, rec
    assert rec["corrupt"] - base["corrupt"] == 1, rec
    assert rec["received"][src] - base["received"][src] == 4


def _pick(rng, pattern, src, nodes, rows, cols):
    from spikeforge.sim.noc.traffic import pattern_destination
    if pattern == "uniform":
        return rng.randrange(nodes)
    if pattern == "hotspot":
        return nodes // 2 if rng.random() < 0.5 else rng.randrange(nodes)
    return pattern_destination(pattern, src, rows, cols, 0)


async def _drive_all(dut, fmt, queues, rng, in_stall, out_stall, timeout_cycles):
    """Send every node's packets and collect all deliveries; one wake-up per cycle for all ports."""
    nodes = fmt.rows * fmt.cols
    tx = [(getattr(dut, f"tx__{n}__payload"), getattr(dut, f"tx__{n}__valid"),
           getattr(dut, f"tx__{n}__ready")) for n in range(nodes)]
    rx = [(getattr(dut, f"rx__{n}__payload"), getattr(dut, f"rx__{n}__valid"),
           getattr(dut, f"rx__{n}__ready")) for n in range(nodes)]
    words = {n: [w for p in queues.get(n, []) for w in p] for n in range(nodes)}
    pos = [0] * nodes
    offering = [False] * nodes
    ready = [False] * nodes
    total = sum(len(v) for v in words.values())
    seen = 0
    got = {n: [] for n in range(nodes)}
    current = {n: [] for n in range(nodes)}
    cycles = 0
    while seen < total:
        for n in range(nodes):
            payload, valid, _ = tx[n]
            if pos[n] < len(words[n]) and not (in_stall and rng.random() < in_stall):
                payload.value = words[n][pos[n]]
                valid.value = 1
                offering[n] = True
            elif not offering[n]:
                valid.value = 0
            r = not (out_stall and rng.random() < out_stall)
            rx[n][2].value = int(r)
            ready[n] = r
        await RisingEdge(dut.clk)
        cycles += 1
        if cycles > timeout_cycles:
            raise AssertionError(f"{total - seen} of {total} flits undelivered after {cycles} cycles")
        for n in range(nodes):
            payload, valid, tready = tx[n]
            if offering[n] and int(tready.value):
                pos[n] += 1
                offering[n] = False
            if ready[n] and int(rx[n][1].value):
                data, first, last = fmt.unpack_beat(int(rx[n][0].value))
                assert first == (not current[n]), "header mark wrong"
                current[n].append(data)
                seen += 1
                if last:
                    got[n].append(current[n])
                    current[n] = []
    for n in range(nodes):
        tx[n][1].value = 0
        rx[n][2].value = 0
    return got
