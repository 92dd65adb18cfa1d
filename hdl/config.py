"""Build configuration of the accelerator: what is built and how it is built.

Two frozen dataclasses, checked when created and serialisable to JSON, are the
single source of the parameters for the RTL, the golden model, the tests and
the reports:

* :class:`Features` — what the hardware can do (cores and mesh shape, lanes per
  engine, neurons per core, maximum fan-in and time steps, the ``reset_grad``
  modes built, inference-only builds).
* :class:`Implementation` — how it is built (FMA pipeline stages, NoC flit width
  and buffer depth, the memory primitive of the lane memories, the largest host
  payload).

:class:`BuildConfig` joins the two; :data:`PRESETS` names the usual ones.
Run-time parameters (layer sizes, constants, minibatch, mapping) are loaded by
the host and live with the compiler and the golden model, not here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from .protocol import DEFAULT_MAX_PAYLOAD, MAX_LENGTH

__all__ = [
    "ConfigError", "Features", "Implementation", "BuildConfig", "PRESETS",
    "preset", "mesh_shape_for", "FMA_MAX_STAGES", "check_build_config",
]

RESET_GRAD_MODES = ("detach", "through")
MEMORY_PRIMITIVES = ("auto", "bram", "lutram")
HISTORY_WRITES = ("word", "bit")
COUNTER_STORES = ("registers", "bram")
#: Most pipeline registers of an fp16 FMA (:mod:`spikeforge.hdl.fp16`).
FMA_MAX_STAGES = 8


class ConfigError(ValueError):
    """A configuration value is out of range; the message names it and what is allowed."""


def _check_int(name, value, *, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"{name} must be {allowed}, not {value}")


#: Weight bits the integer inference datapath packs (16 // B weights per 16-bit word).
INFERENCE_WEIGHT_BITS = (4, 8)
#: Potential bits the integer inference datapath can hold.
INFERENCE_POTENTIAL_BITS = (2, 16)


def _check_integer_inference(f) -> None:
    if f.weight_bits is None:
        if f.potential_bits is not None:
            raise ConfigError(f"potential_bits ({f.potential_bits}) needs weight_bits: set "
                              f"weight_bits to one of {list(INFERENCE_WEIGHT_BITS)}")
        return
    if not f.inference_only:
        raise ConfigError(f"weight_bits ({f.weight_bits!r}) builds the integer inference core "
                          "and needs inference_only=True")
    if isinstance(f.weight_bits, bool) or f.weight_bits not in INFERENCE_WEIGHT_BITS:
        raise ConfigError(f"weight_bits must be one of {list(INFERENCE_WEIGHT_BITS)}, "
                          f"not {f.weight_bits!r}")
    lo, hi = INFERENCE_POTENTIAL_BITS
    if f.potential_bits is None:
        raise ConfigError(f"an integer inference build needs potential_bits ({lo}..{hi})")
    _check_int("potential_bits", f.potential_bits, lo=lo, hi=hi)
    if f.lanes & (f.lanes - 1):
        raise ConfigError(f"lanes must be a power of two in an integer inference build, "
                          f"not {f.lanes}")



def check_build_config(config) -> None:
    """Raise :class:`ConfigError` unless ``config`` is a :class:`BuildConfig`."""
    if not isinstance(config, BuildConfig):
        raise ConfigError(f"config must be a BuildConfig, not {type(config).__name__}")


def mesh_shape_for(cores: int) -> tuple[int, int]:
    """The most square ``(rows, cols)`` mesh with exactly ``cores`` nodes, rows <= cols."""
    _check_int("cores", cores, lo=1, hi=1024)
    rows = int(math.isqrt(cores))
    while cores % rows:
        rows -= 1
    return rows, cores // rows


@dataclass(frozen=True)
class Features:
    """What the generated accelerator can do."""

    rows: int = 1
    cols: int = 1
    lanes: int = 16
    neurons_per_core: int = 256
    max_fan_in: int = 256
    max_time_steps: int = 16
    max_layers: int = 4
    reset_grad_modes: tuple[str, ...] = ("detach",)
    inference_only: bool = False
    # integer inference datapath (SPEC section 8, hdl/inference/): weight bits B (4 or 8)
    # and potential bits Q of the build; None: no integer datapath
    weight_bits: int | None = None
    potential_bits: int | None = None

    def __post_init__(self):
        _check_int("rows", self.rows, lo=1, hi=32)
        _check_int("cols", self.cols, lo=1, hi=32)
        _check_int("lanes", self.lanes, lo=1, hi=256)
        _check_int("neurons_per_core", self.neurons_per_core, lo=1, hi=65536)
        _check_int("max_fan_in", self.max_fan_in, lo=1, hi=65536)
        _check_int("max_time_steps", self.max_time_steps, lo=1, hi=1024)
        _check_int("max_layers", self.max_layers, lo=1, hi=64)
        modes = tuple(self.reset_grad_modes)
        object.__setattr__(self, "reset_grad_modes", modes)
        if self.inference_only:
            if modes:
                raise ConfigError(
                    "reset_grad_modes must be empty in an inference-only build, "
                    f"not {list(modes)}")
        else:
            if not modes:
                raise ConfigError(
                    f"reset_grad_modes must name at least one of {list(RESET_GRAD_MODES)} "
                    "in a training build")
        for mode in modes:
            if mode not in RESET_GRAD_MODES:
                raise ConfigError(
                    f"reset_grad mode {mode!r} is unknown; allowed: {list(RESET_GRAD_MODES)}")
        if len(set(modes)) != len(modes):
            raise ConfigError(f"reset_grad_modes lists a mode twice: {list(modes)}")
        _check_integer_inference(self)

    @property
    def cores(self) -> int:
        return self.rows * self.cols

    @property
    def integer_inference(self) -> bool:
        """The build is the integer inference core of SPEC section 8 (``hdl/inference``)."""
        return self.weight_bits is not None

    @property
    def stores_potentials(self) -> bool:
        """Potential history is built only when the ``through`` mode is."""
        return "through" in self.reset_grad_modes


@dataclass(frozen=True)
class Implementation:
    """How the accelerator is built; does not change what it computes."""

    fma_stages: int = 6  # meets 100 MHz on ECP5-85F speed 6 (docs/fp16.md)
    flit_width: int = 32
    router_buffer_depth: int = 16
    memory: str = "auto"    # ram_style of the lane memories: auto, bram (block), lutram
    max_payload: int = DEFAULT_MAX_PAYLOAD   # bytes of a host request / response payload
    # how bit t of a spike / window / du != 0 history word is written: "word" (the whole
    # word, read-modify-write through a borrowed asynchronous read port: LUT RAM, ECP5)
    # or "bit" (a bit write enable, synchronous read ports only: block RAM with a bit
    # mask, the iCE40 EBR; an FPGA without LUT RAM would build "word" from flip-flops)
    history_write: str = "word"
    # where the READ_COUNTERS counters live: "registers" (32 bits each) or "bram" (the low
    # 16 bits in registers, the high 16 in a block RAM, carried over one counter a cycle)
    counters: str = "registers"

    def __post_init__(self):
        _check_int("fma_stages", self.fma_stages, lo=1, hi=FMA_MAX_STAGES)
        _check_int("flit_width", self.flit_width, lo=16, hi=256)
        _check_int("router_buffer_depth", self.router_buffer_depth, lo=1, hi=64)
        _check_int("max_payload", self.max_payload, lo=64, hi=MAX_LENGTH)
        if self.memory not in MEMORY_PRIMITIVES:
            raise ConfigError(
                f"memory must be one of {list(MEMORY_PRIMITIVES)}, not {self.memory!r}")
        if self.history_write not in HISTORY_WRITES:
            raise ConfigError(f"history_write must be one of {list(HISTORY_WRITES)}, "
                              f"not {self.history_write!r}")
        if self.counters not in COUNTER_STORES:
            raise ConfigError(f"counters must be one of {list(COUNTER_STORES)}, "
                              f"not {self.counters!r}")


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines the generated RTL."""

    features: Features = field(default_factory=Features)
    implementation: Implementation = field(default_factory=Implementation)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "BuildConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a build configuration must be a JSON object, not {type(data).__name__}")
        unknown = set(data) - {"features", "implementation"}
        if unknown:
            raise ConfigError(
                f"unknown build configuration section(s) {sorted(unknown)}; "
                "allowed: ['features', 'implementation']")
        return cls(features=_from_fields(Features, data.get("features", {})),
                   implementation=_from_fields(Implementation, data.get("implementation", {})))

    def replace(self, **changes) -> "BuildConfig":
        """A copy with feature or implementation fields changed by name."""
        feat_names = {f.name for f in dataclasses.fields(Features)}
        impl_names = {f.name for f in dataclasses.fields(Implementation)}
        feat = {k: v for k, v in changes.items() if k in feat_names}
        impl = {k: v for k, v in changes.items() if k in impl_names}
        unknown = set(changes) - feat_names - impl_names
        if unknown:
            raise ConfigError(f"unknown configuration field(s) {sorted(unknown)}")
        return BuildConfig(dataclasses.replace(self.features, **feat),
                           dataclasses.replace(self.implementation, **impl))


