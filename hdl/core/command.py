"""Command unit of a core: the host protocol's commands on the core's state.

Every request (captured by :class:`~.request.RequestCapture`) gets exactly one
response (sent by :class:`~.response.ResponseSerialiser`): its status first, then
the payload. The handlers (one method per :class:`~spikeforge.hdl.protocol.Command`,
arguments read through views of the protocol's payload layouts) check the
request and set up its work: the run settings (``settings``), the layer table
(``table_write``), weights and input spikes written from the staging memory
through the lane datapath's ``host`` port, a run or update started on ``run``
(the sequencer), and the elements of a read response walked through ``host``
and ``counters``, or for READ_DIGEST the layer's weight addresses, a part of
:func:`~.digest.digest_words` banks per cycle, into a :class:`~.digest.WordDigest`. A request whose payload has the
wrong size or a value out of range gets ``BAD_ARGUMENT`` and changes nothing.

Latency of a command other than a run: a few cycles plus one to three cycles per
payload byte. The handlers' checks and the products they compare are registered
(:meth:`CommandUnit._late`): a request waits ``CHECK_CYCLES`` cycles in ``CHECK``
before its handler runs in ``EXECUTE``, and no check lies on a path into the
response, the memories or the run.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from .. import protocol as proto
from ..protocol import (BEAT_LAYOUT, COUNTERS, NO_LABEL, Command, GradientKind, HistoryKind,
                        Phase, ResetGrad, RunMode, Status, WeightKind)
from ..spike_decoder import popcount
from .counters import CounterRead
from .defs import CoreGeometry
from .digest import WordDigest, digest_words
from .info import info_payload
from .lane_datapath import CONSTANTS_LAYOUT, HostAccess
from .layer_table import TableRead, TableWrite
from .request import RequestCapture
from .response import ResponseSerialiser
from .sequencer import RunControl, RunKind

__all__ = ["CommandUnit", "ElementKind", "settings_layout", "CHECK_CYCLES"]

#: Cycles from a request's capture to its handler (``IDLE`` -> ``CHECK`` -> ``EXECUTE``):
#: the deepest chain of registered check values (the layer entry, a product, the
#: verdict) is this long.
CHECK_CYCLES = 3


class ElementKind(enum.Enum, shape=3):
    """What the elements of a read response are."""
    W = 0
    DW = 1
    HISTORY = 2         # a history word per neuron
    STEP_VALUE = 3      # du, u or acc, per neuron and step
    COUNTER = 4
    SPIKE_COUNT = 5     # RUN: the output spike counts
    DIGEST = 6          # READ_DIGEST: the CRC-32 of a layer's words


def settings_layout(geo: CoreGeometry) -> data.StructLayout:
    """The run settings the host loads (SET_CONSTANTS, RUN)."""
    return data.StructLayout({
        "T": bits_for(geo.max_time_steps),
        "layers": bits_for(geo.max_layers),
        "through": 1,
        "wcount": geo.waddr_bits,
        "label": geo.neuron_bits + 1,
        # the time steps the input-gradient phase visits (RUN_PHASE's stages; all by default)
        "t_lo": geo.time_bits + 1,
        "t_hi": geo.time_bits + 1,
        "constants": CONSTANTS_LAYOUT,
    })


class CommandUnit(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        self.geo = g = geometry
        self.max_payload = g.config.implementation.max_payload
        # the most elements a request can have once its checks passed: a write of weights
        # stays in one layer, a read in max_payload bytes, the spikes in the input groups
        self.max_elements = min(0xFFFF, max(g.neurons * g.max_fan_in, self.max_payload // 2,
                                            g.in_groups * g.lanes, len(COUNTERS), g.neurons))
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
            "settings": Out(settings_layout(g), init={"T": 1, "layers": 1,
                                                     "t_hi": 2 ** (g.time_bits + 1) - 1}),
            "index": In(16),                # the core's position in the system
            "run": Out(RunControl()),
            "clear_flags": Out(1),
            "nonfinite": In(1),
            "host": Out(HostAccess(g)),
            "table_write": Out(TableWrite(g)),
            # the addressed layer (READ/WRITE_WEIGHTS), else the last layer (RUN)
            "table_read": Out(TableRead(g)),
            "counters": Out(CounterRead()),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        m.submodules.capture = cap = RequestCapture(max_payload=self.max_payload)
        m.submodules.response = ser = ResponseSerialiser(
            fixed_bytes=proto.nbytes(proto.INFO), tail_bytes=proto.nbytes(proto.RUN_RESULT),
            max_elements=self.max_elements)
        wiring.connect(m, wiring.flipped(self.req), cap.req)
        wiring.connect(m, ser.rsp, wiring.flipped(self.rsp))
        m.submodules.digest = self._dg = WordDigest(words=digest_words(g.lanes))
        self._m, self._cap, self._ser = m, cap, ser
        self._late_regs, self._wires = [], []
        self._wait = Signal(range(CHECK_CYCLES))
        self._state(m)
        self._serialiser_inputs(m)
        m.d.comb += [self.host.en.eq(0), self.host.wwe.eq(0), self.host.hwe.eq(0),
                     self.host.mwe.eq(0), self.host.awe.eq(0),
                     self.clear_flags.eq(0), self.counters.clear.eq(0),
                     self.table_read.index.eq(Mux(
                         (cap.cmd == Command.WRITE_WEIGHTS) | (cap.cmd == Command.READ_WEIGHTS) |
                         (cap.cmd == Command.READ_DIGEST),
                         self._view(proto.WRITE_WEIGHTS).layer,
                         Mux(cap.cmd == Command.RUN_PHASE, self._view(proto.RUN_PHASE).entry,
                             self.settings.layers - 1)))]
        # the addressed layer's entry for the checks (one register after the table)
        self._ent = self._late(self.table_read.entry, "entry")
        with m.FSM(name="command"):
            with m.State("IDLE"):
                with m.If(cap.valid):
                    m.d.sync += self._wait.eq(0)
                    m.next = "CHECK"
            with m.State("CHECK"):
                # the checks' registers fill (the request holds until its release)
                m.d.sync += self._wait.eq(self._wait + 1)
                with m.If(self._wait == CHECK_CYCLES - 2):
                    m.next = "EXECUTE"
            with m.State("EXECUTE"):
                self._execute(m)
            with m.State("CONSTS"):
                m.d.sync += self.settings.constants.eq(self._view(proto.SET_CONSTANTS).constants)
                self._respond(m)
            self._write_loop(m, "WW", self._write_weight)
            self._write_loop(m, "LS", self._write_spikes)
            self._write_loop(m, "WA", self._write_acc)
            self._digest_states(m)
            with m.State("RUNNING"):
                with m.If(self.run.done):
                    self._run_done(m)
            with m.State("RESPOND"):
                self._elements(m)
                with m.If(ser.done):
                    m.d.comb += cap.release.eq(1)
                    m.next = "IDLE"
        # the checks' registers, free-running (whatever the state): built by the handlers
        # inside the FSM's conditions, assigned here outside them
        m.d.comb += [wire.eq(value) for wire, value in self._wires]
        m.d.sync += [reg.eq(value) for reg, value in self._late_regs]
        return m

    def _wire(self, shape, name, value):
        """A signal of ``shape`` that is ``value`` in every state (a handler's checks are
        evaluated before its state runs it, so none may be driven inside the handler)."""
        wire = Signal(shape, name=f"chk_{name}")
        self._wires.append((wire, value))
        return wire

    def _late(self, value, name):
        """``value`` registered every cycle: a check's operand or result. The request's
        command, arguments and sizes, the settings and the layer table hold from
        ``cap.valid`` to the release, so a chain of up to ``CHECK_CYCLES`` of these is
        valid when ``EXECUTE`` runs the handler: the checks' products and compares are
        off the paths into the response and the memories."""
        reg = Signal(value.shape(), name=f"chk_{name}")
        self._late_regs.append((reg, value))
        return reg

    # ---- state ---------------------------------------------------------------------------

    def _state(self, m):
        g = self.geo
        P = g.lanes
        self.status = Signal(8)
        self.nfix = Signal(range(proto.nbytes(proto.INFO) + 1))
        self.nelem = Signal(range(self.max_elements + 1))
        self.ebytes = Signal(3)
        self.ntail = Signal(range(proto.nbytes(proto.RUN_RESULT) + 1))
        self.kind = Signal(ElementKind)
        self.configured = Signal()
        self.e = Signal(range(self.max_elements + 1))   # bulk word of a write loop
        # a write loop's read of the staging memory, a word ahead of its write: the word
        # read (e_rd), the word on the memory's output (e_out) and the word registered
        # from it (word_ok, word_r)
        self.e_rd = Signal(range(self.max_elements + 1))
        self.e_out, self.word_ok = Signal(), Signal()
        self.word_r = Signal(16)
        # element walk: weights (i, j) at row address wrow; neurons ncur, steps tcur
        self.wi, self.wj = Signal(g.neuron_bits), Signal(g.neuron_bits)
        self.wrow = Signal(g.waddr_bits + 1)
        self.ncur = Signal(g.neuron_bits + 1)
        self.tcur = Signal(g.time_bits + 1)
        self.hsel = Signal(2)
        # the history word of neuron ncur (its group's address), stepped with ncur, so the
        # history memories' host address is a register
        self.hcur = Signal(g.hist_group_bits + 1)
        self.dgb = Signal(max(g.du_group_bits, g.acc_group_bits) + 1)
        self.elay = Signal(g.layer_layout)
        self.best = Signal(g.neuron_bits)
        self.bestc = Signal(bits_for(g.max_time_steps))
        self.wbank = Signal(g.lane_bits)
        self.waddr_cur = Signal(g.waddr_bits + 1)
        self.nbank = Signal(g.lane_bits)
        m.d.comb += [self.wbank.eq((self.wi + self.wj)[:g.lane_bits] if P > 1 else 0),
                     self.waddr_cur.eq(self.wrow + self.wj),
                     self.nbank.eq(self.ncur[:g.lane_bits] if P > 1 else 0)]
        # the history memories' host address is the walk's register in every state (it
        # matters only while the host owns the memories): no state decode before it
        m.d.comb += self.host.haddr.eq(self.hcur)

    def _serialiser_inputs(self, m):
        ser = self._ser
        info = proto.INFO.const(info_payload(self.geo.config))
        m.d.comb += [ser.status.eq(self.status), ser.nfix.eq(self.nfix), ser.nelem.eq(self.nelem),
                     ser.ebytes.eq(self.ebytes), ser.ntail.eq(self.ntail),
                     ser.fixed.eq(info.as_value()),
                     ser.tail.eq(proto.RUN_RESULT.const({}).as_value()),
                     self.counters.index.eq(ser.elem.index)]
        tail = data.View(proto.RUN_RESULT, ser.tail.as_value())
        m.d.comb += [tail.prediction.eq(self.best), tail.flags.nonfinite.eq(self.nonfinite)]

    def _view(self, layout):
        return data.View(layout, self._cap.args.as_value()[:layout.size])

    def _respond(self, m):
        m.d.comb += self._ser.start.eq(1)
        m.next = "RESPOND"

    def _reject(self, m, code=Status.BAD_ARGUMENT):
        m.d.sync += self.status.eq(code)
        self._respond(m)

    # ---- handlers --------------------------------------------------------------------------

    def _execute(self, m):
        m.d.sync += [self.status.eq(Status.OK), self.nfix.eq(0), self.nelem.eq(0),
                     self.ntail.eq(0), self.ebytes.eq(2), self.e.eq(0)]
        handlers = {
            (Command.INFO,): self._info,
            (Command.SET_CONSTANTS,): self._set_constants,
            (Command.SET_LAYER,): self._set_layer,
            (Command.WRITE_WEIGHTS, Command.READ_WEIGHTS): self._weights,
            (Command.LOAD_SPIKES,): self._load_spikes,
            (Command.RUN,): self._run,
            (Command.UPDATE,): self._update,
            (Command.READ_HISTORY,): self._read_history,
            (Command.READ_GRADIENTS,): self._read_gradients,
            (Command.READ_COUNTERS,): self._read_counters,
            (Command.RUN_PHASE,): self._run_phase,
            (Command.WRITE_GRADIENTS,): self._write_gradients,
            (Command.LOAD_HISTORY,): self._load_spikes,
            (Command.READ_DIGEST,): self._read_digest,
        }
        with m.Switch(self._cap.cmd):
            for cmds, handler in handlers.items():
                with m.Case(*cmds):
                    handler(m, self._cap.nbytes)
            with m.Default():
                self._reject(m, Status.UNKNOWN_COMMAND)

    def _info(self, m, nbytes):
        with m.If(self._late(nbytes != 0, "info")):
            self._reject(m)
        with m.Else():
            m.d.sync += self.nfix.eq(proto.nbytes(proto.INFO))
            self._respond(m)

    def _set_constants(self, m, nbytes):
        g, s = self.geo, self.settings
        a = self._view(proto.SET_CONSTANTS)
        f = g.config.features
        mode_ok = self._wire(1, "mode_ok", (
            ((a.reset_grad == ResetGrad.DETACH) &
             ("detach" in f.reset_grad_modes or f.inference_only)) |
            ((a.reset_grad == ResetGrad.THROUGH) & ("through" in f.reset_grad_modes))))
        with m.If(self._late((nbytes != proto.nbytes(proto.SET_CONSTANTS)) | (a.T < 1) |
                             (a.T > g.max_time_steps) | (a.layers < 1) |
                             (a.layers > g.max_layers) | ~mode_ok | (a.wcount > g.weight_depth),
                             "set_constants")):
            self._reject(m)
        with m.Else():
            m.d.sync += [s.T.eq(a.T), s.layers.eq(a.layers),
                         s.through.eq(a.reset_grad == ResetGrad.THROUGH),
                         s.wcount.eq(a.wcount), self.configured.eq(1)]
            m.next = "CONSTS"

    def _set_layer(self, m, nbytes):
        g = self.geo
        a = self._view(proto.SET_LAYER)
        # sizes past their limits are refused on their own, so the sums below take their
        # low bits (and the bases their low bits, or "past the limit")
        n_in, n_in_over = _capped(a.n_in, g.max_fan_in)
        n_out, n_out_over = _capped(a.n_out, g.neurons)
        in_hg, in_hg_over = _capped(a.in_hg, g.hist_groups)
        out_g, out_g_over = _capped(a.out_g, g.neuron_groups)
        wbase, wbase_over = _capped(a.wbase, g.weight_depth)
        gi = self._wire(len(n_in) + 1, "layer_gi", _groups(g, n_in))
        go = self._wire(len(n_out) + 1, "layer_go", _groups(g, n_out))
        wend = self._late(wbase + go * n_in, "layer_wend")
        with m.If(self._late((nbytes != proto.nbytes(proto.SET_LAYER)) |
                             (a.layer >= g.max_layers) | (a.n_in < 1) | n_in_over |
                             (n_in > g.max_fan_in) | (a.n_out < 1) | n_out_over |
                             (n_out > g.neurons) | in_hg_over | (in_hg + gi > g.hist_groups) |
                             out_g_over | (out_g + go > g.neuron_groups) |
                             wbase_over | (wend > g.weight_depth), "set_layer")):
            self._reject(m)
        with m.Else():
            w = self.table_write
            ent = w.entry
            m.d.comb += [w.en.eq(1), w.index.eq(a.layer),
                         ent.n_in.eq(n_in), ent.n_out.eq(n_out), ent.g_in.eq(gi),
                         ent.g_out.eq(go), ent.wbase.eq(wbase), ent.in_hg.eq(in_hg),
                         ent.out_hg.eq(g.in_groups + out_g), ent.out_dg.eq(out_g),
                         ent.in_dg.eq(Mux(in_hg >= g.in_groups, in_hg - g.in_groups, 0))]
            self._respond(m)

    def _weights(self, m, nbytes):
        g = self.geo
        a = self._view(proto.WRITE_WEIGHTS)         # layer, i, j (both commands)
        rd = self._view(proto.READ_WEIGHTS)
        ent = self._ent                             # at a.layer (the index multiplexer)
        is_wr = self._cap.cmd == Command.WRITE_WEIGHTS
        cnt = self._wire(16, "weights_count", Mux(is_wr, self._cap.nwords, rd.count))
        # i < n_out and j < n_in are checked on their own, so the weight index takes their
        # low bits; a count past the largest layer is refused on its own too
        wi, wj = a.i[:g.neuron_bits], a.j[:g.neuron_bits]
        i_over, j_over = a.i[g.neuron_bits:].any(), a.j[g.neuron_bits:].any()
        cnt_low, cnt_over = _capped(cnt, g.neurons * g.max_fan_in)
        flat = self._wire(2 * g.neuron_bits, "weights_flat", wi * ent.n_in + wj)
        end = self._late(flat + cnt_low, "weights_end")
        size = self._late(ent.n_out * ent.n_in, "weights_size")
        wrow = self._late(ent.wbase + (wi >> g.lane_shift) * ent.n_in, "weights_row")
        m.d.sync += [self.elay.eq(ent), self.wi.eq(wi), self.wj.eq(wj), self.wrow.eq(wrow)]
        with m.If(self._late(
                (is_wr & ((nbytes < proto.nbytes(proto.WRITE_WEIGHTS) + 2) | ~nbytes[0])) |
                (~is_wr & ((nbytes != proto.nbytes(proto.READ_WEIGHTS)) |
                           (cnt > self.max_payload // 2) | (rd.which.as_value() > 1))) |
                (a.layer >= self.settings.layers) | i_over | (wi >= ent.n_out) | j_over |
                (wj >= ent.n_in) | (cnt == 0) | cnt_over | (end > size), "weights")):
            self._reject(m)
        with m.Elif(is_wr):
            m.d.sync += self.nelem.eq(cnt)
            m.next = "WW_ADDR"
        with m.Else():
            m.d.sync += [self.nelem.eq(cnt), self.kind.eq(
                Mux(rd.which == WeightKind.DW, ElementKind.DW, ElementKind.W))]
            self._respond(m)

    def _load_spikes(self, m, nbytes):
        """LOAD_SPIKES, and LOAD_HISTORY (spike or window words of the input groups)."""
        g = self.geo
        hist = self._cap.cmd == Command.LOAD_HISTORY
        a = self._view(proto.LOAD_HISTORY)
        first = Mux(hist, a.first, self._view(proto.LOAD_SPIKES).first)
        header = Mux(hist, proto.nbytes(proto.LOAD_HISTORY), proto.nbytes(proto.LOAD_SPIKES))
        limit = g.in_groups * g.lanes
        first_low, first_over = _capped(first, limit)
        words_low, words_over = _capped(self._cap.nwords, limit)
        with m.If(self._late(
                (nbytes < header + 2) | ((nbytes - header)[0]) |
                (hist & (a.which != HistoryKind.SPIKES) & (a.which != HistoryKind.WINDOW)) |
                first_over | words_over | (first_low + words_low > limit), "load_spikes")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.ncur.eq(first), self.hcur.eq(first >> g.lane_shift),
                         self.nelem.eq(self._cap.nwords),
                         self.hsel.eq(Mux(hist & (a.which == HistoryKind.WINDOW), 1, 0))]
            m.next = "LS_ADDR"

    def _run(self, m, nbytes):
        a = self._view(proto.RUN)
        train = a.mode == RunMode.TRAIN
        with m.If(self._late((nbytes != proto.nbytes(proto.RUN)) | (a.mode.as_value() > 1) |
                             (train & Const(int(self.geo.inference_only))), "run")):
            self._reject(m)
        with m.Elif(~self.configured):
            # before any network: the state is wrong whatever the label (there is no range)
            self._reject(m, Status.BAD_STATE)
        with m.Elif(self._late(train & (a.label[self.geo.neuron_bits:].any() |
                                        (a.label[:self.geo.neuron_bits] >= self._ent.n_out)),
                               "run_label")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.settings.label.eq(a.label), self.settings.t_lo.eq(0),
                         self.settings.t_hi.eq(-1)]
            m.d.comb += [self.run.start.eq(1), self.clear_flags.eq(1),
                         self.run.kind.eq(Mux(train, RunKind.TRAIN, RunKind.FORWARD))]
            m.next = "RUNNING"

    def _run_phase(self, m, nbytes):
        g = self.geo
        a = self._view(proto.RUN_PHASE)
        ent = self._ent                             # at a.entry (the index multiplexer)
        label_over = a.label[g.neuron_bits:].any()
        # a stage of the staged input-gradient chain: this core's chunk of steps
        staged = (a.phase == Phase.INPUT_GRAD) & (a.steps != 0)
        chunk = self._wire(signed(18), "phase_chunk", a.stage - self.index)
        t_lo = self._late(self._wire(17, "phase_t_lo", chunk[:9] * a.steps), "phase_t_lo")
        idle = self._late(staged & ((chunk < 0) | (t_lo >= self.settings.T)), "phase_idle")
        t_hi = self._wire(18, "phase_t_hi", t_lo + a.steps)
        t_hi = self._late(Mux(t_hi > self.settings.T, self.settings.T, t_hi), "phase_t_hi")
        with m.If(self._late((nbytes != proto.nbytes(proto.RUN_PHASE)) |
                             (a.phase.as_value() > Phase.WEIGHT_GRAD.value) | (a.cont > 1) |
                             Const(int(g.inference_only)), "run_phase")):
            self._reject(m)
        with m.Elif(~self.configured):
            self._reject(m, Status.BAD_STATE)
        with m.Elif(self._late((a.entry >= self.settings.layers) |
                               ((a.phase == Phase.LOSS) & (a.label != NO_LABEL) &
                                (label_over | (a.label[:g.neuron_bits] >= ent.n_out))),
                               "run_phase_args")):
            self._reject(m)
        with m.Else():
            # no class among the entry's neurons: a label no lane has (all targets 0)
            m.d.sync += [self.settings.label.eq(Mux(a.label == NO_LABEL, -1, a.label)),
                         self.best.eq(0), self.settings.t_lo.eq(0), self.settings.t_hi.eq(-1)]
            with m.If(idle):
                # no step of this stage on this core: done at once
                m.d.sync += self.ntail.eq(proto.nbytes(proto.RUN_RESULT))
                m.d.comb += self.clear_flags.eq(1)
                self._respond(m)
            with m.Else():
                with m.If(staged):
                    m.d.sync += [self.settings.t_lo.eq(t_lo), self.settings.t_hi.eq(t_hi)]
                r = self.run
                m.d.comb += [r.start.eq(1), self.clear_flags.eq(1), r.kind.eq(RunKind.PHASE),
                             r.phase.eq(a.phase), r.entry.eq(a.entry),
                             r.cont.eq(Mux(staged, self.index != 0, a.cont[0]))]
                m.next = "RUNNING"

    def _write_gradients(self, m, nbytes):
        g = self.geo
        a = self._view(proto.WRITE_GRADIENTS)
        half = self.max_payload // 2
        count_low, count_over = _capped(a.count, half)
        words = self._late(count_low * self.settings.T, "write_gradients_words")
        with m.If(self._late((nbytes < proto.nbytes(proto.WRITE_GRADIENTS) + 2) |
                             (nbytes - proto.nbytes(proto.WRITE_GRADIENTS))[0] |
                             (a.which != GradientKind.ACC) | (a.count == 0) | count_over |
                             (words != self._cap.nwords) |
                             self._past(a, g.acc_groups * g.lanes), "write_gradients")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.dgb.eq(a.group), self.ncur.eq(a.first), self.tcur.eq(0),
                         self.nelem.eq(self._cap.nwords)]
            m.next = "WA_ADDR"

    def _update(self, m, nbytes):
        with m.If(self._late((nbytes != 0) | Const(int(self.geo.inference_only)), "update")):
            self._reject(m)
        with m.Elif(~self.configured):
            self._reject(m, Status.BAD_STATE)
        with m.Else():
            m.d.comb += [self.run.start.eq(1), self.run.kind.eq(RunKind.UPDATE)]
            m.next = "RUNNING"

    def _past(self, a, limit):
        """``group * P + first + count > limit`` of a READ_HISTORY / READ_GRADIENTS."""
        g = self.geo
        group, group_over = _capped(a.group, limit, g.lane_shift)
        first, first_over = _capped(a.first, limit)
        count, count_over = _capped(a.count, limit)
        return (group_over | first_over | count_over |
                ((group << g.lane_shift) + first + count > limit))

    def _read_history(self, m, nbytes):
        g = self.geo
        a = self._view(proto.READ_HISTORY)
        with m.If(self._late((nbytes != proto.nbytes(proto.READ_HISTORY)) |
                             (a.which.as_value() > 2) | (a.count == 0) |
                             (a.count > self.max_payload // 2) |
                             self._past(a, g.hist_groups * g.lanes), "read_history")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.hsel.eq(a.which.as_value()), self.hcur.eq(a.group + (a.first >> g.lane_shift)),
                         self.ncur.eq(a.first), self.nelem.eq(a.count),
                         self.kind.eq(ElementKind.HISTORY)]
            self._respond(m)

    def _read_gradients(self, m, nbytes):
        g = self.geo
        a = self._view(proto.READ_GRADIENTS)
        # count > max_payload / 2 is past the limit for every T >= 1 on its own
        half = self.max_payload // 2
        count_low, count_over = _capped(a.count, half)
        acc = a.which == GradientKind.ACC
        words = self._late(count_low * self.settings.T, "read_gradients_words")
        with m.If(self._late((nbytes != proto.nbytes(proto.READ_GRADIENTS)) |
                             (a.which.as_value() > 2) | (a.count == 0) | count_over |
                             (words > half) |
                             ((a.which == GradientKind.U) & Const(int(not g.through))) |
                             (acc & self._past(a, g.acc_groups * g.lanes)) |
                             (~acc & self._past(a, g.neuron_groups * g.lanes)),
                             "read_gradients")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.hsel.eq(a.which.as_value()), self.dgb.eq(a.group),
                         self.ncur.eq(a.first), self.tcur.eq(0),
                         self.nelem.eq(words),
                         self.kind.eq(ElementKind.STEP_VALUE)]
            self._respond(m)

    def _read_counters(self, m, nbytes):
        with m.If(self._late((nbytes != proto.nbytes(proto.READ_COUNTERS)) |
                             (self._view(proto.READ_COUNTERS).clear > 1), "read_counters")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.nelem.eq(len(COUNTERS)), self.ebytes.eq(4),
                         self.kind.eq(ElementKind.COUNTER)]
            self._respond(m)

    def _read_digest(self, m, nbytes):
        a = self._view(proto.READ_DIGEST)
        ent = self._ent                             # at a.layer (the index multiplexer)
        # before SET_CONSTANTS no layer is loaded; an entry never set has no neurons
        with m.If(self._late((nbytes != proto.nbytes(proto.READ_DIGEST)) |
                             (a.which.as_value() > 1) | ~self.configured |
                             (a.layer >= self.settings.layers) | (ent.g_out == 0) |
                             (ent.n_in == 0), "read_digest")):
            self._reject(m)
        with m.Else():
            m.d.sync += [self.elay.eq(ent), self.wi.eq(0), self.wj.eq(0),
                         self.wrow.eq(ent.wbase), self.hsel.eq(a.which.as_value()),
                         self.nelem.eq(1), self.ebytes.eq(4), self.kind.eq(ElementKind.DIGEST)]
            m.d.comb += self._dg.clear.eq(1)
            m.next = "DIGEST"

    def _digest_states(self, m):
        """READ_DIGEST: the words of a weight address, a part of ``DW`` banks per cycle
        (``P / DW`` cycles per address, banks ascending), into the digest, then the
        response once the last words are in."""
        g, h, dg, lay = self.geo, self.host, self._dg, self.elay
        P = g.lanes
        DW = digest_words(P)
        part = Signal(range(max(P // DW, 2)))        # the part of the address's banks
        last_part = part == P // DW - 1
        m.d.comb += dg.data.eq(Mux(self.hsel == 1, h.dw_part, h.w_part))
        with m.State("DIGEST"):
            # bank k holds neuron b * P + (k - j) mod P; in the last group only those
            # below n_out count
            last = self.wi + 1 >= lay.g_out
            rem = Signal(g.lane_bits + 1)
            m.d.comb += [h.en.eq(1), h.waddr.eq(self.waddr_cur), dg.en.eq(1),
                         h.bank.eq(part * DW),
                         rem.eq(lay.n_out - ((lay.g_out - 1) << g.lane_shift))]
            for q in range(DW):
                p = (part * DW + q - self.wj)[:g.lane_shift] if P > 1 else 0
                m.d.comb += dg.mask[q].eq(~last | (p < rem))
            m.d.sync += part.eq(Mux(last_part, 0, part + 1))
            with m.If(last_part):
                with m.If(self.wj + 1 >= lay.n_in):
                    m.d.sync += [self.wj.eq(0), self.wi.eq(self.wi + 1),
                                 self.wrow.eq(self.wrow + lay.n_in)]
                    with m.If(last):
                        m.next = "DIGEST_END"
                with m.Else():
                    m.d.sync += self.wj.eq(self.wj + 1)
        with m.State("DIGEST_END"):
            m.d.comb += h.en.eq(1)
            with m.If(~dg.busy):
                self._respond(m)

    def _run_done(self, m):
        with m.If(self._cap.cmd == Command.UPDATE):
            self._respond(m)
        with m.Elif(self._cap.cmd == Command.RUN_PHASE):
            m.d.sync += self.ntail.eq(proto.nbytes(proto.RUN_RESULT))     # prediction 0, flags
            self._respond(m)
        with m.Else():
            last = self.table_read.entry          # the last layer (a RUN)
            m.d.sync += [self.elay.eq(last), self.hcur.eq(last.out_hg), self.ncur.eq(0),
                         self.nelem.eq(last.n_out), self.kind.eq(ElementKind.SPIKE_COUNT),
                         self.best.eq(0), self.bestc.eq(0),
                         self.ntail.eq(proto.nbytes(proto.RUN_RESULT))]
            self._respond(m)

    # ---- bulk writes: staging word e -> memory ------------------------------------------

    def _write_loop(self, m, name, write):
        """Staging words 0 .. nelem - 1 written by ``write``, one per cycle: a word is
        read on the staging memory, registered from its output, and written the cycle
        after (no path from the staging block RAM into the memories' write data)."""
        stage = self._cap.stage
        with m.State(f"{name}_ADDR"):
            m.d.comb += stage.addr.eq(0)
            m.d.sync += [self.e_rd.eq(1), self.e_out.eq(1), self.word_ok.eq(0)]
            m.next = f"{name}_WRITE"
        with m.State(f"{name}_WRITE"):
            more = self.e_rd < self.nelem
            m.d.comb += [stage.addr.eq(self.e_rd), self.host.en.eq(1)]
            m.d.sync += [self.e_rd.eq(self.e_rd + more), self.e_out.eq(more),
                         self.word_ok.eq(self.e_out), self.word_r.eq(stage.data)]
            with m.If(self.word_ok):
                write(m, self.word_r)
                m.d.sync += self.e.eq(self.e + 1)
                with m.If(self.e + 1 >= self.nelem):
                    m.d.sync += self.nelem.eq(0)
                    self._respond(m)

    def _write_weight(self, m, word):
        """W[i, j] = word (and dW = +0), then the next (i, j)."""
        h = self.host
        m.d.comb += [h.bank.eq(self.wbank), h.waddr.eq(self.waddr_cur), h.wdata.eq(word),
                     h.wwe.eq(1)]
        self._next_weight(m)

    def _write_spikes(self, m, word):
        """The spike (or, LOAD_HISTORY, window) history word of input neuron ncur = word,
        then the next neuron."""
        h = self.host
        m.d.comb += [h.bank.eq(self.nbank),
                     h.hdata.eq(word), h.hwe.eq(self.hsel == 0), h.mwe.eq(self.hsel == 1)]
        self._next_neuron(m)

    def _next_neuron(self, m):
        """The next neuron of a history walk, and its history word."""
        g = self.geo
        wrap = (self.ncur[:g.lane_bits] == g.lanes - 1) if g.lanes > 1 else 1
        m.d.sync += [self.ncur.eq(self.ncur + 1), self.hcur.eq(self.hcur + wrap)]

    def _write_acc(self, m, word):
        """acc[tcur, dgb + ncur / P] of lane ncur % P = word, then the next step or neuron."""
        h = self.host
        m.d.comb += [h.bank.eq(self.nbank), h.accaddr.eq(self._acc_addr()), h.wdata.eq(word),
                     h.awe.eq(1)]
        self._next_step(m)

    def _acc_addr(self):
        g = self.geo
        grp = self.dgb + (self.ncur >> g.lane_shift)
        return Cat(grp[:g.acc_group_bits], self.tcur[:g.time_bits])

    def _next_step(self, m):
        with m.If(self.tcur + 1 >= self.settings.T):
            m.d.sync += [self.tcur.eq(0), self.ncur.eq(self.ncur + 1)]
        with m.Else():
            m.d.sync += self.tcur.eq(self.tcur + 1)

    def _next_weight(self, m):
        P = self.geo.lanes
        with m.If(self.wj + 1 >= self.elay.n_in):
            m.d.sync += [self.wj.eq(0), self.wi.eq(self.wi + 1)]
            with m.If(((self.wi + 1) & (P - 1)) == 0):
                m.d.sync += self.wrow.eq(self.wrow + self.elay.n_in)
        with m.Else():
            m.d.sync += self.wj.eq(self.wj + 1)

    # ---- elements of a read response ----------------------------------------------------

    def _elements(self, m):
        """A read response's elements through the serialiser's pipeline: the read address
        of element ``index`` on ``addr`` (the walk steps on), its word registered in
        ``latch``, the element's value from that register the cycle after."""
        g, h, el, K = self.geo, self.host, self._ser.elem, ElementKind
        # the host owns the memories for the whole response (the engines are idle), and
        # the walk's addresses are on them all the time: the serialiser's addr only steps
        # the walk, so no path runs from the fetcher's decision into the memories
        m.d.comb += h.en.eq(1)
        with m.Switch(self.kind):
            with m.Case(K.W, K.DW):
                m.d.comb += [h.bank.eq(self.wbank), h.waddr.eq(self.waddr_cur)]
            with m.Case(K.HISTORY, K.SPIKE_COUNT):
                m.d.comb += h.bank.eq(self.nbank)
            with m.Case(K.STEP_VALUE):
                dg = self.dgb + (self.ncur >> g.lane_shift)
                m.d.comb += [h.bank.eq(self.nbank),
                             h.duaddr.eq(Cat(dg[:g.du_group_bits], self.tcur[:g.time_bits])),
                             h.accaddr.eq(self._acc_addr())]
        with m.If(el.addr):
            self._next_weight(m)
            with m.If(self.kind == K.STEP_VALUE):
                self._next_step(m)
            with m.Else():
                self._next_neuron(m)
        # the element in latch: its neuron (SPIKE_COUNT) and whether it was the last one
        # (READ_COUNTERS clears after the last counter's value is registered)
        lat_n, lat_last = Signal.like(self.ncur), Signal()
        val_n = Signal.like(self.ncur)
        m.d.sync += [lat_n.eq(self.ncur), lat_last.eq(el.last), val_n.eq(lat_n)]
        word = Signal(32)
        with m.If(el.latch):
            m.d.sync += word.eq(self._element_word(m))
            with m.If(lat_last & (self.kind == K.COUNTER) &
                      (self._view(proto.READ_COUNTERS).clear == 1)):
                m.d.comb += self.counters.clear.eq(1)
        # the element in value: from the register only
        TM = g.max_time_steps
        c = Signal(bits_for(TM))
        m.d.comb += [c.eq(popcount(word[:TM])),
                     el.value.eq(Mux(self.kind == K.SPIKE_COUNT, c, word))]
        at_value = Signal()
        m.d.sync += at_value.eq(el.latch)
        with m.If(at_value & (self.kind == K.SPIKE_COUNT) &
                  ((val_n == 0) | (c > self.bestc))):
            m.d.sync += [self.best.eq(val_n), self.bestc.eq(c)]

    def _element_word(self, m):
        """The word of the element in ``latch``, from the memories' outputs (a spike
        count's steps within ``T``: its popcount is taken from the register)."""
        g, h, K = self.geo, self.host, ElementKind
        TM = g.max_time_steps
        t_mask = Signal(TM)
        m.d.comb += t_mask.eq((Const(1, TM + 1) << self.settings.T) - 1)
        hword = Mux(self.hsel == 0, h.s, Mux(self.hsel == 1, h.m, h.nz))
        word = Signal(32)
        with m.Switch(self.kind):
            with m.Case(K.W):
                m.d.comb += word.eq(h.w)
            with m.Case(K.DW):
                m.d.comb += word.eq(h.dw)
            with m.Case(K.DIGEST):
                m.d.comb += word.eq(self._dg.value)
            with m.Case(K.HISTORY):
                m.d.comb += word.eq(hword)
            with m.Case(K.STEP_VALUE):
                m.d.comb += word.eq(Mux(self.hsel == 2, h.acc,
                                              Mux(self.hsel == 1, h.u, h.du)))
            with m.Case(K.COUNTER):
                m.d.comb += word.eq(self.counters.value)
            with m.Case(K.SPIKE_COUNT):
                m.d.comb += word.eq(h.s & t_mask)
        return word


def _groups(g, n):
    """Groups of ``P`` for ``n`` neurons."""
    return (n + g.lanes - 1) >> g.lane_shift


def _capped(value, limit: int, shift: int = 0):
    """``(low, over)`` of an argument checked against ``limit`` (``value << shift`` is
    what is compared): ``over`` when ``value << shift`` alone is past ``limit``
    (its bits above ``bits_for(limit)``), else ``low`` holds all of ``value``. A check
    ``over | (sum of lows > limit)`` is exact with adders only as wide as ``limit``."""
    w = max(1, bits_for(limit) - shift)
    if len(value) <= w:
        return value, Const(0, 1)
    return value[:w], value[w:].any()
