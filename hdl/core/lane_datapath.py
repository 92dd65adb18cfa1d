"""Lane datapath of a core: its memories and ``P`` fp16 FMA lanes shared by the engines.

Every cycle the active engine may issue one operation (:class:`~.defs.OpKind`)
on the ``op`` stream; it drives all ``P`` lanes at once. The pipeline:

* cycle 0 (issue): the operation's read addresses go to the memories; it is
  accepted unless it reads a value still being computed (a scoreboard compares
  its one hazard address with the destinations of the ``D = S + 2`` operations
  in flight; the write-back stage itself forwards through transparent read ports);
* cycle 1: the words read are registered (no path from a block RAM's output
  through the rotator and the operand selection);
* cycle 2: operands are selected per lane (weights through a barrel rotator; the
  constants of the operation chosen once for all lanes, :data:`_OPERANDS`) into
  the operand register;
* cycle 3: the lane array (:class:`spikeforge.hdl.pe_array.PEArray`, ``S`` stages,
  its output always ready: no back-pressure);
* cycle ``1 + D``: write-back, with per-lane enables, and the spike / window /
  non-zero bits of the lanes' neurons.

Throughput one operation (``P`` FMAs) per cycle; latency ``S + 3`` cycles.
The host reaches the memories through ``host`` (:class:`HostAccess`), the
history scanner through ``scan`` (:class:`~.history_scanner.ScanRead`).

Memories, per bank ``k`` (lane ``k``; sizes in :class:`~.defs.CoreGeometry`):
``W``/``dW`` (skewed: weight ``(i, j)`` of a layer at bank ``(i + j) mod P``,
address ``wbase + (i div P) * N_in + j``, so a column ``j`` of ``P`` neurons and a
row ``i`` of ``P`` inputs are both one word per bank), ``acc`` (``x``/``u`` and
``g_in`` accumulators, ``(t, group)``), ``du`` (``(t, group)`` of every layer),
spike ``s``, window ``m`` and ``du != 0`` history words (one ``TMAX``-bit word per
neuron), and in ``through`` builds the potentials ``u`` (``(t, group)``).

The history words are written whole (read-modify-write of bit ``t``): the LIF
write-back reads the ``s`` word through the scanner's port and the ``m`` word through
its only port, the BPB write-back the ``du != 0`` word through its only port. This
relies on the sequencer draining the lanes between steps: no scan runs while LIF or
BPB results are written back, and no BPA issues during a LIF step.
"""

from __future__ import annotations

import operator
from functools import reduce
from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from .. import protocol as proto
from ..pe_array import PEArray
from ..spike_decoder import popcount
from .defs import (F16, CoreGeometry, OpKind, Space, count_to_f16, f16_ge, f16_gt,
                   f16_is_nonfinite, f16_is_zero, f16_lt)
from .digest import digest_words
from .history_scanner import ScanRead

__all__ = ["LaneDatapath", "HostAccess", "CONSTANTS_LAYOUT", "stats_layout"]

#: The fp16 run-time constants the lanes use (as SET_CONSTANTS loads them).
CONSTANTS_LAYOUT = proto.SET_CONSTANTS.members["constants"]

#: ``ram_style`` attribute of the lane memories for each ``Implementation.memory``.
_RAM_STYLE = {"auto": {}, "bram": {"ram_style": "block"}, "lutram": {"ram_style": "distributed"}}

_ACC_KINDS = (OpKind.FP, OpKind.LIF, OpKind.LOSS_R, OpKind.LOSS_E,
              OpKind.LOSS_G, OpKind.COPY, OpKind.GIN)
_DU_KINDS = (OpKind.BPA, OpKind.BPB, OpKind.BPT1, OpKind.BPT2)


class HostAccess(wiring.Signature):
    """The host's access to the lane memories while the lanes are idle (members from
    the host's side). ``en`` selects host addressing; reads answer one cycle after
    the address: ``w``/``dw`` at ``(bank, waddr)``, ``s``/``m``/``nz`` history words
    at ``(bank, haddr)``, ``du``/``u`` at ``(bank, duaddr)``. ``wwe`` writes
    ``W[bank, waddr] = wdata`` and ``dW = +0`` there; ``hwe`` / ``mwe`` write the spike /
    window history word ``(bank, haddr) = hdata`` (input spikes and, for a split layer,
    the window bits of its inputs); ``acc`` reads and ``awe`` writes the accumulator
    ``(bank, accaddr)`` (``wdata``; written words read back as written until the next
    accumulator reset, the others as +0). ``w_part`` / ``dw_part`` are the words at
    ``waddr`` of the part of :func:`~.digest.digest_words` banks that holds ``bank``
    (bank ``q`` of the part in element ``q``), with the same latency (READ_DIGEST);
    ``w`` / ``dw`` are the word of ``bank`` among them."""

    def __init__(self, geo: CoreGeometry):
        TM = geo.max_time_steps
        super().__init__({
            "en": Out(1),
            "bank": Out(geo.lane_bits),
            "waddr": Out(geo.waddr_bits),
            "wdata": Out(16),
            "wwe": Out(1),
            "haddr": Out(geo.hist_group_bits),
            "hdata": Out(TM),
            "hwe": Out(1),
            "mwe": Out(1),
            "duaddr": Out(geo.time_bits + geo.du_group_bits),
            "accaddr": Out(geo.time_bits + geo.acc_group_bits),
            "awe": Out(1),
            "acc": In(16),
            "w": In(16), "dw": In(16),
            "w_part": In(data.ArrayLayout(16, digest_words(geo.lanes))),
            "dw_part": In(data.ArrayLayout(16, digest_words(geo.lanes))),
            "s": In(TM), "m": In(TM), "nz": In(TM),
            "du": In(16), "u": In(16),
        })


