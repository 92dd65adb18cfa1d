"""Host port: request/response framing between a host byte stream and the core.

Receives request frames on ``rx`` (see :mod:`spikeforge.hdl.protocol`), checks
their CRC, and delivers each good request on ``req`` as beats of
:data:`~spikeforge.hdl.protocol.BEAT_LAYOUT`: the ``cmd`` beat (``first = 1``),
then the payload bytes; ``last = 1`` on the final beat (a request without
payload is one beat with ``first = last = 1``). The core answers every request on
``rsp``: the status beat first, then the payload bytes, ``last = 1`` on the final
beat. The port buffers the response and sends the response frame on ``tx``
(``0x5A``, status, echo of the request's cmd, len, payload, CRC).

The port answers by itself:

* ``BAD_CRC`` (empty payload) when a request's CRC does not match; the request
  is not delivered.
* ``BAD_LENGTH`` (empty payload) at once when a request declares
  ``len > max_payload``; it then discards exactly ``len + 1`` further bytes (the
  payload and the CRC, unchecked) so host and device stay in step.
* ``BAD_LENGTH`` (empty payload) instead of a core response longer than
  ``max_payload`` bytes (the core's status byte is dropped with it).

Bytes outside a frame that are not ``0xA5`` are ignored. Exactly one response
leaves per request frame, in request order.

``abort`` (input): while it is high and no byte is offered on ``rx``, a partial
request frame (header, payload or CRC still missing, or the discard after a
``BAD_LENGTH``) is dropped without a response and the port hunts for the next
sync byte. A board top drives it from the UART's idle-line detector, so a
request that lost a byte on the line times out on the host and the next one is
parsed from its own sync byte. Complete requests (delivered or answered) are not
affected; tie it low where the byte stream cannot lose bytes.

Buffers: one ``lib.memory.Memory`` of ``max_payload`` bytes for the request
payload (filled while the frame arrives, read while it is delivered) and one for
the response payload.

Protocol with the core: the core must accept every ``req`` beat up to ``last``;
it may start its response before it has taken the whole request (``rsp`` is
accepted from the moment the request is delivered). While a request is
outstanding (delivered but its response not yet handed to the transmitter) the
port stops accepting ``rx`` bytes; a new request is parsed while the previous
response is being transmitted. ``rsp`` is not accepted while the previous
response is still being read out of the response buffer.

Throughput and latency: one byte per cycle on ``rx``, ``req``, ``rsp`` and
``tx`` (no bubbles when the other side does not stall). The ``cmd`` beat is
valid on ``req`` in the cycle after the CRC byte's transfer on ``rx``; the
response's sync byte is valid on ``tx`` two cycles after the transfer of the
final ``rsp`` beat (two cycles after the byte that decides a port-generated
error).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .checked import ArgumentChecked
from .protocol import (
    BEAT_LAYOUT, CRC8_POLY, DEFAULT_MAX_PAYLOAD, MAX_LENGTH, REQUEST_SYNC, RESPONSE_SYNC, Status,
)

__all__ = ["HostPort", "crc8_step", "host_members", "add_host_port"]


def host_members() -> dict:
    """The members of a top behind a host port: ``rx`` / ``tx``, the framed bytes in
    and out, and ``rx_abort``, the port's ``abort`` (drop a partial request frame: an
    idle UART line; not named ``abort``, as Verilator rejects a top-level port named
    like a C++ function)."""
    return {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)), "rx_abort": In(1)}


def add_host_port(m: Module, top, *, max_payload: int) -> "HostPort":
    """A :class:`HostPort` (submodule ``port`` of ``m``) behind the :func:`host_members`
    of ``top``; returns it, for its ``req`` / ``rsp`` beat streams."""
    m.submodules.port = port = HostPort(max_payload=max_payload)
    wiring.connect(m, wiring.flipped(top.rx), port.rx)
    wiring.connect(m, port.tx, wiring.flipped(top.tx))
    m.d.comb += port.abort.eq(top.rx_abort)
    return port


def _crc8_matrix():
    """Column i: the CRC register after one zero byte, starting from bit i set
    (the step is linear over GF(2), so each output bit is an xor of input bits)."""
    columns = []
    for i in range(8):
        c = 1 << i
        for _ in range(8):
            c = ((c << 1) ^ CRC8_POLY) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        columns.append(c)
    return columns


_CRC8_COLUMNS = _crc8_matrix()


def crc8_step(crc, byte):
    """Amaranth expression: the CRC-8 register (poly 0x07, MSB first) after one more byte
    (one level of xor gates per output bit)."""
    c = Value.cast(crc ^ byte)
    bits = []
    for j in range(8):
        terms = [c[i] for i in range(8) if _CRC8_COLUMNS[i] >> j & 1]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc ^ t
        bits.append(acc)
    return Cat(*bits)


class HostPort(ArgumentChecked, wiring.Component):
    """Framing, CRC check and buffering between ``rx``/``tx`` and ``req``/``rsp``.

    Parameter (keyword-only): ``max_payload``, the largest payload of a request
    or response in bytes (1..65535, default 1024); it sizes both buffers.
    """

    @classmethod
    def check(cls, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
        if (not isinstance(max_payload, int) or isinstance(max_payload, bool)
                or not 1 <= max_payload <= MAX_LENGTH):
            raise ValueError(f"max_payload must be an integer from 1 to {MAX_LENGTH}, "
                             f"not {max_payload!r}")

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "req": Out(stream.Signature(BEAT_LAYOUT)),
            "rsp": In(stream.Signature(BEAT_LAYOUT)),
            "abort": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.max_payload
        v = SimpleNamespace()       # the buffers and the signals between the three parts
        m.submodules.req_mem = req_mem = Memory(shape=8, depth=P, init=[])
        m.submodules.rsp_mem = rsp_mem = Memory(shape=8, depth=P, init=[])
        v.req_w = req_mem.write_port()
        v.req_r = req_mem.read_port()
        v.rsp_w = rsp_mem.write_port()
        v.rsp_r = rsp_mem.read_port()
        v.tx_go = Signal()              # from the receiver: send a response now
        v.tx_go_status = Signal(8)
        v.tx_go_len = Signal(16)
        v.tx_go_buf = Signal()          # payload comes from the response buffer
        v.tx_idle = Signal()
        v.tx_buf_busy = Signal()        # the response buffer is being read out
        v.rx_cmd = Signal(8)
        v.outstanding = Signal()        # a request was delivered, its response not yet sent
        v.rsp_done = Signal()
        v.cap_status = Signal(8)
        v.cap_len = Signal(range(P + 1))
        v.cap_over = Signal()
        for part in (self._transmitter, self._response_capture, self._receiver):
            part(m, v)
        return m

    def _transmitter(self, m, v):
        """Sends one response frame per ``tx_go``."""
        P = self.max_payload
        (rsp_r, tx_go, tx_go_status, tx_go_len, tx_go_buf, tx_idle, tx_buf_busy, rx_cmd) = (
            v.rsp_r, v.tx_go, v.tx_go_status, v.tx_go_len, v.tx_go_buf, v.tx_idle,
            v.tx_buf_busy, v.rx_cmd)
        tx_status = Signal(8)
        tx_cmd = Signal(8)
        tx_len = Signal(16)
        tx_buf = Signal()
        tx_crc = Signal(8)
        tx_ptr = Signal(range(P + 1))

        tx_fire = self.tx.valid & self.tx.ready
        m.d.comb += rsp_r.addr.eq(tx_ptr)
        with m.FSM(name="tx"):
            with m.State("IDLE"):
                m.d.comb += tx_idle.eq(1)
                m.d.sync += tx_ptr.eq(0)
                with m.If(tx_go):
                    m.d.sync += [
                        tx_status.eq(tx_go_status), tx_cmd.eq(rx_cmd), tx_len.eq(tx_go_len),
                        tx_buf.eq(tx_go_buf), tx_crc.eq(0),
                    ]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [self.tx.payload.eq(RESPONSE_SYNC), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.next = "STATUS"
            with m.State("STATUS"):
                m.d.comb += [self.tx.payload.eq(tx_status), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.d.sync += tx_crc.eq(crc8_step(tx_crc, tx_status))
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [self.tx.payload.eq(tx_cmd), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.d.sync += tx_crc.eq(crc8_step(tx_crc, tx_cmd))
                    m.next = "LEN0"
            with m.State("LEN0"):
                m.d.comb += [self.tx.payload.eq(tx_len[:8]), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.d.sync += tx_crc.eq(crc8_step(tx_crc, tx_len[:8]))
                    m.next = "LEN1"
            with m.State("LEN1"):
                m.d.comb += [self.tx.payload.eq(tx_len[8:]), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.d.sync += tx_crc.eq(crc8_step(tx_crc, tx_len[8:]))
                    with m.If(tx_len == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [self.tx.payload.eq(rsp_r.data), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.d.sync += [tx_crc.eq(crc8_step(tx_crc, rsp_r.data)), tx_ptr.eq(tx_ptr + 1)]
                    m.d.comb += rsp_r.addr.eq(tx_ptr + 1)
                    with m.If(tx_ptr == tx_len - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [self.tx.payload.eq(tx_crc), self.tx.valid.eq(1)]
                with m.If(tx_fire):
                    m.next = "IDLE"
        m.d.comb += tx_buf_busy.eq(~tx_idle & tx_buf)

    def _response_capture(self, m, v):
        """``rsp`` beats into the response buffer."""
        P = self.max_payload
        (rsp_w, tx_buf_busy, outstanding, rsp_done, cap_status, cap_len, cap_over) = (
            v.rsp_w, v.tx_buf_busy, v.outstanding, v.rsp_done, v.cap_status, v.cap_len,
            v.cap_over)
        # ---- response capture: rsp beats into the response buffer ----
        cap_started = Signal()

        m.d.comb += self.rsp.ready.eq(outstanding & ~rsp_done & ~tx_buf_busy)
        m.d.comb += [rsp_w.addr.eq(cap_len), rsp_w.data.eq(self.rsp.payload.data)]
        with m.If(self.rsp.valid & self.rsp.ready):
            with m.If(~cap_started):
                m.d.sync += [cap_started.eq(1), cap_status.eq(self.rsp.payload.data),
                             cap_len.eq(0), cap_over.eq(0)]
            with m.Elif(cap_len == P):
                m.d.sync += cap_over.eq(1)
            with m.Else():
                m.d.comb += rsp_w.en.eq(1)
                m.d.sync += cap_len.eq(cap_len + 1)
            with m.If(self.rsp.payload.last):
                m.d.sync += [rsp_done.eq(1), cap_started.eq(0)]

    def _receiver(self, m, v):
        """Framing, CRC check and delivery of a request on ``req``."""
        P = self.max_payload
        (req_w, req_r, tx_go, tx_go_status, tx_go_len, tx_go_buf, tx_idle, rx_cmd,
         outstanding, rsp_done, cap_status, cap_len, cap_over) = (
            v.req_w, v.req_r, v.tx_go, v.tx_go_status, v.tx_go_len, v.tx_go_buf, v.tx_idle,
            v.rx_cmd, v.outstanding, v.rsp_done, v.cap_status, v.cap_len, v.cap_over)
        # ---- receiver: framing, CRC check, delivery ----
        rx_len = Signal(16)
        rx_cnt = Signal(17)
        rx_crc = Signal(8)
        d_ptr = Signal(range(P + 1))
        d_first = Signal()

        byte = self.rx.payload
        rx_fire = self.rx.valid & self.rx.ready
        m.d.comb += [req_w.addr.eq(rx_cnt), req_w.data.eq(byte), req_r.addr.eq(d_ptr)]

        def receiving():    # inside a frame: take bytes; an abort between bytes drops it
            m.d.comb += self.rx.ready.eq(1)
            with m.If(self.abort & ~self.rx.valid):
                m.next = "HUNT"

        with m.FSM(name="rx"):
            with m.State("HUNT"):
                m.d.comb += self.rx.ready.eq(1)
                m.d.sync += [d_ptr.eq(0), d_first.eq(1)]
                with m.If(rx_fire & (byte == REQUEST_SYNC)):
                    m.next = "CMD"
            with m.State("CMD"):
                receiving()
                with m.If(rx_fire):
                    m.d.sync += [rx_cmd.eq(byte), rx_crc.eq(crc8_step(0, byte))]
                    m.next = "LEN0"
            with m.State("LEN0"):
                receiving()
                with m.If(rx_fire):
                    m.d.sync += [rx_len[:8].eq(byte), rx_crc.eq(crc8_step(rx_crc, byte))]
                    m.next = "LEN1"
            with m.State("LEN1"):
                receiving()
                full_len = Cat(rx_len[:8], byte)
                with m.If(rx_fire):
                    m.d.sync += [rx_len[8:].eq(byte), rx_crc.eq(crc8_step(rx_crc, byte)),
                                 rx_cnt.eq(0)]
                    with m.If(full_len > P):
                        m.d.sync += rx_cnt.eq(full_len)
                        m.next = "ERR_LEN"
                    with m.Elif(full_len == 0):
                        m.next = "CHECK"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receiving()
                with m.If(rx_fire):
                    m.d.comb += req_w.en.eq(1)
                    m.d.sync += [rx_crc.eq(crc8_step(rx_crc, byte)), rx_cnt.eq(rx_cnt + 1)]
                    with m.If(rx_cnt == rx_len - 1):
                        m.next = "CHECK"
            with m.State("CHECK"):
                receiving()
                with m.If(rx_fire):
                    with m.If(byte == rx_crc):
                        m.d.sync += [outstanding.eq(1), rsp_done.eq(0)]
                        m.next = "DELIVER"
                    with m.Else():
                        m.next = "ERR_CRC"
            with m.State("ERR_CRC"):
                m.d.comb += [tx_go.eq(tx_idle), tx_go_status.eq(Status.BAD_CRC)]
                with m.If(tx_idle):
                    m.next = "HUNT"
            with m.State("ERR_LEN"):
                m.d.comb += [tx_go.eq(tx_idle), tx_go_status.eq(Status.BAD_LENGTH)]
                with m.If(tx_idle):
                    m.next = "DISCARD"
            with m.State("DISCARD"):
                receiving()
                with m.If(rx_fire):
                    m.d.sync += rx_cnt.eq(rx_cnt - 1)
                    with m.If(rx_cnt == 0):
                        m.next = "HUNT"
            with m.State("DELIVER"):
                m.d.comb += self.req.valid.eq(1)
                req_fire = self.req.valid & self.req.ready
                with m.If(d_first):
                    m.d.comb += [self.req.payload.data.eq(rx_cmd), self.req.payload.first.eq(1),
                                 self.req.payload.last.eq(rx_len == 0)]
                    with m.If(req_fire):
                        m.d.sync += d_first.eq(0)
                        with m.If(rx_len == 0):
                            m.next = "WAIT"
                with m.Else():
                    last = d_ptr == rx_len - 1
                    m.d.comb += [self.req.payload.data.eq(req_r.data),
                                 self.req.payload.last.eq(last)]
                    with m.If(req_fire):
                        m.d.sync += d_ptr.eq(d_ptr + 1)
                        m.d.comb += req_r.addr.eq(d_ptr + 1)
                        with m.If(last):
                            m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(rsp_done):
                    m.d.comb += [
                        tx_go.eq(tx_idle),
                        tx_go_status.eq(Mux(cap_over, Status.BAD_LENGTH, cap_status)),
                        tx_go_len.eq(Mux(cap_over, 0, cap_len)),
                        tx_go_buf.eq(~cap_over),
                    ]
                    with m.If(tx_idle):
                        m.d.sync += [outstanding.eq(0), rsp_done.eq(0)]
                        m.next = "HUNT"
