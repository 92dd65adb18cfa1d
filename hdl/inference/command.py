"""Command unit of the integer inference core: the host protocol's requests into
settings, memory writes and runs, and their responses.

``req`` / ``rsp`` are the beat streams of :mod:`spikeforge.hdl.protocol` (the host
port checks framing and CRC). Every request gets exactly one response.
Commands (:class:`~spikeforge.hdl.protocol.InferenceCommand`, payloads
``INF_*``): ``INFO``, ``SET_NETWORK``, ``SET_LAYER``, ``WRITE_WEIGHTS``,
``WRITE_BIASES``, ``LOAD_SPIKES``, ``RUN``, ``READ_RESULTS``, ``READ_COUNTERS``.

Parts: the request capture (:class:`~.request.InferenceCapture`, the parser the
training core shares), the checks of ``SET_LAYER`` (:class:`LayerCheck`) and the
response serialiser (:class:`~.response.InferenceSerialiser`); the unit itself
decides each command. Bulk data (weights, biases, spike pieces) is written to its
memory while the request streams in, one 16-bit word every two beats (no staging
buffer, no stall); a word whose target is out of range is not written and the
command answers ``BAD_ARGUMENT``. A payload of the wrong size, a value out of range
(layer, sizes, ``T``, ``Q``, ``theta <= 0`` or above ``Q`` bits) answers
``BAD_ARGUMENT``; ``RUN`` before ``SET_NETWORK`` answers ``BAD_STATE``; other codes
``UNKNOWN_COMMAND``. Latency: a response starts one cycle after the request's
last beat (``RUN``: after the run); fixed payloads go out one byte per cycle,
results at three cycles per 16-bit value.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .. import protocol as proto
from ..protocol import BEAT_LAYOUT, INF_SET_LAYER, InferenceCommand as C, Readout, Status
from .geometry import VERSION, GeometryChecked, InferenceGeometry
from .memories import BiasWrite, LayerWrite, ResultRead, SpikeWrite, WeightWrite
from .request import FIXED, HEADERS, InferenceCapture
from .response import InferenceSerialiser

__all__ = ["InferenceCommandUnit", "LayerCheck", "info_fields"]


def info_fields(geo: InferenceGeometry) -> dict:
    """The fields of INFO for a core of geometry ``geo``."""
    return dict(version=VERSION, kind=proto.INFERENCE_KIND_INTEGER, lanes=geo.lanes,
                weight_bits=geo.B, potential_bits=geo.Q, weights_per_word=geo.per_word,
                group=geo.group, max_neurons=geo.max_neurons, max_fan_in=geo.max_fan_in,
                max_time_steps=geo.max_T, max_layers=geo.max_layers,
                weight_depth=geo.weight_depth, bias_rows=geo.bias_rows, step_words=geo.step_words,
                max_payload=geo.max_payload, counters=len(proto.INF_COUNTERS))


class LayerCheck(GeometryChecked, wiring.Component):
    """The checks of a ``SET_LAYER`` entry (``entry``; ``size_ok``: its payload had the
    right size): layer, sizes, ``0 < theta < 2**(Q-1)``, the reset kind, the bias
    rows and the weight extent ``wbase + n_in * ceil(n_out / group)``, which is summed
    in the ``ceil(n_out / group)`` cycles after ``start`` (no multiplier). ``done`` is
    high once the sum is complete; ``good`` is the verdict then."""

    def __init__(self, geo):
        self.geo = geo
        super().__init__({"start": In(1), "entry": In(INF_SET_LAYER), "size_ok": In(1),
                          "done": Out(1), "good": Out(1)})

    def elaborate(self, platform):
        m = Module()
        g, a = self.geo, self.entry
        gbits = ceil_log2(g.group)
        extent = Signal(33)                     # the last weight address + 1
        left = Signal(17)                       # groups still to add
        with m.If(self.start):
            m.d.sync += [extent.eq(a.wbase), left.eq((a.n_out + g.group - 1) >> gbits)]
        with m.Elif(left != 0):
            m.d.sync += [extent.eq(extent + a.n_in), left.eq(left - 1)]
        th = a.theta.as_signed()
        m.d.comb += [self.done.eq(left == 0),
                     self.good.eq(self.size_ok & (a.layer < g.max_layers)
                                  & (a.n_in >= 1) & (a.n_in <= g.max_fan_in)
                                  & (a.n_out >= 1) & (a.n_out <= g.max_neurons)
                                  & (th > 0) & (th < (1 << (g.Q - 1)))
                                  & (extent <= g.weight_depth)
                                  & (a.bbase + ((a.n_out + g.group - 1) >> gbits) <= g.bias_rows)
                                  & (a.reset.as_value() <= 1))]
        return m


class InferenceCommandUnit(GeometryChecked, wiring.Component):
    """See the module doc. The settings (``T``, ``layers``, ``Q``, ``potential``), the
    layer table (``table``), the memories (``weights``, ``biases``, ``spikes``,
    ``results``) and ``start`` / ``done`` drive an :class:`~.engine.InferenceEngine`
    (connected by the core); ``counters`` are the core's counter values in
    :data:`~spikeforge.hdl.protocol.INF_COUNTERS` order, ``clear`` clears them."""

    def __init__(self, geo):
        self.geo = g = geo
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "start": Out(1), "done": In(1),
            "T": Out(range(g.max_T + 1)), "layers": Out(range(g.max_layers + 1)),
            "Q": Out(range(g.Q + 1)), "potential": Out(1),
            "table": Out(LayerWrite(g)),
            "weights": Out(WeightWrite(g)), "biases": Out(BiasWrite(g)),
            "spikes": Out(SpikeWrite(g)), "results": Out(ResultRead(g)),
            "counters": In(data.ArrayLayout(32, len(proto.INF_COUNTERS))),
            "run_cycles": In(32), "run_sops": In(32),
            "clear": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        m.submodules.capture = cap = InferenceCapture(g)
        m.submodules.layer_check = check = LayerCheck(g)
        m.submodules.response = ser = InferenceSerialiser(g)
        wiring.connect(m, wiring.flipped(self.req), cap.req)
        wiring.connect(m, ser.rsp, wiring.flipped(self.rsp))
        wiring.connect(m, cap.weights, wiring.flipped(self.weights))
        wiring.connect(m, cap.biases, wiring.flipped(self.biases))
        wiring.connect(m, cap.spikes, wiring.flipped(self.spikes))
        wiring.connect(m, ser.read, wiring.flipped(self.results))

        cmd, nb = cap.cmd, cap.nbytes
        raw = cap.args.as_value()
        a_net = proto.INF_SET_NETWORK(raw[:proto.INF_SET_NETWORK.size])
        a_layer = proto.INF_SET_LAYER(raw[:proto.INF_SET_LAYER.size])
        a_res = proto.INF_READ_RESULTS(raw[:proto.INF_READ_RESULTS.size])
        a_ctr = proto.INF_READ_COUNTERS(raw[:proto.INF_READ_COUNTERS.size])
        n_ok = {c: nb == proto.nbytes(lay) for c, lay in FIXED.items()}
        configured = Signal()
        m.d.comb += [self.table.index.eq(a_layer.layer), self.table.entry.eq(a_layer),
                     check.entry.eq(a_layer), check.size_ok.eq(n_ok[C.SET_LAYER])]
        info = proto.INF_INFO.const(info_fields(g)).as_value()

        def respond(status, payload=None, n=0):
            m.d.comb += [ser.start.eq(1), ser.status.eq(status), ser.nout.eq(n)]
            if payload is not None:
                m.d.comb += ser.payload.eq(payload)
            m.next = "RESPOND"

        def ok_or_bad(cond, payload=None, n=0):
            with m.If(cond):
                respond(Status.OK, payload, n)
            with m.Else():
                respond(Status.BAD_ARGUMENT)

        with m.FSM(name="command"):
            with m.State("IDLE"):               # until a request is captured
                with m.If(cap.valid):
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
                                m.d.sync += [self.T.eq(a_net.T), self.layers.eq(a_net.layers),
                                             self.Q.eq(a_net.Q), configured.eq(1),
                                             self.potential.eq(a_net.readout == Readout.POTENTIAL)]
                            ok_or_bad(good)
                        with m.Case(C.SET_LAYER):
                            m.d.comb += check.start.eq(1)
                            m.next = "LAYER_CHECK"
                        for c in HEADERS:
                            with m.Case(c):
                                ok_or_bad(cap.bulk_ok)
                        with m.Case(C.RUN):
                            with m.If(nb != 0):
                                respond(Status.BAD_ARGUMENT)
                            with m.Elif(~configured):
                                respond(Status.BAD_STATE)
                            with m.Else():
                                m.d.comb += self.start.eq(1)
                                m.next = "RUN"
                        with m.Case(C.READ_RESULTS):
                            good = (n_ok[C.READ_RESULTS]
                                    & (a_res.first + a_res.count <= g.max_neurons)
                                    & (2 * a_res.count <= g.max_payload))
                            with m.If(good & (a_res.count != 0)):
                                m.d.comb += [ser.start.eq(1), ser.results.eq(1),
                                             ser.first.eq(a_res.first), ser.count.eq(a_res.count)]
                                m.next = "RESPOND"
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
                with m.If(check.done):
                    m.d.comb += self.table.en.eq(check.good)
                    ok_or_bad(check.good)
            with m.State("RUN"):
                with m.If(self.done):
                    respond(Status.OK, Cat(self.run_cycles, self.run_sops),
                            proto.nbytes(proto.INF_RUN_RESULT))
            with m.State("RESPOND"):
                with m.If(ser.done):
                    m.d.comb += cap.release.eq(1)
                    m.next = "IDLE"
        return m
