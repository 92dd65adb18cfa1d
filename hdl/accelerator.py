"""One-core accelerator top: a host port and a core behind ``rx``/``tx`` byte streams.

``rx``/``tx`` carry the framed host protocol (:mod:`spikeforge.hdl.protocol`); in
simulation the cocotb bridge drives them, on an FPGA a UART. The host port
checks framing and CRC and buffers responses; the core answers every request.
Latency and throughput: those of :class:`~spikeforge.hdl.host_port.HostPort`
(one byte per cycle each way) plus the command's execution in the core.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring

from .checked import ArgumentChecked
from .config import BuildConfig, ConfigError, check_build_config
from .core import Core
from .host_port import add_host_port, host_members

__all__ = ["Accelerator", "top_class", "top_for"]


class Accelerator(ArgumentChecked, wiring.Component):
    #: the core behind the host port (the integer inference top puts its own here)
    CORE = Core

    @classmethod
    def check(cls, config):
        check_build_config(config)
        if config.features.cores != 1:
            raise ConfigError(f"this top holds one core, not {config.features.cores}")
        cls.CORE.check(config)

    def __init__(self, config: BuildConfig):
        self.config = config
        self.max_payload = config.implementation.max_payload
        self.core = self.CORE(config)
        super().__init__(host_members())

    def elaborate(self, platform):
        m = Module()
        port = add_host_port(m, self, max_payload=self.max_payload)
        m.submodules.core = core = self.core
        wiring.connect(m, port.req, core.req)
        wiring.connect(m, core.rsp, port.rsp)
        return m


def top_class(config: BuildConfig) -> type:
    """The class of the top of ``config`` (see :func:`top_for`); raises
    :class:`ConfigError` with one sentence for a configuration no top holds."""
    check_build_config(config)
    if config.features.weight_bits is not None:
        from .inference import InferenceAccelerator
        return InferenceAccelerator
    if config.features.cores > 1:
        from .system import System
        return System
    return Accelerator


def top_for(config: BuildConfig) -> wiring.Component:
    """The top of ``config`` behind ``rx`` / ``tx`` / ``rx_abort``: the integer inference
    top for a build with ``weight_bits`` (SPEC section 8; one core), the multi-core
    :class:`~spikeforge.hdl.system.System` for more than one core, else the one-core
    :class:`Accelerator`. Every one has ``max_payload`` (the largest request payload)."""
    return top_class(config)(config)
