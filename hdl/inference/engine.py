"""Integer inference engine: the event-driven forward pass of SPEC section 8.

Work follows the input events. For each layer, each group of ``group`` neurons
(``lanes`` processing elements, ``per_word`` neurons each) and each step ``t``,
the step's input bitmap (words of ``group`` bits from a spike buffer) goes through
the :class:`~spikeforge.hdl.spike_decoder.SpikeDecoder`, whose ascending index
stream addresses the weight memories: for active input ``j`` every lane reads
one 16-bit word at ``gbase + j`` (its ``per_word`` B-bit weights for input ``j``)
and adds each weight into its neuron's accumulator (integer adds only, no
multiplier). With the beat that ends the step's bitmap the ``group`` neurons are
updated in the same cycle: ``l = v`` (integrate-and-fire) or ``v - (v >> k)``,
``v' = sat_Q(l + x + b)`` with the run-time ``Q``, spike ``v' >= theta``, reset
by ``subtract`` or to ``zero``; the group's spikes are written as one word of
the other spike buffer (the next layer's input), and the accumulators clear.
Potentials and spike counts of a group live in registers for its ``T`` steps
(time runs inside the group loop), so no potential memory is needed; after the
last step the last layer's group writes its results (spike counts, or final
potentials in ``potential`` readout, where the last layer never fires nor
resets) as one row of the result memory.

Throughput: one input event per cycle, i.e. ``group`` SOPs per cycle (of which
``min(group, n_out - g * group)`` are useful in a layer's last group); the
steps of a group stream back to back through the decoder (a step takes at least
one cycle per bitmap word), the layer's input replays for each group without a
gap (the next group's first beats wait in the decoder while the group before
ends with its last update, about two cycles per group change), and a layer
change costs about five cycles (the next layer's first bitmap through the
decoder). Latency of a RUN: the sum of those.

Layer table: ``max_layers`` entries of :data:`~spikeforge.hdl.protocol.INF_SET_LAYER`
(written through ``table_*``); layer ``l`` reads spike buffer ``l % 2`` and writes
buffer ``(l + 1) % 2``; the host loads buffer 0.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..checked import ArgumentChecked
from ..protocol import INF_SET_LAYER, ResetKind
from ..spike_decoder import SpikeDecoder
from .geometry import InferenceGeometry


def _r(n):
    """A port shape for values 0 .. n-1 (never zero bits wide: Verilator rejects those)."""
    return range(max(2, n))


__all__ = ["InferenceEngine"]


class InferenceEngine(ArgumentChecked, wiring.Component):
    """The datapath and its loop control (see the module doc); ``geo`` is an
    :class:`InferenceGeometry`."""

    @classmethod
    def check(cls, geo):
        if not isinstance(geo, InferenceGeometry):
            raise TypeError(f"geo must be an InferenceGeometry, not {type(geo).__name__}")

    def __init__(self, geo: InferenceGeometry):
        self.geo = g = geo
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1),
            "T": In(range(g.max_T + 1)),
            "layers": In(range(g.max_layers + 1)),
            "Q": In(range(g.Q + 1)),
            "potential": In(1),                     # readout: 1 potential, 0 spikes
            "table_we": In(1), "table_index": In(_r(g.max_layers)),
            "table_entry": In(INF_SET_LAYER),
            "w_en": In(1), "w_lane": In(_r(g.lanes)), "w_addr": In(_r(g.weight_depth)),
            "w_data": In(16),
            "b_en": In(1), "b_row": In(_r(g.bias_rows)), "b_slot": In(_r(g.group)),
            "b_data": In(signed(g.Q)),
            "s_en": In(1), "s_addr": In(_r(g.spike_depth)), "s_piece": In(_r(g.pieces)),
            "s_data": In(16),
            "r_row": In(_r(g.groups)), "r_data": Out(data.ArrayLayout(16, g.group)),
            "sops": Out(range(g.group + 1)), "beat": Out(1), "update": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        L, P, G, B, QB = g.lanes, g.per_word, g.group, g.B, g.Q
        wbits = ceil_log2(g.step_words)

        # ---- layer table ---------------------------------------------------------------
        table = Array(Signal(INF_SET_LAYER, name=f"layer{i}") for i in range(g.max_layers))
        with m.If(self.table_we):
            m.d.sync += table[self.table_index].eq(self.table_entry)

        # ---- memories ------------------------------------------------------------------
        w_rd = []
        waddr = Signal(range(g.weight_depth))
        for lane in range(L):
            mem = Memory(shape=16, depth=g.weight_depth, init=[])
            m.submodules[f"weights{lane}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en & (self.w_lane == lane))]
            rp = mem.read_port()
            m.d.comb += rp.addr.eq(waddr)
            w_rd.append(rp)

        m.submodules.biases = bmem = Memory(shape=data.ArrayLayout(signed(QB), G),
                                            depth=g.bias_rows, init=[])
        bwp = bmem.write_port(granularity=1)
        brp = bmem.read_port()
        m.d.comb += [bwp.addr.eq(self.b_row), bwp.en.eq(Mux(self.b_en, 1 << self.b_slot, 0))]
        for k in range(G):
            m.d.comb += bwp.data[k].eq(self.b_data)

        sp_wp, sp_rp = [], []
        for b in range(2):
            mem = Memory(shape=G, depth=g.spike_depth, init=[])
            m.submodules[f"spikes{b}"] = mem
            sp_wp.append(mem.write_port(granularity=16))
            sp_rp.append(mem.read_port())

        m.submodules.results = rmem = Memory(shape=data.ArrayLayout(16, G), depth=g.groups,
                                             init=[])
        rwp = rmem.write_port()
        rrp = rmem.read_port()
        m.d.comb += [rrp.addr.eq(self.r_row), self.r_data.eq(rrp.data)]

        # ---- loop state ----------------------------------------------------------------
        layer = Signal(_r(g.max_layers))
        cur = Signal(INF_SET_LAYER)
        nw = Signal(range(g.step_words + 1))        # bitmap words per step of this layer
        grp = Signal(range(max(2, g.groups)))
        gbase = Signal(range(g.weight_depth + g.max_fan_in + 1))
        brow = Signal(range(g.bias_rows + g.groups + 1))
        nleft = Signal(range(g.max_neurons + 1))     # neurons of this group and later ones
        nvalid = Signal(range(G + 1))
        t = Signal(range(g.max_T + 1))
        last_layer = Signal()
        fire_layer = Signal()
        m.d.comb += [last_layer.eq(layer + 1 == self.layers),
                     fire_layer.eq(~(last_layer & self.potential)),
                     nvalid.eq(Mux(nleft >= G, G, nleft)),
                     brp.addr.eq(brow)]
        in_sel = layer[0]

        # ---- feeder: bitmap words of steps 0 .. T-1 into the decoder ----------------------
        m.submodules.dec = dec = SpikeDecoder(word_width=G, index_width=max(1, ceil_log2(G * g.step_words)),
                                              width=1)
        f_on = Signal()                 # words left to fetch
        f_t = Signal(range(g.max_T + 1))
        f_w = Signal(range(g.step_words + 1))
        f_g = Signal(range(g.groups + 1))       # group the feeder is replaying the input for
        ngroups = Signal(range(g.groups + 1))
        f_valid = Signal()
        f_last = Signal()
        adv = Signal()
        m.d.comb += adv.eq(~f_valid | dec.i.ready)
        f_addr = Cat(f_w[:wbits], f_t) if wbits else f_t
        for b in range(2):
            m.d.comb += [sp_rp[b].addr.eq(f_addr), sp_rp[b].en.eq(adv)]
        m.d.comb += [dec.i.valid.eq(f_valid),
                     dec.i.payload.word.eq(Mux(in_sel, sp_rp[1].data, sp_rp[0].data)),
                     dec.i.payload.last.eq(f_last)]
        with m.If(adv):
            m.d.sync += [f_valid.eq(f_on), f_last.eq(f_w + 1 == nw)]
            with m.If(f_on):
                with m.If(f_w + 1 == nw):
                    m.d.sync += [f_w.eq(0), f_t.eq(f_t + 1)]
                    with m.If(f_t + 1 == self.T):
                        # the layer's input replays for each group; it stops after the last
                        m.d.sync += [f_t.eq(0), f_g.eq(f_g + 1)]
                        with m.If(f_g + 1 == ngroups):
                            m.d.sync += f_on.eq(0)
                with m.Else():
                    m.d.sync += f_w.eq(f_w + 1)

        # ---- stage A: an index addresses the weights; stage B: add / update ----------------
        streaming = Signal()
        a_steps = Signal(range(g.max_T + 1))    # bitmaps of this group through stage A
        take = Signal()
        m.d.comb += [take.eq(streaming & (a_steps != self.T)), dec.o.ready.eq(take)]
        beat = dec.o.valid & take
        with m.If(beat & dec.o.payload.last):
            m.d.sync += a_steps.eq(a_steps + 1)
        m.d.comb += waddr.eq(gbase + dec.o.payload.index[0])
        b_add = Signal()
        b_end = Signal()
        m.d.sync += [b_add.eq(beat & (dec.o.payload.count != 0)),
                     b_end.eq(beat & dec.o.payload.last)]

        acc = [Signal(signed(g.acc_bits), name=f"acc{k}") for k in range(G)]
        v = [Signal(signed(QB), name=f"v{k}") for k in range(G)]
        cnt = [Signal(range(g.max_T + 1), name=f"cnt{k}") for k in range(G)]
        clear_group = Signal()
        qhi = Signal(signed(QB + 1))
        qlo = Signal(signed(QB + 1))
        m.d.comb += [qhi.eq((Const(1, QB + 1) << (self.Q - 1)[:len(self.Q)].as_unsigned()) - 1), qlo.eq(-1 - qhi)]
        theta = cur.theta.as_signed()
        spikes = Signal(G)
        v_next, c_next = [], []
        sw = max(QB, g.acc_bits) + 3
        for k in range(G):
            lane, p = divmod(k, P)
            w = w_rd[lane].data[p * B:(p + 1) * B].as_signed()
            x = Signal(signed(g.acc_bits + 1), name=f"x{k}")
            m.d.comb += x.eq(acc[k] + Mux(b_add, w, 0))
            leak = Signal(signed(QB + 1), name=f"leak{k}")
            m.d.comb += leak.eq(Mux(cur.leak.none, v[k], v[k] - (v[k] >> cur.leak.shift)))
            total = Signal(signed(sw), name=f"sum{k}")
            m.d.comb += total.eq(leak + x + brp.data[k])
            vp = Signal(signed(QB), name=f"vp{k}")
            with m.If(total > qhi):
                m.d.comb += vp.eq(qhi)
            with m.Elif(total < qlo):
                m.d.comb += vp.eq(qlo)
            with m.Else():
                m.d.comb += vp.eq(total)
            s = Signal(name=f"s{k}")
            m.d.comb += [s.eq(fire_layer & (vp >= theta)), spikes[k].eq(s & (k < nvalid))]
            vn = Signal(signed(QB), name=f"vn{k}")       # v[t] after this step's update
            cn = Signal(range(g.max_T + 1), name=f"cn{k}")
            m.d.comb += [vn.eq(Mux(s, Mux(cur.reset == ResetKind.ZERO, 0, vp - theta), vp)),
                         cn.eq(cnt[k] + s)]
            v_next.append(vn)
            c_next.append(cn)
            with m.If(clear_group):
                m.d.sync += [acc[k].eq(0), v[k].eq(0), cnt[k].eq(0)]
            with m.Elif(b_end):
                m.d.sync += [acc[k].eq(0), v[k].eq(vn), cnt[k].eq(cn)]
            with m.Elif(b_add):
                m.d.sync += acc[k].eq(x)

        # output spikes: one word of the other buffer per update; host writes buffer 0
        # word grp of step t at t * step_words + grp, as the feeder reads it (grp has
        # ceil_log2(groups) bits, fewer than wbits when max_fan_in > max_neurons)
        o_addr = (t << wbits) + grp
        for b in range(2):
            out_here = streaming & b_end & (in_sel != b)
            m.d.comb += [sp_wp[b].addr.eq(Mux(out_here, o_addr, self.s_addr)),
                         sp_wp[b].data.eq(Mux(out_here, spikes,
                                              Cat(*([self.s_data] * g.pieces)))),
                         sp_wp[b].en.eq(Mux(out_here, (1 << g.pieces) - 1,
                                            Mux(self.s_en & (b == 0), 1 << self.s_piece, 0)))]
        # results of the last layer's group, written with its final update
        for k in range(G):
            m.d.comb += rwp.data[k].eq(Mux(self.potential, v_next[k].as_signed(), c_next[k]))
        m.d.comb += rwp.addr.eq(grp)

        m.d.comb += [self.sops.eq(Mux(streaming & b_add, nvalid, 0)),
                     self.beat.eq(streaming & b_add), self.update.eq(streaming & b_end)]

        # ---- loop control ----------------------------------------------------------------
        entry = table[layer]
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += layer.eq(0)
                    m.next = "LAYER"
            with m.State("LAYER"):
                m.d.comb += [self.busy.eq(1), clear_group.eq(1)]
                m.d.sync += [cur.eq(entry), grp.eq(0), gbase.eq(entry.wbase),
                             brow.eq(entry.bbase), nleft.eq(entry.n_out),
                             ngroups.eq((entry.n_out + G - 1) >> ceil_log2(G)),
                             nw.eq((entry.n_in + G - 1) >> ceil_log2(G)),
                             t.eq(0), a_steps.eq(0),
                             f_on.eq(1), f_t.eq(0), f_w.eq(0), f_g.eq(0), f_valid.eq(0)]
                m.next = "STREAM"
            with m.State("STREAM"):
                m.d.comb += [self.busy.eq(1), streaming.eq(1)]
                with m.If(b_end):
                    m.d.sync += t.eq(t + 1)
                    with m.If(t + 1 == self.T):
                        # the group ends with its last update: results, next group (whose
                        # first bitmap may already wait in the decoder) or next layer
                        m.d.comb += [rwp.en.eq(last_layer), clear_group.eq(1)]
                        m.d.sync += [grp.eq(grp + 1), gbase.eq(gbase + cur.n_in),
                                     brow.eq(brow + 1), nleft.eq(nleft - nvalid), t.eq(0),
                                     a_steps.eq(0)]
                        with m.If(nleft <= G):
                            with m.If(last_layer):
                                m.next = "DONE"
                            with m.Else():
                                m.d.sync += layer.eq(layer + 1)
                                m.next = "LAYER"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
