"""Request capture of the integer inference core: a request's beats into its command
and argument bytes, and its bulk words straight into their memories.

The capture is the :class:`~spikeforge.hdl.core.request.RequestParser` the training
core uses too, with the inference commands' headers (``HEADERS``: the fixed
arguments of ``WRITE_WEIGHTS``, ``WRITE_BIASES`` and ``LOAD_SPIKES``;
``ARG_BYTES`` argument bytes for the others). Each bulk word goes, in the cycle its
second byte arrives, to its target (no staging buffer, no stall): weight word ``k``
to lane ``k % lanes`` at ``addr + k // lanes``, bias ``k`` to slot ``k % group`` of
row ``row + k // group``, spike piece ``k`` to piece ``piece + k`` of buffer 0. A
word whose target is out of range is not written; ``bulk_ok`` says whether the
payload is the header and whole words, all written. ``valid`` / ``release`` are
the parser's: ``valid`` the cycle after the last beat. Throughput: one beat per
cycle.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2

from .. import protocol as proto
from ..core.request import RequestParser, capture_members, forward_capture
from ..protocol import InferenceCommand as C
from .geometry import GeometryChecked
from .memories import BiasWrite, SpikeWrite, WeightWrite

__all__ = ["InferenceCapture", "HEADERS", "FIXED", "ARG_BYTES"]

#: The fixed arguments of the commands with bulk words after them.
HEADERS = {C.WRITE_WEIGHTS: proto.INF_WRITE_WEIGHTS, C.WRITE_BIASES: proto.INF_WRITE_BIASES,
           C.LOAD_SPIKES: proto.INF_LOAD_SPIKES}
#: The commands with a payload of one fixed size.
FIXED = {C.SET_NETWORK: proto.INF_SET_NETWORK, C.SET_LAYER: proto.INF_SET_LAYER,
         C.READ_RESULTS: proto.INF_READ_RESULTS, C.READ_COUNTERS: proto.INF_READ_COUNTERS}
#: Argument bytes kept of a request.
ARG_BYTES = max(proto.nbytes(lay) for lay in [*HEADERS.values(), *FIXED.values()])


class InferenceCapture(GeometryChecked, wiring.Component):
    """See the module doc; ``weights``, ``biases``, ``spikes`` are the memories' host
    write ports."""

    def __init__(self, geo):
        self.geo = g = geo
        super().__init__({
            **capture_members(ARG_BYTES),
            "bulk_ok": Out(1),
            "weights": Out(WeightWrite(g)), "biases": Out(BiasWrite(g)),
            "spikes": Out(SpikeWrite(g)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        headers = {c: proto.nbytes(lay) for c, lay in HEADERS.items()}
        m.submodules.parser = parser = RequestParser(headers=headers, arg_bytes=ARG_BYTES)
        forward_capture(m, parser, self)
        cmd, k, word = parser.cmd, parser.nwords, parser.word
        raw = parser.args.as_value()
        a_w = proto.INF_WRITE_WEIGHTS(raw[:proto.INF_WRITE_WEIGHTS.size])
        a_b = proto.INF_WRITE_BIASES(raw[:proto.INF_WRITE_BIASES.size])
        a_s = proto.INF_LOAD_SPIKES(raw[:proto.INF_LOAD_SPIKES.size])

        # the targets of bulk word k
        lbits, gbits, pbits = ceil_log2(g.lanes), ceil_log2(g.group), ceil_log2(g.pieces)
        w_addr = Signal(33)
        b_row = Signal(17)
        piece = Signal(17)
        s_word = Signal(17)
        w, b, s = self.weights, self.biases, self.spikes
        m.d.comb += [w_addr.eq(a_w.addr + (k >> lbits)), b_row.eq(a_b.row + (k >> gbits)),
                     piece.eq(a_s.piece + k), s_word.eq(piece >> pbits),
                     w.lane.eq(k[:lbits] if lbits else 0), w.addr.eq(w_addr),
                     b.row.eq(b_row), b.slot.eq(k[:gbits]),
                     s.addr.eq(s_word), s.piece.eq(piece[:pbits] if pbits else 0),
                     w.data.eq(word.payload), b.data.eq(word.payload), s.data.eq(word.payload)]

        err = Signal()                          # a bulk word out of range
        targets = {C.WRITE_WEIGHTS: (w.en, w_addr < g.weight_depth),
                   C.WRITE_BIASES: (b.en, b_row < g.bias_rows),
                   C.LOAD_SPIKES: (s.en, s_word < g.spike_depth)}
        with m.If(word.valid):
            with m.Switch(cmd):
                for c, (en, in_range) in targets.items():
                    with m.Case(c):
                        with m.If(in_range):
                            m.d.comb += en.eq(1)
                        with m.Else():
                            m.d.sync += err.eq(1)
        with m.If(self.release):
            m.d.sync += err.eq(0)
        n, hdr = parser.nbytes, parser.header
        m.d.comb += self.bulk_ok.eq((n >= hdr) & ~(n - hdr)[0] & ~err)
        return m
