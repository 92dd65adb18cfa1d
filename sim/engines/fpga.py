"""The ``fpga`` training engine: the accelerator on a board, over its UART, checked bit for bit.

:class:`FpgaEngine` is the ``rtl`` engine (:class:`~spikeforge.sim.engines.rtl.RtlEngine`)
with the Verilator session replaced by the board: the same
:class:`~spikeforge.sim.host.device.Device` API over a
:class:`~spikeforge.sim.host.driver.HostLink` on a
:class:`~spikeforge.sim.host.serial_transport.SerialTransport` (``--port``, at
``--baud``, 3 MBd by default: the rate every board top of ``spikeforge build``
makes at its default clock, docs/fpga.md). So ``spikeforge train --engine fpga
--port PORT`` runs the same training loop and the same checks as ``--engine rtl``:
after every sample the board's ``dW`` must equal the golden model's bit for bit,
after every update its weights, in inference every output count.

With ``--build DIR`` (the folder ``spikeforge build`` wrote the bitstream to) the
build's report gives the configuration (the board's ``INFO`` must be that of it:
one sentence naming the fields that differ), the UART rate and the clock, and so
the energy estimate of the run and the chip's own samples per second.

What the board holds is read from it (``INFO``: lanes, neurons, fan-in, time
steps, ``reset_grad`` modes, payload limit), and the network is checked against
that before anything is loaded: one sentence with the numbers when it does not
fit. A port that cannot be opened, or a board that does not answer ``INFO``
(no bitstream loaded, another baud rate), is one sentence, not a traceback.

Metrics: as the rtl engine's from the core's own cycle counters (cycles per
sample and per phase, ideal cycles, FMAs, PE utilisation, ``weights_sha256``),
plus the wall-clock time the board's compute commands took and the samples per
second of the whole run over the link (``host_samples_per_second``: the UART and
the host's checks included, so far below the chip's own rate, which is
``clock_hz / cycles_per_sample``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from spikeforge.hdl.config import BuildConfig, ConfigError
from spikeforge.sim.engines.rtl import RtlEngine
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import DeviceInfo
from spikeforge.sim.host.driver import DeviceError, HostLink, ProtocolError, TransportError

__all__ = ["FpgaEngine", "BoardUnreachable"]


class BoardUnreachable(UsageError):
    """The serial port cannot be opened or the board on it does not answer."""


class FpgaEngine(RtlEngine):
    """The board over its UART and the golden twin, compared after every command."""

    name = "fpga"
    hardware = "the board"
    train_eval = False

    @classmethod
    def add_arguments(cls, p):
        # --check-traces is the rtl engine's option and serves both
        p.add_argument("--port", default=None, metavar="PORT",
                       help="fpga engine: the board's serial port (/dev/ttyUSB0, or any "
                            "pyserial URL)")
        p.add_argument("--baud", type=int, default=None, metavar="BAUD",
                       help="fpga engine: the UART rate of the bitstream (default: 3000000, "
                            "what spikeforge build makes at a board's default clock)")
        p.add_argument("--build", default=None, metavar="DIR",
                       help="fpga engine: the folder spikeforge build wrote the board's "
                            "bitstream to: its report.json gives the configuration (checked "
                            "against the board's INFO), the UART rate and the clock")
        p.add_argument("--board-timeout", type=float, default=5.0, metavar="S",
                       help="fpga engine: seconds to wait for an answer beyond the line time "
                            "(default: %(default)s)")

    @classmethod
    def options_from(cls, args) -> dict:
        return {"port": args.port, "baud": args.baud, "timeout_s": args.board_timeout,
                "check_traces": args.check_traces, "build": args.build}

    def __init__(self, sizes, params: golden.Params, *, weights, precision="fp16", port=None,
                 baud=None, timeout_s=5.0, check_traces=False, build=None):
        if port is None:
            raise UsageError("--engine fpga needs --port PORT: the board's serial port "
                             "(for example /dev/ttyUSB0)")
        from spikeforge.sim.host.serial_transport import DEFAULT_BAUD
        self.build = None if build is None else _build_report(build)
        if baud is None:
            baud = self.build["baud"] if self.build and self.build.get("baud") else DEFAULT_BAUD
        if not isinstance(baud, int) or baud <= 0:
            raise UsageError(f"--baud must be a positive number of baud, not {baud!r}")
        if not timeout_s > 0:
            raise UsageError(f"--board-timeout must be a positive number of seconds, "
                             f"not {timeout_s!r}")
        super().__init__(sizes, params, weights=weights, precision=precision, cores=1,
                         preset=None, check_traces=check_traces)
        self.port, self.baud, self.timeout_s = port, baud, float(timeout_s)
        # the board says what it holds (INFO); the build's report says how it was built
        self.config = None if self.build is None else BuildConfig.from_dict(self.build["config"])
        self.preset = None if self.build is None else self.build.get("preset")
        self._wall = {"start": None, "seconds": 0.0}

    def describe(self) -> str:
        return (f"engine fpga: the board on {self.port} at {self.baud} baud, checked bit for "
                "bit against the golden model")

    # -- the link --------------------------------------------------------------------

    def _transport(self):
        """The serial transport to the board (tests put a simulated board here)."""
        from spikeforge.sim.host.serial_transport import SerialTransport
        return SerialTransport(self.port, baud=self.baud, timeout_s=self.timeout_s)

    @contextlib.contextmanager
    def _link(self):
        try:
            transport = self._transport()
        except (TransportError, ValueError) as exc:
            raise BoardUnreachable(str(exc)) from None
        try:
            yield HostLink(transport)
        finally:
            transport.close()

    def _open(self):
        return self._link()

    def __enter__(self):
        self._wall["start"] = time.monotonic()
        try:
            return super().__enter__()
        except (TransportError, ProtocolError) as exc:
            # TransportTimeout included: nothing (or garbage) came back
            raise BoardUnreachable(
                f"the board on {self.port} does not answer at {self.baud} baud ({exc}); "
                "is the bitstream loaded and built for this rate?") from None
        except DeviceError as exc:
            raise BoardUnreachable(f"the board on {self.port} refused the network: {exc}") \
                from None

    def __exit__(self, *exc):
        if self._wall["start"] is not None:
            self._wall["seconds"] = time.monotonic() - self._wall["start"]
        return super().__exit__(*exc)

    def _connected(self) -> None:
        info = self.acc.info
        if self.config is not None:
            want = DeviceInfo.from_config(self.config)
            if info != want:
                differ = [f"{k} {getattr(info, k)} (the build: {getattr(want, k)})"
                          for k in want.__dataclass_fields__ if getattr(info, k) != getattr(want, k)]
                raise BoardUnreachable(f"the board on {self.port} does not hold the build of "
                                       f"--build: it answers {', '.join(differ)}")
        self._check_fits(info, f"the board on {self.port} ({info.lanes} lanes)")

    # -- the report ------------------------------------------------------------------

    def metrics(self) -> dict:
        out = super().metrics()
        # the board's cycles are its own counters; nothing here was simulated
        for key in ("simulated_cycles_per_second", "simulated_cycles_per_cpu_second"):
            out.pop(key, None)
        seconds = self._wall["seconds"] or (time.monotonic() - self._wall["start"])
        out["board_compute_seconds"] = self.stats["sim_seconds"]
        out["host_seconds"] = seconds
        out["host_samples_per_second"] = self.stats["samples"] / seconds if seconds else 0.0
        if self.build is not None:
            # the chip's own rate at the clock the bitstream runs (its cycles per sample)
            mhz = self.build["target_mhz"]
            out["clock_mhz"] = mhz
            out["chip_samples_per_second"] = (mhz * 1e6 / out["cycles_per_sample"]
                                              if out["cycles_per_sample"] else None)
        return out

    def report(self) -> dict:
        info = dataclasses.asdict(self.acc.info)
        info["modes"] = list(info["modes"])
        out = {"cores": 1, "port": self.port, "baud": self.baud, "device_info": info,
               "check_traces": self.check_traces,
               **({} if self.build is None else {"config": self.build["config"],
                                                 "preset": self.preset,
                                                 "board": self.build.get("board")}),
               "bit_exact": self.mismatch is None}
        if self._finished_training():
            out.update(self.metrics())
        return out

    def summary(self, report) -> str | None:
        if not self._finished_training():
            return None
        return (f"{self.stats['samples']} samples bit-exact on the board; "
                f"{report['cycles_per_sample']:.0f} cycles per sample (ideal "
                f"{report['ideal_cycles_per_sample']:.0f}, {report['ratio_to_ideal']:.2f}x), "
                f"PE utilisation {report['pe_utilisation']:.2f}, "
                f"{report['host_samples_per_second']:.1f} samples/s over the link")


def _build_report(folder) -> dict:
    """The report.json of a ``spikeforge build`` of the whole accelerator in ``folder``;
    one sentence when there is none."""
    import json
    from pathlib import Path
    path = Path(folder) / "report.json"
    try:
        report = json.loads(path.read_text())
    except OSError:
        raise UsageError(f"--build {folder}: no report.json there (give the folder "
                         "spikeforge build wrote the bitstream to)") from None
    except ValueError:
        raise UsageError(f"--build {folder}: report.json is not JSON") from None
    if report.get("block") != "accelerator" or "config" not in report:
        raise UsageError(f"--build {folder}: the build is of block {report.get('block')!r}, "
                         "not of the whole accelerator")
    try:
        BuildConfig.from_dict(report["config"])
    except (ConfigError, TypeError, KeyError) as exc:
        raise UsageError(f"--build {folder}: its configuration is not valid: {exc}") from None
    return report
