"""One-core integer inference top: a host port and an :class:`~.core.InferenceCore`
behind ``rx`` / ``tx`` byte streams (the same framing and port as the training
top, :mod:`spikeforge.hdl.accelerator`). Latency and throughput: those of the
host port (one byte per cycle each way) plus the command's execution.
"""

from __future__ import annotations

from ..accelerator import Accelerator
from .core import InferenceCore

__all__ = ["InferenceAccelerator"]


class InferenceAccelerator(Accelerator):
    """The one-core top (:class:`~spikeforge.hdl.accelerator.Accelerator`) with the
    integer inference core behind the host port."""

    CORE = InferenceCore

    @classmethod
    def check(cls, config):
        InferenceCore.check(config)
