"""One spikeforge core: memories, FP / BP / WG engines and loss unit on one lane
datapath, a layer table, counters and the command decoder of the host protocol.

``req`` / ``rsp`` are the internal request and response beat streams of
:mod:`spikeforge.hdl.protocol` (the host port checks framing and CRC). Every
request gets exactly one response: status first, then the payload. Commands
(:class:`Command`, payloads in ``docs/host-protocol.md``) load constants, the
layer table, weights and input spikes, run a sample forward (and backward with
a label, accumulating ``dW``), apply the update, and read weights, history,
gradients and counters.

A run executes one phase at a time (an engine's whole loop over one layer),
waiting for the lane pipeline to drain between phases. Latency of a command
other than a run: a few cycles plus one to three cycles per payload byte.
"""

from __future__ import annotations

import enum

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .bp_engine import BPEngine, BPPhase
from .config import BuildConfig, ConfigError
from .core_defs import CoreGeometry, bits_for
from .fp_engine import FPEngine, FPPhase
from .history_scanner import HistoryScanner
from .lane_datapath import LaneDatapath
from .loss import LossPhase, LossUnit
from .op_loops import layer_layout
from . import protocol as proto
from .protocol import BEAT_LAYOUT, CONSTANTS, COUNTERS, Command, ResetGrad, RunMode, Status
from .wg_engine import WGEngine, WGPhase

__all__ = ["Core", "COUNTERS", "CORE_VERSION", "info_payload"]

CORE_VERSION = 1

_HDR = proto.ARGUMENT_BYTES   # request bytes kept as arguments


def info_payload(config: BuildConfig) -> dict:
    """The fields of the INFO response (:data:`~spikeforge.hdl.protocol.INFO`) of a core
    built from ``config``: what the RTL answers and what the host expects before a build."""
    g = CoreGeometry(config)
    f = config.features
    return {
        "version": CORE_VERSION, "lanes": g.P, "neurons_per_core": g.NPC,
        "max_fan_in": g.FAN, "max_time_steps": g.TMAX, "max_layers": g.L,
        "modes": {"detach": "detach" in f.reset_grad_modes,
                  "through": "through" in f.reset_grad_modes,
                  "inference_only": f.inference_only},
        "fma_stages": g.S, "weight_depth": g.w_depth, "input_groups": g.in_groups,
        "neuron_groups": g.neuron_groups, "max_payload": config.implementation.max_payload,
        "counters": len(COUNTERS),
    }


class _St(enum.IntEnum):
    NONE = 0
    FP_ACC = 2
    FP_LIF = 3
    LOSS_G = 4
    LOSS_B = 5
    BP_TERM = 6
    BP_DU = 7
    BP_GIN = 9
    WG_GRAD = 10
    WG_UPD = 11