def stats_layout(geo: CoreGeometry) -> data.StructLayout:
    """Per-cycle counts of the lanes for the counters."""
    P = geo.lanes
    return data.StructLayout({
        "stalled": 1,                   # an operation waits (hazard or host)
        "issued": bits_for(P),          # lanes that compute
        "masked": bits_for(P),          # lanes of the operation that are skipped
        "w_reads": bits_for(2 * P),     # weight / dW words read
        "w_writes": bits_for(2 * P),    # weight / dW words written
        # input-gradient FMAs skipped for output sparsity (window bit 0 in the layer below)
        "out_skipped": geo.neuron_bits + 2,
    })


class LaneDatapath(wiring.Component):
    def __init__(self, geometry: CoreGeometry):
        if not isinstance(geometry, CoreGeometry):
            raise TypeError(f"geometry must be a CoreGeometry, not {type(geometry).__name__}")
        self.geo = g = geometry
        super().__init__({
            "op": In(stream.Signature(g.op_layout)),
            "idle": Out(1),
            "T": In(bits_for(g.max_time_steps)),
            "through": In(1),
            "constants": In(CONSTANTS_LAYOUT),
            "acc_reset": In(1),             # every acc word reads as +0 until written again
            "label": In(g.neuron_bits + 1),  # label relative to the output block (LOSS_E)
            "nonfinite": Out(1),            # sticky: a written value was inf or NaN
            "clear_flags": In(1),
            "stats": Out(stats_layout(g)),
            "scan": In(ScanRead(g)),
            "host": In(HostAccess(g)),
        })

    def elaborate(self, platform):
        m = Module()
        v = SimpleNamespace()       # the ports and pipeline signals the stages share
        for stage in (self._memories, self._issue, self._operands, self._write_back):
            stage(m, v)
        return m

    def _memories(self, m, v):
        """The memories of every bank, their ports, the read port of the scanner."""
        g = self.geo
        P, TM = g.lanes, g.max_time_steps
        attrs = _RAM_STYLE[g.memory]

        def mem(name, shape, depth):
            mm = Memory(shape=shape, depth=depth, init=[], attrs=attrs)
            m.submodules[name] = mm
            return mm

        # ---- memories ------------------------------------------------------------------
        # W is read at a different address per bank (row mode), so each bank is its own
        # memory. dW, acc, du and u are always addressed alike in every bank: one memory
        # of P lanes each, written with one enable per lane (16-bit granularity), so two
        # lanes share a 36-bit-wide block RAM. The s, m and du != 0 histories are written
        # whole words (read-modify-write at the write-back, through a read port the
        # phase that writes them does not use), so a distributed-RAM cell holds four
        # useful bits, not one. Memories a build cannot use are not built.
        train = not g.inference_only
        W = [mem(f"w{k}", 16, g.weight_depth) for k in range(P)]
        w_wp = [W[k].write_port() for k in range(P)]
        w_rp = [W[k].read_port(transparent_for=(w_wp[k],)) for k in range(P)]

        def lanes_mem(name, depth, nread, build=True):
            """One memory of P 16-bit lanes: a write port and ``nread`` transparent read
            ports, as per-lane views (absent memories read +0)."""
            if not build:
                return ([_LanePort(None, k) for k in range(P)],
                        [[_LanePort(None, k) for k in range(P)] for _ in range(nread)])
            mm = mem(name, 16 * P, depth)
            wp = mm.write_port(granularity=16)
            rps = [mm.read_port(transparent_for=(wp,)) for _ in range(nread)]
            return ([_LanePort(wp, k, write=True) for k in range(P)],
                    [[_LanePort(rp, k) for k in range(P)] for rp in rps])

        dw_wp, (dw_rp,) = lanes_mem("dw", g.weight_depth, 1, train)
        acc_wp, (acc_ra, acc_rb) = lanes_mem("acc", g.acc_depth, 2)
        du_wp, (du_ra, du_rb) = lanes_mem("du", g.du_depth, 2, train)
        if g.through:
            u_wp, (u_rp,) = lanes_mem("u", g.du_depth, 1)
        else:
            u_wp, u_rp = [], []

        SH = [mem(f"s{k}", TM, g.hist_groups) for k in range(P)]
        MH = [mem(f"m{k}", TM, g.hist_groups) for k in range(P)]
        NZ = [mem(f"nz{k}", TM, g.hist_groups) for k in range(P)] if train else None
        if g.bit_history:
            # bit t written through a bit enable: synchronous read ports only (block RAM)
            s_wp = [SH[k].write_port(granularity=1) for k in range(P)]
            m_wp = [MH[k].write_port(granularity=1) for k in range(P)]
            s_rp = [SH[k].read_port(transparent_for=(s_wp[k],)) for k in range(P)]
            s_scan = [SH[k].read_port() for k in range(P)]
            m_rp = [MH[k].read_port() for k in range(P)]
            if train:
                nz_wp = [NZ[k].write_port(granularity=1) for k in range(P)]
                nz_rp = [NZ[k].read_port() for k in range(P)]
            else:
                nz_wp = [_LanePort(None, k, TM) for k in range(P)]
                nz_rp = [_LanePort(None, k, TM) for k in range(P)]
            s_aux = m_aux = nz_aux = None
        else:
            s_wp = [SH[k].write_port() for k in range(P)]
            m_wp = [MH[k].write_port() for k in range(P)]
            # s: the issue port (LIF, loss, du, host) and the scanner's port, which the LIF
            # write-back borrows for its read-modify-write (the scanner is idle then)
            s_rp = [SH[k].read_port(transparent_for=(s_wp[k],)) for k in range(P)]
            s_aux = [SH[k].read_port(domain="comb") for k in range(P)]
            # m: one port, for BPA and the host, borrowed by the LIF write-back
            m_aux = [MH[k].read_port(domain="comb") for k in range(P)]
            if train:
                nz_wp = [NZ[k].write_port() for k in range(P)]
                # nz: one port, for the scanner and the host, borrowed by the BPB write-back
                nz_aux = [NZ[k].read_port(domain="comb") for k in range(P)]
            else:
                nz_wp = [_LanePort(None, k, TM) for k in range(P)]
                nz_aux = [_LanePort(None, k, TM) for k in range(P)]
            # the registered outputs of the borrowed ports (a synchronous read)
            s_scan = [SimpleNamespace(data=Signal(TM, name=f"s_scan{k}")) for k in range(P)]
            m_rp = [SimpleNamespace(addr=Signal(g.hist_group_bits, name=f"m_raddr{k}"),
                                    data=Signal(TM, name=f"m_rdata{k}")) for k in range(P)]
            nz_q = [Signal(TM, name=f"nz_q{k}") for k in range(P)]
            # the scanner's words hold where it does not read (the host reads nz too)
            for k in range(P):
                m.d.sync += m_rp[k].data.eq(m_aux[k].data)
                with m.If(self.scan.en):
                    m.d.sync += s_scan[k].data.eq(s_aux[k].data)
                with m.If(self.scan.en | self.host.en):
                    m.d.sync += nz_q[k].eq(nz_aux[k].data)
            nz_rp = [SimpleNamespace(addr=Signal(g.hist_group_bits, name=f"nz_raddr{k}"),
                                     data=nz_q[k]) for k in range(P)]

        # ---- scanner port ----------------------------------------------------------------
        scan_nz_r = Signal()              # which history the data on the read ports is
        m.d.sync += scan_nz_r.eq(self.scan.nz)
        for k in range(P):
            m.d.comb += self.scan.data[k].eq(Mux(scan_nz_r, nz_rp[k].data, s_scan[k].data))
        if g.bit_history:
            for k in range(P):
                m.d.comb += [s_scan[k].addr.eq(self.scan.addr), s_scan[k].en.eq(self.scan.en),
                             nz_rp[k].addr.eq(Mux(self.host.en, self.host.haddr, self.scan.addr)),
                             nz_rp[k].en.eq(self.scan.en | self.host.en)]

        vars(v).update(w_wp=w_wp, dw_wp=dw_wp, acc_wp=acc_wp, du_wp=du_wp, s_wp=s_wp, m_wp=m_wp,
                       nz_wp=nz_wp, u_wp=u_wp, w_rp=w_rp, dw_rp=dw_rp, acc_ra=acc_ra, acc_rb=acc_rb,
                       du_ra=du_ra, du_rb=du_rb, s_rp=s_rp, m_rp=m_rp, nz_rp=nz_rp, u_rp=u_rp,
                       s_aux=s_aux, m_aux=m_aux, nz_aux=nz_aux)

    def _issue(self, m, v):
        """Cycle 0: the hazard check, the read addresses, the host reads."""
        g = self.geo
        host = self.host
        P, D = g.lanes, g.lane_depth
        K = OpKind
        (w_rp, dw_rp, acc_ra, acc_rb, du_ra, du_rb, s_rp, m_rp, nz_rp, u_rp) = (
            v.w_rp, v.dw_rp, v.acc_ra, v.acc_rb, v.du_ra, v.du_rb, v.s_rp, v.m_rp, v.nz_rp,
            v.u_rp)
        # ---- pipeline registers ------------------------------------------------------------
        L = g.op_layout
        tags = [Signal(L, name=f"tag{i}") for i in range(D + 1)]       # tags[0] = stage 1
        tvalid = [Signal(name=f"tvalid{i}") for i in range(D + 1)]
        tlanes = [Signal(P, name=f"tlanes{i}") for i in range(2, D + 1)]
        tlanes = [None, None] + tlanes          # from the operand register on

        op = self.op.payload


        # hazard key of the incoming operation
        hz_valid = Signal()
        hz_key = Signal(g.key_bits)
        zero_t = Const(0, g.time_bits)
        # T's derived values registered: T changes only between runs (SET_CONSTANTS),
        # many cycles before the next operation issues
        last_t = Signal(g.time_bits)
        m.d.sync += last_t.eq(self.T - 1)
        with m.Switch(op.kind):
            with m.Case(K.FP, K.GIN):
                m.d.comb += [hz_valid.eq(1), hz_key.eq(_key(Space.ACC, _acc_addr(g, op.t, op.g)))]
            with m.Case(K.LIF):
                m.d.comb += [hz_valid.eq(op.t != 0),
                             hz_key.eq(_key(Space.ACC, _acc_addr(g, op.t - 1, op.g)))]
            with m.Case(K.LOSS_E, K.LOSS_G, K.COPY):
                m.d.comb += [hz_valid.eq(1), hz_key.eq(_key(Space.ACC, _acc_addr(g, zero_t, op.g)))]
            with m.Case(K.BPB):
                with m.If(self.through):
                    m.d.comb += [hz_valid.eq(1),
                                 hz_key.eq(_key(Space.DU, _du_addr(g, op.t, op.dg)))]
                with m.Else():
                    m.d.comb += [hz_valid.eq(op.t != last_t),
                                 hz_key.eq(_key(Space.DU, _du_addr(g, op.t + 1, op.dg)))]
            with m.Case(K.BPT2):
                m.d.comb += [hz_valid.eq(op.t != last_t),
                             hz_key.eq(_key(Space.DU, _du_addr(g, op.t + 1, op.dg)))]
            with m.Case(K.BPA):
                m.d.comb += [hz_valid.eq(self.through),
                             hz_key.eq(_key(Space.DU, _du_addr(g, op.t, op.dg)))]
            with m.Case(K.WG):
                m.d.comb += [hz_valid.eq(1), hz_key.eq(_key(Space.DW, op.waddr))]
        hazard = Signal()
        conflicts = []
        for i in range(D):
            conflicts.append(tvalid[i] & (_dst_key(m, g, tags[i]) == hz_key))
        m.d.comb += hazard.eq(hz_valid & Cat(*conflicts).any())
        m.d.comb += self.op.ready.eq(~hazard & ~host.en)
        m.d.comb += self.stats.stalled.eq(self.op.valid & ~self.op.ready)
        issue = Signal()
        m.d.comb += issue.eq(self.op.valid & self.op.ready)
        m.d.comb += self.idle.eq(~Cat(*tvalid).any())

        m.d.sync += [tags[0].eq(op), tvalid[0].eq(issue)]

        # ---- read addresses (issue cycle) ---------------------------------------------------
        ta = Signal(g.time_bits)
        m.d.comb += ta.eq(Mux((op.kind == K.LOSS_E) | (op.kind == K.LOSS_G) | (op.kind == K.COPY),
                              0, op.t))

        # acc words written since the last acc_reset (others read as +0: no clearing pass)
        hit1 = Signal()
        acc_set = Signal()
        m.d.comb += acc_set.eq((issue & Cat(*[op.kind == kk for kk in _ACC_KINDS]).any()) |
                               (host.en & host.awe))
        # the flag of the word the host reads or writes, else the operation's
        f_g, f_t, f_ta = (Signal(g.acc_group_bits), Signal(g.time_bits),
                          Signal(g.time_bits))
        host_g, host_t = host.accaddr[:g.acc_group_bits], host.accaddr[g.acc_group_bits:]
        m.d.comb += [f_g.eq(Mux(host.en, host_g, op.g)), f_t.eq(Mux(host.en, host_t, op.t)),
                     f_ta.eq(Mux(host.en, host_t, ta))]
        # a row of flags per group (bit t: word (t, group)) and a register per row saying
        # whether the row was written since the reset; a row's first write after it
        # clears the row's other flags, so a reset is one cycle. Bit histories (iCE40):
        # a block RAM with bit enables and synchronous reads. Word histories (ECP5): the
        # row read through an asynchronous port and written back whole with its flag set
        # (LUT RAM: a distributed-RAM cell holds four flags, no decoder per flag).
        TW, rows = 1 << g.time_bits, 1 << g.acc_group_bits
        flags = Memory(shape=TW, depth=rows, init=[],
                       attrs={"ram_style": "block"} if g.bit_history else {})
        m.submodules.acc_written = flags
        live = Signal(rows)
        row_live = Signal()
        one = Signal(TW)
        m.d.comb += [row_live.eq(live.bit_select(f_g, 1)), one.eq(Const(1, TW) << f_t)]
        if g.bit_history:
            fwp = flags.write_port(granularity=1)
            frp = flags.read_port()           # the row before this cycle's write
            live_r, ta_r = Signal(), Signal(g.time_bits)
            m.d.comb += [fwp.data.eq(one),
                         fwp.en.eq(Mux(acc_set, Mux(row_live, one, (1 << TW) - 1), 0)),
                         hit1.eq(live_r & frp.data.bit_select(ta_r, 1))]
            m.d.sync += [live_r.eq(row_live), ta_r.eq(f_ta)]
        else:
            fwp = flags.write_port()
            frp = flags.read_port(domain="comb")
            m.d.comb += [fwp.data.eq(Mux(row_live, frp.data, 0) | one), fwp.en.eq(acc_set)]
            m.d.sync += hit1.eq(row_live & frp.data.bit_select(f_ta, 1))
        m.d.comb += [frp.addr.eq(f_g), fwp.addr.eq(f_g)]
        with m.If(self.acc_reset):
            m.d.sync += live.eq(0)
        with m.Elif(acc_set):
            m.d.sync += live.eq(live | (Const(1, rows) << f_g))
        for i in range(1, D + 1):
            m.d.sync += [tags[i].eq(tags[i - 1]), tvalid[i].eq(tvalid[i - 1])]
        for k in range(P):
            if P > 1:
                off = Signal(g.lane_bits, name=f"woff{k}")
                m.d.comb += off.eq(Mux(op.row, _back_index(g, k, op.rot), 0))
            else:
                off = 0
            waddr = Mux(host.en, host.waddr, op.waddr + off)
            m.d.comb += [
                w_rp[k].addr.eq(waddr),
                dw_rp[k].addr.eq(Mux(host.en, host.waddr, op.waddr)),   # column mode only
                acc_ra[k].addr.eq(Mux(host.en, host.accaddr, _acc_addr(g, ta, op.g))),
                acc_rb[k].addr.eq(_acc_addr(g, op.t - 1, op.g)),
                du_ra[k].addr.eq(Mux(host.en, host.duaddr, _du_addr(g, op.t, op.dg))),
                du_rb[k].addr.eq(_du_addr(g, op.t + 1, op.dg)),
                s_rp[k].addr.eq(Mux(host.en, host.haddr, op.hg)),
                m_rp[k].addr.eq(Mux(host.en, host.haddr, op.hg)),
            ]
            if g.through:
                m.d.comb += u_rp[k].addr.eq(Mux(host.en, host.duaddr, _du_addr(g, op.t, op.dg)))

        # host read data (bank select registered with the address)
        hb = Signal(g.lane_bits)
        m.d.sync += hb.eq(host.bank)
        # the weights through one select: the part of the banks (the digest's words),
        # then the bank's word in it
        DW = digest_words(P)
        hi, lo = hb[exact_log2(DW):], hb[:exact_log2(DW)]
        for part, rp in ((host.w_part, w_rp), (host.dw_part, dw_rp)):
            m.d.comb += part.eq(Array(Cat(rp[k].data for k in range(q, q + DW))
                                      for q in range(0, P, DW))[hi])
        m.d.comb += [
            host.w.eq(host.w_part[lo]),
            host.dw.eq(host.dw_part[lo]),
            host.s.eq(Array(s_rp[k].data for k in range(P))[hb]),
            host.m.eq(Array(m_rp[k].data for k in range(P))[hb]),
            host.nz.eq(Array(nz_rp[k].data for k in range(P))[hb]),
            host.du.eq(Array(du_ra[k].data for k in range(P))[hb]),
            host.acc.eq(Mux(hit1, Array(acc_ra[k].data for k in range(P))[hb], F16.POS_ZERO)),
        ]
        if g.through:
            m.d.comb += host.u.eq(Array(u_rp[k].data for k in range(P))[hb])

        vars(v).update(tags=tags, tvalid=tvalid, tlanes=tlanes, hit1=hit1, last_t=last_t)

    def _operands(self, m, v):
        """Cycle 1: the operands of every lane into the lane array."""
        g = self.geo
        cst = self.constants
        P, TM, S, D = g.lanes, g.max_time_steps, g.fma_stages, g.lane_depth
        K = OpKind
        (w_rp, dw_rp, acc_ra, acc_rb, du_ra, du_rb, s_rp, m_rp, u_rp, tags, tvalid,
         tlanes, hit1, last_t) = (
            v.w_rp, v.dw_rp, v.acc_ra, v.acc_rb, v.du_ra, v.du_rb, v.s_rp, v.m_rp, v.u_rp,
            v.tags, v.tvalid, v.tlanes, v.hit1, v.last_t)
        # ---- stage 1: the words read, registered ----------------------------------------
        def q(value, name):
            reg = Signal(len(value), name=name)
            m.d.sync += reg.eq(value)
            return SimpleNamespace(data=reg)

        w_rp = [q(w_rp[k].data, f"w_q{k}") for k in range(P)]
        dw_rp = [q(dw_rp[k].data, f"dw_q{k}") for k in range(P)]
        acc_ra = [q(acc_ra[k].data, f"acca_q{k}") for k in range(P)]
        acc_rb = [q(acc_rb[k].data, f"accb_q{k}") for k in range(P)]
        du_ra = [q(du_ra[k].data, f"dua_q{k}") for k in range(P)]
        du_rb = [q(du_rb[k].data, f"dub_q{k}") for k in range(P)]
        s_rp = [q(s_rp[k].data, f"s_q{k}") for k in range(P)]
        m_rp = [q(m_rp[k].data, f"m_q{k}") for k in range(P)]
        if g.through:
            u_rp = [q(u_rp[k].data, f"u_q{k}") for k in range(P)]
        hit1 = q(hit1, "hit_q").data
        # ---- stage 2: operands ---------------------------------------------------------------
        o1 = tags[1]
        first = Signal()
        last = Signal()
        m.d.comb += [first.eq(o1.t == 0), last.eq(o1.t == last_t)]
        # one barrel rotator: the weights (FP, GIN: lane k reads bank (k + rot) mod P) or,
        # for WG, which runs in bank space (lane k accumulates the dW word of bank k, that
        # of neuron lane (k - rot) mod P), the du words (lane k reads lane (k - rot) mod P)
        is_wg1 = Signal()
        m.d.comb += is_wg1.eq(o1.kind == K.WG)
        rot_in = Array(Mux(is_wg1, du_ra[k].data, w_rp[k].data) for k in range(P))
        rot_by = Signal(max(1, g.lane_bits))
        if P > 1:
            m.d.comb += rot_by.eq(Mux(is_wg1, -o1.rot, o1.rot))
        du_arr = Array(du_ra[k].data for k in range(P))
        bcast = Signal(16)
        m.d.comb += bcast.eq(du_arr[o1.bsel])
        t_mask = Signal(TM)
        m.d.sync += t_mask.eq((Const(1, TM + 1) << self.T) - 1)
        lanes1 = Signal(P)
        masked1 = Signal(P)
        omask1 = Signal(P)
        is_gin1 = Signal()
        m.d.comb += is_gin1.eq(o1.kind == K.GIN)
        # the lane array: S-stage fp16 FMAs behind the operand register, never stalled (the
        # issue stage resolves hazards)
        m.submodules.lanes = lanes = PEArray(lanes=P, stages=S)
        m.d.comb += [lanes.i.valid.eq(tvalid[2]), lanes.o.ready.eq(1)]
        shared = _shared_operands(m, o1.kind, cst, bcast)
        results = []
        for k in range(P):
            a, b, c = (Signal(16, name=f"a{k}"), Signal(16, name=f"b{k}"),
                       Signal(16, name=f"c{k}"))
            rk = Signal(16, name=f"rot{k}")
            m.d.comb += rk.eq(rot_in[_rot_index(g, k, rot_by)])
            accA = Mux(hit1, acc_ra[k].data, F16.POS_ZERO)
            accB = acc_rb[k].data
            duA, duB = du_ra[k].data, du_rb[k].data
            sw, mw = s_rp[k].data, m_rp[k].data
            s_t = sw.bit_select(o1.t, 1)
            m_t = mw.bit_select(o1.t, 1)
            s_prev = Signal(name=f"sprev{k}")
            m.d.comb += s_prev.eq(~first & sw.bit_select((o1.t - 1)[:g.time_bits], 1))
            valid_k = Signal(name=f"lv{k}")     # WG: bank k's neuron lane is below nvalid
            m.d.comb += valid_k.eq(Mux(is_wg1, _back_index(g, k, o1.rot) < o1.nvalid,
                                       k < o1.nvalid))
            en = Signal(name=f"en{k}")
            m.d.comb += en.eq(valid_k)
            cnt = Signal(range(TM + 1), name=f"cnt{k}")
            m.d.comb += cnt.eq(popcount(sw & t_mask))
            cnt16 = count_to_f16(m, cnt, len(cnt))
            ds = Mux(self.through, duA, accA)
            # the lane's data operands and its bits that choose between the constants
            lane_data = {"rot": rk, "w": w_rp[k].data, "dw": dw_rp[k].data,
                         "acc_a": accA, "acc_b": accB, "du_a": duA,
                         "du_b": duB, "ds": ds, "cnt": cnt16,
                         "u": u_rp[k].data if g.through else Const(F16.POS_ZERO, 16)}
            lane_bits = {"s_prev": s_prev, "s_t": s_t, "m_t": m_t, "not_m_t": ~m_t,
                         "first": first, "last": last, "s_prev_or_first": s_prev | first,
                         "s_t_or_last": s_t | last,
                         "is_label": (o1.g * P + k) == self.label}
            for name, value in (("a", a), ("b", b), ("c", c)):
                sel = shared[name]
                data_k = _or_of([Mux(sel.data[src], lane_data[src], 0) for src in sel.data])
                const_k = _or_of([sel.const[cond] & lane_bits[cond] for cond in sel.const]
                                 + [sel.always])
                pick_k = _or_of([sel.pick[cond] & lane_bits[cond] for cond in sel.pick])
                m.d.comb += value.eq(Mux(const_k, Mux(pick_k, sel.c1, sel.c0), data_k))
            with m.Switch(o1.kind):
                with m.Case(K.GIN):
                    # output sparsity: input j = h*P + k (window word at hg = its group)
                    # is used by the layer below only where its window bit is set
                    m.d.comb += en.eq(valid_k & m_t)
                with m.Case(K.WG):
                    m.d.comb += en.eq(valid_k & ~f16_is_zero(rk))
            m.d.comb += [lanes1[k].eq(en & tvalid[1]),
                         masked1[k].eq(valid_k & ~en & tvalid[1] & ~is_gin1),
                         omask1[k].eq(valid_k & ~en & tvalid[1] & is_gin1)]
            m.d.sync += [lanes.i.payload[k].a.eq(a), lanes.i.payload[k].b.eq(b),
                         lanes.i.payload[k].c.eq(c)]
            results.append(lanes.o.payload[k])

        m.d.sync += tlanes[2].eq(lanes1)
        for i in range(3, D + 1):
            m.d.sync += tlanes[i].eq(tlanes[i - 1])
        # the lane counts from registers (cycle 3, the operation still in flight, so in
        # its phase): no path from the memories through the lane enables into the counters
        masked2, omask2 = Signal(P), Signal(P)
        m.d.sync += [masked2.eq(masked1), omask2.eq(omask1)]
        o2 = tags[2]
        m.d.comb += [
            self.stats.issued.eq(popcount(tlanes[2])),
            self.stats.masked.eq(popcount(masked2)),
            self.stats.out_skipped.eq(popcount(omask2) + Mux(tvalid[2], o2.oskip, 0)),
        ]
        is_w2 = Signal()
        m.d.comb += is_w2.eq(tvalid[2] & ((o2.kind == K.FP) | (o2.kind == K.GIN) |
                                          (o2.kind == K.WG) | (o2.kind == K.UPD)))
        m.d.comb += self.stats.w_reads.eq(Mux(is_w2, Mux((o2.kind == K.WG) | (o2.kind == K.UPD),
                                                   Mux(o2.kind == K.UPD, 2 * P, P), P), 0))

        vars(v).update(results=results)

    def _write_back(self, m, v):
        """Cycle 1 + D: results, history bits and flags into the memories."""
        g = self.geo
        P, TM, D = g.lanes, g.max_time_steps, g.lane_depth
        K = OpKind
        host, cst = self.host, self.constants
        (w_wp, dw_wp, acc_wp, du_wp, s_wp, m_wp, nz_wp, u_wp, tags, tvalid, tlanes,
         results) = (
            v.w_wp, v.dw_wp, v.acc_wp, v.du_wp, v.s_wp, v.m_wp, v.nz_wp, v.u_wp, v.tags,
            v.tvalid, v.tlanes, v.results)
        # ---- write-back (stage 1 + D) -----------------------------------------------------
        ow = tags[D]
        lw = tlanes[D]
        wv = tvalid[D]
        res = [Signal(16, name=f"res{k}") for k in range(P)]
        for k in range(P):
            m.d.comb += res[k].eq(results[k])
        kind_acc = Signal()
        kind_du = Signal()
        m.d.comb += [
            kind_acc.eq(Cat(*[ow.kind == kk for kk in _ACC_KINDS]).any()),
            kind_du.eq(Cat(*[ow.kind == kk for kk in _DU_KINDS]).any()),
        ]
        bit = Signal(TM)
        m.d.comb += bit.eq(Const(1, TM) << ow.t)
        s_aux, m_aux, nz_aux = v.s_aux, v.m_aux, v.nz_aux
        lif_wb, bpb_wb = Signal(), Signal()     # history words written back this cycle
        m.d.comb += [lif_wb.eq(wv & (ow.kind == K.LIF)), bpb_wb.eq(wv & (ow.kind == K.BPB))]
        nonfinite = Signal()
        m.d.comb += nonfinite.eq(
            wv & Cat(*[lw[k] & f16_is_nonfinite(res[k]) for k in range(P)]).any())
        with m.If(self.clear_flags):
            m.d.sync += self.nonfinite.eq(0)
        with m.Elif(nonfinite):
            m.d.sync += self.nonfinite.eq(1)
        # window summary (ScanRead.win): per history group, per step, any window bit. Only
        # the LIF write-back writes it, and only at neuron groups (a layer's out_hg is past
        # the input groups). The input groups' bits are constant ones: their window words
        # come from the host (a split layer's inputs, LOAD_HISTORY), every group of them is
        # issued and the lanes are masked by the words themselves
        G0 = g.in_groups
        win = Array(Signal(TM, name=f"win{h}") for h in range(g.neuron_groups))
        m.d.comb += self.scan.win.eq(Cat(Const((1 << (G0 * TM)) - 1, G0 * TM), *win))
        any_win = Signal()
        m.d.comb += any_win.eq(Cat(*[lw[k] & f16_gt(res[k], cst.lo) & f16_lt(res[k], cst.hi)
                                     for k in range(P)]).any())
        wh = Signal(range(g.hist_groups))
        m.d.comb += wh.eq(ow.hg - G0)
        with m.If(lif_wb & (ow.hg >= G0)):
            m.d.sync += win[wh].eq((win[wh] & ~bit) | Mux(any_win, bit, 0))
        n_wwrites = Signal(bits_for(2 * P))
        m.d.comb += n_wwrites.eq(0)
        with m.If(wv & (ow.kind == K.UPD)):
            m.d.comb += n_wwrites.eq(2 * P)
        with m.Elif(wv & (ow.kind == K.WG)):
            m.d.comb += n_wwrites.eq(popcount(lw))
        m.d.comb += self.stats.w_writes.eq(n_wwrites)
        for k in range(P):
            with m.If(host.en):
                m.d.comb += [acc_wp[k].addr.eq(host.accaddr), acc_wp[k].data.eq(host.wdata),
                             acc_wp[k].en.eq(host.awe & (host.bank == k))]
            with m.Else():
                m.d.comb += [acc_wp[k].addr.eq(_acc_addr(g, ow.t, ow.g)),
                             acc_wp[k].data.eq(res[k]),
                             acc_wp[k].en.eq(wv & kind_acc & lw[k])]
            m.d.comb += [
                du_wp[k].addr.eq(_du_addr(g, ow.t, ow.dg)),
                du_wp[k].data.eq(res[k]),
                du_wp[k].en.eq(wv & kind_du & lw[k]),
            ]
            # history bit t of the lanes' neurons: spike (LIF, below), window (LIF), du != 0
            # (BPB); every other bit of the word keeps its value
            win_k = f16_gt(res[k], cst.lo) & f16_lt(res[k], cst.hi)
            nz_k = ~f16_is_zero(res[k])
            m.d.comb += [m_wp[k].addr.eq(Mux(host.en, host.haddr, ow.hg)),
                         nz_wp[k].addr.eq(ow.hg)]
            host_m = host.en & host.mwe & (host.bank == k)     # the host's window word
            if g.bit_history:
                m.d.comb += [
                    m_wp[k].data.eq(Mux(host.en, host.hdata, Mux(win_k, bit, 0))),
                    m_wp[k].en.eq(Mux(host_m, (1 << TM) - 1, Mux(lif_wb & lw[k], bit, 0))),
                    nz_wp[k].data.eq(Mux(nz_k, bit, 0)),
                    nz_wp[k].en.eq(Mux(bpb_wb & lw[k], bit, 0)),
                ]
            else:
                m.d.comb += [
                    # the borrowed read ports: the word being written back, else their users'
                    s_aux[k].addr.eq(Mux(lif_wb, ow.hg, self.scan.addr)),
                    m_aux[k].addr.eq(Mux(lif_wb, ow.hg, v.m_rp[k].addr)),
                    nz_aux[k].addr.eq(Mux(bpb_wb, ow.hg, Mux(host.en, host.haddr,
                                                             self.scan.addr))),
                    # read-modify-write of bit t of the word
                    m_wp[k].data.eq(Mux(host.en, host.hdata,
                                        (m_aux[k].data & ~bit) | Mux(win_k, bit, 0))),
                    m_wp[k].en.eq(host_m | (lif_wb & lw[k])),
                    nz_wp[k].data.eq((nz_aux[k].data & ~bit) | Mux(nz_k, bit, 0)),
                    nz_wp[k].en.eq(bpb_wb & lw[k]),
                ]
            if g.through:
                m.d.comb += [u_wp[k].addr.eq(_du_addr(g, ow.t, ow.dg)), u_wp[k].data.eq(res[k]),
                             u_wp[k].en.eq(wv & (ow.kind == K.LIF) & lw[k])]
            # s history: LIF write-back, or the host's input spikes
            spike_k = Mux(f16_ge(res[k], cst.v_th), bit, 0)
            with m.If(host.en):
                m.d.comb += [s_wp[k].addr.eq(host.haddr), s_wp[k].data.eq(host.hdata),
                             s_wp[k].en.eq(Mux(host.hwe & (host.bank == k),
                                               (1 << len(s_wp[k].en)) - 1, 0))]
            with m.Else():
                m.d.comb += s_wp[k].addr.eq(ow.hg)
                if g.bit_history:
                    m.d.comb += [s_wp[k].data.eq(spike_k),
                                 s_wp[k].en.eq(Mux(lif_wb & lw[k], bit, 0))]
                else:
                    m.d.comb += [s_wp[k].data.eq((s_aux[k].data & ~bit) | spike_k),
                                 s_wp[k].en.eq(lif_wb & lw[k])]
            # W and dW: update, weight gradient (lane k is bank k), host writes
            with m.If(host.en):
                m.d.comb += [
                    w_wp[k].addr.eq(host.waddr), w_wp[k].data.eq(host.wdata),
                    w_wp[k].en.eq(host.wwe & (host.bank == k)),
                    dw_wp[k].addr.eq(host.waddr), dw_wp[k].data.eq(F16.POS_ZERO),
                    dw_wp[k].en.eq(host.wwe & (host.bank == k)),
                ]
            with m.Else():
                m.d.comb += [
                    w_wp[k].addr.eq(ow.waddr), w_wp[k].data.eq(res[k]),
                    w_wp[k].en.eq(wv & (ow.kind == K.UPD)),
                    dw_wp[k].addr.eq(ow.waddr),
                    dw_wp[k].data.eq(Mux(ow.kind == K.UPD, F16.POS_ZERO, res[k])),
                    dw_wp[k].en.eq(wv & ((ow.kind == K.UPD) | ((ow.kind == K.WG) & lw[k]))),
                ]


