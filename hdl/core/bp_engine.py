"""Backward (BP) engine: ``du`` of one layer backwards in time, then ``g_in`` for
the layer below.

Phases (``phase``):

* ``TERM`` -- ``detach``: ``term[t] = m[t] ? fma(beta, g[t], -0) : +0`` for every
  step and group (no chain: any order). ``through``: ``du[t] = fma(-alpha, u[t], -0)``
  (the ``-(alpha*u)`` factor). ``T * G`` operations.
* ``DU`` -- ``t`` descending, every group: ``detach``: ``du[t] = s[t] ? term :
  fma(alpha, du[t+1], term)``; ``through``: three chained operations per step
  (``ds = fma(-(alpha*u), du[t+1], g)``, the term, then ``du``). The write-back
  also records ``du[t] != 0`` as a history bit, so the non-zero gradients can be
  walked like spikes. ``T * G`` (``3 * T * G``) operations.
* ``INPUT_GRAD`` -- (every ``acc[t, h]`` starts at +0, see the lane datapath) for every ``(i, t)`` with ``du[t]_i != 0`` (ascending ``i``: the
  contract's order), for every group ``h`` of ``P`` inputs:
  ``acc[t, h] = fma(W[i, h*P + k], du[t]_i, acc[t, h])`` (a row of the skewed
  weight memory). Zero gradients cost nothing (input sparsity), and neither do the
  inputs the layer below never uses (output sparsity, SPEC section 3): a group ``h``
  in which no input has its window bit ``m[t]`` set is not issued (:class:`GinLoop`,
  from the window summary of the lane datapath), and inside an issued group the
  lanes whose window bit is 0 are masked off. ``g_in[t]_j`` is therefore defined
  only where ``m[t]_j`` of the layer below is set, the only entries its backward
  pass reads. ``nonzeros * (groups with a window bit)`` operations; a pair with no
  such group costs one cycle (a ``NOP`` that carries the count of skipped FMAs).

Throughput: one ``P``-lane operation per cycle.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream
from amaranth.lib.wiring import In

from ..spike_decoder import at_most_one_set, below, lowest_set_bit
from ..stream_slice import RegisterSlice
from .defs import CoreGeometry, OpKind
from .engine import Engine
from .history_scanner import pair_layout
from .op_loops import TimeGroupLoop, _Loop

__all__ = ["BPEngine", "BPPhase", "GinLoop"]


class BPPhase(enum.Enum, shape=2):
    TERM = 0
    DU = 1
    INPUT_GRAD = 2


class BPEngine(Engine):
    Phase = BPPhase

    @staticmethod
    def extra_members(g):
        # the steps the input gradient visits, t_lo <= t < t_hi (RUN_PHASE's stages)
        return {"t_lo": In(g.time_bits + 1),
                "t_hi": In(g.time_bits + 1, init=2 ** (g.time_bits + 1) - 1)}

    def build(self, m, lay, ctl):
        m.submodules.tg = tg = TimeGroupLoop(self.geo)
        m.submodules.pl = pl = GinLoop(self.geo)
        ph = ctl.phase
        start_pl = ctl.start & (ph == BPPhase.INPUT_GRAD)
        m.d.comb += [
            tg.start.eq(ctl.start & (ph != BPPhase.INPUT_GRAD)), tg.T.eq(self.T),
            tg.t_first.eq(0), tg.descending.eq(ph == BPPhase.DU),
            tg.hg.eq(lay.out_hg), tg.dg.eq(lay.out_dg),
            tg.groups.eq(lay.g_out), tg.n.eq(lay.n_out),
            tg.nkinds.eq(1),
        ]
        with m.Switch(ph):
            with m.Case(BPPhase.TERM):
                m.d.comb += tg.kinds[0].eq(Mux(self.through, OpKind.BPT1, OpKind.BPA))
            with m.Case(BPPhase.DU):
                with m.If(self.through):
                    m.d.comb += [tg.kinds[0].eq(OpKind.BPT2), tg.kinds[1].eq(OpKind.BPA),
                                 tg.kinds[2].eq(OpKind.BPB), tg.nkinds.eq(3)]
                with m.Else():
                    m.d.comb += tg.kinds[0].eq(OpKind.BPB)
        m.d.comb += [pl.start.eq(start_pl), pl.layer.eq(lay), pl.win.eq(self.scan.win),
                     pl.t_lo.eq(self.t_lo), pl.t_hi.eq(self.t_hi)]
        self.scan_with(m, pl, start=start_pl, base=lay.out_hg, n=lay.n_out, nz=1)
        return [tg, pl]


class GinLoop(_Loop):
    """The input-gradient loop: for every (neuron ``i``, step ``t``) event, one ``GIN``
    operation (a row of weights of ``i``, ``acc[t, h]`` of the inputs) for every group
    ``h`` of ``P`` inputs, ascending, that has a window bit at ``t`` in ``win``; the
    other groups are skipped without a cycle. The last operation of an event carries
    in ``oskip`` the lanes of the groups skipped for it; an event without any group
    is one ``NOP`` (no lanes) carrying all of them. One operation per cycle.

    The groups are searched in history-group numbers: step ``t``'s summary bit of
    every history group, masked by the layer's input groups (a mask registered at
    ``start``), no shift of the summary by the layer's first input group. An event is
    prepared as it arrives (its row of weights ``wbase + (j div P) * n_in`` and its
    step's summary bits) and goes through a register slice
    (:class:`~spikeforge.hdl.stream_slice.RegisterSlice`) to the group search, so
    neither the multiplier nor the step select is on the path into ``op``. The
    search's result (the group, whether it is the event's last and the layer's last
    input group) goes through a second register slice, and the operation's group,
    weight address, lanes and skipped lanes are formed from its registers, so the
    search is not on the path into ``op`` either. Two cycles more of latency than a
    loop without the slices, the same throughput."""

    def __init__(self, geometry: CoreGeometry):
        g = geometry
        super().__init__(g, {
            "start": In(1),
            "layer": In(g.layer_layout),
            "win": In(g.hist_groups * g.max_time_steps),
            "pairs": In(stream.Signature(pair_layout(g))),
            "pairs_done": In(1),
            "t_lo": In(g.time_bits + 1),        # events at other steps are dropped
            "t_hi": In(g.time_bits + 1, init=2 ** (g.time_bits + 1) - 1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        TM, H = g.max_time_steps, g.acc_groups
        HG = g.hist_groups
        lay = Signal(g.layer_layout)
        running = Signal()
        o = self.op.payload
        # the event prepared: its row of weights (less the layer's first input group, so
        # the address of group habs is row + habs * P) and step t's summary bits of every
        # history group, then registered
        ev = data.StructLayout({"pair": pair_layout(g), "row": len(o.waddr), "col": HG})
        m.submodules.events = events = RegisterSlice(shape=ev)
        pa = self.pairs.payload
        m.d.comb += [events.i.valid.eq(self.pairs.valid & running),
                     self.pairs.ready.eq(events.i.ready & running),
                     events.i.payload.pair.eq(pa),
                     events.i.payload.row.eq(lay.wbase + (pa.j >> g.lane_shift) * lay.n_in -
                                             (lay.in_hg << g.lane_shift))]
        for hg in range(HG):
            m.d.comb += events.i.payload.col[hg].eq(
                self.win[hg * TM:(hg + 1) * TM].bit_select(pa.t, 1))
        pr = events.o.payload.pair
        # groups of this event still to issue: the window summary of the inputs at t,
        # kept in history-group numbers (no shift by in_hg): the summary bits of step
        # t of every history group, masked to the layer's input groups (``sel``,
        # registered at start); the group is the set bit less in_hg
        fresh = Signal()                  # no group of the current event issued yet
        left = Signal(HG)                 # groups still to issue (after the first)
        col = events.o.payload.col
        sel = Signal(HG)
        wmask = Signal(HG)
        m.d.comb += wmask.eq(col & sel)
        cur = Signal(HG)
        m.d.comb += cur.eq(Mux(fresh, wmask, left))
        habs, any_ = lowest_set_bit(cur)
        rest = Signal(HG)                 # cur without its lowest set bit
        m.d.comb += rest.eq(cur & (cur - 1))
        last = Signal()                   # rest == 0, from a tree (no carry chain)
        m.d.comb += last.eq(at_most_one_set(cur))
        # group habs is the layer's last input group when it is the only one left and
        # the last group's bit is set (no group above it is selected): from trees, not
        # from the search's index
        last_oh = Signal(HG)              # the layer's last input group, one-hot
        # an event outside the visited steps is taken without an operation
        keep = Signal()
        m.d.comb += keep.eq((pr.t >= self.t_lo) & (pr.t < self.t_hi))
        # the search's result goes through a register slice to the operation (its
        # address, lanes and skipped lanes formed from registers): one cycle more of
        # latency, the same throughput
        m.submodules.found = found = RegisterSlice(shape=self._found_layout())
        fi = found.i.payload
        m.d.comb += [
            found.i.valid.eq(running & events.o.valid & keep),
            fi.t.eq(pr.t), fi.j.eq(pr.j), fi.row.eq(events.o.payload.row),
            fi.habs.eq(habs), fi.any.eq(any_), fi.last.eq(last), fi.fresh.eq(fresh),
            fi.in_last.eq((cur & last_oh).any() & last),
        ]
        searched = Signal()
        m.d.comb += searched.eq(found.i.valid & found.i.ready)
        m.d.comb += events.o.ready.eq((searched & last) |
                                      (running & events.o.valid & ~keep))
        last_nv = self._issue(m, found.o, lay)
        m.d.comb += self.busy.eq(running)
        with m.If(self.start):
            m.d.sync += [running.eq(1), lay.eq(self.layer), fresh.eq(1)]
            li = self.layer
            end = Signal(range(HG + H + 1))
            m.d.comb += end.eq(li.in_hg + Mux(li.g_in < H, li.g_in, H))
            m.d.sync += [sel.eq(below(end, HG) & ~below(li.in_hg, HG)),
                         last_oh.eq(Cat(*[li.in_hg + li.g_in - 1 == hg for hg in range(HG)])),
                         last_nv.eq(li.n_in - ((li.g_in - 1) << g.lane_shift))]
        with m.Elif(running):
            with m.If(searched):
                m.d.sync += [fresh.eq(last), left.eq(rest)]
            with m.If(~self.pairs.valid & ~events.o.valid & ~found.o.valid &
                      self.pairs_done):
                m.d.sync += running.eq(0)
        return m

    def _found_layout(self):
        g = self.geo
        return data.StructLayout({
            "t": g.time_bits, "j": g.neuron_bits, "row": len(self.op.payload.waddr),
            "habs": range(g.hist_groups), "any": 1, "last": 1, "in_last": 1, "fresh": 1})

    def _issue(self, m, found, lay):
        """The operation of a searched group (``found``), from registers: its group,
        address and lanes, and in the event's last operation the lanes skipped for it.
        Returns the register of the lanes of the layer's last input group."""
        g = self.geo
        P = g.lanes
        f, o = found.payload, self.op.payload
        jg = Signal(g.neuron_bits)
        jl = Signal(g.lane_bits)
        m.d.comb += [jg.eq(f.j >> g.lane_shift), jl.eq(f.j[:g.lane_bits] if P > 1 else 0)]
        # the lanes of the group: P, but in the layer's last input group those of n_in
        # it holds
        last_nv = Signal(range(P + 1))
        nv = Signal(range(P + 1))
        m.d.comb += nv.eq(Mux(f.any, Mux(f.in_last, last_nv, P), 0))
        # lanes of n_in not issued yet for this event (the rest was skipped): after this
        # group, both differences formed from registers and one chosen
        remaining = Signal(g.neuron_bits + 1)
        base_rem = Signal(g.neuron_bits + 1)
        m.d.comb += base_rem.eq(Mux(f.fresh, lay.n_in, remaining))
        rem_after = Signal(g.neuron_bits + 1)
        m.d.comb += rem_after.eq(Mux(~f.any, base_rem,
                                     Mux(f.in_last, base_rem - last_nv, base_rem - P)))
        m.d.comb += [
            self.op.valid.eq(found.valid),
            found.ready.eq(self.op.ready),
            o.kind.eq(Mux(f.any, OpKind.GIN, OpKind.NOP)),
            o.t.eq(f.t),
            o.g.eq(Mux(f.any, f.habs - lay.in_hg, 0)),
            o.dg.eq(lay.out_dg + jg),
            o.hg.eq(Mux(f.any, f.habs, lay.in_hg)),
            o.waddr.eq(f.row + (f.habs << g.lane_shift)),
            o.rot.eq(jl),
            o.row.eq(1),
            o.bsel.eq(jl),
            o.nvalid.eq(nv),
            o.oskip.eq(Mux(f.last, rem_after, 0)),
        ]
        with m.If(self.op.valid & self.op.ready):
            m.d.sync += remaining.eq(rem_after)
        return last_nv
