"""The ``fpga`` engines: the accelerator on a board, over its UART, checked bit for bit.

``spikeforge train --engine fpga`` (:class:`FpgaEngine`) and ``spikeforge infer
--engine fpga`` (:class:`FpgaInferEngine`, the integer inference build of SPEC
section 8) run what ``--engine rtl`` runs, with the board in place of the
Verilator model.

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
from spikeforge.sim.engines.infer_rtl import RtlInferEngine
from spikeforge.sim.engines.rtl import RtlEngine
from spikeforge.sim.errors import UsageError
from spikeforge.sim.golden import model as golden
from spikeforge.sim.host.device import DeviceInfo
from spikeforge.sim.host.driver import DeviceError, HostLink, ProtocolError, TransportError
from spikeforge.sim.host.inference_device import (FitError, InferenceDevice, InferenceInfo,
                                                  plan_network)

__all__ = ["FpgaEngine", "FpgaInferEngine", "BoardUnreachable"]


class BoardUnreachable(UsageError):
    """The serial port cannot be opened or the board on it does not answer."""


def add_link_arguments(p, *, what: str) -> None:
    """``--port``, ``--baud``, ``--build`` and ``--board-timeout`` (for ``what``'s help)."""
    p.add_argument("--port", default=None, metavar="PORT",
                   help=f"fpga engine: the serial port of the board {what} (/dev/ttyUSB0, "
                        "or any pyserial URL)")
    p.add_argument("--baud", type=int, default=None, metavar="BAUD",
                   help="fpga engine: the UART rate of the bitstream (default: the --build "
                        "report's, else 3000000: what spikeforge build makes at a board's "
                        "default clock)")
    p.add_argument("--build", default=None, metavar="DIR",
                   help="fpga engine: the folder spikeforge build wrote the board's "
                        "bitstream to: its report.json gives the configuration (checked "
                        "against the board's INFO), the UART rate and the clock")
    p.add_argument("--board-timeout", type=float, default=5.0, metavar="S",
                   help="fpga engine: seconds to wait for an answer beyond the line time "
                        "(default: %(default)s)")


class _Board:
    """The serial link to a board: checked options, the transport, one-sentence errors."""

    def __init__(self, port, baud, timeout_s, build):
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
        self.port, self.baud, self.timeout_s = port, baud, float(timeout_s)

    @property
    def config(self):
        return None if self.build is None else BuildConfig.from_dict(self.build["config"])

    def transport(self):
        from spikeforge.sim.host.serial_transport import SerialTransport
        return SerialTransport(self.port, baud=self.baud, timeout_s=self.timeout_s)

    def unreachable(self, exc) -> BoardUnreachable:
        return BoardUnreachable(
            f"the board on {self.port} does not answer at {self.baud} baud ({exc}); "
            "is the bitstream loaded and built for this rate?")


class FpgaEngine(RtlEngine):
    """The board over its UART and the golden twin, compared after every command."""

    name, hardware = "fpga", "the board"     # the rest as the rtl engine (train_eval off)

    @classmethod
    def add_arguments(cls, p):
        # --check-traces is the rtl engine's option and serves both
        add_link_arguments(p, what="to train on")

    @classmethod
    def options_from(cls, args) -> dict:
        return {"port": args.port, "baud": args.baud, "timeout_s": args.board_timeout,
                "check_traces": args.check_traces, "build": args.build,
                "check": getattr(args, "check", "digest")}

    def __init__(self, sizes, params: golden.Params, *, weights, precision="fp16", port=None,
                 baud=None, timeout_s=5.0, check_traces=False, build=None, check="digest"):
        self.board = _Board(port, baud, timeout_s, build)
        self.build = self.board.build
        super().__init__(sizes, params, weights=weights, precision=precision, cores=1,
                         preset=None, check_traces=check_traces, check=check)
        self.port, self.baud = self.board.port, self.board.baud
        # the board says what it holds (INFO); the build's report says how it was built
        self.config = self.board.config
        self.preset = None if self.build is None else self.build.get("preset")
        self._wall = {"start": None, "seconds": 0.0}

    def describe(self) -> str:
        return (f"engine fpga: the board on {self.port} at {self.baud} baud, checked bit for "
                "bit against the golden model")

    # -- the link --------------------------------------------------------------------

    def _transport(self):
        """The serial transport to the board (tests put a simulated board here)."""
        return self.board.transport()

    def _open(self):
        return _link(self._transport)

    def __enter__(self):
        self._wall["start"] = time.monotonic()
        try:
            return super().__enter__()
        except (TransportError, ProtocolError) as exc:
            # TransportTimeout included: nothing (or garbage) came back
            raise self.board.unreachable(exc) from None
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

    def identity(self) -> dict:
        info = dataclasses.asdict(self.acc.info)
        info["modes"] = list(info["modes"])
        return {"cores": 1, "port": self.port, "baud": self.baud, "device_info": info,
                **({} if self.build is None else {"config": self.build["config"],
                                                  "preset": self.preset,
                                                  "board": self.build.get("board")})}

    where = " on the board"

    def speed(self, report) -> str:
        return f"{report['host_samples_per_second']:.1f} samples/s over the link"


class FpgaInferEngine(RtlInferEngine):
    """``spikeforge infer --engine fpga``: the integer inference build on a board; the
    :class:`~spikeforge.sim.engines.infer_rtl.RtlInferEngine` with the board in place of
    the Verilator model (the same checks and report keys, plus the port)."""

    name = "fpga"
    kinds = ("integer",)

    @staticmethod
    def add_arguments(parser):
        add_link_arguments(parser, what="to run on")

    def __init__(self, loaded, args=None):
        # what the board holds is read from it when the link opens (INFO)
        self.board = _Board(getattr(args, "port", None), getattr(args, "baud", None),
                            getattr(args, "board_timeout", 5.0), getattr(args, "build", None))
        self.net = loaded.network
        self.T = self.net.T
        self.config = self.board.config
        self.preset = None if self.board.build is None else self.board.build.get("preset")
        self.info = None if self.config is None else InferenceInfo.from_config(self.config)
        self._reset()

    def _transport(self):
        """The serial transport to the board (tests put a simulated board here)."""
        return self.board.transport()

    def _open(self):
        self._session = _link(self._transport)
        link = self._session.__enter__()
        try:
            try:
                self.device = InferenceDevice(link)
            except (TransportError, ProtocolError) as exc:
                raise self.board.unreachable(exc) from None
            if self.info is not None and self.device.info != self.info:
                raise BoardUnreachable(f"the board on {self.board.port} does not hold the "
                                       f"build of --build: it answers {self.device.info}, "
                                       f"the build gives {self.info}")
            self.info = self.device.info
            try:
                plan_network(self.net, self.info)
            except FitError as exc:
                raise UsageError(f"the network does not fit the board on {self.board.port}: "
                                 f"{exc}") from None
            self.device.load(self.net)
            self.device.counters(clear=True)
        except BaseException:
            self.close()
            raise

    def report(self) -> dict:
        out = super().report()
        out.update({"port": self.board.port, "baud": self.board.baud, "preset": self.preset})
        return out


@contextlib.contextmanager
def _link(make_transport):
    """A :class:`HostLink` over the transport ``make_transport()`` opens; closed at the
    end. A port that cannot be opened is one sentence (:class:`BoardUnreachable`)."""
    try:
        transport = make_transport()
    except (TransportError, ValueError) as exc:
        raise BoardUnreachable(str(exc)) from None
    try:
        yield HostLink(transport)
    finally:
        transport.close()


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
