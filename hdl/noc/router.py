"""Five-port wormhole router with XY routing, registered requests and registered grants.

Micro-architecture::

    in[p] --> route (XY) --> input buffer (flit + port, depth D) --> crossbar (owner) --> out[q]
                               |  want[p]: registered "head is a header for q"
                               v
                 grant per output: busy/owner registers, round robin, decided a cycle ahead

* **Input buffers** (:class:`~spikeforge.hdl.noc.buffer.InputBuffer`): a
  first-word-fall-through FIFO of ``router_buffer_depth`` entries in LUT RAM
  whose flags are flip-flops. Each entry holds the flit and the output port
  it takes here (:func:`~spikeforge.hdl.noc.routing.xy_route`, compared with
  constants as the flit arrives, since every router knows its position at
  elaboration; meaningful for headers only). ``ready`` is the buffer's
  ``notfull`` flag: no combinational path crosses a link backwards.
* **Requests** are registers: ``want[p]`` (one bit per output) is loaded from
  the entry that becomes the head, so arbitration starts at flip-flops.
* **Arbitration.** Every output has a round-robin arbiter over the inputs
  that may turn into it (:data:`~spikeforge.hdl.noc.routing.ALLOWED_TURNS`);
  the pointer moves past the winner at each grant. Grants are registers,
  made when the output is idle or in the cycle its packet's tail leaves
  (so packets follow each other without a gap); an idle output offers its
  last owner's next header at once, without a grant.
* **Wormhole switching.** A grant locks the output to the winning input until
  the flit marked ``last`` has passed: packets stay contiguous on every link,
  and an output's ``payload`` never changes while ``valid`` waits for
  ``ready`` (the ``lib.stream`` rule).

Timing at zero load: a header written into an input buffer at edge ``t``
leaves at cycle ``t`` (and is in the next router's buffer at edge ``t + 1``)
if its output is idle and was last used by the same input, else at cycle
``t + 1`` (one cycle for the grant). The rest of the packet follows at one
flit per cycle; each output passes one flit per cycle. With
``router_buffer_depth >= 2`` a single stream flows at full rate, back-to-back
packets included (with depth 1 a link carries at most one flit every two
cycles, because ``ready`` does not look at the same cycle's read).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..checked import ArgumentChecked
from ..config import ConfigError, Implementation
from .buffer import InputBuffer
from .packet import PacketFormat
from .routing import ALLOWED_TURNS, EAST, LOCAL, NORTH, PORT_NAMES, SOUTH, WEST

__all__ = ["Router", "PORTS"]

PORTS = 5
#: Bits of an output port number, stored with every buffered flit.
ROUTE_BITS = 3


class Router(ArgumentChecked, wiring.Component):
    """The router at column ``x``, row ``y`` of a ``fmt.rows x fmt.cols`` mesh.

    Ports: ``i[p]`` (flits in, ``In(fmt.link_signature())``) and ``o[p]``
    (flits out) for ``p`` in NORTH, EAST, SOUTH, WEST, LOCAL (0..4).
    ``fmt.flit_width`` sets the data width and ``depth`` the input FIFOs.
    """

    @classmethod
    def check(cls, fmt, x, y, *, depth=Implementation().router_buffer_depth):
        if not (0 <= x < fmt.cols and 0 <= y < fmt.rows):
            raise ConfigError(f"router position ({x}, {y}) is outside the "
                              f"{fmt.rows}x{fmt.cols} mesh")
        if depth < 1:
            raise ConfigError(f"router_buffer_depth must be at least 1, not {depth}")

    def __init__(self, fmt: PacketFormat, x: int, y: int, *,
                 depth: int = Implementation().router_buffer_depth):
        self.fmt, self.x, self.y, self.depth = fmt, x, y, depth
        link = fmt.link_signature()
        super().__init__({"i": In(link).array(PORTS), "o": Out(link).array(PORTS)})

    def route(self, head):
        """One-hot output request (5 bits, port order) of a header flit's data at this router.

        Comparisons are against this router's constant position; a direction
        that leaves the mesh is constant 0 (see :func:`~spikeforge.hdl.noc.routing.xy_route`).
        """
        fmt, x, y = self.fmt, self.x, self.y
        view = fmt.header(head)
        zero = Const(0, 1)
        east = (view.dst_x > x) if x < fmt.cols - 1 else zero
        west = (view.dst_x < x) if x > 0 else zero
        south = (view.dst_y > y) if y < fmt.rows - 1 else zero
        north = (view.dst_y < y) if y > 0 else zero
        go = [None] * PORTS
        go[EAST] = east
        go[WEST] = west & ~east
        go[SOUTH] = south & ~(east | west)
        go[NORTH] = north & ~(east | west | south)
        go[LOCAL] = ~(east | west | south | north)
        return Cat(*go)

    def route_port(self, head):
        """The output port number (3 bits) of a header flit's data at this router."""
        go = self.route(head)
        return Mux(go[EAST], EAST, Mux(go[WEST], WEST, Mux(go[SOUTH], SOUTH,
                                                              Mux(go[NORTH], NORTH, LOCAL))))

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        flit_bits = fmt.flit.size

        heads, head_valid, pops, wants = [], [], [], []
        for p in range(PORTS):
            name = PORT_NAMES[p]
            legal = [q for q in range(PORTS) if p in ALLOWED_TURNS[q]]

            def onehot(port):
                return Cat(*((port == q) if q in legal else Const(0, 1) for q in range(PORTS)))

            # Each entry: the flit and the port it leaves by (meaningful for headers only),
            # computed from the link's payload as the flit is written.
            buf = InputBuffer(width=flit_bits + ROUTE_BITS, depth=self.depth,
                              peek=(flit_bits, flit_bits + ROUTE_BITS))
            m.submodules[f"buf_{name}"] = buf
            in_port = self.route_port(self.i[p].payload.data)
            in_want = self.route(self.i[p].payload.data) & Cat(*(int(q in legal) for q in range(PORTS)))
            m.d.comb += [
                buf.w_data.eq(Cat(self.i[p].payload, in_port)),
                buf.w_en.eq(self.i[p].valid),
                self.i[p].ready.eq(buf.w_rdy),
            ]
            head = fmt.flit(buf.r_data[:flit_bits])
            # Inside a packet (after its header has left) the head flit is not a header.
            in_packet = Signal(name=f"in_packet_{name}")
            pop = Signal(name=f"pop_{name}")
            m.d.comb += buf.r_en.eq(pop)
            # ``want[q]``: the head is a header for output q. A register, set from the
            # entry that becomes the head: the one after a tail that leaves (the second
            # entry held, or else the one arriving now) or one written into the empty buffer.
            arriving = Signal(PORTS, name=f"arriving_{name}")  # the flit written now, as a header
            m.d.comb += arriving.eq(Mux(self.i[p].valid & buf.w_rdy, in_want, 0))
            want = Signal(PORTS, name=f"want_{name}")
            with m.If(pop):
                m.d.sync += [
                    in_packet.eq(~head.last),
                    want.eq(Mux(head.last, Mux(buf.p_rdy, onehot(buf.p_data), arriving), 0)),
                ]
            with m.Elif(~buf.r_rdy):
                m.d.sync += want.eq(Mux(in_packet, 0, arriving))
            heads.append(head)
            head_valid.append(buf.r_rdy)
            pops.append(pop)
            wants.append(want)

        pop_terms = [[] for _ in range(PORTS)]
        for q in range(PORTS):
            name = PORT_NAMES[q]
            sources = sorted(ALLOWED_TURNS[q])  # the inputs this output can be fed from
            n = len(sources)
            # ``owner``: the input this output belongs to while ``busy`` (until its tail has
            # passed), and the last one it served while idle. Grants are registers, made a
            # cycle before the output carries the header; an idle output offers a header
            # of its last owner at once, without a grant (a stream through the router
            # keeps one cycle per router and one flit per cycle).
            busy = Signal(name=f"busy_{name}")
            owner = Signal(range(n), name=f"owner_{name}")
            pointer = Signal(range(n), name=f"pointer_{name}")
            winner = Signal(range(n), name=f"winner_{name}")
            any_req = Signal(name=f"any_req_{name}")
            asks = [wants[p][q] for p in sources]
            valids = Array(head_valid[p] for p in sources)
            offers = Array(asks)
            flits = Array(heads[p].as_value() for p in sources)
            out = self.o[q]
            m.d.comb += [
                out.valid.eq(Mux(busy, valids[owner], offers[owner])),
                out.payload.eq(flits[owner]),
            ]
            xfer = out.valid & out.ready
            tail = xfer & fmt.flit(flits[owner]).last
            for k, p in enumerate(sources):
                pop_terms[p].append(xfer & (owner == k))
            # Round robin over the other inputs: the first requester at or after the pointer.
            reqs = [ask & (owner != k) for k, ask in enumerate(asks)]
            with m.Switch(pointer):
                for start in range(n):
                    with m.Case(start):
                        order = [(start + k) % n for k in range(n)]
                        for k, idx in enumerate(order):
                            with (m.If if k == 0 else m.Elif)(reqs[idx]):
                                m.d.comb += [winner.eq(idx), any_req.eq(1)]
            grant = [owner.eq(winner), pointer.eq(Mux(winner == n - 1, 0, winner + 1)), busy.eq(1)]
            with m.If(tail):
                # The next packet follows the tail without a gap when another input waits.
                with m.If(any_req):
                    m.d.sync += grant
                with m.Else():
                    m.d.sync += busy.eq(0)
            with m.Elif(~busy):
                with m.If(out.valid):
                    m.d.sync += busy.eq(1)  # the last owner's header, offered: locked until its tail
                with m.Elif(any_req):
                    m.d.sync += grant
        for p in range(PORTS):
            m.d.comb += pops[p].eq(_any(pop_terms[p]))
        return m


def _any(terms):
    out = 0
    for t in terms:
        out = out | t
    return out