class _LanePort:
    """Lane ``k`` of a memory port of ``P`` 16-bit lanes (address shared by all lanes,
    its slice of the data, its write enable), or of an absent memory (``port`` None:
    reads 0, writes go nowhere)."""

    def __init__(self, port, k, width=16, write=False):
        if port is None:
            self.addr, self.data, self.en = Signal(1), Signal(width), Signal()
        else:
            self.addr = port.addr
            self.data = port.data[k * width:(k + 1) * width]
            if write:
                self.en = port.en[k]


def _acc_addr(g, t, grp):
    return Cat(grp[:g.acc_group_bits], t[:g.time_bits])


def _du_addr(g, t, grp):
    return Cat(grp[:g.du_group_bits], t[:g.time_bits])


def _key(space, addr):
    return Cat(Const(int(space), 2), addr)


class _Op:
    """One operand of one kind: a lane's data value (``data``, a name of the lane's
    sources) unless the lane's bit ``const`` (a name, or always when ``data`` is
    ``None``), then ``c1`` where the lane's bit ``pick`` is set, else ``c0``. The
    constants are shared by every lane (fp16 patterns, or ``CONSTANTS_LAYOUT`` fields
    by name, ``"-alpha"`` negated, ``"bcast"`` the broadcast ``du``)."""

    def __init__(self, data=None, *, const=None, pick=None, c0=F16.POS_ZERO, c1=F16.POS_ZERO):
        self.data, self.const, self.pick, self.c0, self.c1 = data, const, pick, c0, c1


