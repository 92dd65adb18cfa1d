"""``spikeforge generate``: the Verilog of a multi-core accelerator and its manifest.

``spikeforge generate --cores N [--lanes P] [--preset NAME] [--set key=value ...] -o DIR``
writes

* ``DIR/spikeforge_top.v``: the system (:class:`~spikeforge.hdl.system.System`,
  top module ``spikeforge_top``, ports ``clk``, ``rst`` (synchronous, active
  high) and the host byte streams ``rx`` / ``tx``), with one copy of the core's
  Verilog (module ``spikeforge_core``, instantiated at every node): converting
  the core once keeps a 64-core elaboration within seconds of a one-core one;
* ``DIR/manifest.json``: the full configuration, the ports (``component.metadata``),
  the mesh, each core's memories, the run-time and mapping limits, the INFO a core
  answers and the elaboration time.

The configuration is the preset (default ``tiny``) with ``--cores`` (laid out as the
squarest mesh), ``--lanes`` and each ``--set key=value`` applied; the keys are those
of the option table (:data:`spikeforge.sim.options.CONFIG_OPTIONS`). Every value is
checked (and the system's components are checked) before anything is written; the
two files are written into a temporary folder and moved into ``DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from spikeforge.hdl import protocol as proto
from spikeforge.hdl.config import ConfigError, PRESETS, BuildConfig, preset
from spikeforge.sim.errors import UsageError
from spikeforge.sim.options import CONFIG_OPTIONS

__all__ = ["add_arguments", "main", "build_config", "elaborate_system", "manifest",
           "generate", "TOP", "CORE_MODULE", "MAX_MESH_SIDE"]

TOP = "spikeforge_top"
CORE_MODULE = "spikeforge_core"
MAX_MESH_SIDE = 32      # Features.rows / cols


def mesh_for(cores) -> tuple[int, int]:
    """The squarest ``(rows, cols)`` with ``rows * cols == cores`` and both sides at
    most :data:`MAX_MESH_SIDE`; a :class:`UsageError` naming the allowed counts otherwise."""
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise UsageError(f"--cores must be a positive integer, not {cores!r}")
    shapes = [(r, cores // r) for r in range(1, MAX_MESH_SIDE + 1)
              if cores % r == 0 and cores // r <= MAX_MESH_SIDE]
    if not shapes:
        def fits(n):
            return any(n % r == 0 and n // r <= MAX_MESH_SIDE
                       for r in range(1, MAX_MESH_SIDE + 1))
        below = next((n for n in range(min(cores, MAX_MESH_SIDE ** 2), 0, -1) if fits(n)), None)
        above = next((n for n in range(cores + 1, MAX_MESH_SIDE ** 2 + 1) if fits(n)), None)
        near = " or ".join(str(n) for n in (below, above) if n is not None)
        raise UsageError(
            f"--cores {cores} fits no mesh: the cores must be rows x cols with rows and cols "
            f"from 1 to {MAX_MESH_SIDE} (nearest: {near})")
    return max((s for s in shapes if s[0] <= s[1]), key=lambda s: s[0])


def _parse_set(item: str) -> tuple[str, object]:
    if "=" not in item:
        raise UsageError(f"--set {item!r} must be key=value; keys: {', '.join(sorted(CONFIG_OPTIONS))}")
    key, value = item.split("=", 1)
    key = key.strip().replace("-", "_")
    if key not in CONFIG_OPTIONS:
        raise UsageError(f"--set {item}: unknown key {key!r}; allowed: "
                         f"{', '.join(sorted(CONFIG_OPTIONS))}")
    option = CONFIG_OPTIONS[key]
    try:
        return key, option.type(value.strip())
    except ValueError:
        kind = "an integer" if option.type is int else "a value"
        raise UsageError(f"--set {item}: {key} takes {kind}, not {value!r}") from None


def build_config(*, preset_name: str = "tiny", cores: int | None = None,
                 lanes: int | None = None, sets=()) -> BuildConfig:
    """The configuration ``generate`` builds: checked entirely (the system's components
    included), or a :class:`UsageError` with one sentence."""
    from spikeforge.hdl.system import System
    if preset_name not in PRESETS:
        raise UsageError(f"unknown preset {preset_name!r}; allowed: {', '.join(sorted(PRESETS))}")
    values = dict(_parse_set(item) for item in sets)
    if cores is not None:
        values["cores"] = cores
    if lanes is not None:
        values["lanes"] = lanes
    changes = {}
    for key, value in values.items():
        if key == "cores":
            rows, cols = mesh_for(value)
            changes.update(rows=rows, cols=cols)
        else:
            try:
                changes.update(CONFIG_OPTIONS[key].changes(value))
            except ConfigError as exc:
                raise UsageError(str(exc)) from None
    try:
        config = preset(preset_name, **changes)
        System.check(config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return config


def elaborate_system(config: BuildConfig) -> tuple[str, dict, float]:
    """``(verilog, port metadata, seconds)`` of the system of ``config``: the core is
    converted once (module :data:`CORE_MODULE`) and instantiated at every node."""
    from spikeforge.hdl.core import Core
    from spikeforge.hdl.system import CoreInstance, System
    from spikeforge.sim.verilator.harness import elaborate
    start = time.perf_counter()
    core_v = elaborate(Core(config), name=CORE_MODULE)
    top = System(config, core_factory=lambda k: CoreInstance(CORE_MODULE))
    top_v = elaborate(top, name=TOP)
    seconds = time.perf_counter() - start
    return top_v + "\n" + core_v, top.metadata.as_json(), seconds


def manifest(config: BuildConfig, *, preset_name: str, ports: dict, seconds: float) -> dict:
    """Everything a user of the generated Verilog needs to know about it."""
    from spikeforge.hdl.core.defs import CoreGeometry
    from spikeforge.hdl.noc.packet import PacketFormat
    from spikeforge.hdl.system import HOST_NODE
    from spikeforge.sim.host.device import DeviceInfo
    f, impl = config.features, config.implementation
    g = CoreGeometry(config)
    fmt = PacketFormat.from_config(f, impl)
    info = DeviceInfo.from_config(config)
    P = f.lanes
    return {
        "top": TOP,
        "verilog": f"{TOP}.v",
        "core_module": CORE_MODULE,
        "preset": preset_name,
        "configuration": config.to_dict(),
        "clock": "clk",
        "reset": "rst (synchronous, active high)",
        "ports": ports,
        "host_protocol": {
            "max_request_payload": impl.max_payload + proto.ROUTE_BYTES,
            "core_max_payload": impl.max_payload,
            "route_command": int(proto.Command.ROUTE),
            "address_modes": {m.name: m.value for m in proto.AddressMode},
            "commands": {c.name: int(c) for c in proto.Command},
        },
        "mesh": {
            "rows": f.rows, "cols": f.cols, "cores": f.cores,
            "core_node": "core k is node k: column k % cols, row k // cols",
            "host_node": HOST_NODE, "host_router": list(fmt.coords(HOST_NODE)),
            "flit_width": impl.flit_width, "router_buffer_depth": impl.router_buffer_depth,
            "header": {name: fmt.header.members[name].width for name in fmt.header.members},
            "max_packet_length": fmt.max_length,
            "routing": "XY (dimension-ordered)",
        },
        "memory_map": {
            "per_core": {
                "weights": {"banks": P, "words_per_bank": g.weight_depth, "width": 16,
                            "layout": "weight (i, j) of a layer at bank (i + j) mod lanes, "
                                      "address wbase + (i div lanes) * n_in + j"},
                "weight_gradients": {"banks": P, "words_per_bank": g.weight_depth, "width": 16},
                "accumulators": {"banks": P, "words_per_bank": g.acc_depth, "width": 16},
                "du": {"banks": P, "words_per_bank": g.du_depth, "width": 16},
                "history": {"banks": P, "words_per_bank": g.hist_groups,
                            "width": f.max_time_steps, "kinds": ["s", "m", "du != 0"],
                            "input_groups": g.in_groups, "neuron_groups": g.neuron_groups},
                "potentials": ({"banks": P, "words_per_bank": g.du_depth, "width": 16}
                               if g.through else None),
                "request_staging": {"words": max(1, impl.max_payload // 2), "width": 16},
            },
            "host_port_buffers_bytes": 2 * (impl.max_payload + proto.ROUTE_BYTES),
            "dispatcher_buffer_bytes": impl.max_payload + proto.ROUTE_BYTES + 1,
        },
        "run_time_limits": {
            "neurons_per_core": f.neurons_per_core, "max_fan_in": f.max_fan_in,
            "max_time_steps": f.max_time_steps, "max_layers_per_core": f.max_layers,
            "weight_words_per_bank": g.weight_depth,
            "reset_grad_modes": list(f.reset_grad_modes),
            "inference_only": f.inference_only,
        },
        "mapping_limits": {
            "cores": f.cores,
            "neurons": f.cores * f.neurons_per_core,
            "neurons_per_core": f.neurons_per_core,
            "blocks_per_core": f.max_layers,
            "max_fan_in": f.max_fan_in,
            "weight_words_per_core": P * g.weight_depth,
            "max_time_steps": f.max_time_steps,
        },
        "info": info.__dict__ | {"modes": list(info.modes)},
        "elaboration_seconds": round(seconds, 3),
    }


def _write_atomically(out_dir: Path, files: dict[str, str]) -> None:
    """Write ``files`` into ``out_dir`` through a temporary folder: all or nothing."""
    out_dir = out_dir.resolve()
    parent = out_dir if out_dir.is_dir() else out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".generate-", dir=parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        if out_dir.is_dir():
            for name in files:
                os.replace(tmp / name, out_dir / name)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def generate(out_dir, *, preset_name: str = "tiny", cores: int | None = None,
             lanes: int | None = None, sets=()) -> dict:
    """Check the configuration, elaborate, write ``out_dir/spikeforge_top.v`` and
    ``out_dir/manifest.json``; return the manifest."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file; give a folder")
    config = build_config(preset_name=preset_name, cores=cores, lanes=lanes, sets=sets)
    verilog_text, ports, seconds = elaborate_system(config)
    man = manifest(config, preset_name=preset_name, ports=ports, seconds=seconds)
    _write_atomically(out_dir, {f"{TOP}.v": verilog_text,
                                "manifest.json": json.dumps(man, indent=2, sort_keys=True) + "\n"})
    return man


def add_arguments(p) -> None:
    p.add_argument("--cores", type=int, metavar="N",
                   help="cores, laid out as the squarest rows x cols mesh (default: the preset's)")
    p.add_argument("--lanes", type=int, metavar="P", help="FMA lanes per core")
    p.add_argument("--preset", default="tiny",
                   help=f"base configuration: {', '.join(sorted(PRESETS))} (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"set a configuration value; keys: {', '.join(sorted(CONFIG_OPTIONS))}")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")


def main(args) -> int:
    man = generate(args.out, preset_name=args.preset, cores=args.cores, lanes=args.lanes,
                   sets=args.set)
    f = man["configuration"]["features"]
    print(f"spikeforge generate: {man['mesh']['rows']}x{man['mesh']['cols']} mesh, "
          f"{man['mesh']['cores']} core{'s' if man['mesh']['cores'] != 1 else ''} of "
          f"{f['lanes']} lane{'s' if f['lanes'] != 1 else ''} ({man['preset']}), elaborated in "
          f"{man['elaboration_seconds']:.1f} s -> {Path(args.out) / man['verilog']}, "
          f"{Path(args.out) / 'manifest.json'}")
    return 0
