"""Command-line options that set build-configuration fields: one table for every command.

:data:`CONFIG_OPTIONS` maps an option (``--stages``) to the fields of
:class:`~spikeforge.hdl.config.BuildConfig` it sets (``fma_stages``) and back
(the value a configuration has, for reports). ``spikeforge build``,
``spikeforge train --engine rtl`` and ``spikeforge bench noc`` add their options
from it with :func:`add_config_arguments` and turn the values given into a
configuration with :func:`config_from_options`; a bad value is a
:class:`~spikeforge.sim.errors.UsageError` with the configuration's own sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from spikeforge.hdl.config import BuildConfig, ConfigError, mesh_shape_for, preset
from spikeforge.sim.errors import UsageError

__all__ = ["ConfigOption", "CONFIG_OPTIONS", "add_config_arguments", "config_changes",
           "config_from_options", "option_values"]


def _section(config: BuildConfig, name: str):
    f, i = config.features, config.implementation
    return getattr(f, name) if hasattr(f, name) else getattr(i, name)


@dataclass(frozen=True)
class ConfigOption:
    """One option: ``flag`` sets ``fields`` of the configuration."""

    flag: str                                   # "--stages"
    fields: tuple[str, ...]                     # ("fma_stages",)
    metavar: str
    help: str
    #: value -> {field: value}; by default the value goes to the one field
    to_fields: Callable[[object], dict] | None = None
    #: the option's value in a configuration; by default its one field's value
    of_config: Callable[[BuildConfig], object] | None = None
    #: how a value is read from the command line (``int`` unless said otherwise)
    type: Callable[[str], object] = int

    @property
    def name(self) -> str:
        """The option's key (``--flit-width`` -> ``flit_width``), also argparse's dest."""
        return self.flag[2:].replace("-", "_")

    def changes(self, value) -> dict:
        return self.to_fields(value) if self.to_fields else {self.fields[0]: value}

    def value(self, config: BuildConfig):
        return self.of_config(config) if self.of_config else _section(config, self.fields[0])


#: option key -> option (keys are the argparse dests and the report's keys)
CONFIG_OPTIONS: dict[str, ConfigOption] = {o.name: o for o in (
    ConfigOption("--lanes", ("lanes",), "P", "FMA lanes per engine"),
    ConfigOption("--stages", ("fma_stages",), "S", "FMA pipeline stages"),
    ConfigOption("--cores", ("rows", "cols"), "N", "cores (the squarest mesh)",
                 to_fields=lambda n: dict(zip(("rows", "cols"), mesh_shape_for(n))),
                 of_config=lambda c: c.features.cores),
    ConfigOption("--flit-width", ("flit_width",), "BITS", "NoC flit width in bits"),
    ConfigOption("--buffer-depth", ("router_buffer_depth",), "FLITS",
                 "router input buffer depth in flits"),
    ConfigOption("--neurons", ("neurons_per_core",), "N", "neurons per core"),
    ConfigOption("--fan-in", ("max_fan_in",), "N", "largest fan-in of a layer"),
    ConfigOption("--time-steps", ("max_time_steps",), "T", "largest number of time steps"),
    ConfigOption("--layers", ("max_layers",), "L", "layers per core (blocks of layers)"),
    ConfigOption("--max-payload", ("max_payload",), "BYTES",
                 "largest host request / response payload of a core"),
    ConfigOption("--memory", ("memory",), "KIND",
                 "memory primitive of the lane memories (auto, bram, lutram)", type=str),
    ConfigOption("--history-write", ("history_write",), "HOW",
                 "how a history bit is written: word (read-modify-write, LUT RAM) or bit "
                 "(bit write enable, block RAM with a bit mask such as the iCE40's)", type=str),
    ConfigOption("--counters", ("counters",), "WHERE",
                 "where the counters live: registers (32 bits each) or bram (low halves in "
                 "registers, high halves in a block RAM)", type=str),
    ConfigOption("--reset-grad-modes", ("reset_grad_modes",), "MODES",
                 "reset_grad modes built, joined by '+' (detach, through, detach+through)",
                 to_fields=lambda v: {"reset_grad_modes": tuple(v.split("+")) if v else ()},
                 of_config=lambda c: "+".join(c.features.reset_grad_modes), type=str),
)}


def add_config_arguments(parser, names, *, defaults=None, help_prefix=""):
    """Add the options ``names`` (keys of :data:`CONFIG_OPTIONS`) to ``parser``
    (integers; ``None`` unless ``defaults`` gives a value)."""
    defaults = defaults or {}
    for name in names:
        o = CONFIG_OPTIONS[name]
        text = help_prefix + o.help
        if name in defaults:
            text += " (default: %(default)s)"
        parser.add_argument(o.flag, type=o.type, metavar=o.metavar,
                            default=defaults.get(name), help=text)


def config_changes(**values) -> dict:
    """Configuration field changes of the option values given (``None``: not given).
    Raises :class:`ConfigError` for a value no configuration can have (e.g. 0 cores)."""
    changes = {}
    for name, value in values.items():
        if value is not None:
            changes.update(CONFIG_OPTIONS[name].changes(value))
    return changes


def config_from_options(preset_name: str | None = None, **values) -> BuildConfig:
    """The named preset (or the default configuration) with the option values applied;
    a bad preset or value raises :class:`UsageError` with the configuration's sentence."""
    try:
        base = preset(preset_name) if preset_name is not None else BuildConfig()
        changes = config_changes(**values)
        return base.replace(**changes) if changes else base
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def option_values(config: BuildConfig, names) -> dict:
    """The values of the options ``names`` in ``config`` (for reports and summaries)."""
    return {name: CONFIG_OPTIONS[name].value(config) for name in names}