_K = OpKind
#: The lanes' operands ``fma(a, b, c)`` of each operation kind (docs/core.md): the
#: constants are chosen once for all lanes, each lane selects among its own values
#: (``rot``: the rotator's output, the weights for FP and GIN, the du words for WG).
_OPERANDS = {
    _K.FP: dict(a=_Op("rot"), b=_Op(c0=F16.ONE), c=_Op("acc_a")),
    # s[t-1] ? -0 * 1 + x : alpha * u[t-1] + x (u[-1] = +0)
    _K.LIF: dict(a=_Op(pick="s_prev", c0="alpha", c1=F16.NEG_ZERO),
                 b=_Op("acc_b", const="s_prev_or_first", pick="s_prev", c1=F16.ONE),
                 c=_Op("acc_a")),
    _K.LOSS_R: dict(a=_Op("cnt"), b=_Op(c0="inv_T"), c=_Op(c0=F16.NEG_ZERO)),
    _K.LOSS_E: dict(a=_Op("acc_a"), b=_Op(c0=F16.ONE),
                    c=_Op(pick="is_label", c0=F16.NEG_ZERO, c1=F16.NEG_ONE)),
    _K.LOSS_G: dict(a=_Op("acc_a"), b=_Op(c0="gscale"), c=_Op(c0=F16.NEG_ZERO)),
    _K.COPY: dict(a=_Op("acc_a"), b=_Op(c0=F16.ONE), c=_Op(c0=F16.NEG_ZERO)),
    # m[t] ? beta * ds + -0 : +0 * 1 + +0
    _K.BPA: dict(a=_Op(pick="m_t", c1="beta"), b=_Op("ds", const="not_m_t", c0=F16.ONE),
                 c=_Op(pick="m_t", c1=F16.NEG_ZERO)),
    # s[t] ? -0 * 1 + term : alpha * du[t+1] + term (du[T] = +0)
    _K.BPB: dict(a=_Op(pick="s_t", c0="alpha", c1=F16.NEG_ZERO),
                 b=_Op("du_b", const="s_t_or_last", pick="s_t", c1=F16.ONE),
                 c=_Op("du_a")),
    _K.BPT1: dict(a=_Op(c0="-alpha"), b=_Op("u"), c=_Op(c0=F16.NEG_ZERO)),
    # g[t] only where the window is open: elsewhere it may be an input gradient that
    # was skipped (never computed), and ds is not used
    _K.BPT2: dict(a=_Op("du_a"), b=_Op("du_b", const="last"),
                  c=_Op("acc_a", const="not_m_t")),
    _K.GIN: dict(a=_Op("rot"), b=_Op(c0="bcast"), c=_Op("acc_a")),
    # in bank space: the du of bank k's neuron (rotated), the dW word of bank k
    _K.WG: dict(a=_Op("rot"), b=_Op(c0=F16.ONE), c=_Op("dw")),
    _K.UPD: dict(a=_Op(c0="neg_lr"), b=_Op("dw"), c=_Op("w")),
}


