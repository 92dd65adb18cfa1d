"""A built model run under cocotb in a background thread that connects back over a Unix socket.

:class:`BackgroundSimulation` is what the simulation transport
(:class:`~spikeforge.sim.verilator.session.SimTransport`) and the UART session
(:class:`~spikeforge.sim.verilator.uart_session.UartSession`) share: a temporary
folder holding the socket's path; the thread that runs
:func:`spikeforge.sim.verilator.harness.run` with a cocotb module (its exception
kept for the host thread); accepting the module's connection within a wall-clock
limit (a simulation that ends first raises :meth:`_died`); and the end: joining
the thread, ending a simulator that does not stop by its process id, and removing
the folder. What goes over the socket is the subclass's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from spikeforge.sim.host.driver import TransportError, TransportTimeout
from spikeforge.sim.verilator import harness

__all__ = ["BackgroundSimulation"]


class BackgroundSimulation:
    """The simulation thread and its socket (see the module doc). ``name`` is the
    Verilog top's name (and the build's cache key), ``prefix`` the temporary
    folder's. Subclasses set ``build_dir`` (the build's folder) before
    :meth:`_start` and define ``close``."""

    def __init__(self, name: str, *, prefix: str):
        self.name = name
        self.build_dir = None
        self._thread = None
        self._error: BaseException | None = None
        self._sock = None
        self._tmpdir = tempfile.mkdtemp(prefix=prefix)
        self._path = os.path.join(self._tmpdir, "s")

    # ---- start ----
    def _start(self, *, verilog: str, test_module: str, args: dict, build_args,
               connect_timeout_s: float, **options) -> None:
        """Run ``test_module`` on the built model in the background (``args`` are its
        cocotb arguments, ``options`` further arguments of ``harness.run``) and accept
        its connection on the socket (``self._sock``, 0.25 s timeouts)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._path)
            listener.listen(1)
            self._thread = threading.Thread(
                target=self._run, name=f"spikeforge-sim-{self.name}", daemon=True,
                kwargs=dict(verilog=verilog, test_module=test_module, args=args,
                            build_args=build_args, options=options))
            self._thread.start()
            self._sock = self._accept(listener, connect_timeout_s)
        finally:
            listener.close()

    def _run(self, *, verilog, test_module, args, build_args, options):
        try:
            harness.run(None, verilog_text=verilog, name=self.name, extra_build_args=build_args,
                        test_module=test_module, args=args, **options)
        except BaseException as exc:  # reported to the host thread
            self._error = exc

    def _died(self) -> TransportError:
        """The error to raise when the simulation has ended (override for detail)."""
        detail = f": {self._error}" if self._error is not None else ""
        return TransportError(f"the simulation of {self.name} ended{detail}")

    def _accept(self, listener, timeout_s):
        listener.settimeout(0.25)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sock, _ = listener.accept()
                sock.settimeout(0.25)
                return sock
            except socket.timeout:
                pass
            if not self._thread.is_alive():
                raise self._died()
            if time.monotonic() > deadline:
                raise TransportTimeout(f"the simulation of {self.name} did not connect within "
                                       f"{timeout_s:.0f} s")

    # ---- end ----
    def _end_thread(self, *, force: bool) -> None:
        """Wait for the simulation to end (2 s when ``force``, else 30 s), end its
        simulator if it does not, and remove the temporary folder."""
        if self._thread is not None:
            self._thread.join(timeout=2 if force else 30)
            if self._thread.is_alive():
                self._kill_simulator()
                self._thread.join(timeout=30)
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _simulator_pids(self) -> list[int]:
        """Process ids of the simulator this object started (children of this
        process running the built model)."""
        if self.build_dir is None:
            return []
        exe = str(Path(self.build_dir) / self.name)
        me = os.getpid()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == me and argv0 == exe:
                pids.append(int(entry.name))
        return pids

    def simulator_cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the simulator process, or ``None``
        where it cannot be read (no ``/proc``)."""
        pids = self._simulator_pids()
        if len(pids) != 1:
            return None
        try:
            fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _kill_simulator(self) -> None:
        """End the simulator process this object started, by its process id."""
        for pid in self._simulator_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            with contextlib.suppress(Exception):
                self.close()
