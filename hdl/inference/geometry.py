"""Geometry of the integer inference core: every size derived from a :class:`BuildConfig`.

* ``lanes`` processing elements, each with one weight memory of 16-bit words holding
  ``per_word = 16 // B`` weights (two 8-bit or four 4-bit weights, read in one cycle);
  a lane adds its ``per_word`` weights for one input event per cycle, so the core does
  ``group = lanes * per_word`` SOPs per cycle and updates ``group`` neurons together.
* Neuron ``i`` of a layer: group ``i // group``, slot ``i % group`` (lane
  ``slot // per_word``, sub-word ``slot % per_word``).
* ``weight_depth`` words per lane: ``ceil(max_neurons / group) * max_fan_in``
  (one full layer of the largest size); ``bias_rows`` rows of ``group`` Q-bit biases.
* Spike bitmaps: words of ``group`` bits, ``step_words`` (a power of two covering
  ``max(max_fan_in, max_neurons)`` bits) per step, ``max_time_steps`` steps; word ``w``
  of step ``t`` at ``t * step_words + w``, for the host's input and a layer's output
  (word = group) alike.
"""

from __future__ import annotations

from amaranth.utils import bits_for, ceil_log2

from ..checked import ArgumentChecked
from ..config import BuildConfig, ConfigError, check_build_config

__all__ = ["InferenceGeometry", "GeometryChecked", "VERSION", "port_range"]

#: INFO version of the inference core.
VERSION = 1


def port_range(n: int) -> range:
    """A port shape for values 0 .. n-1 (never zero bits wide: Verilator rejects those)."""
    return range(max(2, n))


class InferenceGeometry:
    """Sizes of one integer inference core (raises :class:`ConfigError` on a build
    that is not an integer inference build)."""

    def __init__(self, config: BuildConfig):
        check_build_config(config)
        f = config.features
        if not f.integer_inference:
            raise ConfigError("the integer inference core needs weight_bits (4 or 8) and "
                              "inference_only=True, and this configuration has weight_bits=None")
        if f.cores != 1:
            raise ConfigError(f"the integer inference core is built one per top, not "
                              f"{f.cores} cores")
        self.config = config
        self.lanes = f.lanes
        self.B = f.weight_bits
        self.Q = f.potential_bits
        self.per_word = 16 // self.B
        self.group = self.lanes * self.per_word
        self.max_neurons = f.neurons_per_core
        self.max_fan_in = f.max_fan_in
        self.max_T = f.max_time_steps
        self.max_layers = f.max_layers
        self.max_payload = config.implementation.max_payload
        self.groups = -(-self.max_neurons // self.group)        # groups of the largest layer
        self.weight_depth = self.groups * self.max_fan_in
        self.bias_rows = self.groups * self.max_layers
        widest = max(self.max_fan_in, self.max_neurons)
        self.step_words = 1 << ceil_log2(-(-widest // self.group))
        self.spike_depth = self.max_T * self.step_words
        self.pieces = self.group // 16 if self.group >= 16 else 1   # 16-bit pieces per word
        if self.group % 16 and self.group > 16:
            raise ConfigError(f"the neuron group ({self.group}) must be a multiple of 16")
        if self.group < 16:
            raise ConfigError(f"lanes * (16 // weight_bits) must be at least 16 (one 16-bit "
                              f"spike piece per bitmap word), not {self.group}")
        # accumulator of x: |x| <= max_fan_in * 2**(B-1), signed
        self.acc_bits = self.B + bits_for(self.max_fan_in) + 1
        self.count_bits = bits_for(self.max_T)
        if self.Q > 16:
            raise ConfigError(f"potential_bits must be at most 16 (16-bit results), "
                              f"not {self.Q}")


class GeometryChecked(ArgumentChecked):
    """A component of the inference core built from one :class:`InferenceGeometry`
    (its only argument, checked before the component exists)."""

    @classmethod
    def check(cls, geo):
        if not isinstance(geo, InferenceGeometry):
            raise TypeError(f"geo must be an InferenceGeometry, not {type(geo).__name__}")
