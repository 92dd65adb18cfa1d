"""What a core answers to INFO: one function for the RTL and the host."""

from __future__ import annotations

from ..config import BuildConfig
from ..protocol import COUNTERS
from .defs import CoreGeometry

__all__ = ["CORE_VERSION", "info_payload"]

#: Version of the core's command set, the first byte of INFO.
CORE_VERSION = 3            # 3: READ_DIGEST


def info_payload(config: BuildConfig) -> dict:
    """The fields of the INFO response (:data:`~spikeforge.hdl.protocol.INFO`) of a core
    built from ``config``: what the RTL answers and what the host expects before a build."""
    g = CoreGeometry(config)
    f = config.features
    return {
        "version": CORE_VERSION, "lanes": g.lanes, "neurons_per_core": g.neurons,
        "max_fan_in": g.max_fan_in, "max_time_steps": g.max_time_steps,
        "max_layers": g.max_layers,
        "modes": {"detach": "detach" in f.reset_grad_modes,
                  "through": "through" in f.reset_grad_modes,
                  "inference_only": f.inference_only},
        "fma_stages": g.fma_stages, "weight_depth": g.weight_depth,
        "input_groups": g.in_groups, "neuron_groups": g.neuron_groups,
        "max_payload": config.implementation.max_payload, "counters": len(COUNTERS),
    }