def _shared_operands(m, kind, cst, bcast):
    """Per operand, what every lane shares for the operation ``kind``: one-hot selects
    of the lane's data value (``data``) and of its const / pick bits, ``always``
    (a constant whatever the lane), and the two constants ``c0`` / ``c1``."""
    def const_value(c):
        if isinstance(c, int):
            return Const(c, 16)
        if c == "bcast":
            return bcast
        if c == "-alpha":
            return cst.alpha ^ 0x8000
        return getattr(cst, c)

    shared = {}
    for name in "abc":
        ops = {kind_: table[name] for kind_, table in _OPERANDS.items()}
        ns = SimpleNamespace(data={}, const={}, pick={}, always=Signal(name=f"op_{name}_const"),
                             c0=Signal(16, name=f"op_{name}_c0"), c1=Signal(16, name=f"op_{name}_c1"))

        def select(label, kinds):
            sig = Signal(name=f"op_{name}_{label}")
            m.d.comb += sig.eq(Cat(*[kind == kk for kk in kinds]).any())
            return sig

        for attr in ("data", "const", "pick"):
            names = sorted({getattr(op, attr) for op in ops.values()} - {None})
            for n in names:
                getattr(ns, attr)[n] = select(f"{attr}_{n}", [kk for kk, op in ops.items()
                                                              if getattr(op, attr) == n])
        m.d.comb += ns.always.eq(Cat(*[kind == kk for kk, op in ops.items()
                                       if op.data is None]).any())
        with m.Switch(kind):
            for kk, op in ops.items():
                with m.Case(kk):
                    m.d.comb += [ns.c0.eq(const_value(op.c0)), ns.c1.eq(const_value(op.c1))]
        shared[name] = ns
    return shared


def _or_of(values):
    """The OR of ``values`` (0 when there are none)."""
    return reduce(operator.or_, values, Const(0, 1))


def _rot_index(g, k, rot):
    """(k + rot) mod P, P a power of two."""
    return (k + rot)[:g.lane_bits] if g.lanes > 1 else Const(0, 1)


def _back_index(g, k, rot):
    """(k - rot) mod P."""
    return (k + g.lanes - rot)[:g.lane_bits] if g.lanes > 1 else Const(0, 1)


def _dst_key(m, g, o):
    """The hazard key of the value operation ``o`` writes."""
    k = Signal(g.key_bits)
    with m.Switch(o.kind):
        with m.Case(*_ACC_KINDS):
            m.d.comb += k.eq(_key(Space.ACC, _acc_addr(g, o.t, o.g)))
        with m.Case(*_DU_KINDS):
            m.d.comb += k.eq(_key(Space.DU, _du_addr(g, o.t, o.dg)))
        with m.Case(OpKind.WG):
            m.d.comb += k.eq(_key(Space.DW, o.waddr))
        with m.Default():
            m.d.comb += k.eq(_key(Space.W, o.waddr))
    return k
