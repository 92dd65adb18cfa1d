"""The host node of the multi-core system: routed requests to the cores as packets,
their responses back in order (formats and addressing: :mod:`spikeforge.hdl.system`).

:class:`Dispatcher` is the wiring of four parts and the refusal of a bad request:

* :class:`RequestStore` -- a request's beats into the :class:`DispatchBuffer`
  (``ROUTE`` and its :data:`~spikeforge.hdl.protocol.ADDRESS` taken off, the address
  decoded into the cores it names), one beat per cycle;
* :class:`PacketSender` -- the stored request to every addressed core as ``REQUEST``
  packets, then one ``GRANT`` a core, in ascending core order, one flit per cycle;
* :class:`ResponseCollector` -- the granted core's ``RESPONSE`` packets into the host
  response: streamed through for one core, stored and emitted as a record per core
  for several;
* :class:`DispatchBuffer` -- the byte buffer the request is stored in and a core's
  response payload after it, read at one cursor.

One request at a time: the next request's first beat is taken the cycle after the
response's last beat.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from . import protocol as proto
from .checked import ArgumentChecked
from .config import ConfigError
from .core.request import held_until_release
from .noc.packet import PacketFormat
from .protocol import BEAT_LAYOUT, AddressMode, Command, Status

__all__ = ["Dispatcher", "RequestStore", "PacketSender", "ResponseCollector", "DispatchBuffer",
           "BufferWrite", "BufferCursor", "PacketType"]


class PacketType(enum.Enum, shape=4):
    """The header ``type`` of the system's packets."""
    REQUEST = 1     # request beats for a core (one per payload flit)
    GRANT = 2       # header only: the core may send its response
    RESPONSE = 3    # one response beat (one payload flit), core -> host node


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")


class BufferWrite(wiring.Signature):
    """A byte into the dispatch buffer (members from the writer's side)."""

    def __init__(self, depth: int):
        super().__init__({"en": Out(1), "addr": Out(range(depth)), "data": Out(8)})


class BufferCursor(wiring.Signature):
    """The dispatch buffer's read cursor (members from the reader's side): ``pos``
    moves to 0 on ``restart``, else one byte on ``advance``; ``data`` is the byte at
    ``pos``."""

    def __init__(self, depth: int):
        super().__init__({"restart": Out(1), "advance": Out(1), "pos": In(bits_for(depth)),
                          "data": In(8)})