class Core(wiring.Component):
    def __init__(self, config: BuildConfig):
        try:
            if not isinstance(config, BuildConfig):
                raise ConfigError(f"config must be a BuildConfig, not {type(config).__name__}")
            geo = CoreGeometry(config)
        except ConfigError:
            self._MustUse__silence = True   # never elaborated: no unused-elaboratable warning
            raise
        self.geo = geo
        self.config = config
        self.max_payload = config.implementation.max_payload
        super().__init__({
            "req": In(stream.Signature(BEAT_LAYOUT)),
            "rsp": Out(stream.Signature(BEAT_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        P, TM = g.P, g.TMAX
        MP = self.max_payload

        m.submodules.dp = dp = LaneDatapath(g)
        m.submodules.scan = scan = HistoryScanner(g)
        m.submodules.fp = fp = FPEngine(g)
        m.submodules.bp = bp = BPEngine(g)
        m.submodules.wg = wg = WGEngine(g)
        m.submodules.loss = loss = LossUnit(g)
        engines = [fp, bp, wg, loss]

        # ---- configuration registers --------------------------------------------------------
        T = Signal(bits_for(TM), init=1)
        nl = Signal(bits_for(g.L), init=1)
        through = Signal()
        wcount = Signal(g.WAB)
        consts = {name: Signal(16, name=f"c_{name}") for name in CONSTANTS}
        configured = Signal()
        Lay = layer_layout(g)
        table_raw = Array(Signal(Lay.size, name=f"layer{l}") for l in range(g.L))

        def table(i):
            return data.View(Lay, table_raw[i])
        label = Signal(g.NB + 1)
        for name in CONSTANTS:
            m.d.comb += getattr(dp, name).eq(consts[name])
        m.d.comb += [dp.T.eq(T), dp.through.eq(through), dp.label.eq(label)]

        # ---- sequencer ----------------------------------------------------------------------
        step = Signal(_St)
        cur = Signal(range(g.L))            # layer of the step
        lay = Signal(Lay)
        m.d.comb += lay.eq(table(cur))
        eng_start = Signal()
        running = Signal()
        train = Signal()
        run_kind = Signal(2)                # 0 forward, 1 train, 2 update
        seq_done = Signal()
        owner = Signal(2)                   # engine of the current step (counters)
        for e in engines:
            m.d.comb += [e.layer.eq(lay), e.T.eq(T), e.through.eq(through), e.wcount.eq(wcount)]
        step_engine = {
            _St.FP_ACC: (fp, FPPhase.ACCUMULATE),
            _St.FP_LIF: (fp, FPPhase.LIF),
            _St.LOSS_G: (loss, LossPhase.GRADIENT), _St.LOSS_B: (loss, LossPhase.BROADCAST),
            _St.BP_TERM: (bp, BPPhase.TERM), _St.BP_DU: (bp, BPPhase.DU),
            _St.BP_GIN: (bp, BPPhase.INPUT_GRAD),
            _St.WG_GRAD: (wg, WGPhase.GRADIENT), _St.WG_UPD: (wg, WGPhase.UPDATE),
        }
        for e in engines:
            m.d.comb += e.start.eq(0)
        with m.Switch(step):
            for st, (e, ph) in step_engine.items():
                with m.Case(st):
                    m.d.comb += [e.start.eq(eng_start), e.phase.eq(ph)]

        # ops and the scanner: from the busy engine
        any_busy = Signal()
        m.d.comb += any_busy.eq(Cat(*[e.busy for e in engines]).any())
        m.d.comb += dp.op.valid.eq(0)
        for e in engines:
            with m.If(e.busy):
                m.d.comb += [dp.op.valid.eq(e.op.valid), dp.op.payload.eq(e.op.payload),
                             e.op.ready.eq(dp.op.ready)]
            m.d.comb += [e.pairs.payload.eq(scan.o.payload), e.pairs.valid.eq(scan.o.valid),
                         e.pairs_done.eq(scan.done)]
        m.d.comb += [scan.o.ready.eq(Cat(*[e.pairs.ready for e in engines]).any()),
                     scan.start.eq(Cat(*[e.scan_start for e in engines]).any()),
                     scan.T.eq(T)]
        scan_nz = Signal()
        for e in engines:
            with m.If(e.scan_start):
                m.d.comb += [scan.base.eq(e.scan_base), scan.n.eq(e.scan_n),
                             scan.descending.eq(e.scan_desc), dp.scan_nz.eq(e.scan_nz),
                             scan.time_major.eq(e.scan_time_major)]
                m.d.sync += scan_nz.eq(e.scan_nz)
        with m.If(~Cat(*[e.scan_start for e in engines]).any()):
            m.d.comb += dp.scan_nz.eq(scan_nz)
        m.d.comb += [dp.scan_addr.eq(scan.rd_addr), scan.rd_data.eq(dp.scan_data)]

        # step order
        wait = Signal()
        last_layer = Signal(range(g.L))
        m.d.comb += last_layer.eq(nl - 1)
        m.d.comb += eng_start.eq(0)
        m.d.comb += dp.acc_reset.eq(eng_start & ((step == _St.FP_ACC) | (step == _St.BP_GIN)))
        with m.If(running):
            with m.If(~wait):
                m.d.comb += eng_start.eq(1)
                m.d.sync += wait.eq(1)
            with m.Elif(~any_busy & dp.idle):
                m.d.sync += wait.eq(0)

                def go(st, layer=None):
                    m.d.sync += step.eq(st)
                    if layer is not None:
                        m.d.sync += cur.eq(layer)

                def finish():
                    m.d.sync += [running.eq(0), step.eq(_St.NONE), seq_done.eq(1)]

                with m.Switch(step):
                    with m.Case(_St.FP_ACC):
                        go(_St.FP_LIF)
                    with m.Case(_St.FP_LIF):
                        with m.If(cur != last_layer):
                            go(_St.FP_ACC, cur + 1)
                        with m.Elif(train):
                            go(_St.LOSS_G)
                        with m.Else():
                            finish()
                    with m.Case(_St.LOSS_G):
                        go(_St.LOSS_B)
                    with m.Case(_St.LOSS_B):
                        go(_St.BP_TERM)
                    with m.Case(_St.BP_TERM):
                        go(_St.BP_DU)
                    with m.Case(_St.BP_DU):
                        with m.If(cur != 0):
                            go(_St.BP_GIN)
                        with m.Else():
                            go(_St.WG_GRAD)
                    with m.Case(_St.BP_GIN):
                        go(_St.WG_GRAD)
                    with m.Case(_St.WG_GRAD):
                        with m.If(cur != 0):
                            go(_St.BP_TERM, cur - 1)
                        with m.Else():
                            finish()
                    with m.Case(_St.WG_UPD):
                        finish()
        m.d.comb += owner.eq(Mux(step <= _St.FP_LIF, 0,
                                 Mux(step <= _St.BP_GIN, 1, 2)))

        # ---- counters -----------------------------------------------------------------------
        NC = len(COUNTERS)
        ctr = Array(Signal(32, name=f"ctr_{n}") for n in COUNTERS)
        ctr_clear = Signal()
        idx = {n: i for i, n in enumerate(COUNTERS)}
        incs = {n: Signal(32, name=f"inc_{n}") for n in COUNTERS}
        for n in COUNTERS:
            m.d.comb += incs[n].eq(0)
        m.d.comb += [
            incs["cycles_forward"].eq(running & (run_kind != 2) & (step <= _St.FP_LIF)),
            incs["cycles_backward"].eq(running & (step > _St.FP_LIF) & (step < _St.WG_UPD)),
            incs["cycles_update"].eq(running & (step == _St.WG_UPD)),
            incs["w_reads"].eq(dp.w_reads),
            incs["w_writes"].eq(dp.w_writes),
        ]
        stalled = Signal()
        m.d.comb += stalled.eq(dp.op.valid & ~dp.op.ready)
        fanout = Signal(g.NB)
        m.d.comb += fanout.eq(Mux(step == _St.BP_GIN, lay.n_in, lay.n_out))
        skipped_events = Signal(32)
        m.d.comb += skipped_events.eq(scan.zeros * fanout)
        for i, pre in enumerate(("fp", "bp", "wg")):
            with m.If(running & (owner == i)):
                m.d.comb += [
                    incs[f"{pre}_busy"].eq(any_busy),
                    incs[f"{pre}_stalled"].eq(stalled),
                    incs[f"{pre}_fmas"].eq(dp.lanes_issued),
                    incs[f"{pre}_skipped"].eq(skipped_events + dp.lanes_masked),
                ]
        for n in COUNTERS:
            c = ctr[idx[n]]
            with m.If(ctr_clear):
                m.d.sync += c.eq(0)
            with m.Else():
                m.d.sync += c.eq(c + incs[n])

        # ---- command decoder ---------------------------------------------------------------
        req, rsp = self.req, self.rsp
        cmd = Signal(8)
        args = Signal(data.ArrayLayout(8, _HDR))
        nbytes = Signal(17)
        low = Signal(8)
        stage = Memory(shape=16, depth=max(1, MP // 2), init=[])
        m.submodules.stage = stage
        st_wp = stage.write_port()
        st_rp = stage.read_port()
        nwords = Signal(16)

        def view(layout):
            return data.View(layout, args.as_value()[:layout.size])

        hdr_len = Signal(8)
        with m.Switch(cmd):
            with m.Case(Command.WRITE_WEIGHTS):
                m.d.comb += hdr_len.eq(5)
            with m.Case(Command.LOAD_SPIKES):
                m.d.comb += hdr_len.eq(2)
            with m.Default():
                m.d.comb += hdr_len.eq(_HDR)
        status = Signal(8)
        # response: status, fixed bytes, elements, tail bytes
        rbuf = Signal(data.ArrayLayout(8, 24))
        nfix = Signal(range(25))
        nelem = Signal(16)
        ebytes = Signal(3)
        tail = Signal(proto.RUN_RESULT)
        ntail = Signal(2)
        ekind = Signal(3)       # 0 W, 1 dW, 2 history word, 3 du/u, 4 counter, 5 count
        bi = Signal(16)         # byte index within a section
        e = Signal(16)          # element index
        val = Signal(32)
        # element walk state
        wi = Signal(g.NB)       # weights: neuron i, input j
        wj = Signal(g.NB)
        wrow = Signal(g.WAB + 1)
        ncur = Signal(g.NB + 1)  # history/du: neuron
        tcur = Signal(g.TB + 1)
        hsel = Signal(2)
        hbase = Signal(g.HGB + 1)
        dgb = Signal(g.DUGB + 1)
        elay = Signal(Lay)
        best = Signal(g.NB)
        bestc = Signal(bits_for(TM))
        wsrc = Signal(16)

        wbank = Signal(g.PB)
        m.d.comb += wbank.eq((wi + wj)[:g.PB] if P > 1 else 0)
        waddr_cur = Signal(g.WAB + 1)
        m.d.comb += waddr_cur.eq(wrow + wj)

        m.d.comb += [dp.host.eq(0), dp.h_wwe.eq(0), dp.h_hwe.eq(0), dp.clear_flags.eq(0),
                     ctr_clear.eq(0), st_wp.en.eq(0)]
        m.d.comb += [rsp.valid.eq(0), req.ready.eq(0)]

        def popcount(x):
            return sum(x[b] for b in range(TM))

        t_mask = Signal(TM)
        m.d.comb += t_mask.eq((Const(1, TM + 1) << T) - 1)

        def ceil_groups(n):
            return (n + P - 1) >> g.PB

        with m.FSM(name="cmd"):
            with m.State("IDLE"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid & req.payload.first):
                    m.d.sync += [cmd.eq(req.payload.data), nbytes.eq(0), nwords.eq(0)]
                    for i in range(_HDR):
                        m.d.sync += args[i].eq(0)
                    with m.If(req.payload.last):
                        m.next = "EXEC"
                    with m.Else():
                        m.next = "RECV"
            with m.State("RECV"):
                m.d.comb += req.ready.eq(1)
                with m.If(req.valid):
                    b = req.payload.data
                    m.d.sync += nbytes.eq(nbytes + 1)
                    with m.If(nbytes < hdr_len):
                        with m.Switch(nbytes):
                            for i in range(_HDR):
                                with m.Case(i):
                                    m.d.sync += args[i].eq(b)
                    with m.Else():
                        d = nbytes - hdr_len
                        with m.If(~d[0]):
                            m.d.sync += low.eq(b)
                        with m.Else():
                            with m.If(nwords < MP // 2):
                                m.d.comb += [st_wp.addr.eq(nwords), st_wp.data.eq(Cat(low, b)),
                                             st_wp.en.eq(1)]
                            m.d.sync += nwords.eq(nwords + 1)
                    with m.If(req.payload.last):
                        m.next = "EXEC"
            with m.State("EXEC"):
                m.d.sync += [status.eq(Status.OK), nfix.eq(0), nelem.eq(0), ntail.eq(0),
                             ebytes.eq(2), bi.eq(0), e.eq(0)]

                def reject(code=Status.BAD_ARGUMENT):
                    m.d.sync += status.eq(code)
                    m.next = "RSP_STATUS"

                with m.Switch(cmd):
                    with m.Case(Command.INFO):
                        with m.If(nbytes != 0):
                            reject()
                        with m.Else():
                            m.d.sync += [rbuf.as_value()[:proto.INFO.size].eq(
                                proto.INFO.const(info_payload(self.config)))]
                            m.d.sync += nfix.eq(proto.nbytes(proto.INFO))
                            m.next = "RSP_STATUS"
                    with m.Case(Command.SET_CONSTANTS):
                        a = view(proto.SET_CONSTANTS)
                        Tn, nln, mode, wc = a.T, a.layers, a.reset_grad, a.wcount
                        mode_ok = Signal()
                        f = self.config.features
                        m.d.comb += mode_ok.eq(
                            ((mode == ResetGrad.DETACH) &
                             ("detach" in f.reset_grad_modes or f.inference_only)) |
                            ((mode == ResetGrad.THROUGH) & ("through" in f.reset_grad_modes)))
                        with m.If((nbytes != proto.nbytes(proto.SET_CONSTANTS)) | (Tn < 1) | (Tn > TM) |
                                  (nln < 1) | (nln > g.L) | ~mode_ok | (wc > g.w_depth)):
                            reject()
                        with m.Else():
                            m.d.sync += [T.eq(Tn), nl.eq(nln),
                                         through.eq(mode == ResetGrad.THROUGH),
                                         wcount.eq(wc), configured.eq(1)]
                            m.next = "CONSTS"
                    with m.Case(Command.SET_LAYER):
                        a = view(proto.SET_LAYER)
                        li, n_in, n_out, in_hg, out_g, wb = (a.layer, a.n_in, a.n_out, a.in_hg,
                                                             a.out_g, a.wbase)
                        gi = Signal(17)
                        go_ = Signal(17)
                        m.d.comb += [gi.eq(ceil_groups(n_in)), go_.eq(ceil_groups(n_out))]
                        with m.If((nbytes != proto.nbytes(proto.SET_LAYER)) | (li >= g.L) | (n_in < 1) | (n_in > g.FAN) |
                                  (n_out < 1) | (n_out > g.NPC) |
                                  (in_hg + gi > g.hist_groups) | (out_g + go_ > g.neuron_groups) |
                                  (wb + go_ * n_in > g.w_depth)):
                            reject()
                        with m.Else():
                            ent = table(li[:max(1, (g.L - 1).bit_length())] if g.L > 1 else 0)
                            m.d.sync += [ent.n_in.eq(n_in), ent.n_out.eq(n_out),
                                         ent.g_in.eq(gi), ent.g_out.eq(go_), ent.wbase.eq(wb),
                                         ent.in_hg.eq(in_hg), ent.out_hg.eq(g.in_groups + out_g),
                                         ent.out_dg.eq(out_g),
                                         ent.in_dg.eq(Mux(in_hg >= g.in_groups,
                                                          in_hg - g.in_groups, 0))]
                            m.next = "RSP_STATUS"
                    with m.Case(Command.WRITE_WEIGHTS, Command.READ_WEIGHTS):
                        a = view(proto.READ_WEIGHTS)
                        li, i0, j0 = a.layer, a.i, a.j
                        ent = table(li[:max(1, (g.L - 1).bit_length())] if g.L > 1 else 0)
                        is_wr = cmd == Command.WRITE_WEIGHTS
                        cnt = Signal(16)
                        m.d.comb += cnt.eq(Mux(is_wr, nwords, a.count))
                        flat = Signal(32)
                        m.d.comb += flat.eq(i0 * ent.n_in + j0)
                        m.d.sync += [elay.eq(ent), wi.eq(i0), wj.eq(j0),
                                     wrow.eq(ent.wbase + (i0 >> g.PB) * ent.n_in)]
                        with m.If((is_wr & ((nbytes < proto.nbytes(proto.WRITE_WEIGHTS) + 2) |
                                            ~nbytes[0])) |
                                  (~is_wr & ((nbytes != proto.nbytes(proto.READ_WEIGHTS)) |
                                             (cnt > MP // 2) | (a.which.as_value() > 1))) |
                                  (li >= nl) | (i0 >= ent.n_out) | (j0 >= ent.n_in) | (cnt == 0) |
                                  (flat + cnt > ent.n_out * ent.n_in) | running):
                            reject(Mux(running, Status.BAD_STATE, Status.BAD_ARGUMENT))
                        with m.Elif(is_wr):
                            m.d.sync += [nelem.eq(cnt)]
                            m.next = "WW_ADDR"
                        with m.Else():
                            m.d.sync += [nelem.eq(cnt), ekind.eq(a.which.as_value())]
                            m.next = "RSP_STATUS"
                    with m.Case(Command.LOAD_SPIKES):
                        s0 = view(proto.LOAD_SPIKES).first
                        with m.If((nbytes < proto.nbytes(proto.LOAD_SPIKES) + 2) | (nbytes[0] == 1) | (s0 + nwords > g.in_groups * P) |
                                  running):
                            reject()
                        with m.Else():
                            m.d.sync += [ncur.eq(s0), nelem.eq(nwords)]
                            m.next = "LS_ADDR"
                    with m.Case(Command.RUN):
                        a = view(proto.RUN)
                        mode, lab = a.mode, a.label
                        last = table(last_layer)
                        with m.If((nbytes != proto.nbytes(proto.RUN)) | (mode.as_value() > 1) |
                                  ((mode == RunMode.TRAIN) & ((lab >= last.n_out) |
                                                  Const(int(g.inference_only))))):
                            reject()
                        with m.Elif(~configured):
                            reject(Status.BAD_STATE)
                        with m.Else():
                            m.d.sync += [label.eq(lab), train.eq(mode == RunMode.TRAIN),
                                         run_kind.eq(mode.as_value()),
                                         running.eq(1), wait.eq(0), step.eq(_St.FP_ACC),
                                         cur.eq(0), seq_done.eq(0), ctr[idx["runs"]].eq(
                                             ctr[idx["runs"]] + 1)]
                            m.d.comb += dp.clear_flags.eq(1)
                            m.next = "RUNNING"
                    with m.Case(Command.UPDATE):
                        with m.If((nbytes != 0) | Const(int(g.inference_only))):
                            reject()
                        with m.Elif(~configured):
                            reject(Status.BAD_STATE)
                        with m.Else():
                            m.d.sync += [run_kind.eq(2), train.eq(0), running.eq(1), wait.eq(0),
                                         step.eq(_St.WG_UPD), cur.eq(0), seq_done.eq(0)]
                            m.next = "RUNNING"
                    with m.Case(Command.READ_HISTORY):
                        a = view(proto.READ_HISTORY)
                        which, base, s0, n = a.which.as_value(), a.group, a.first, a.count
                        with m.If((nbytes != proto.nbytes(proto.READ_HISTORY)) | (which > 2) | (n == 0) | (n > MP // 2) |
                                  ((base << g.PB) + s0 + n > g.hist_groups * P)):
                            reject()
                        with m.Else():
                            m.d.sync += [hsel.eq(which), hbase.eq(base), ncur.eq(s0), nelem.eq(n),
                                         ekind.eq(2)]
                            m.next = "RSP_STATUS"
                    with m.Case(Command.READ_GRADIENTS):
                        a = view(proto.READ_GRADIENTS)
                        which, base, s0, n = a.which.as_value(), a.group, a.first, a.count
                        with m.If((nbytes != proto.nbytes(proto.READ_GRADIENTS)) | (which > 1) | (n == 0) |
                                  (n * T > MP // 2) |
                                  ((which == 1) & Const(int(not g.through))) |
                                  ((base << g.PB) + s0 + n > g.neuron_groups * P)):
                            reject()
                        with m.Else():
                            m.d.sync += [hsel.eq(which), dgb.eq(base), ncur.eq(s0), tcur.eq(0),
                                         nelem.eq(n * T), ekind.eq(3)]
                            m.next = "RSP_STATUS"
                    with m.Case(Command.READ_COUNTERS):
                        with m.If((nbytes != proto.nbytes(proto.READ_COUNTERS)) |
                                  (view(proto.READ_COUNTERS).clear > 1)):
                            reject()
                        with m.Else():
                            m.d.sync += [nelem.eq(NC), ebytes.eq(4), ekind.eq(4)]
                            m.next = "RSP_STATUS"
                    with m.Default():
                        reject(Status.UNKNOWN_COMMAND)

            with m.State("CONSTS"):
                for i, name in enumerate(CONSTANTS):
                    m.d.sync += consts[name].eq(
                        getattr(view(proto.SET_CONSTANTS).constants, name))
                m.next = "RSP_STATUS"

            # write weights: staging word e -> W[i, j] (and dW = +0)
            with m.State("WW_ADDR"):
                m.d.comb += st_rp.addr.eq(e)
                m.next = "WW_WRITE"
            with m.State("WW_WRITE"):
                m.d.comb += [dp.host.eq(1), dp.h_bank.eq(wbank), dp.h_waddr.eq(waddr_cur),
                             dp.h_wdata.eq(st_rp.data), dp.h_wwe.eq(1)]
                m.d.sync += e.eq(e + 1)
                with m.If(wj + 1 >= elay.n_in):
                    m.d.sync += [wj.eq(0), wi.eq(wi + 1)]
                    with m.If(((wi + 1) & (P - 1)) == 0):
                        m.d.sync += wrow.eq(wrow + elay.n_in)
                with m.Else():
                    m.d.sync += wj.eq(wj + 1)
                with m.If(e + 1 >= nelem):
                    m.d.sync += nelem.eq(0)
                    m.next = "RSP_STATUS"
                with m.Else():
                    m.next = "WW_ADDR"

            # load spikes: staging word e -> s history of input neuron ncur
            with m.State("LS_ADDR"):
                m.d.comb += st_rp.addr.eq(e)
                m.next = "LS_WRITE"
            with m.State("LS_WRITE"):
                m.d.comb += [dp.host.eq(1), dp.h_bank.eq(ncur[:g.PB] if P > 1 else 0),
                             dp.h_haddr.eq(ncur >> g.PB), dp.h_hdata.eq(st_rp.data),
                             dp.h_hwe.eq(1)]
                m.d.sync += [e.eq(e + 1), ncur.eq(ncur + 1)]
                with m.If(e + 1 >= nelem):
                    m.d.sync += nelem.eq(0)
                    m.next = "RSP_STATUS"
                with m.Else():
                    m.next = "LS_ADDR"

            with m.State("RUNNING"):
                with m.If(seq_done):
                    with m.If(run_kind == 2):
                        m.next = "RSP_STATUS"
                    with m.Else():
                        lastl = table(last_layer)
                        m.d.sync += [elay.eq(lastl), hbase.eq(lastl.out_hg), ncur.eq(0),
                                     nelem.eq(lastl.n_out), ekind.eq(5), best.eq(0), bestc.eq(0),
                                     ntail.eq(proto.nbytes(proto.RUN_RESULT))]
                        m.next = "RSP_STATUS"

            # ---- response --------------------------------------------------------------------
            with m.State("RSP_STATUS"):
                only = (status != Status.OK) | ((nfix == 0) & (nelem == 0) & (ntail == 0))
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(status),
                             rsp.payload.first.eq(1), rsp.payload.last.eq(only)]
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(0)
                    with m.If(only):
                        m.next = "IDLE"
                    with m.Elif(nfix != 0):
                        m.next = "RSP_FIX"
                    with m.Elif(nelem != 0):
                        m.next = "EL_ADDR"
                    with m.Else():
                        m.next = "RSP_TAIL"
            with m.State("RSP_FIX"):
                lastb = (bi + 1 == nfix) & (nelem == 0) & (ntail == 0)
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(rbuf[bi[:5]]),
                             rsp.payload.last.eq(lastb)]
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(lastb):
                        m.next = "IDLE"
                    with m.Elif(bi + 1 == nfix):
                        m.d.sync += bi.eq(0)
                        with m.If(nelem != 0):
                            m.next = "EL_ADDR"
                        with m.Else():
                            m.next = "RSP_TAIL"
            with m.State("EL_ADDR"):
                # present the element's read address (memories answer next cycle)
                m.d.comb += dp.host.eq(1)
                with m.Switch(ekind):
                    with m.Case(0, 1):
                        m.d.comb += [dp.h_bank.eq(wbank), dp.h_waddr.eq(waddr_cur)]
                    with m.Case(2, 5):
                        m.d.comb += [dp.h_bank.eq(ncur[:g.PB] if P > 1 else 0),
                                     dp.h_haddr.eq(hbase + (ncur >> g.PB))]
                    with m.Case(3):
                        dg = dgb + (ncur >> g.PB)
                        m.d.comb += [dp.h_bank.eq(ncur[:g.PB] if P > 1 else 0),
                                     dp.h_duaddr.eq(Cat(dg[:g.DUGB], tcur[:g.TB]))]
                m.next = "EL_LATCH"
            with m.State("EL_LATCH"):
                m.d.comb += dp.host.eq(1)
                hword = Mux(hsel == 0, dp.h_s, Mux(hsel == 1, dp.h_m, dp.h_nz))
                with m.Switch(ekind):
                    with m.Case(0):
                        m.d.sync += val.eq(dp.h_w)
                    with m.Case(1):
                        m.d.sync += val.eq(dp.h_dw)
                    with m.Case(2):
                        m.d.sync += val.eq(hword)
                    with m.Case(3):
                        m.d.sync += val.eq(Mux(hsel == 1, dp.h_u, dp.h_du))
                    with m.Case(4):
                        m.d.sync += val.eq(ctr[e[:bits_for(NC)]])
                    with m.Case(5):
                        c = Signal(bits_for(TM))
                        m.d.comb += c.eq(popcount(dp.h_s & t_mask))
                        m.d.sync += val.eq(c)
                        with m.If((ncur == 0) | (c > bestc)):
                            m.d.sync += [best.eq(ncur), bestc.eq(c)]
                m.next = "EL_SEND"
            with m.State("EL_SEND"):
                lastb = (e + 1 == nelem) & (bi + 1 == ebytes) & (ntail == 0)
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(val.word_select(bi[:2], 8)),
                             rsp.payload.last.eq(lastb)]
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(bi + 1 == ebytes):
                        m.d.sync += [bi.eq(0), e.eq(e + 1)]
                        # advance the walk
                        with m.If(wj + 1 >= elay.n_in):
                            m.d.sync += [wj.eq(0), wi.eq(wi + 1)]
                            with m.If(((wi + 1) & (P - 1)) == 0):
                                m.d.sync += wrow.eq(wrow + elay.n_in)
                        with m.Else():
                            m.d.sync += wj.eq(wj + 1)
                        with m.If(ekind == 3):
                            with m.If(tcur + 1 >= T):
                                m.d.sync += [tcur.eq(0), ncur.eq(ncur + 1)]
                            with m.Else():
                                m.d.sync += tcur.eq(tcur + 1)
                        with m.Else():
                            m.d.sync += ncur.eq(ncur + 1)
                        with m.If(e + 1 == nelem):
                            with m.If(ntail == 0):
                                with m.If((ekind == 4) & (view(proto.READ_COUNTERS).clear == 1)):
                                    m.d.comb += ctr_clear.eq(1)
                                m.next = "IDLE"
                            with m.Else():
                                m.d.sync += [tail.prediction.eq(best),
                                             tail.flags.nonfinite.eq(dp.nonfinite)]
                                m.next = "RSP_TAIL"
                        with m.Else():
                            m.next = "EL_ADDR"
            with m.State("RSP_TAIL"):
                lastb = bi + 1 == ntail
                m.d.comb += [rsp.valid.eq(1), rsp.payload.data.eq(tail.as_value().word_select(bi[:2], 8)),
                             rsp.payload.last.eq(lastb)]
                with m.If(rsp.ready):
                    m.d.sync += bi.eq(bi + 1)
                    with m.If(lastb):
                        m.next = "IDLE"
        return m