def _from_fields(cls, data):
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__.lower()} must be a JSON object, not {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__.lower()} field(s) {sorted(unknown)}; "
                          f"allowed: {sorted(names)}")
    data = dict(data)
    if "reset_grad_modes" in data:
        data["reset_grad_modes"] = tuple(data["reset_grad_modes"])
    return cls(**data)


PRESETS: dict[str, BuildConfig] = {
    # Smallest useful build: CI simulations.
    "tiny": BuildConfig(Features(lanes=4, neurons_per_core=64, max_fan_in=64,
                                 max_time_steps=8, max_layers=2),
                        Implementation(fma_stages=3)),
    # The digits network (64-128-10) on one core.
    "digits": BuildConfig(Features(lanes=16, neurons_per_core=256, max_fan_in=128,
                                   max_time_steps=16, max_layers=3)),
    # Both reset_grad modes built (potential history memory included).
    "digits-through": BuildConfig(Features(lanes=16, neurons_per_core=256, max_fan_in=128,
                                           max_time_steps=16, max_layers=3,
                                           reset_grad_modes=("detach", "through"))),
    # Multi-core presets (hdl/system.py). Each core holds a share of a network: its
    # memories are sized for the blocks the mapping compiler gives it.
    # iCE40 UP5K (iCEBreaker: 5,280 LCs, 8 DSPs, 30 EBRs): the smallest core, one lane,
    # memories of a few EBRs each; histories, accumulator flags and counters in EBRs (the
    # iCE40 has no LUT RAM). Measured after packing: 7,471 LCs, 20 EBRs, 4 DSPs: the
    # core's control does not fit an UP5K yet (docs/multicore.md).
    "up5k": BuildConfig(Features(lanes=1, neurons_per_core=16, max_fan_in=32,
                                 max_time_steps=8, max_layers=2),
                        Implementation(fma_stages=3, max_payload=256, history_write="bit",
                                       counters="bram")),
    # ULX3S-85F (208 DP16KD, 83,640 LUT4): 2x2 cores of 2 lanes, 40 neurons and fan-in
    # 128 each, enough for 64-128-10. The whole four-core accelerator packs into 60,854
    # TRELLIS_COMB (73 %) and 79 DP16KD (scripts/fit_sweep.py, docs/core.md); not yet
    # placed and routed as a whole.
    "ulx3s-2x2": BuildConfig(Features(rows=2, cols=2, lanes=2, neurons_per_core=40,
                                      max_fan_in=128, max_time_steps=16, max_layers=3),
                             Implementation(max_payload=512)),
    # The 64-core elaboration (8x8): small cores.
    "mesh-8x8": BuildConfig(Features(rows=8, cols=8, lanes=2, neurons_per_core=32,
                                     max_fan_in=64, max_time_steps=8, max_layers=2),
                            Implementation(fma_stages=3, max_payload=256)),
    # Forward only.
    "inference": BuildConfig(Features(lanes=16, neurons_per_core=256, max_fan_in=256,
                                      max_time_steps=16, max_layers=4,
                                      reset_grad_modes=(), inference_only=True)),
}