class DispatchBuffer(ArgumentChecked, wiring.Component):
    """``depth`` bytes, written through ``write`` and read at the cursor ``read``.

    ``data`` is the byte at ``pos`` as it was in the cycle before (the memory's read
    port is addressed by the next ``pos``); a byte written at ``pos`` reads two
    cycles later.
    """

    @classmethod
    def check(cls, *, depth):
        _check_positive("depth", depth)

    def __init__(self, *, depth: int):
        self.depth = depth
        super().__init__({"write": In(BufferWrite(depth)), "read": In(BufferCursor(depth))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.buf = buf = Memory(shape=8, depth=self.depth, init=[])
        wr = buf.write_port()
        rd = buf.read_port()
        cur = self.read
        pos_d = Signal.like(cur.pos)            # pos in the next cycle (the read address)
        m.d.comb += [wr.en.eq(self.write.en), wr.addr.eq(self.write.addr),
                     wr.data.eq(self.write.data),
                     pos_d.eq(Mux(cur.restart, 0, Mux(cur.advance, cur.pos + 1, cur.pos))),
                     rd.addr.eq(pos_d), cur.data.eq(rd.data)]
        m.d.sync += cur.pos.eq(pos_d)
        return m


class RequestStore(ArgumentChecked, wiring.Component):
    """A host request into the buffer, its address decoded.

    A request whose command is not ``ROUTE`` is stored whole, for core 0. A ``ROUTE``
    request's address bytes go to the decoder, its command and payload to the buffer:
    ``first_core`` .. ``last_core`` are the cores it names, ``records`` is set for
    ``ALL`` / ``RANGE``. ``bad``: a core or range outside the ``cores``, an empty
    range, an unknown mode or more than ``depth`` beats to store. ``n`` counts the
    beats stored. ``valid`` is high from the cycle after the last beat until
    ``release`` (no beat is taken meanwhile); ``refused`` pulses with the last beat
    of a request too short for its address and command, which is answered at once.
    One beat per cycle.
    """

    @classmethod
    def check(cls, *, cores, depth):
        _check_positive("cores", cores)
        _check_positive("depth", depth)

    def __init__(self, *, cores: int, depth: int):
        self.cores, self.depth = cores, depth
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "write": Out(BufferWrite(depth)),
            "valid": Out(1), "refused": Out(1), "release": In(1),
            "n": Out(bits_for(depth)),
            "first_core": Out(16), "last_core": Out(16), "records": Out(1), "bad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        N, req, wr, n, bad = self.cores, self.req, self.write, self.n, self.bad
        abytes = proto.nbytes(proto.ADDRESS)
        addr = Signal(8 * abytes)     # the ADDRESS bytes, shifted in
        aview = proto.ADDRESS(addr)
        acount = Signal(range(abytes + 2))
        first, last = self.first_core, self.last_core
        m.d.comb += [wr.addr.eq(n), wr.data.eq(req.payload.data)]

        def refuse():
            m.d.sync += bad.eq(1)
            m.d.comb += self.refused.eq(1)
            m.next = "FULL"

        def store_command(at=n):        # the command beat: the first byte stored
            m.d.comb += [wr.en.eq(1), wr.addr.eq(at)]
            m.d.sync += n.eq(1)
            m.next = "FULL"
            with m.If(~req.payload.last):
                m.next = "STORE"

        with m.FSM(name="store"):
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                m.d.sync += [acount.eq(0), bad.eq(0), n.eq(0)]
                with m.If(req.valid):
                    with m.If(req.payload.data == Command.ROUTE):
                        with m.If(req.payload.last):
                            refuse()
                        with m.Else():
                            m.next = "ADDRESS"
                    with m.Else():   # not routed: for core 0, answered unchanged
                        m.d.sync += [first.eq(0), last.eq(0), self.records.eq(0)]
                        store_command(at=0)
            with m.State("ADDRESS"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    with m.If(acount < abytes):
                        m.d.sync += [addr.eq(Cat(addr[8:], req.payload.data)),
                                     acount.eq(acount + 1)]
                        with m.If(req.payload.last):
                            refuse()
                    with m.Else():    # the routed command
                        store_command()
                        with m.Switch(aview.mode):
                            with m.Case(AddressMode.CORE):
                                m.d.sync += [first.eq(aview.first), last.eq(aview.first),
                                             self.records.eq(0), bad.eq(aview.first >= N)]
                            with m.Case(AddressMode.ALL):
                                m.d.sync += [first.eq(0), last.eq(N - 1), self.records.eq(1)]
                            with m.Case(AddressMode.RANGE):
                                end = aview.first + aview.count
                                m.d.sync += [first.eq(aview.first), last.eq(end - 1),
                                             self.records.eq(1),
                                             bad.eq((aview.count == 0) | (end > N))]
                            with m.Default():
                                m.d.sync += bad.eq(1)
            with m.State("STORE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    with m.If(n < self.depth):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += n.eq(n + 1)
                    with m.Else():
                        m.d.sync += bad.eq(1)
                    with m.If(req.payload.last):
                        m.next = "FULL"
            held_until_release(m, valid=self.valid, release=self.release)
        return m


class PacketSender(ArgumentChecked, wiring.Component):
    """The host node's packets: the stored request to each addressed core, then the grants.

    On ``start`` the ``n`` stored beats (read at the cursor ``read``) go to cores
    ``first_core`` .. ``last_core`` in ascending order, to each as ``REQUEST``
    packets of up to ``max_length`` beats (a header flit, then a beat a flit); then
    a ``GRANT`` to ``first_core``. ``granted`` pulses when a grant is taken; on
    ``next`` (the granted core has answered) the next core's grant follows, after
    the last core's (``final``) the sender is idle. ``at_first`` / ``final``: the
    core being served is ``first_core`` / ``last_core``. One flit per cycle while
    ``tx.ready``: ``n + ceil(n / max_length)`` cycles a core.
    """

    @classmethod
    def check(cls, fmt, *, cores, depth):
        _check_positive("cores", cores)
        _check_positive("depth", depth)

    def __init__(self, fmt: PacketFormat, *, cores: int, depth: int):
        self.fmt, self.cores = fmt, cores
        super().__init__({
            "start": In(1), "n": In(bits_for(depth)), "first_core": In(16), "last_core": In(16),
            "read": Out(BufferCursor(depth)),
            "tx": Out(fmt.tx_signature()),
            "granted": Out(1), "next": In(1), "at_first": Out(1), "final": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, tx, cur, n = self.fmt, self.tx, self.read, self.n
        pos = cur.pos
        core = Signal(16)             # the core being sent to / granted
        left = Signal(fmt.length_bits)  # payload flits left in the request packet being sent
        x = Signal(fmt.x_bits)
        y = Signal(fmt.y_bits)
        with m.Switch(core):
            for k in range(self.cores):
                with m.Case(k):
                    kx, ky = fmt.coords(k)
                    m.d.comb += [x.eq(kx), y.eq(ky)]
        m.d.comb += [self.at_first.eq(core == self.first_core),
                     self.final.eq(core == self.last_core)]

        def header(kind, length=0):
            h = fmt.header(tx.payload)
            return [tx.valid.eq(1), h.dst_x.eq(x), h.dst_y.eq(y), h.type.eq(kind),
                    h.length.eq(length)]

        with m.FSM(name="send"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += core.eq(self.first_core)
                    m.d.comb += cur.restart.eq(1)
                    m.next = "HEADER"
            with m.State("HEADER"):   # a REQUEST packet of min(n - pos, max_length) beats
                todo = n - pos
                plen = Mux(todo > fmt.max_length, fmt.max_length, todo)
                m.d.comb += header(PacketType.REQUEST, plen)
                with m.If(tx.ready):
                    m.d.sync += left.eq(plen)
                    m.next = "BEATS"
            with m.State("BEATS"):
                beat = Signal(BEAT_LAYOUT)
                m.d.comb += [beat.data.eq(cur.data), beat.first.eq(pos == 0),
                             beat.last.eq(pos == n - 1),
                             tx.valid.eq(1), tx.payload.eq(beat.as_value())]
                with m.If(tx.ready):
                    m.d.comb += cur.advance.eq(1)
                    m.d.sync += left.eq(left - 1)
                    with m.If(pos == n - 1):
                        with m.If(self.final):
                            m.d.sync += core.eq(self.first_core)
                            m.next = "GRANT"
                        with m.Else():
                            m.d.sync += core.eq(core + 1)
                            m.d.comb += cur.restart.eq(1)
                            m.next = "HEADER"
                    with m.Elif(left == 1):
                        m.next = "HEADER"
            with m.State("GRANT"):
                m.d.comb += header(PacketType.GRANT)
                with m.If(tx.ready):
                    m.d.comb += self.granted.eq(1)
                    m.next = "ANSWER"
            with m.State("ANSWER"):   # the granted core answers
                with m.If(self.next & self.final):
                    m.next = "IDLE"
                with m.Elif(self.next):
                    m.d.sync += core.eq(core + 1)
                    m.next = "GRANT"
        return m


class ResponseCollector(ArgumentChecked, wiring.Component):
    """The granted core's ``RESPONSE`` packets (one beat each) into the host response.

    From ``start`` (the grant was taken): without ``records`` the core's beats stream
    through unchanged (a beat per two flits); with ``records`` its status and up to
    ``depth`` payload bytes are stored first, then emitted as a
    :data:`~spikeforge.hdl.protocol.ROUTE_RECORD` (status, length) and the payload,
    after a status ``OK`` beat for the first core (``at_first``), ``last`` with the
    final core's (``final``). ``next`` pulses when the core's response is done.
    One beat per cycle while ``rsp.ready``.
    """

    @classmethod
    def check(cls, fmt, *, depth):
        _check_positive("depth", depth)

    def __init__(self, fmt: PacketFormat, *, depth: int):
        self.fmt, self.depth = fmt, depth
        super().__init__({
            "start": In(1), "records": In(1), "at_first": In(1), "final": In(1),
            "rx": In(fmt.rx_signature()), "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "write": Out(BufferWrite(depth)), "read": Out(BufferCursor(depth)),
            "next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rsp, rx, wr, cur, final = self.rsp, self.rx, self.write, self.read, self.final
        status = Signal(8)
        nrsp = Signal(bits_for(self.depth))     # response payload bytes stored
        rec_byte = Signal(range(3))
        got = BEAT_LAYOUT(rx.payload.data[:BEAT_LAYOUT.size])

        def done():
            m.d.comb += self.next.eq(1)
            m.next = "IDLE"

        with m.FSM(name="collect"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += nrsp.eq(0)
                    m.next = "COLLECT"
            with m.State("COLLECT"):  # RESPONSE packets of the granted core, one beat each
                with m.If(~self.records):   # one core: its beats stream through unchanged
                    with m.If(rx.payload.first):
                        m.d.comb += rx.ready.eq(1)
                    with m.Else():
                        m.d.comb += [rsp.valid.eq(rx.valid), rsp.payload.eq(got),
                                     rx.ready.eq(rsp.ready)]
                        with m.If(rx.valid & rsp.ready & got.last):
                            done()
                with m.Else():            # a record per core: count its payload first
                    m.d.comb += [rx.ready.eq(1), wr.addr.eq(nrsp), wr.data.eq(got.data)]
                    with m.If(rx.valid & ~rx.payload.first):
                        with m.If(got.first):
                            m.d.sync += status.eq(got.data)
                        with m.Elif(nrsp < self.depth):
                            m.d.comb += wr.en.eq(1)
                            m.d.sync += nrsp.eq(nrsp + 1)
                        with m.If(got.last):
                            m.next = "EMIT_START"
            with m.State("EMIT_START"):
                m.d.comb += cur.restart.eq(1)
                m.next = "EMIT_RECORD"
                with m.If(self.at_first):
                    m.next = "EMIT_OK"
            with m.State("EMIT_OK"):
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(Status.OK),
                             rsp.payload.first.eq(1)]
                with m.If(rsp.ready):
                    m.next = "EMIT_RECORD"
            with m.State("EMIT_RECORD"):   # status, len (2): ROUTE_RECORD
                rec = Signal(24)
                m.d.comb += [rec.eq(Cat(status, nrsp)), rsp.valid.eq(1),
                             rsp.payload.data.eq(rec.word_select(rec_byte, 8)),
                             rsp.payload.last.eq((rec_byte == 2) & (nrsp == 0) & final)]
                with m.If(rsp.ready):
                    m.d.sync += rec_byte.eq(rec_byte + 1)
                    with m.If(rec_byte == 2):
                        m.d.sync += rec_byte.eq(0)
                        with m.If(nrsp != 0):
                            m.next = "EMIT_PAYLOAD"
                        with m.Else():
                            done()
            with m.State("EMIT_PAYLOAD"):
                end = cur.pos == nrsp - 1
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(cur.data),
                             rsp.payload.last.eq(end & final)]
                with m.If(rsp.ready):
                    m.d.comb += cur.advance.eq(1)
                    with m.If(end):
                        done()
        return m


class Dispatcher(wiring.Component):
    """The host node: routed requests to the cores as packets, their responses back in order.

    ``req`` / ``rsp`` are the host port's beat streams; ``net_tx`` / ``net_rx`` the
    host node's packet streams. One request at a time: store it (one beat per
    cycle, ``depth`` beats of buffer), send it to every addressed core, then grant
    and collect each core's response in ascending core order: one core's streams
    through, several are stored one at a time and emitted as records (see
    :mod:`spikeforge.hdl.system` for the formats). A bad request is answered
    ``BAD_ARGUMENT`` without reaching any core.
    """

    def __init__(self, fmt: PacketFormat, *, cores: int, depth: int):
        if not isinstance(cores, int) or not 1 <= cores <= fmt.rows * fmt.cols:
            raise ConfigError(f"cores must be between 1 and {fmt.rows * fmt.cols}, not {cores!r}")
        self.fmt, self.cores, self.depth = fmt, cores, depth
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "net_tx": Out(fmt.tx_signature()),
            "net_rx": In(fmt.rx_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, depth, rsp = self.fmt, self.depth, self.rsp
        m.submodules.buffer = buf = DispatchBuffer(depth=depth)
        m.submodules.store = store = RequestStore(cores=self.cores, depth=depth)
        m.submodules.send = send = PacketSender(fmt, cores=self.cores, depth=depth)
        m.submodules.collect = col = ResponseCollector(fmt, depth=depth)
        wiring.connect(m, wiring.flipped(self.req), store.req)
        wiring.connect(m, send.tx, wiring.flipped(self.net_tx))
        wiring.connect(m, wiring.flipped(self.net_rx), col.rx)
        m.d.comb += [send.n.eq(store.n), send.first_core.eq(store.first_core),
                     send.last_core.eq(store.last_core),
                     col.start.eq(send.granted), col.records.eq(store.records),
                     col.at_first.eq(send.at_first), col.final.eq(send.final),
                     send.next.eq(col.next)]
        # one buffer: the request is written while it is stored, a core's response
        # payload while it is collected; the sender and the collector share its cursor
        for name in ("addr", "data"):
            m.d.comb += getattr(buf.write, name).eq(Mux(col.write.en, getattr(col.write, name),
                                                        getattr(store.write, name)))
        m.d.comb += [buf.write.en.eq(col.write.en | store.write.en),
                     buf.read.restart.eq(send.read.restart | col.read.restart),
                     buf.read.advance.eq(send.read.advance | col.read.advance)]
        for reader in (send.read, col.read):
            m.d.comb += [reader.pos.eq(buf.read.pos), reader.data.eq(buf.read.data)]

        with m.FSM(name="dispatch"):
            with m.State("IDLE"):             # a request is being stored
                with m.If(store.refused):
                    m.next = "ERROR"
                with m.Elif(store.valid):
                    m.next = "ERROR"
                    with m.If(~store.bad):
                        m.d.comb += send.start.eq(1)
                        m.next = "BUSY"
            with m.State("BUSY"):             # sent, then granted and collected core by core
                m.d.comb += [rsp.valid.eq(col.rsp.valid), rsp.payload.eq(col.rsp.payload),
                             col.rsp.ready.eq(rsp.ready)]
                with m.If(col.next & send.final):
                    m.d.comb += store.release.eq(1)
                    m.next = "IDLE"
            with m.State("ERROR"):            # the request is all taken: answer BAD_ARGUMENT
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(Status.BAD_ARGUMENT),
                             rsp.payload.first.eq(1), rsp.payload.last.eq(1)]
                with m.If(rsp.ready):
                    m.d.comb += store.release.eq(1)
                    m.next = "IDLE"
        return m
