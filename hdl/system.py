"""Multi-core accelerator top: ``rows x cols`` cores on the mesh NoC behind one host port.

``rx``/``tx`` carry the framed host protocol (:mod:`spikeforge.hdl.protocol`), as
on the one-core :class:`~spikeforge.hdl.accelerator.Accelerator`. The host port
sits at node 0 (column 0, row 0, a corner router) and shares that node's local
port with core 0 (:class:`LocalShare`). Core ``k`` is node ``k``: column
``k % cols``, row ``k // cols``.

Addressing (``docs/host-protocol.md``, "Addressing"): a request whose command is
not ``ROUTE`` goes to core 0 and its response comes back unchanged, so a 1x1
system answers exactly like the one-core top. ``ROUTE`` carries an
:data:`~spikeforge.hdl.protocol.ADDRESS` (one core, all cores or a range), then
the command and its payload. The :class:`~spikeforge.hdl.dispatch.Dispatcher`
(:mod:`spikeforge.hdl.dispatch`, the host node) stores the routed request,
sends it to every addressed core as NoC packets (all of them first, so the cores
work in parallel), then collects the responses one core after the other in
ascending core order by granting each core the right to answer
(:class:`CoreNode` holds a core's response until its grant). A ``CORE`` route
returns the core's response unchanged; ``ALL`` and ``RANGE`` return status
``OK`` and one :data:`~spikeforge.hdl.protocol.ROUTE_RECORD` (status, length)
plus payload per core. A bad address (core or range outside the mesh, empty
range, unknown mode, payload shorter than the address and command) is answered
``BAD_ARGUMENT`` by the dispatcher without reaching any core.

Packets (:class:`PacketType` in the header's ``type``): ``REQUEST`` packets carry
up to ``max_length`` request beats, one :data:`~spikeforge.hdl.protocol.BEAT_LAYOUT`
per payload flit; ``GRANT`` is a header-only packet; a core answers with one
``RESPONSE`` packet per response beat (header plus one flit: the core does not
know its response's length in advance).

Latency of a request to one core: the host port's, plus ``n`` cycles to store
the ``n`` request beats, ``n + ceil(n / max_length) + hops + 1`` to deliver them,
the core's execution, then two flits per response beat, streamed through to the
host port (for ``ALL`` / ``RANGE`` each core's response is stored first, to count
its length for the record); measured numbers in docs/multicore.md.
"""

from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import protocol as proto
from .checked import ArgumentChecked
from .config import BuildConfig, ConfigError, check_build_config
from .core import Core
from .core.counters import NOC_EVENTS
from .dispatch import Dispatcher, PacketType
from .host_port import add_host_port, host_members
from .noc.mesh import Mesh
from .noc.packet import PacketFormat
from .protocol import BEAT_LAYOUT

__all__ = ["System", "Dispatcher", "CoreNode", "LocalShare", "CoreInstance", "PacketType", "HOST_NODE"]

#: Node (core number) whose router the host port is attached to.
HOST_NODE = 0


def _beat_word(beat):
    """A beat in the low bits of a flit word."""
    return beat.as_value()


