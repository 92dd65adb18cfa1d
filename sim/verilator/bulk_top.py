"""Simulation-only top: byte buffers that cocotb fills and drains a wide word at a time.

:class:`BulkTop` wraps any device with byte streams ``rx`` (in) and ``tx`` (out) (the
one-core accelerator, the multi-core top, a test handler) for
:class:`spikeforge.sim.verilator.session.SimTransport`. Python no longer wakes for every
byte of a transfer: it writes the request bytes into the RX buffer ``width`` bytes per
cycle (``bulk_wdata``/``bulk_waddr``/``bulk_we``), starts the transfer with one pulse of
``bulk_go`` and sleeps until ``bulk_done`` rises (or a cycle limit passes). Meanwhile the
wrapper feeds the buffer into the device's ``rx`` one byte per cycle, as fast as the
device takes them, captures every ``tx`` byte into the TX buffer (``tx.ready`` is high
while the transfer runs: the device never waits for the host) and counts complete
response frames (``0x5A``, status, cmd, len, ``len`` payload bytes, CRC). ``bulk_done``
rises once every byte was accepted and ``bulk_frames`` frames have arrived; Python then
reads the received bytes ``width`` at a time through the combinational port
``bulk_raddr``/``bulk_rdata``.

A transfer larger than the buffers goes in pieces: ``bulk_first`` with ``bulk_go``
starts a new exchange (clears the frame count and the TX buffer), without it the next
piece continues the exchange. When the TX buffer is full, ``bulk_full`` rises and
``tx.ready`` drops until Python has read the buffer and pulsed ``bulk_drain``.
``bulk_abort`` ends a transfer (after a cycle limit). With ``bypass`` high the device's
streams are the top's ``rx``/``tx`` ports instead (the byte-wise path, for random stalls).

With ``registered_reset`` (the default) the device's synchronous reset is the top's
``rst`` delayed by one register, so no logic of the device hangs off a top-level input:
Verilator then evaluates the device's reset multiplexers with its registered logic
once per cycle instead of with the input logic at both clock edges (measured in
docs/core.md, "Simulation speed"). The device leaves reset one cycle after ``rst``
falls.

Latency and throughput: one byte per cycle each way, as the device's own ports; a
transfer's first byte is offered in the cycle after ``bulk_go``. Everything the
device sees is a byte stream: the device is built unchanged inside the wrapper.
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Const, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["BulkTop", "RESPONSE_SYNC_BYTE"]

RESPONSE_SYNC_BYTE = 0x5A


class BulkTop(wiring.Component):
    """Byte buffers around ``device`` (see the module docstring).

    Keyword-only parameters: ``width`` (bytes per buffer word, a power of two from 1 to
    256), ``depth`` (bytes per buffer, a multiple of ``width``) and ``registered_reset``.
    """

    def __init__(self, device, *, width: int = 64, depth: int = 4096,
                 registered_reset: bool = True):
        if not isinstance(width, int) or isinstance(width, bool) or width < 1 \
                or width > 256 or width & (width - 1):
            raise ValueError(f"width must be a power of two from 1 to 256 bytes, not {width!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < width \
                or depth % width:
            raise ValueError(f"depth must be a positive multiple of width ({width}) bytes, "
                             f"not {depth!r}")
        self.device = device
        self.registered_reset = bool(registered_reset)
        self.width = width
        self.depth = depth
        words = depth // width
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "bypass": In(1),
            "bulk_wdata": In(8 * width),
            "bulk_waddr": In(range(words)),
            "bulk_we": In(1),
            "bulk_len": In(range(depth + 1)),
            "bulk_frames": In(16),
            "bulk_go": In(1),
            "bulk_first": In(1),
            "bulk_drain": In(1),
            "bulk_abort": In(1),
            "bulk_done": Out(1),
            "bulk_full": Out(1),
            "bulk_rcount": Out(range(depth + 1)),
            "bulk_frames_seen": Out(16),
            "bulk_raddr": In(range(words)),
            "bulk_rdata": Out(8 * width),
        })

    def elaborate(self, platform):
        m = Module()
        W, D = self.width, self.depth
        words = D // W
        shift = W.bit_length() - 1
        dev = self.device
        if self.registered_reset:
            m.domains.dev = ClockDomain("dev", local=True)
            rst_q = Signal(init=1)
            m.d.sync += rst_q.eq(ResetSignal("sync"))
            m.d.comb += [ClockSignal("dev").eq(ClockSignal("sync")), ResetSignal("dev").eq(rst_q)]
            m.submodules.device = DomainRenamer("dev")(dev)
        else:
            m.submodules.device = dev
        m.submodules.rxbuf = rxbuf = Memory(shape=8 * W, depth=words, init=[])
        m.submodules.txbuf = txbuf = Memory(shape=8 * W, depth=words, init=[])
        rx_w = rxbuf.write_port()
        rx_r = rxbuf.read_port(domain="comb")
        tx_w = txbuf.write_port(granularity=8)
        tx_r = txbuf.read_port(domain="comb")

        busy = Signal()
        length = Signal(range(D + 1))
        sent = Signal(range(D + 1))
        wptr = Signal(range(D + 1))
        want = Signal(16)
        seen = Signal(16)
        fidx = Signal(17)
        flen = Signal(16)
        done = Signal()

        m.d.comb += [rx_w.addr.eq(self.bulk_waddr), rx_w.data.eq(self.bulk_wdata),
                     rx_w.en.eq(self.bulk_we),
                     tx_r.addr.eq(self.bulk_raddr), self.bulk_rdata.eq(tx_r.data),
                     self.bulk_done.eq(done), self.bulk_rcount.eq(wptr),
                     self.bulk_frames_seen.eq(seen), self.bulk_full.eq(wptr == D)]

        # the device's input: the buffer's bytes in order, or the top's rx port
        m.d.comb += rx_r.addr.eq(sent >> shift)
        if W > 1:
            buf_byte = rx_r.data.word_select(sent[:shift], 8)
        else:
            buf_byte = rx_r.data
        sending = busy & (sent < length)
        with m.If(self.bypass):
            m.d.comb += [dev.rx.payload.eq(self.rx.payload), dev.rx.valid.eq(self.rx.valid),
                         self.rx.ready.eq(dev.rx.ready),
                         self.tx.payload.eq(dev.tx.payload), self.tx.valid.eq(dev.tx.valid),
                         dev.tx.ready.eq(self.tx.ready)]
        with m.Else():
            m.d.comb += [dev.rx.payload.eq(buf_byte), dev.rx.valid.eq(sending),
                         dev.tx.ready.eq(busy & (wptr != D))]
        with m.If(~self.bypass & sending & dev.rx.ready):
            m.d.sync += sent.eq(sent + 1)

        # the device's output into the TX buffer, with the response frames counted
        take = ~self.bypass & dev.tx.valid & dev.tx.ready
        byte = dev.tx.payload
        m.d.comb += [tx_w.addr.eq(wptr >> shift), tx_w.data.eq(byte.replicate(W))]
        with m.If(take):
            m.d.comb += tx_w.en.eq(Const(1, W) << wptr[:shift] if W > 1 else 1)
            m.d.sync += wptr.eq(wptr + 1)
            with m.If(fidx == 3):
                m.d.sync += flen[:8].eq(byte)
            with m.If(fidx == 4):
                m.d.sync += flen[8:].eq(byte)
            with m.If((fidx >= 5) & (fidx == 5 + flen)):
                m.d.sync += [fidx.eq(0), seen.eq(seen + 1)]
            with m.Else():
                m.d.sync += fidx.eq(fidx + 1)
        with m.If(self.bulk_drain):
            m.d.sync += wptr.eq(0)

        with m.If(busy & (sent == length) & (seen >= want)):
            m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(self.bulk_go):
            m.d.sync += [busy.eq(1), done.eq(0), length.eq(self.bulk_len), sent.eq(0),
                         want.eq(self.bulk_frames)]
            with m.If(self.bulk_first):
                m.d.sync += [seen.eq(0), fidx.eq(0), wptr.eq(0)]
        with m.If(self.bulk_abort):
            m.d.sync += [busy.eq(0), done.eq(0)]
        return m
