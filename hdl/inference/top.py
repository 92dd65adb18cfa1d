"""One-core integer inference top: a host port and an :class:`~.core.InferenceCore`
behind ``rx`` / ``tx`` byte streams (the same framing and port as the training
top, :mod:`spikeforge.hdl.accelerator`). Latency and throughput: those of the
host port (one byte per cycle each way) plus the command's execution.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..checked import ArgumentChecked
from ..config import BuildConfig
from ..host_port import HostPort
from .core import InferenceCore

__all__ = ["InferenceAccelerator"]


class InferenceAccelerator(ArgumentChecked, wiring.Component):
    @classmethod
    def check(cls, config):
        InferenceCore.check(config)

    def __init__(self, config: BuildConfig):
        self.config = config
        self.max_payload = config.implementation.max_payload
        self.core = InferenceCore(config)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "rx_abort": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.port = port = HostPort(max_payload=self.max_payload)
        m.submodules.core = core = self.core
        wiring.connect(m, wiring.flipped(self.rx), port.rx)
        wiring.connect(m, port.tx, wiring.flipped(self.tx))
        wiring.connect(m, port.req, core.req)
        wiring.connect(m, core.rsp, port.rsp)
        m.d.comb += port.abort.eq(self.rx_abort)
        return m