class CoreNode(wiring.Component):
    """A core's side of its network interface: request packets into ``req`` beats,
    ``rsp`` beats into response packets to the host node once granted.

    ``net_rx`` takes the interface's beats, ``net_tx`` gives it words. Header
    flits are taken at once; request payload flits pass to ``req`` as they come
    (back-pressured by the core). A ``GRANT`` allows one response: every ``rsp``
    beat goes out as a two-flit ``RESPONSE`` packet (header, beat); the grant ends
    with the beat marked ``last``. Throughput: a request beat per cycle, a response
    beat every two cycles.
    """

    def __init__(self, fmt: PacketFormat, *, host=(0, 0)):
        self.fmt, self.host = fmt, host
        super().__init__({
            "net_rx": In(fmt.rx_signature()),
            "net_tx": Out(fmt.tx_signature()),
            "req": Out(stream.Signature(BEAT_LAYOUT)),
            "rsp": In(stream.Signature(BEAT_LAYOUT)),
            "flits": Out(NOC_EVENTS),       # flits taken and given this cycle (counters)
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        rx, tx = self.net_rx, self.net_tx
        m.d.comb += [self.flits.flits_in.eq(rx.valid & rx.ready),
                     self.flits.flits_out.eq(tx.valid & tx.ready)]

        granted = Signal()
        head = fmt.header(rx.payload.data)
        with m.If(rx.payload.first):
            m.d.comb += rx.ready.eq(1)
            with m.If(rx.valid & (head.type == PacketType.GRANT)):
                m.d.sync += granted.eq(1)
        with m.Else():
            m.d.comb += [
                self.req.valid.eq(rx.valid),
                self.req.payload.eq(rx.payload.data[:BEAT_LAYOUT.size]),
                rx.ready.eq(self.req.ready),
            ]

        beat_phase = Signal()        # 0: the header of the next beat's packet, 1: the beat
        out_head = fmt.header(tx.payload)
        with m.If(granted & self.rsp.valid):
            m.d.comb += tx.valid.eq(1)
            with m.If(~beat_phase):
                m.d.comb += [out_head.dst_x.eq(self.host[0]), out_head.dst_y.eq(self.host[1]),
                             out_head.type.eq(PacketType.RESPONSE), out_head.length.eq(1)]
                with m.If(tx.ready):
                    m.d.sync += beat_phase.eq(1)
            with m.Else():
                m.d.comb += [tx.payload.eq(_beat_word(self.rsp.payload)),
                             self.rsp.ready.eq(tx.ready)]
                with m.If(tx.ready):
                    m.d.sync += beat_phase.eq(0)
                    with m.If(self.rsp.payload.last):
                        m.d.sync += granted.eq(0)
        return m


class LocalShare(wiring.Component):
    """Two clients on one network interface: the dispatcher (``a``) and core 0's
    node (``b``).

    Sending: whole packets from either, ``a`` first when both offer a header; the
    owner is kept until the packet's last flit (counted from the header's
    ``length``). Receiving: ``RESPONSE`` packets go to ``a``, all others to ``b``,
    decided on the header and kept to the packet's ``last`` flit. Combinational,
    no added latency.
    """

    def __init__(self, fmt: PacketFormat):
        self.fmt = fmt
        super().__init__({
            "a_tx": In(fmt.tx_signature()), "a_rx": Out(fmt.rx_signature()),
            "b_tx": In(fmt.tx_signature()), "b_rx": Out(fmt.rx_signature()),
            "net_tx": Out(fmt.tx_signature()), "net_rx": In(fmt.rx_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        out = self.net_tx

        # sending
        busy = Signal()               # an owner is chosen for the packet on offer
        sel = Signal()                # 0: a, 1: b
        in_payload = Signal()         # the header went; ``remaining`` payload flits follow
        remaining = Signal(fmt.length_bits)
        cur = Mux(busy, sel, ~self.a_tx.valid)
        with m.If(cur):
            m.d.comb += [out.valid.eq(self.b_tx.valid), out.payload.eq(self.b_tx.payload),
                         self.b_tx.ready.eq(out.ready)]
        with m.Else():
            m.d.comb += [out.valid.eq(self.a_tx.valid), out.payload.eq(self.a_tx.payload),
                         self.a_tx.ready.eq(out.ready)]
        length = fmt.header(out.payload).length
        with m.If(out.valid):
            with m.If(~busy):
                m.d.sync += [busy.eq(1), sel.eq(cur)]
            with m.If(out.ready):
                with m.If(~in_payload):
                    with m.If(length == 0):
                        m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += [in_payload.eq(1), remaining.eq(length)]
                with m.Else():
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.d.sync += [busy.eq(0), in_payload.eq(0)]

        # receiving
        inp = self.net_rx
        to_a_reg = Signal()
        to_a = Mux(inp.payload.first, fmt.header(inp.payload.data).type == PacketType.RESPONSE,
                   to_a_reg)
        m.d.comb += [self.a_rx.payload.eq(inp.payload), self.b_rx.payload.eq(inp.payload)]
        with m.If(to_a):
            m.d.comb += [self.a_rx.valid.eq(inp.valid), inp.ready.eq(self.a_rx.ready)]
        with m.Else():
            m.d.comb += [self.b_rx.valid.eq(inp.valid), inp.ready.eq(self.b_rx.ready)]
        with m.If(inp.valid & inp.ready & inp.payload.first):
            m.d.sync += to_a_reg.eq(to_a)
        return m


class System(ArgumentChecked, wiring.Component):
    """``features.rows x features.cols`` cores, the mesh and the host port behind
    ``rx`` / ``tx`` byte streams (see the module docstring)."""

    @classmethod
    def check(cls, config, *, core_factory=None):
        check_build_config(config)
        Core.check(config)
        PacketFormat.from_config(config.features, config.implementation)

    def __init__(self, config: BuildConfig, *, core_factory=None):
        """``core_factory(k)``, if given, makes the component (``req`` / ``rsp`` beat
        streams) at node ``k`` instead of a :class:`~spikeforge.hdl.core.Core` (tests).
        It must take a whole request before it answers."""
        if core_factory is not None and not callable(core_factory):
            raise ConfigError(f"core_factory must be callable, not {core_factory!r}")
        self.config = config
        self.core_factory = core_factory
        f, impl = config.features, config.implementation
        self.fmt = PacketFormat.from_config(f, impl)
        self.cores = f.cores
        #: Largest request payload the host may send (a routed core request plus its route).
        self.max_payload = impl.max_payload + proto.ROUTE_BYTES
        super().__init__(host_members())

    def elaborate(self, platform):
        m = Module()
        fmt = self.fmt
        port = add_host_port(m, self, max_payload=self.max_payload)
        m.submodules.dispatch = disp = Dispatcher(fmt, cores=self.cores,
                                                  depth=self.max_payload + 1)
        m.submodules.mesh = mesh = Mesh(self.config.features, self.config.implementation)
        m.submodules.share = share = LocalShare(fmt)
        wiring.connect(m, port.req, disp.req)
        wiring.connect(m, disp.rsp, port.rsp)
        host = fmt.coords(HOST_NODE)
        for k in range(self.cores):
            core = Core(self.config) if self.core_factory is None else self.core_factory(k)
            node = CoreNode(fmt, host=host)
            m.submodules[f"core_{k}"] = core
            m.submodules[f"node_{k}"] = node
            wiring.connect(m, node.req, core.req)
            wiring.connect(m, core.rsp, node.rsp)
            if hasattr(core, "noc"):
                m.d.comb += [core.noc.eq(node.flits), core.index.eq(k)]
            if k == HOST_NODE:
                wiring.connect(m, disp.net_tx, share.a_tx)
                wiring.connect(m, share.a_rx, disp.net_rx)
                wiring.connect(m, node.net_tx, share.b_tx)
                wiring.connect(m, share.b_rx, node.net_rx)
                wiring.connect(m, share.net_tx, mesh.tx[k])
                wiring.connect(m, mesh.rx[k], share.net_rx)
            else:
                wiring.connect(m, node.net_tx, mesh.tx[k])
                wiring.connect(m, mesh.rx[k], node.net_rx)
        return m


class CoreInstance(wiring.Component):
    """A core as an instance of the Verilog module ``module`` (a
    :class:`~spikeforge.hdl.core.Core` converted once on its own): lets a system of many
    identical cores be written out with one copy of the core's Verilog
    (``spikeforge generate``). Ports: those of ``Core`` (``req``, ``rsp``), plus the
    ``sync`` domain's ``clk`` / ``rst``."""

    def __init__(self, module: str):
        self.module = module
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "noc": In(NOC_EVENTS),
            "index": In(16),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = Instance(
            self.module,
            i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_req__valid=self.req.valid, i_req__payload=self.req.payload,
            o_req__ready=self.req.ready,
            o_rsp__valid=self.rsp.valid, o_rsp__payload=self.rsp.payload,
            i_rsp__ready=self.rsp.ready, i_noc=self.noc.as_value(), i_index=self.index)
        return m
