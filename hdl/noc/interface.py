"""Network interface: the packet streams a core sees <-> the flits of its router's local port.

A core sends a packet on ``tx`` (``stream.Signature(flit_width)``) as one
header word (:attr:`PacketFormat.header <spikeforge.hdl.noc.packet.PacketFormat.header>`)
followed by exactly ``header.length`` payload words. The interface fills in
the header's ``src_x``/``src_y`` with its own position (a core need not know
where it is) and marks the last flit for the routers from the length.

It delivers packets on ``rx`` (``stream.Signature(fmt.beat)``): every flit with
``data``, ``first`` (this is the header: view ``data`` as ``fmt.header``) and
``last``. Packets arrive whole and contiguous; packets from one source arrive
in the order they were sent.

Both directions are combinational pass-throughs (no added latency, no
buffering): ``tx.ready`` is the router's local input FIFO not being full, a
register; ``rx.valid``/``rx.payload`` come from the router's arbitration and
stay stable until ``rx.ready`` (the core may hold ``rx.ready`` low as long as it
likes; the network back-pressures, it never drops).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .packet import PacketFormat

__all__ = ["NetworkInterface"]


class NetworkInterface(wiring.Component):
    """Network interface of the node at column ``x``, row ``y``.

    Core side: ``tx`` (in, words), ``rx`` (out, beats). Router side:
    ``to_router`` (out, flits) and ``from_router`` (in, flits).
    """

    def __init__(self, fmt: PacketFormat, x: int, y: int):
        self.fmt, self.x, self.y = fmt, x, y
        super().__init__({
            "tx": In(fmt.tx_signature()),
            "rx": Out(fmt.rx_signature()),
            "to_router": Out(fmt.link_signature()),
            "from_router": In(fmt.link_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt

        # Core -> network: stamp the source, mark the tail from the header's length.
        remaining = Signal(fmt.length_bits)  # payload flits still to come; 0 = next word is a header
        header = fmt.header(self.tx.payload)
        out = self.to_router
        m.d.comb += [
            out.valid.eq(self.tx.valid),
            self.tx.ready.eq(out.ready),
        ]
        with m.If(remaining == 0):
            stamped = fmt.header(out.payload.data)
            m.d.comb += [
                out.payload.data.eq(self.tx.payload),
                stamped.src_x.eq(self.x),
                stamped.src_y.eq(self.y),
                out.payload.last.eq(header.length == 0),
            ]
            with m.If(out.valid & out.ready):
                m.d.sync += remaining.eq(header.length)
        with m.Else():
            m.d.comb += [
                out.payload.data.eq(self.tx.payload),
                out.payload.last.eq(remaining == 1),
            ]
            with m.If(out.valid & out.ready):
                m.d.sync += remaining.eq(remaining - 1)

        # Network -> core: add the header mark.
        first = Signal(init=1)
        inp = self.from_router
        m.d.comb += [
            self.rx.valid.eq(inp.valid),
            inp.ready.eq(self.rx.ready),
            self.rx.payload.data.eq(inp.payload.data),
            self.rx.payload.last.eq(inp.payload.last),
            self.rx.payload.first.eq(first),
        ]
        with m.If(inp.valid & inp.ready):
            m.d.sync += first.eq(inp.payload.last)
        return m
