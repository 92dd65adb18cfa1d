"""A small command handler for testing the host port, and a top joining the two.

Commands of this test handler (not the core's command set):

* ``ECHO`` (0x01): answers ``OK`` with the request payload, streamed through.
* ``INVERT`` (0x02): answers ``OK`` with every payload byte xor 0xFF.
* ``DELAY`` (0x03, payload: 4 bytes LE ``n``): waits ``n`` cycles after the
  request, then answers ``OK`` with an empty payload; another payload size is
  answered with ``BAD_ARGUMENT``.
* ``EMIT`` (0x04, payload: 2 bytes LE ``n``): answers ``OK`` with ``n`` bytes
  ``0, 1, 2, ...`` (mod 256); another payload size gets ``BAD_ARGUMENT``.
* anything else: the request is drained, then answered with ``UNKNOWN_COMMAND``.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.host_port import HostPort
from spikeforge.hdl.protocol import BEAT_LAYOUT, Status

ECHO, INVERT, DELAY, EMIT = 0x01, 0x02, 0x03, 0x04


class EchoHandler(wiring.Component):
    req: In(stream.Signature(BEAT_LAYOUT))
    rsp: Out(stream.Signature(BEAT_LAYOUT))

    def elaborate(self, platform):
        m = Module()
        req, rsp = self.req, self.rsp
        cmd = Signal(8)
        invert = Signal()
        arg = Signal(32)
        nbytes = Signal(8)
        status = Signal(8)
        status_last = Signal()
        timer = Signal(32)
        emit_n = Signal(16)
        emit_i = Signal(16)

        with m.FSM():
            with m.State("IDLE"):
                is_stream = (req.payload.data == ECHO) | (req.payload.data == INVERT)
                with m.If(is_stream):
                    m.d.comb += [
                        rsp.valid.eq(req.valid), req.ready.eq(rsp.ready),
                        rsp.payload.data.eq(Status.OK), rsp.payload.first.eq(1),
                        rsp.payload.last.eq(req.payload.last),
                    ]
                    with m.If(req.valid & rsp.ready):
                        m.d.sync += invert.eq(req.payload.data == INVERT)
                        with m.If(~req.payload.last):
                            m.next = "FORWARD"
                with m.Else():
                    m.d.comb += req.ready.eq(1)
                    with m.If(req.valid):
                        m.d.sync += [cmd.eq(req.payload.data), nbytes.eq(0), arg.eq(0)]
                        with m.If(req.payload.last):
                            m.next = "DECIDE"
                        with m.Else():
                            m.next = "COLLECT"
            with m.State("FORWARD"):
                m.d.comb += [
                    rsp.valid.eq(req.valid), req.ready.eq(rsp.ready),
                    rsp.payload.data.eq(req.payload.data ^ invert.replicate(8)),
                    rsp.payload.last.eq(req.payload.last),
                ]
                with m.If(req.valid & rsp.ready & req.payload.last):
                    m.next = "IDLE"
            with m.State("COLLECT"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    m.d.sync += [arg.eq(Cat(arg[8:], req.payload.data)), nbytes.eq(nbytes + 1)]
                    with m.If(req.payload.last):
                        m.next = "DECIDE"
            with m.State("DECIDE"):
                m.d.sync += status_last.eq(1)
                with m.If(cmd == DELAY):
                    with m.If(nbytes == 4):
                        m.d.sync += timer.eq(arg)
                        m.next = "WAIT"
                    with m.Else():
                        m.d.sync += status.eq(Status.BAD_ARGUMENT)
                        m.next = "STATUS"
                with m.Elif(cmd == EMIT):
                    with m.If(nbytes == 2):
                        m.d.sync += [status.eq(Status.OK), status_last.eq(arg[16:] == 0),
                                     emit_n.eq(arg[16:]), emit_i.eq(0)]
                    with m.Else():
                        m.d.sync += status.eq(Status.BAD_ARGUMENT)
                    m.next = "STATUS"
                with m.Else():
                    m.d.sync += status.eq(Status.UNKNOWN_COMMAND)
                    m.next = "STATUS"
            with m.State("WAIT"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += status.eq(Status.OK)
                    m.next = "STATUS"
            with m.State("STATUS"):
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(status),
                             rsp.payload.first.eq(1), rsp.payload.last.eq(status_last)]
                with m.If(rsp.ready):
                    with m.If(status_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(emit_i[:8]),
                             rsp.payload.last.eq(emit_i == emit_n - 1)]
                with m.If(rsp.ready):
                    m.d.sync += emit_i.eq(emit_i + 1)
                    with m.If(emit_i == emit_n - 1):
                        m.next = "IDLE"
        return m


class EchoTop(wiring.Component):
    """HostPort + EchoHandler, with the host byte streams as ports."""

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))

    def __init__(self, *, max_payload=1024):
        self.max_payload = max_payload
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.port = port = HostPort(max_payload=self.max_payload)
        m.submodules.handler = handler = EchoHandler()
        wiring.connect(m, port.req, handler.req)
        wiring.connect(m, handler.rsp, port.rsp)
        wiring.connect(m, wiring.flipped(self.rx), port.rx)
        wiring.connect(m, port.tx, wiring.flipped(self.tx))
        return m


def expected_response(cmd, payload, *, max_payload, delay_ok=True):
    """(status, payload) this handler behind a HostPort answers to a good request,
    from the command descriptions above."""
    payload = bytes(payload)
    if len(payload) > max_payload:
        return Status.BAD_LENGTH, b""
    if cmd == ECHO:
        return Status.OK, payload
    if cmd == INVERT:
        return Status.OK, bytes(b ^ 0xFF for b in payload)
    if cmd == DELAY:
        return (Status.OK, b"") if len(payload) == 4 else (Status.BAD_ARGUMENT, b"")
    if cmd == EMIT:
        if len(payload) != 2:
            return Status.BAD_ARGUMENT, b""
        n = int.from_bytes(payload, "little")
        if n > max_payload:
            return Status.BAD_LENGTH, b""
        return Status.OK, bytes(i % 256 for i in range(n))
    return Status.UNKNOWN_COMMAND, b""