def preset(name: str, *, cores: int | None = None, **changes) -> BuildConfig:
    """The named preset, optionally with a core count (laid out as the squarest mesh)
    and other fields changed."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; allowed: {sorted(PRESETS)}")
    config = PRESETS[name]
    if cores is not None:
        rows, cols = mesh_shape_for(cores)
        changes = {"rows": rows, "cols": cols, **changes}
    return config.replace(**changes) if changes else config


# --- integer inference builds (SPEC section 8, hdl/inference/) ------------------------------

PRESETS.update({
    # The integer inference core (SPEC section 8): 8-bit weights, two per 16-bit word.
    "inference-int8": BuildConfig(Features(lanes=16, neurons_per_core=256, max_fan_in=256,
                                           max_time_steps=32, max_layers=4,
                                           reset_grad_modes=(), inference_only=True,
                                           weight_bits=8, potential_bits=16)),
    # The same with 4-bit weights, four per word.
    "inference-int4": BuildConfig(Features(lanes=16, neurons_per_core=256, max_fan_in=256,
                                           max_time_steps=32, max_layers=4,
                                           reset_grad_modes=(), inference_only=True,
                                           weight_bits=4, potential_bits=16)),
    # Smallest integer inference build: CI simulations.
    "inference-int-tiny": BuildConfig(Features(lanes=8, neurons_per_core=32, max_fan_in=32,
                                               max_time_steps=8, max_layers=3,
                                               reset_grad_modes=(), inference_only=True,
                                               weight_bits=8, potential_bits=12),
                                      Implementation(max_payload=256)),
})
