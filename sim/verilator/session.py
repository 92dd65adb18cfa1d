"""Simulation transport: the host driver talking to a Verilator model through cocotb.

:class:`SimTransport` elaborates and builds a top (any component with byte
streams ``rx``: ``In(stream.Signature(8))`` and ``tx``: ``Out(stream.Signature(8))``),
then runs it with :func:`spikeforge.sim.harness.run` and the cocotb module
:mod:`spikeforge.sim.verilator.cocotb_tests.host_bridge` in a background thread. The cocotb
side connects back to this process over a Unix domain socket and serves
``exchange`` (bytes into ``rx``, response frames out of ``tx``, cycles taken),
``reset`` (pulse ``rst``), ``cycles`` and ``close``.

Failures surface as exceptions in the host process, never as a hang: a
simulation that crashes or ends ends the connection and raises
:class:`~spikeforge.sim.host.driver.TransportError` carrying the tail of its log; one
that does not answer within a wall-clock limit (``wall_timeout_s`` plus the
transaction's ``timeout_cycles`` at ``min_cycles_per_s``) raises
:class:`~spikeforge.sim.host.driver.TransportTimeout`, after which the transport is
closed and its simulator process ended. A transaction that exceeds its
``timeout_cycles`` of simulated time raises ``TransportTimeout`` too but leaves
the simulation usable (a :meth:`reset` brings the device back).

:func:`rtl_session` is the short form: ``with rtl_session(top) as link:``
gives a :class:`~spikeforge.sim.host.driver.HostLink`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import time

from spikeforge.sim.host.driver import HostLink, TransportError, TransportTimeout
from spikeforge.sim.verilator import harness
from spikeforge.sim.verilator.background import BackgroundSimulation

__all__ = ["SimTransport", "rtl_session", "BRIDGE_MODULE"]

BRIDGE_MODULE = "spikeforge.sim.verilator.cocotb_tests.host_bridge"


def _send(sock, header: dict, data: bytes = b"") -> None:
    header = dict(header, n=len(data))
    text = json.dumps(header).encode()
    sock.sendall(struct.pack("<I", len(text)) + text + bytes(data))


class SimTransport(BackgroundSimulation):
    """Transport of :class:`~spikeforge.sim.host.driver.HostLink` to a Verilator simulation.

    Keyword-only options: ``name`` (Verilog top name and build cache key),
    ``args`` (extra arguments for the bridge: ``tx_stall``, ``rx_stall``
    (probabilities of a stalled cycle), ``seed``, ``reset_cycles``),
    ``connect_timeout_s`` (seconds for the simulation to start once built),
    ``wall_timeout_s`` and ``min_cycles_per_s`` (the wall-clock limit of one
    operation, see the module docstring), ``waves`` (dump waves), ``ports_only``
    (default on: only the top's ports are visible to cocotb, see
    :mod:`spikeforge.sim.verilator.ports_only`; the bridge needs nothing else, a large
    design builds much faster and the model runs about 2.5 times faster),
    ``cxx_opt`` (g++ optimisation of the model's per-cycle code, see
    :func:`spikeforge.sim.verilator.harness.build`), ``bulk`` (default on: the top is
    built inside :class:`spikeforge.sim.verilator.bulk_top.BulkTop` and exchanges move
    through its buffers a wide word per cycle instead of one byte per Python wake-up;
    exchanges with random stalls still take the byte path), ``bulk_width`` and
    ``bulk_depth`` (the wrapper's word and buffer size in bytes), ``registered_reset``
    (default on: the device's reset passes a register in the wrapper, see
    :class:`~spikeforge.sim.verilator.bulk_top.BulkTop`), ``verilog_key`` (a string that
    determines ``top``, e.g. its configuration's JSON: the Verilog text is then kept in the
    cache by it, the options and the package's sources, and not elaborated again;
    :func:`spikeforge.sim.verilator.harness.elaborate_cached`; ``top`` may then be a
    function that makes the component, called only when it is elaborated).
    """

    def __init__(self, top, *, name: str = "top", args: dict | None = None,
                 connect_timeout_s: float = 120.0, wall_timeout_s: float = 60.0,
                 min_cycles_per_s: float = 20_000.0, waves: bool = False,
                 ports_only: bool = True, cxx_opt: str = "-O1", bulk: bool = True,
                 bulk_width: int = 64, bulk_depth: int = 4096, registered_reset: bool = True,
                 verilog_key: str | None = None):
        for key, value, lo in (("connect_timeout_s", connect_timeout_s, 0.0),
                               ("wall_timeout_s", wall_timeout_s, 0.0),
                               ("min_cycles_per_s", min_cycles_per_s, 0.0)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= lo:
                raise ValueError(f"{key} must be a positive number of seconds, not {value!r}"
                                 if key != "min_cycles_per_s" else
                                 f"{key} must be a positive number, not {value!r}")
        super().__init__(name, prefix="sf-bridge-")
        self.wall_timeout_s = float(wall_timeout_s)
        self.min_cycles_per_s = float(min_cycles_per_s)
        self._closed = False
        self._broken = False
        self._total_cycles = 0
        try:
            # ports_only: only the top's ports visible to cocotb (spikeforge.sim.verilator.ports_only)
            from spikeforge.sim.verilator import ports_only as po
            bridge_args = dict(args or {}, socket=self._path)
            def make():
                inner = top() if verilog_key is not None and callable(top) else top
                if not bulk:
                    return inner
                from spikeforge.sim.verilator.bulk_top import BulkTop
                return BulkTop(inner, width=bulk_width, depth=bulk_depth,
                               registered_reset=registered_reset)
            if bulk:
                bridge_args["bulk"] = {"width": bulk_width, "depth": bulk_depth}
            elab = po.elaborate if ports_only else harness.elaborate
            if verilog_key is None:
                verilog = elab(make(), name=name)
            else:
                verilog = harness.elaborate_cached(make, name=name, elaborate=elab, key=json.dumps(
                    [verilog_key, ports_only, bulk, bulk_width, bulk_depth, registered_reset]))
            build_args = po.BUILD_ARGS if ports_only else ()
            self.build_dir = harness.build(None, name=name, verilog_text=verilog, waves=waves,
                                           extra_args=build_args, cxx_opt=cxx_opt)
            self._start(verilog=verilog, test_module=BRIDGE_MODULE, args=bridge_args,
                        build_args=build_args, connect_timeout_s=connect_timeout_s,
                        waves=waves, cxx_opt=cxx_opt)
        except BaseException:
            self._shutdown(force=True)
            raise

    def _died(self) -> TransportError:
        self._broken = True
        if self._error is not None:
            text = str(self._error)
            causes = re.findall(r"^\s*([A-Za-z_.]*(?:Error|Exception|Timeout)\b.*)$", text, re.M)
            cause = f" ({causes[-1].strip()})" if causes else ""
            return TransportError(f"the simulation of {self.name} ended abnormally{cause}:\n{text}")
        return TransportError(f"the simulation of {self.name} ended unexpectedly")

    def _recv_exact(self, n, deadline, what):
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self._sock.recv(min(n - got, 1 << 20))
            except socket.timeout:
                if not self._thread.is_alive():
                    # give the runner a moment to store its exception
                    raise self._died()
                if time.monotonic() > deadline:
                    self._broken = True
                    raise TransportTimeout(
                        f"the simulation of {self.name} gave no answer to {what} within "
                        f"{deadline - self._op_start:.0f} s (hung or too slow)") from None
                continue
            if not chunk:
                self._thread.join(timeout=30)
                raise self._died()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _call(self, header: dict, data: bytes = b"", *, timeout_cycles: int = 0):
        if self._closed:
            raise TransportError("the simulation transport is closed")
        if self._broken:
            raise TransportError(f"the simulation of {self.name} no longer answers; "
                                 "close the transport")
        what = header["op"]
        self._op_start = time.monotonic()
        deadline = self._op_start + self.wall_timeout_s + timeout_cycles / self.min_cycles_per_s
        try:
            _send(self._sock, header, data)
        except OSError as exc:
            raise self._died() from exc
        (size,) = struct.unpack("<I", self._recv_exact(4, deadline, what))
        reply = json.loads(self._recv_exact(size, deadline, what))
        payload = self._recv_exact(reply["n"], deadline, what) if reply.get("n") else b""
        if "total" in reply:
            self._total_cycles = reply["total"]
        return reply, payload

    # ---- transport interface ----
    def exchange(self, data: bytes, frames: int, timeout_cycles: int):
        """Send ``data`` into ``rx``; return (bytes of the next ``frames`` response
        frames, cycles taken)."""
        if not isinstance(frames, int) or frames < 0:
            raise ValueError(f"frames must be a non-negative integer, not {frames!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be a positive integer, not {timeout_cycles!r}")
        reply, payload = self._call({"op": "exchange", "frames": frames,
                                     "timeout_cycles": timeout_cycles}, bytes(data),
                                    timeout_cycles=timeout_cycles)
        if not reply.get("ok"):
            if reply.get("error") == "timeout":
                err = TransportTimeout(f"no complete response from {self.name} within "
                                       f"{timeout_cycles} cycles ({len(payload)} byte(s) "
                                       "received)")
                err.received = payload
                err.cycles = reply.get("cycles")
                raise err
            raise TransportError(reply.get("message", f"bridge error {reply!r}"))
        return payload, reply["cycles"]

    def reset(self, cycles: int = 2) -> int:
        """Hold the device's ``rst`` high for ``cycles`` cycles; returns cycles taken."""
        if not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"reset cycles must be a positive integer, not {cycles!r}")
        reply, _ = self._call({"op": "reset", "cycles": cycles}, timeout_cycles=cycles)
        return reply["cycles"]

    @property
    def cycles(self) -> int:
        """Cycles simulated since the simulation started (as of the last operation)."""
        return self._total_cycles

    def query_cycles(self) -> int:
        reply, _ = self._call({"op": "cycles"})
        return reply["total"]

    def close(self) -> None:
        """End the simulation; raises :class:`TransportError` if it failed without an
        error having been raised already."""
        if self._closed:
            return
        reported = self._broken
        self._shutdown(force=self._broken)
        if self._error is not None and not reported:
            raise TransportError(f"the simulation of {self.name} failed: {self._error}")

    def _shutdown(self, *, force: bool) -> None:
        self._closed = True
        if self._sock is not None:
            if not force:
                with contextlib.suppress(Exception):
                    self._op_start = time.monotonic()
                    _send(self._sock, {"op": "close"})
                    self._recv_exact(4, time.monotonic() + 10, "close")
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self._end_thread(force=force)


@contextlib.contextmanager
def rtl_session(top, **options):
    """``with rtl_session(top) as link``: a :class:`HostLink` over a :class:`SimTransport`."""
    with SimTransport(top, **options) as transport:
        yield HostLink(transport)
