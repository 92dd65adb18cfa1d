"""The integer inference build (SPEC section 8): an event-driven, multiplier-free
datapath for ``inference_only`` builds with ``weight_bits`` set (docs/inference.md)."""

from .command import info_fields
from .core import InferenceCore
from .engine import InferenceEngine
from .geometry import InferenceGeometry
from .top import InferenceAccelerator

__all__ = ["InferenceAccelerator", "InferenceCore", "InferenceEngine", "InferenceGeometry",
           "info_fields"]
