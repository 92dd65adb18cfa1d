"""A ``rows x cols`` mesh of routers with a network interface at every node.

Node ``n`` is column ``x = n % cols``, row ``y = n // cols``; its core-side
ports are ``tx[n]`` and ``rx[n]`` (see
:class:`~spikeforge.hdl.noc.interface.NetworkInterface`). Neighbouring routers
are joined east-west and north-south; the ports on the mesh's edges are tied
off (inputs never valid, outputs never ready; the routing function never
chooses them, which :func:`~spikeforge.hdl.noc.routing.check_routing` proves
before elaboration, so synthesis removes their logic).

Latency at zero load: a header written on ``tx`` enters the source router's
buffer and takes one or two cycles per router traversed (one when the
router's output was last used by the same input, two when it must be granted
first; see :mod:`~spikeforge.hdl.noc.router`), so it appears on the
destination's ``rx`` between ``hops + 1`` and ``2 (hops + 1)`` cycles after
it was accepted; the rest of the packet follows one flit per cycle.
Throughput: one flit per cycle per link and per local port.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import Features, Implementation
from .interface import NetworkInterface
from .packet import PacketFormat
from .router import Router
from .routing import EAST, LOCAL, NORTH, SOUTH, WEST, check_routing

__all__ = ["Mesh"]


class Mesh(wiring.Component):
    """Routers and network interfaces of a ``features.rows x features.cols`` mesh.

    Parameters come from :class:`~spikeforge.hdl.config.Features` (``rows``,
    ``cols``) and :class:`~spikeforge.hdl.config.Implementation`
    (``flit_width``, ``router_buffer_depth``). ``self.fmt`` is the
    :class:`~spikeforge.hdl.noc.packet.PacketFormat` shared with Python.
    """

    def __init__(self, features: Features = Features(), implementation: Implementation = Implementation()):
        self.fmt = PacketFormat.from_config(features, implementation)
        self.depth = implementation.router_buffer_depth
        self.routing = check_routing(self.fmt.rows, self.fmt.cols)
        n = self.fmt.rows * self.fmt.cols
        super().__init__({
            "tx": In(self.fmt.tx_signature()).array(n),
            "rx": Out(self.fmt.rx_signature()).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        routers = {}
        for y in range(fmt.rows):
            for x in range(fmt.cols):
                node = fmt.node(x, y)
                r = routers[x, y] = Router(fmt, x, y, depth=self.depth)
                ni = NetworkInterface(fmt, x, y)
                m.submodules[f"router_{x}_{y}"] = r
                m.submodules[f"ni_{x}_{y}"] = ni
                wiring.connect(m, wiring.flipped(self.tx[node]), ni.tx)
                wiring.connect(m, ni.rx, wiring.flipped(self.rx[node]))
                wiring.connect(m, ni.to_router, r.i[LOCAL])
                wiring.connect(m, r.o[LOCAL], ni.from_router)
        for (x, y), r in routers.items():
            for out, inp, nxt in ((EAST, WEST, (x + 1, y)), (SOUTH, NORTH, (x, y + 1)),
                                  (WEST, EAST, (x - 1, y)), (NORTH, SOUTH, (x, y - 1))):
                if nxt in routers:
                    wiring.connect(m, r.o[out], routers[nxt].i[inp])
                else:  # mesh edge: nothing arrives, nothing is taken
                    m.d.comb += [r.i[out].valid.eq(0), r.o[out].ready.eq(0)]
        return m

