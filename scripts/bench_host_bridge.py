"""Benchmark of the simulation transport: simulated cycles per second through SimTransport.

Runs the host port with the test command handler of ``tests/host_echo.py`` on
Verilator and measures, from the host process:

* ``busy``: a ``DELAY n`` command (the device computes for ``n`` cycles while
  Python sleeps on the response): simulated cycles per wall-clock second, and
  per CPU-second of the simulator process (independent of other load on the
  machine; the load average is recorded beside it);
* ``streaming``: ``ECHO`` of full payloads (Python wakes every cycle while bytes
  move): bytes and cycles per wall-clock second;
* ``round_trip``: wall-clock time of a request without work (``ECHO`` of 0 bytes).

Usage: ``python scripts/bench_host_bridge.py [--json FILE] [--busy-cycles N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from host_echo import DELAY, ECHO, EchoTop  # noqa: E402

from spikeforge.sim.verilator.session import rtl_session  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="bench_host_bridge.json", help="output JSON file")
    parser.add_argument("--busy-cycles", type=int, default=5_000_000,
                        help="cycles of each DELAY command (default 5000000)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--max-payload", type=int, default=1024)
    parser.add_argument("--ports-only", action="store_true",
                        help="build with only the top's ports visible to cocotb")
    args = parser.parse_args(argv)
    if args.busy_cycles < 1 or args.repeats < 1:
        parser.error("--busy-cycles and --repeats must be positive")

    result = {"python": platform.python_version(), "machine": platform.machine(),
              "max_payload": args.max_payload, "ports_only": args.ports_only}
    start = time.monotonic()
    with rtl_session(EchoTop(max_payload=args.max_payload), name="host_echo_bench",
                     ports_only=args.ports_only) as link:
        result["startup_s"] = round(time.monotonic() - start, 3)
        busy = []
        for _ in range(args.repeats):
            load = os.getloadavg()[0]
            cpu0 = link.transport.simulator_cpu_seconds()
            t0 = time.monotonic()
            link.transact(DELAY, args.busy_cycles.to_bytes(4, "little"),
                          timeout_cycles=2 * args.busy_cycles + 1000)
            dt = time.monotonic() - t0
            cpu = link.transport.simulator_cpu_seconds()
            entry = {"cycles": link.last_cycles, "seconds": round(dt, 4),
                     "cycles_per_s": round(link.last_cycles / dt), "load_average": load}
            if cpu0 is not None and cpu is not None and cpu > cpu0:
                entry["cpu_seconds"] = round(cpu - cpu0, 3)
                entry["cycles_per_cpu_s"] = round(link.last_cycles / (cpu - cpu0))
            busy.append(entry)
        result["busy"] = busy
        result["busy_cycles_per_s"] = max(b["cycles_per_s"] for b in busy)
        if all("cycles_per_cpu_s" in b for b in busy):
            result["busy_cycles_per_cpu_s"] = max(b["cycles_per_cpu_s"] for b in busy)

        payload = bytes(range(256)) * (args.max_payload // 256) + bytes(args.max_payload % 256)
        stream = []
        for _ in range(args.repeats):
            t0 = time.monotonic()
            out = link.transact(ECHO, payload)
            dt = time.monotonic() - t0
            assert out == payload
            moved = 2 * len(payload) + 11
            stream.append({"bytes": moved, "cycles": link.last_cycles, "seconds": round(dt, 4),
                           "bytes_per_s": round(moved / dt),
                           "cycles_per_s": round(link.last_cycles / dt)})
        result["streaming"] = stream

        t0 = time.monotonic()
        n = 50
        for _ in range(n):
            link.transact(ECHO)
        result["round_trip_ms"] = round(1000 * (time.monotonic() - t0) / n, 3)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
