"""Command unit of the integer inference core: the host protocol's requests into
settings, memory writes and runs, and their responses.

``req`` / ``rsp`` are the beat streams of :mod:`spikeforge.hdl.protocol` (the host
port checks framing and CRC). Every request gets exactly one response.
Commands (:class:`~spikeforge.hdl.protocol.InferenceCommand`, payloads
``INF_*``): ``INFO``, ``SET_NETWORK``, ``SET_LAYER``, ``WRITE_WEIGHTS``,
``WRITE_BIASES``, ``LOAD_SPIKES``, ``RUN``, ``READ_RESULTS``, ``READ_COUNTERS``.

Bulk data (weights, biases, spike pieces) is written to its memory while the
request streams in, one 16-bit word every two beats (no staging buffer, no
stall); a word whose target is out of range is not written and the command
answers ``BAD_ARGUMENT``. A payload of the wrong size, a value out of range
(layer, sizes, ``T``, ``Q``, ``theta <= 0`` or above ``Q`` bits) answers
``BAD_ARGUMENT``; ``RUN`` before ``SET_NETWORK`` answers ``BAD_STATE``; other codes
``UNKNOWN_COMMAND``. Latency: a response starts one cycle after the request's
last beat (``RUN``: after the run); fixed payloads go out one byte per cycle,
results at three cycles per 16-bit value.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .. import protocol as proto
from ..protocol import BEAT_LAYOUT, InferenceCommand as C, Readout, Status
from .geometry import InferenceGeometry, VERSION


def _r(n):
    """A port shape for values 0 .. n-1 (never zero bits wide: Verilator rejects those)."""
    return range(max(2, n))


__all__ = ["InferenceCommandUnit", "info_fields"]

_HEADERS = {C.WRITE_WEIGHTS: proto.INF_WRITE_WEIGHTS, C.WRITE_BIASES: proto.INF_WRITE_BIASES,
            C.LOAD_SPIKES: proto.INF_LOAD_SPIKES}
_FIXED = {C.SET_NETWORK: proto.INF_SET_NETWORK, C.SET_LAYER: proto.INF_SET_LAYER,
          C.READ_RESULTS: proto.INF_READ_RESULTS, C.READ_COUNTERS: proto.INF_READ_COUNTERS}
_ARG_BYTES = max(proto.nbytes(lay) for lay in [*_HEADERS.values(), *_FIXED.values()])
_OUT_BYTES = max(proto.nbytes(proto.INF_INFO), proto.nbytes(proto.INF_RUN_RESULT),
                 4 * len(proto.INF_COUNTERS))


def info_fields(geo: InferenceGeometry) -> dict:
    """The fields of INFO for a core of geometry ``geo``."""
    return dict(version=VERSION, kind=proto.INFERENCE_KIND_INTEGER, lanes=geo.lanes,
                weight_bits=geo.B, potential_bits=geo.Q, weights_per_word=geo.per_word,
                group=geo.group, max_neurons=geo.max_neurons, max_fan_in=geo.max_fan_in,
                max_time_steps=geo.max_T, max_layers=geo.max_layers,
                weight_depth=geo.weight_depth, bias_rows=geo.bias_rows, step_words=geo.step_words,
                max_payload=geo.max_payload, counters=len(proto.INF_COUNTERS))


class InferenceCommandUnit(wiring.Component):
    """See the module doc. ``engine`` members drive an :class:`~.engine.InferenceEngine`
    (connected by the core); ``counters`` are the core's counter values in
    :data:`~spikeforge.hdl.protocol.INF_COUNTERS` order."""

    def __init__(self, geo: InferenceGeometry):
        self.geo = g = geo
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "start": Out(1), "done": In(1),
            "T": Out(range(g.max_T + 1)), "layers": Out(range(g.max_layers + 1)),
            "Q": Out(range(g.Q + 1)), "potential": Out(1),
            "table_we": Out(1), "table_index": Out(_r(g.max_layers)),
            "table_entry": Out(proto.INF_SET_LAYER),
            "w_en": Out(1), "w_lane": Out(_r(g.lanes)), "w_addr": Out(_r(g.weight_depth)),
            "w_data": Out(16),
            "b_en": Out(1), "b_row": Out(_r(g.bias_rows)), "b_slot": Out(_r(g.group)),
            "b_data": Out(16),
            "s_en": Out(1), "s_addr": Out(_r(g.spike_depth)), "s_piece": Out(_r(g.pieces)),
            "s_data": Out(16),
            "r_row": Out(_r(g.groups)), "r_data": In(data.ArrayLayout(16, g.group)),
            "counters": In(data.ArrayLayout(32, len(proto.INF_COUNTERS))),
            "run_cycles": In(32), "run_sops": In(32),
            "clear": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        req, rsp = self.req, self.rsp
        G, L = g.group, g.lanes

        cmd = Signal(8)
        nb = Signal(17)                         # payload bytes received
        args = Signal(data.ArrayLayout(8, _ARG_BYTES))
        low = Signal(8)
        k = Signal(16)                          # bulk words received
        err = Signal()                          # a bulk word out of range
        configured = Signal()
        extent = Signal(33)                     # SET_LAYER: last weight address + 1
        left = Signal(17)

        hdr = Signal(range(_ARG_BYTES + 1))
        with m.Switch(cmd):
            for c, lay in _HEADERS.items():
                with m.Case(c):
                    m.d.comb += hdr.eq(proto.nbytes(lay))
            with m.Default():
                m.d.comb += hdr.eq(_ARG_BYTES)
        bulk = Signal()
        m.d.comb += bulk.eq((cmd == C.WRITE_WEIGHTS) | (cmd == C.WRITE_BIASES)
                            | (cmd == C.LOAD_SPIKES))
        raw = args.as_value()
        a_w = proto.INF_WRITE_WEIGHTS(raw[:proto.INF_WRITE_WEIGHTS.size])
        a_b = proto.INF_WRITE_BIASES(raw[:proto.INF_WRITE_BIASES.size])
        a_s = proto.INF_LOAD_SPIKES(raw[:proto.INF_LOAD_SPIKES.size])
        a_net = proto.INF_SET_NETWORK(raw[:proto.INF_SET_NETWORK.size])
        a_layer = proto.INF_SET_LAYER(raw[:proto.INF_SET_LAYER.size])
        a_res = proto.INF_READ_RESULTS(raw[:proto.INF_READ_RESULTS.size])
        a_ctr = proto.INF_READ_COUNTERS(raw[:proto.INF_READ_COUNTERS.size])

        # bulk word targets
        lbits, gbits = ceil_log2(L), ceil_log2(G)
        pbits = ceil_log2(g.pieces)
        w_addr = Signal(33)
        b_row = Signal(17)
        piece = Signal(17)
        s_word = Signal(17)
        m.d.comb += [w_addr.eq(a_w.addr + (k >> lbits)), b_row.eq(a_b.row + (k >> gbits)),
                     piece.eq(a_s.piece + k), s_word.eq(piece >> pbits),
                     self.w_lane.eq(k[:lbits] if lbits else 0), self.w_addr.eq(w_addr),
                     self.b_row.eq(b_row), self.b_slot.eq(k[:gbits]),
                     self.s_addr.eq(s_word), self.s_piece.eq(piece[:pbits] if pbits else 0)]
        word = Cat(low, req.payload.data)
        m.d.comb += [self.w_data.eq(word), self.b_data.eq(word), self.s_data.eq(word)]
        in_range = Signal()
        with m.Switch(cmd):
            with m.Case(C.WRITE_WEIGHTS):
                m.d.comb += in_range.eq(w_addr < g.weight_depth)
            with m.Case(C.WRITE_BIASES):
                m.d.comb += in_range.eq(b_row < g.bias_rows)
            with m.Case(C.LOAD_SPIKES):
                m.d.comb += in_range.eq(s_word < g.spike_depth)

        # settings
        T = Signal(range(g.max_T + 1))
        layers = Signal(range(g.max_layers + 1))
        Q = Signal(range(g.Q + 1))
        potential = Signal()
        m.d.comb += [self.T.eq(T), self.layers.eq(layers), self.Q.eq(Q),
                     self.potential.eq(potential),
                     self.table_index.eq(a_layer.layer), self.table_entry.eq(a_layer)]

        # response
        status = Signal(8)
        out = Signal(data.ArrayLayout(8, _OUT_BYTES))
        nout = Signal(range(_OUT_BYTES + 1))
        bi = Signal(16)
        e = Signal(16)                          # READ_RESULTS: results sent
        e_first = Signal(16)
        e_count = Signal(16)
        res_i = Signal(17)
        m.d.comb += [res_i.eq(e_first + e), self.r_row.eq(res_i >> gbits)]
        res_val = Signal(16)
        m.d.comb += res_val.eq(self.r_data.as_value().word_select(res_i[:gbits], 16)
                               if gbits else self.r_data[0])
        info = proto.INF_INFO.const(info_fields(g)).as_value()

        def send(byte, last, first=0):
            m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(byte),
                         rsp.payload.first.eq(first), rsp.payload.last.eq(last)]

        def respond(st, payload=None, n=0):
            m.d.sync += [status.eq(st), nout.eq(n), bi.eq(0)]
            if payload is not None:
                m.d.sync += out.eq(payload)
            m.next = "STATUS"

        def ok_or_bad(cond, payload=None, n=0):
            with m.If(cond):
                respond(Status.OK, payload, n)
            with m.Else():
                m.d.sync += [status.eq(Status.BAD_ARGUMENT), nout.eq(0), bi.eq(0)]
                m.next = "STATUS"

        n_ok = {c: nb == proto.nbytes(lay) for c, lay in _FIXED.items()}
        bulk_ok = (nb >= hdr) & ~(nb - hdr)[0] & ~err
        qmax = 1 << (g.Q - 1)

        with m.FSM(name="command"):
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid & req.payload.first):
                    m.d.sync += [cmd.eq(req.payload.data), nb.eq(0), k.eq(0), err.eq(0),
                                 args.eq(0)]
                    with m.If(req.payload.last):
                        m.next = "EXEC"
                    with m.Else():
                        m.next = "RECV"
            with m.State("RECV"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    byte = req.payload.data
                    m.d.sync += nb.eq(nb + 1)
                    with m.If(nb < _ARG_BYTES):
                        with m.Switch(nb):
                            for i in range(_ARG_BYTES):
                                with m.Case(i):
                                    m.d.sync += args[i].eq(byte)
                    with m.If(bulk & (nb >= hdr)):
                        with m.If(~(nb - hdr)[0]):
                            m.d.sync += low.eq(byte)
                        with m.Else():
                            m.d.sync += k.eq(k + 1)
                            with m.If(~in_range):
                                m.d.sync += err.eq(1)
                            with m.Else():
                                with m.Switch(cmd):
                                    with m.Case(C.WRITE_WEIGHTS):
                                        m.d.comb += self.w_en.eq(1)
                                    with m.Case(C.WRITE_BIASES):
                                        m.d.comb += self.b_en.eq(1)
                                    with m.Case(C.LOAD_SPIKES):
                                        m.d.comb += self.s_en.eq(1)
                    with m.If(req.payload.last):
                        m.next = "EXEC"
            with m.State("EXEC"):
                with m.Switch(cmd):
                    with m.Case(C.INFO):
                        ok_or_bad(nb == 0, info, proto.nbytes(proto.INF_INFO))
                    with m.Case(C.SET_NETWORK):
                        good = (n_ok[C.SET_NETWORK] & (a_net.T >= 1) & (a_net.T <= g.max_T)
                                & (a_net.layers >= 1) & (a_net.layers <= g.max_layers)
                                & (a_net.Q >= 2) & (a_net.Q <= g.Q)
                                & ((a_net.readout == Readout.SPIKES)
                                   | (a_net.readout == Readout.POTENTIAL)))
                        with m.If(good):
                            m.d.sync += [T.eq(a_net.T), layers.eq(a_net.layers), Q.eq(a_net.Q),
                                         potential.eq(a_net.readout == Readout.POTENTIAL),
                                         configured.eq(1)]
                        ok_or_bad(good)
                    with m.Case(C.SET_LAYER):
                        # the weight extent wbase + n_in * groups is summed over a few
                        # cycles in LAYER_CHECK (no multiplier)
                        m.d.sync += [extent.eq(a_layer.wbase),
                                     left.eq((a_layer.n_out + G - 1) >> gbits)]
                        m.next = "LAYER_CHECK"
                    for c in _HEADERS:
                        with m.Case(c):
                            ok_or_bad(bulk_ok)
                    with m.Case(C.RUN):
                        with m.If(nb != 0):
                            ok_or_bad(0)
                        with m.Elif(~configured):
                            respond(Status.BAD_STATE)
                        with m.Else():
                            m.d.comb += self.start.eq(1)
                            m.next = "RUN"
                    with m.Case(C.READ_RESULTS):
                        good = (n_ok[C.READ_RESULTS]
                                & (a_res.first + a_res.count <= g.max_neurons)
                                & (2 * a_res.count <= g.max_payload))
                        m.d.sync += [e.eq(0), e_first.eq(a_res.first), e_count.eq(a_res.count)]
                        with m.If(good & (a_res.count != 0)):
                            m.d.sync += [status.eq(Status.OK), bi.eq(0)]
                            m.next = "RES_STATUS"
                        with m.Else():
                            ok_or_bad(good)
                    with m.Case(C.READ_COUNTERS):
                        with m.If(n_ok[C.READ_COUNTERS] & a_ctr.clear[0]):
                            m.d.comb += self.clear.eq(1)
                        ok_or_bad(n_ok[C.READ_COUNTERS], self.counters.as_value(),
                                  4 * len(proto.INF_COUNTERS))
                    with m.Default():
                        respond(Status.UNKNOWN_COMMAND)
            with m.State("LAYER_CHECK"):
                with m.If(left != 0):
                    m.d.sync += [extent.eq(extent + a_layer.n_in), left.eq(left - 1)]
                with m.Else():
                    th = a_layer.theta.as_signed()
                    good = (n_ok[C.SET_LAYER] & (a_layer.layer < g.max_layers)
                            & (a_layer.n_in >= 1) & (a_layer.n_in <= g.max_fan_in)
                            & (a_layer.n_out >= 1) & (a_layer.n_out <= g.max_neurons)
                            & (th > 0) & (th < qmax) & (extent <= g.weight_depth)
                            & (a_layer.bbase + ((a_layer.n_out + G - 1) >> gbits)
                               <= g.bias_rows)
                            & (a_layer.reset.as_value() <= 1))
                    m.d.comb += self.table_we.eq(good)
                    ok_or_bad(good)
            with m.State("RUN"):
                with m.If(self.done):
                    respond(Status.OK, Cat(self.run_cycles, self.run_sops),
                            proto.nbytes(proto.INF_RUN_RESULT))
            with m.State("STATUS"):
                only = nout == 0
                send(status, only, first=1)
                with m.If(rsp.ready):
                    m.next = "IDLE"
                    with m.If(~only):
                        m.next = "BYTES"
            with m.State("BYTES"):
                end = bi + 1 == nout
                send(out.as_value().word_select(bi[:ceil_log2(_OUT_BYTES)], 8), end)
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(end):
                        m.next = "IDLE"
            with m.State("RES_STATUS"):
                send(Status.OK, 0, first=1)
                with m.If(rsp.ready):
                    m.next = "RES_WAIT"
            with m.State("RES_WAIT"):           # the result row's read
                m.next = "RES_LO"
            with m.State("RES_LO"):
                send(res_val[:8], 0)
                with m.If(rsp.ready):
                    m.next = "RES_HI"
            with m.State("RES_HI"):
                end = e + 1 == e_count
                send(res_val[8:], end)
                with m.If(rsp.ready):
                    m.d.sync += e.eq(e + 1)
                    with m.If(end):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "RES_WAIT"
        return m
