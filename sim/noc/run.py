"""Host side of the NoC stress tests and benchmark: run the RTL traffic rig, turn counters into numbers.

:func:`run_traffic` builds :class:`~spikeforge.sim.noc.traffic.TrafficBench`
for a mesh (Verilog elaborated once per configuration and process, Verilator
build cached by the harness), runs a list of :class:`Run` phases in one
simulation and returns a :class:`RunResult` per phase, with the verdicts
(``lost``, ``duplicated``, ``reordered``, ``corrupt``, ``drained``) and the
measurements (accepted throughput, latency average / 99th percentile / per
hop). :func:`ideal_throughput` is the cut (bisection) bound of a pattern.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from spikeforge.hdl.config import Features, Implementation
from spikeforge.sim.verilator import harness
from spikeforge.sim.noc.traffic import PATTERNS, TrafficBench, pattern_destination

__all__ = ["Run", "RunResult", "run_traffic", "ideal_throughput", "traffic_matrix",
           "hotspot_node", "TEST_MODULE", "QUEUE_DEPTH", "HIST_BINS", "python_traffic"]

TEST_MODULE = "spikeforge.sim.verilator.cocotb_tests.noc_traffic"
QUEUE_DEPTH = 32
HIST_BINS = 256
#: Share of hotspot-pattern packets that go to the hotspot node (the rest are uniform).
HOTSPOT_SHARE = 0.25


def hotspot_node(rows: int, cols: int) -> int:
    """The node the hotspot and all-to-one patterns aim at: the mesh's centre."""
    return (rows // 2) * cols + cols // 2


@dataclass(frozen=True)
class Run:
    """One phase of traffic: offered load, packet lengths, back-pressure, durations."""
    pattern: str = "uniform"
    load: float = 0.1              # offered flits per injecting node per cycle
    len_min: int = 2               # payload flits (>= 2); packets are 1 + len flits
    len_mask: int = 0              # payload length = len_min + (random & len_mask)
    stall: float = 0.0             # probability that a local rx port is not ready in a cycle
    warm: int = 1000
    cycles: int = 5000             # measurement window
    cool: int = 0
    seed: int = 1
    hot_share: float = HOTSPOT_SHARE

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern {self.pattern!r} is unknown; allowed: {sorted(PATTERNS)}")
        if self.len_min < 2 or self.len_min + self.len_mask > 255 or self.len_mask & (self.len_mask + 1):
            raise ValueError("len_min must be >= 2 and len_mask of the form 2**k - 1 with "
                             f"len_min + len_mask <= 255, not {self.len_min}, {self.len_mask}")
        if not 0.0 <= self.stall < 1.0:
            raise ValueError(f"stall must be in [0, 1), not {self.stall}")

    @property
    def mean_flits(self) -> float:
        return 1 + self.len_min + self.len_mask / 2

    @property
    def max_flits(self) -> int:
        return 1 + self.len_min + self.len_mask

    @property
    def rate(self) -> int:
        """Packet creation probability per cycle, in units of 2**-16."""
        return max(0, min(65536, round(self.load / self.mean_flits * 65536)))


@dataclass
class RunResult:
    run: Run
    active_nodes: int
    packets_injected: int
    packets_delivered: int
    flits_injected: int
    lost: int
    duplicated: int
    reordered: int
    corrupt: int
    refused: int
    drained: bool
    drain_cycles: int
    drain_bound: int
    offered: float                 # flits/node/cycle actually offered (created)
    accepted: float                # flits/node/cycle delivered in the measurement window
    latency_avg: float | None
    latency_p99: float | None
    latency_max: int | None
    latency_by_hops: dict = field(default_factory=dict)   # hops -> mean latency (tagged packets)
    packets_measured: int = 0
    #: the 99th percentile fell in the histogram's last bin: it is at least ``latency_p99``
    latency_p99_clipped: bool = False

    @property
    def ok(self) -> bool:
        return (self.drained and not (self.lost or self.duplicated or self.reordered or self.corrupt)
                and self.packets_delivered == self.packets_injected)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["run"] = asdict(self.run)
        d["latency_by_hops"] = {str(k): v for k, v in self.latency_by_hops.items()}
        return d


def traffic_matrix(pattern: str, rows: int, cols: int, hot_share: float = HOTSPOT_SHARE):
    """``T[s][d]``: share of node ``s``'s packets that go to ``d`` (rows of silent nodes are 0)."""
    n = rows * cols
    hot = hotspot_node(rows, cols)
    t = [[0.0] * n for _ in range(n)]
    if n == 1:
        return t
    for s in range(n):
        fixed = pattern_destination(pattern, s, rows, cols, hot)
        if pattern in ("transpose", "all-to-one"):
            if fixed != s:
                t[s][fixed] = 1.0
            continue
        uni = [1.0 / (n - 1) if d != s else 0.0 for d in range(n)]
        if pattern == "hotspot" and s != hot:
            t[s] = [(1 - hot_share) * u for u in uni]
            t[s][hot] += hot_share
        else:
            t[s] = uni
    return t


def ideal_throughput(pattern: str, rows: int, cols: int, hot_share: float = HOTSPOT_SHARE) -> float:
    """Upper bound on accepted flits/node/cycle (per injecting node) for a pattern.

    The minimum over every straight cut of the mesh (the bisection is one of
    them) of links crossing the cut / traffic crossing it, in each direction,
    capped by the injection port (1 flit/cycle) and by every ejection port
    (1 flit/cycle into each node).
    """
    t = traffic_matrix(pattern, rows, cols, hot_share)
    n = rows * cols
    coords = [(i % cols, i // cols) for i in range(n)]
    bound = 1.0
    for c in range(1, cols):           # vertical cuts: `rows` links each way
        east = sum(t[s][d] for s in range(n) for d in range(n) if coords[s][0] < c <= coords[d][0])
        west = sum(t[s][d] for s in range(n) for d in range(n) if coords[d][0] < c <= coords[s][0])
        for flow in (east, west):
            if flow:
                bound = min(bound, rows / flow)
    for r in range(1, rows):           # horizontal cuts: `cols` links each way
        south = sum(t[s][d] for s in range(n) for d in range(n) if coords[s][1] < r <= coords[d][1])
        north = sum(t[s][d] for s in range(n) for d in range(n) if coords[d][1] < r <= coords[s][1])
        for flow in (south, north):
            if flow:
                bound = min(bound, cols / flow)
    for d in range(n):                 # ejection ports
        into = sum(t[s][d] for s in range(n))
        if into:
            bound = min(bound, 1.0 / into)
    return bound


def _active_nodes(pattern, rows, cols):
    return sum(1 for row in traffic_matrix(pattern, rows, cols) if any(row)) or 1


def drain_bound(run: Run, rows: int, cols: int, depth: int) -> int:
    """Cycles within which the network must drain once injection stops.

    Everything still queued (every source queue full of the longest packets)
    plus everything buffered in the routers, through the slowest path: one
    ejection port at ``1 - stall`` flits per cycle; doubled, plus a margin.
    """
    n = rows * cols
    outstanding = n * (QUEUE_DEPTH + 1) * run.max_flits + n * 5 * depth
    return int(2 * outstanding / (1 - run.stall)) + 200 + 4 * (rows + cols)


@lru_cache(maxsize=8)
def _verilog(rows: int, cols: int, implementation: Implementation) -> str:
    bench = TrafficBench(Features(rows=rows, cols=cols), implementation,
                         queue_depth=QUEUE_DEPTH, hist_bins=HIST_BINS)
    return harness.elaborate(bench, name="noc_bench")


#: Verilator build options: the benchmark's model compiled for speed (``-O1``, the
#: harness default) and the tests' compiled quickly (``-O0``: about half the build
#: time, for runs of a few thousand cycles).
BUILD_FOR = {"speed": (), "tests": ("-CFLAGS", "-O0")}


def run_traffic(rows: int, cols: int, runs: list[Run], *,
                implementation: Implementation = Implementation(),
                build_for: str = "speed") -> list[RunResult]:
    """Run ``runs`` one after the other (each from reset) on a ``rows x cols`` mesh."""
    fmt_nodes = rows * cols
    hot = hotspot_node(rows, cols)
    depth = implementation.router_buffer_depth
    raw_runs = []
    for r in runs:
        raw_runs.append({
            "pattern": r.pattern, "rate": r.rate, "hotspot": hot,
            "hot_rate": round(r.hot_share * 65536), "len_min": r.len_min, "len_mask": r.len_mask,
            "stall": round(r.stall * 65536), "seed": r.seed, "warm": r.warm, "cycles": r.cycles,
            "cool": r.cool, "drain_bound": drain_bound(r, rows, cols, depth),
        })
    with tempfile.TemporaryDirectory(prefix="spikeforge-noc-") as tmp:
        out = Path(tmp) / "out.json"
        args = {"nodes": fmt_nodes, "runs": raw_runs, "out": str(out),
                "max_hops": rows + cols - 2, "hist_bins": HIST_BINS}
        harness.run(None, verilog_text=_verilog(rows, cols, implementation), name="noc_bench",
                    test_module=TEST_MODULE, testcase="rtl_traffic", args=args,
                    extra_build_args=BUILD_FOR[build_for])
        raw = json.loads(out.read_text())
    _tables_per_run(raw)
    return [_summarise(r, raw_r, rows, cols) for r, raw_r in zip(runs, raw)]


def _tables_per_run(raw: list) -> None:
    """Turn the rig's tables into per-run numbers.

    Reset clears the rig's counters but not its tables (memories): in a
    simulation of several runs each table holds the sum of the runs so far,
    so each run's share is its difference from the previous run's.
    """
    for i in range(len(raw) - 1, 0, -1):
        for node_prev, node_cur in zip(raw[i - 1]["nodes"], raw[i]["nodes"]):
            for key in ("sent", "received", "hist", "hop_count", "hop_sum"):
                if key in node_cur and key in node_prev:
                    before = node_prev[key] + [0] * (len(node_cur[key]) - len(node_prev[key]))
                    node_cur[key] = [c - p for c, p in zip(node_cur[key], before)]


def _summarise(run: Run, rec: dict, rows: int, cols: int) -> RunResult:
    n = rows * cols
    nodes = rec["nodes"]
    lost = dup = 0
    for s in range(n):
        for d in range(n):
            sent = nodes[s]["sent"][d]
            got = nodes[d]["received"][s]
            lost += max(0, sent - got)
            dup += max(0, got - sent)
    behind = sum(x["behind"] for x in nodes)
    active = _active_nodes(run.pattern, rows, cols)
    window = max(1, run.cycles)
    hist = [0] * HIST_BINS
    for x in nodes:
        for b, v in enumerate(x.get("hist", [])):
            hist[b] += v
    count = sum(x["lat_count"] for x in nodes)
    p99 = None
    if count:
        need, acc = 0.99 * count, 0
        for b, v in enumerate(hist):
            acc += v
            if acc >= need:
                p99 = float(b)
                break
    by_hops = {}
    for h in range(rows + cols - 1):
        c = sum(x["hop_count"][h] for x in nodes)
        if c:
            by_hops[h] = sum(x["hop_sum"][h] for x in nodes) / c
    return RunResult(
        run=run, active_nodes=active,
        packets_injected=sum(x["tx_packets"] for x in nodes),
        packets_delivered=sum(x["rx_packets"] for x in nodes),
        flits_injected=sum(x["tx_flits"] for x in nodes),
        lost=lost, duplicated=dup, reordered=max(0, behind - dup),
        corrupt=sum(x["corrupt"] for x in nodes), refused=sum(x["refused"] for x in nodes),
        drained=rec["drained"], drain_cycles=rec["drain_cycles"],
        drain_bound=rec["run"]["drain_bound"],
        offered=sum(x["offered"] for x in nodes) * run.mean_flits / (active * (run.warm + window + run.cool)),
        accepted=sum(x["rx_flits_window"] for x in nodes) / (active * window),
        latency_avg=(sum(x["lat_sum"] for x in nodes) / count) if count else None,
        latency_p99=p99, latency_max=max(x["lat_max"] for x in nodes) if count else None,
        latency_by_hops=by_hops, packets_measured=count,
        latency_p99_clipped=p99 is not None and p99 >= HIST_BINS - 1)


def python_traffic(rows: int, cols: int, *, pattern: str = "uniform", packets_per_node: int = 20,
                   in_stall: float = 0.3, out_stall: float = 0.3, seed: int = 1,
                   implementation: Implementation = Implementation(), build_for: str = "tests"):
    """Python-driven traffic at every local port of the same rig (checks the checkers too)."""
    args = {"rows": rows, "cols": cols, "flit_width": implementation.flit_width,
            "pattern": pattern, "packets_per_node": packets_per_node, "in_stall": in_stall,
            "out_stall": out_stall, "seed": seed, "hist_bins": HIST_BINS,
            "timeout_cycles": 2000 + 200 * packets_per_node * rows * cols}
    return harness.run(None, verilog_text=_verilog(rows, cols, implementation), name="noc_bench",
                       test_module=TEST_MODULE, testcase="python_traffic", args=args,
                       extra_build_args=BUILD_FOR[build_for])
