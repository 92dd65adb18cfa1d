"""RTL traffic generators and checkers around a mesh: the NoC's stress test and benchmark rig.

:class:`TrafficBench` wraps a :class:`~spikeforge.hdl.noc.mesh.Mesh` with, at
every node, a :class:`TrafficGenerator` (random packets from xorshift
generators, at a programmable rate, to destinations of a pattern) and a
:class:`TrafficChecker` (checks every packet it receives and keeps counters and
a latency histogram). Simulation only: Python programs the rig, lets the clock
run for as long as it likes without waking, then reads the counters through
the ``rd_*`` ports. That is how 10^6 flits run in seconds.

With ``ext`` high the generators are idle and the mesh's local ports are driven
from outside (``tx[n]``, ``rx[n]``): Python's own traffic flows through the
same checkers, which is how the checkers themselves are checked.

Bench packets (length >= 2 payload flits)::

    header   dst, type 0, length = len_min + (random & len_mask); src stamped by the NI
    word 0   {tag (top bit: created while ``measure``), seq (rest)}: per (src, dst) count
    word 1   creation cycle (the packet's timestamp)
    word k   payload_word(src, seq word, k) for k >= 2

A packet is *created* (Bernoulli process, probability ``rate / 2**16`` per
cycle) into a source queue of ``queue_depth`` timestamps; when the queue is
full the packet is *refused* (counted, never injected). Latency is counted from
creation to the tail leaving the destination's network interface, so it
includes source queueing.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hdl.config import Features, Implementation
from spikeforge.hdl.noc.mesh import Mesh
from spikeforge.hdl.noc.packet import PacketFormat

__all__ = ["TrafficBench", "TrafficGenerator", "TrafficChecker", "PATTERNS", "payload_word",
           "SCALARS", "TABLES", "pattern_destination", "transpose_of"]

#: pattern name -> code on the ``pattern`` port.
PATTERNS = {"uniform": 0, "transpose": 1, "hotspot": 2, "all-to-one": 3}

#: rd_sel = 0: per-node counters by rd_addr.
SCALARS = ("offered", "refused", "tx_packets", "tx_flits", "rx_packets", "rx_flits",
           "rx_flits_window", "ahead", "behind", "corrupt", "lat_count", "lat_sum", "lat_max")
#: rd_sel -> per-node table (rd_addr indexes it).
TABLES = {"sent": 1, "expected": 2, "received": 3, "hist": 4, "hop_count": 5, "hop_sum": 6}

_MIX = 0x9E3779B9


def transpose_of(x: int, y: int, rows: int, cols: int) -> tuple[int, int]:
    """Destination of node ``(x, y)`` under the transpose pattern (``(y, x)`` on square meshes)."""
    return y % cols, x % rows


def pattern_destination(pattern: str, node: int, rows: int, cols: int, hotspot: int) -> int | None:
    """Fixed destination of a node under a fixed pattern (None: random)."""
    if pattern == "transpose":
        x, y = node % cols, node // cols
        tx, ty = transpose_of(x, y, rows, cols)
        return ty * cols + tx
    if pattern == "all-to-one":
        return hotspot
    return None


def payload_word(src: int, seq_word: int, k: int, width: int) -> int:
    """Word ``k >= 2`` of a bench packet (Python twin of the RTL's)."""
    mask = (1 << width) - 1
    return ((seq_word ^ 0xA5A5A5A5 ^ (src << 3)) + k * 0x01000193) & mask


def _payload_word_rtl(src, seq_word, k, width):
    return (seq_word ^ Const(0xA5A5A5A5 & ((1 << width) - 1), width) ^ (src << 3)) + k * 0x01000193


def _xorshift(s):
    a = s ^ (s << 13)[:32]
    b = a ^ (a >> 17)
    return (b ^ (b << 5)[:32])[:32]


class _Rng:
    """A 32-bit xorshift generator, one step per cycle, seeded from ``seed`` on the first cycle."""

    def __init__(self, m, seed, salt, name):
        self.state = Signal(32, name=f"{name}_state")
        seeded = Signal(name=f"{name}_seeded")
        mixed = (seed ^ Const((salt * _MIX) & 0xFFFFFFFF, 32)) | 1
        with m.If(~seeded):
            m.d.sync += [self.state.eq(mixed), seeded.eq(1)]
        with m.Else():
            m.d.sync += self.state.eq(_xorshift(self.state))


class _Config(wiring.Signature):
    def __init__(self, nodes):
        super().__init__({
            "enable": Out(1), "measure": Out(1), "ext": Out(1),
            "rate": Out(17), "pattern": Out(2), "hotspot": Out(range(max(2, nodes))),
            "hot_rate": Out(17), "len_min": Out(8), "len_mask": Out(8),
            "stall": Out(17), "seed": Out(32), "cycle": Out(32),
        })


class TrafficGenerator(wiring.Component):
    def __init__(self, fmt: PacketFormat, node: int, queue_depth: int = 32):
        self.fmt, self.node, self.queue_depth = fmt, node, queue_depth
        self.nodes = fmt.rows * fmt.cols
        super().__init__({
            "cfg": In(_Config(self.nodes)),
            "tx": Out(fmt.tx_signature()),
            "idle": Out(1),
            "rd_sel": In(4), "rd_addr": In(16), "rd_data": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, cfg, n, me = self.fmt, self.cfg, self.nodes, self.node
        w = fmt.flit_width
        x, y = fmt.coords(me)
        r1 = _Rng(m, cfg.seed, 2 * me + 1, "gen_a").state
        r2 = _Rng(m, cfg.seed, 2 * me + 2, "gen_b").state

        coords = Array(Const(nx | (ny << fmt.x_bits), fmt.x_bits + fmt.y_bits)
                       for ny in range(fmt.rows) for nx in range(fmt.cols))
        tx, ty = transpose_of(x, y, fmt.rows, fmt.cols)
        t_dst = ty * fmt.cols + tx
        silent = ((cfg.pattern == PATTERNS["transpose"]) & (t_dst == me)) | \
                 ((cfg.pattern == PATTERNS["all-to-one"]) & (cfg.hotspot == me)) | (n == 1)

        counters = {name: Signal(32, name=name) for name in ("offered", "refused", "tx_packets", "tx_flits")}

        # Creation into the source queue.
        queue = m.submodules.queue = fifo.SyncFIFO(width=33, depth=self.queue_depth)
        create = cfg.enable & ~cfg.ext & ~silent & (r1[:16] < cfg.rate)
        m.d.comb += [queue.w_data.eq(Cat(cfg.cycle, cfg.measure)), queue.w_en.eq(create)]
        with m.If(create):
            m.d.sync += counters["offered"].eq(counters["offered"] + 1)
            with m.If(~queue.w_rdy):
                m.d.sync += counters["refused"].eq(counters["refused"] + 1)

        # Next packet's destination and length, drawn while no header is being offered.
        uni = Signal(range(max(2, n)))
        if n > 1:
            pick = ((r2[:16] * (n - 1)) >> 16)[:len(uni)]
            m.d.comb += uni.eq(pick + (pick >= me) if me else pick + 1)
        next_dst = Signal(range(max(2, n)))
        next_len = Signal(8)
        dst = Signal.like(next_dst)
        with m.Switch(cfg.pattern):
            with m.Case(PATTERNS["transpose"]):
                m.d.comb += dst.eq(t_dst)
            with m.Case(PATTERNS["hotspot"]):
                hot = (r2[16:32] < cfg.hot_rate) & (cfg.hotspot != me)
                m.d.comb += dst.eq(Mux(hot, cfg.hotspot, uni))
            with m.Case(PATTERNS["all-to-one"]):
                m.d.comb += dst.eq(cfg.hotspot)
            with m.Default():
                m.d.comb += dst.eq(uni)

        seq_mem = m.submodules.seq = memory.Memory(shape=32, depth=max(2, n), init=[])
        seq_rd = seq_mem.read_port(domain="comb")
        seq_dump = seq_mem.read_port(domain="comb")
        seq_wr = seq_mem.write_port()

        header_phase = Signal(init=1)
        cur_len = Signal(8)
        cur_k = Signal(8)
        cur_seq = Signal(w)
        cur_ts = Signal(w)
        offering_header = header_phase & queue.r_rdy
        with m.If(~offering_header):
            m.d.sync += [next_dst.eq(dst), next_len.eq(cfg.len_min + (r1[16:24] & cfg.len_mask))]

        m.d.comb += [seq_rd.addr.eq(next_dst), seq_wr.addr.eq(next_dst),
                     seq_wr.data.eq(seq_rd.data + 1)]
        seq_word = Signal(w)
        m.d.comb += seq_word.eq(Cat(seq_rd.data[:w - 1], queue.r_data[32]))
        hdr = fmt.header(Signal(w))
        dcoord = coords[next_dst]
        m.d.comb += [hdr.dst_x.eq(dcoord[:fmt.x_bits]), hdr.dst_y.eq(dcoord[fmt.x_bits:]),
                     hdr.length.eq(next_len)]
        xfer = self.tx.valid & self.tx.ready
        with m.If(header_phase):
            m.d.comb += [self.tx.valid.eq(queue.r_rdy & ~cfg.ext), self.tx.payload.eq(hdr)]
            with m.If(xfer):
                m.d.comb += [queue.r_en.eq(1), seq_wr.en.eq(1)]
                m.d.sync += [header_phase.eq(0), cur_len.eq(next_len), cur_k.eq(0),
                             cur_seq.eq(seq_word), cur_ts.eq(queue.r_data[:w]),
                             counters["tx_packets"].eq(counters["tx_packets"] + 1)]
        with m.Else():
            m.d.comb += self.tx.valid.eq(1)
            with m.Switch(cur_k):
                with m.Case(0):
                    m.d.comb += self.tx.payload.eq(cur_seq)
                with m.Case(1):
                    m.d.comb += self.tx.payload.eq(cur_ts)
                with m.Default():
                    m.d.comb += self.tx.payload.eq(_payload_word_rtl(me, cur_seq, cur_k, w))
            with m.If(xfer):
                m.d.sync += cur_k.eq(cur_k + 1)
                with m.If(cur_k + 1 == cur_len):
                    m.d.sync += header_phase.eq(1)
        with m.If(xfer):
            m.d.sync += counters["tx_flits"].eq(counters["tx_flits"] + 1)
        m.d.comb += self.idle.eq(header_phase & ~queue.r_rdy)

        m.d.comb += seq_dump.addr.eq(self.rd_addr)
        with m.Switch(self.rd_sel):
            with m.Case(0):
                with m.Switch(self.rd_addr):
                    for name, sig in counters.items():
                        with m.Case(SCALARS.index(name)):
                            m.d.comb += self.rd_data.eq(sig)
            with m.Case(TABLES["sent"]):
                m.d.comb += self.rd_data.eq(seq_dump.data)
        return m


class TrafficChecker(wiring.Component):
    """Watches the transfers on a node's ``rx`` (and drives its ``ready`` unless ``ext``)."""

    def __init__(self, fmt: PacketFormat, node: int, hist_bins: int = 256):
        self.fmt, self.node, self.hist_bins = fmt, node, hist_bins
        self.nodes = fmt.rows * fmt.cols
        super().__init__({
            "cfg": In(_Config(self.nodes)),
            "valid": In(1), "payload": In(fmt.beat), "ready_in": In(1), "ready": Out(1),
            "rd_sel": In(4), "rd_addr": In(16), "rd_data": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        fmt, cfg, n, me = self.fmt, self.cfg, self.nodes, self.node
        w = fmt.flit_width
        x, y = fmt.coords(me)
        rng = _Rng(m, cfg.seed, 1000 + me, "chk").state
        max_hops = fmt.rows + fmt.cols - 1
        hops = Array(Const(abs(sx - x) + abs(sy - y), range(max_hops))
                     for sy in range(fmt.rows) for sx in range(fmt.cols))

        m.d.comb += self.ready.eq(Mux(cfg.ext, self.ready_in, rng[:16] >= cfg.stall))
        beat = self.payload
        xfer = self.valid & self.ready

        c = {name: Signal(32, name=name) for name in SCALARS if name not in ("lat_sum",)}
        c["lat_sum"] = Signal(64, name="lat_sum")

        def mem(name, depth, width=32):
            mm = memory.Memory(shape=width, depth=max(2, depth), init=[])
            m.submodules[name] = mm
            return mm, mm.read_port(domain="comb"), mm.write_port(), mm.read_port(domain="comb")

        exp_m, exp_rd, exp_wr, exp_dump = mem("expected", n)
        cnt_m, cnt_rd, cnt_wr, cnt_dump = mem("received", n)
        hist_m, hist_rd, hist_wr, hist_dump = mem("hist", self.hist_bins)
        hc_m, hc_rd, hc_wr, hc_dump = mem("hop_count", max_hops)
        hs_m, hs_rd, hs_wr, hs_dump = mem("hop_sum", max_hops, 48)

        src = Signal(range(max(2, n)))
        length = Signal(8)
        k = Signal(9)          # payload flits seen in this packet
        seq = Signal(w - 1)
        tag = Signal()
        ts = Signal(w)
        order = Signal(2)      # 0 in order, 1 ahead (something before it is missing), 2 behind
        bad = Signal()
        ahead_by = Signal(w - 1)

        hdr = fmt.header(beat.data)
        with m.If(xfer):
            m.d.sync += c["rx_flits"].eq(c["rx_flits"] + 1)
            with m.If(cfg.measure):
                m.d.sync += c["rx_flits_window"].eq(c["rx_flits_window"] + 1)
        m.d.comb += [exp_rd.addr.eq(src), exp_wr.addr.eq(src), cnt_rd.addr.eq(src),
                     cnt_wr.addr.eq(src), cnt_wr.data.eq(cnt_rd.data + 1)]
        latency = Signal(w)  # at the tail; with two payload flits the tail is the timestamp
        m.d.comb += latency.eq(cfg.cycle[:w] - Mux(k == 1, beat.data, ts))
        with m.If(xfer & beat.first):
            m.d.sync += [
                src.eq(hdr.src_y * fmt.cols + hdr.src_x), length.eq(hdr.length), k.eq(0),
                bad.eq((hdr.dst_x != x) | (hdr.dst_y != y) | beat.last | (hdr.length < 2)),
            ]
        with m.Elif(xfer):
            m.d.sync += k.eq(k + 1)
            with m.Switch(k):
                with m.Case(0):
                    s = beat.data[:w - 1]
                    diff = (s - exp_rd.data[:w - 1])[:w - 1]
                    m.d.sync += [seq.eq(s), tag.eq(beat.data[w - 1]), ahead_by.eq(diff)]
                    with m.If(diff == 0):
                        m.d.sync += order.eq(0)
                    with m.Elif(diff[w - 2] == 0):
                        m.d.sync += order.eq(1)
                    with m.Else():
                        m.d.sync += order.eq(2)
                with m.Case(1):
                    m.d.sync += ts.eq(beat.data)
                with m.Default():
                    with m.If(beat.data != _payload_word_rtl(src, Cat(seq, tag), k, w)[:w]):
                        m.d.sync += bad.eq(1)
            with m.If(beat.last):
                ok = ~bad & (k + 1 == length)
                m.d.sync += c["rx_packets"].eq(c["rx_packets"] + 1)
                with m.If(~ok):
                    m.d.sync += c["corrupt"].eq(c["corrupt"] + 1)
                with m.Else():
                    m.d.comb += cnt_wr.en.eq(1)
                    with m.Switch(order):
                        with m.Case(0):
                            m.d.comb += [exp_wr.en.eq(1), exp_wr.data.eq(exp_rd.data + 1)]
                        with m.Case(1):
                            m.d.comb += [exp_wr.en.eq(1), exp_wr.data.eq(exp_rd.data + ahead_by + 1)]
                            m.d.sync += c["ahead"].eq(c["ahead"] + 1)
                        with m.Case(2):
                            m.d.sync += c["behind"].eq(c["behind"] + 1)
                    with m.If(tag):
                        h = hops[src]
                        b = Mux(latency >= self.hist_bins - 1, self.hist_bins - 1, latency)
                        m.d.comb += [
                            hist_rd.addr.eq(b), hist_wr.addr.eq(b), hist_wr.en.eq(1),
                            hist_wr.data.eq(hist_rd.data + 1),
                            hc_rd.addr.eq(h), hc_wr.addr.eq(h), hc_wr.en.eq(1),
                            hc_wr.data.eq(hc_rd.data + 1),
                            hs_rd.addr.eq(h), hs_wr.addr.eq(h), hs_wr.en.eq(1),
                            hs_wr.data.eq(hs_rd.data + latency),
                        ]
                        m.d.sync += [
                            c["lat_count"].eq(c["lat_count"] + 1),
                            c["lat_sum"].eq(c["lat_sum"] + latency),
                        ]
                        with m.If(latency > c["lat_max"]):
                            m.d.sync += c["lat_max"].eq(latency)
            with m.Elif(k + 1 >= length):
                m.d.sync += bad.eq(1)  # longer than its header says

        for dump in (exp_dump, cnt_dump, hist_dump, hc_dump, hs_dump):
            m.d.comb += dump.addr.eq(self.rd_addr)
        with m.Switch(self.rd_sel):
            with m.Case(0):
                with m.Switch(self.rd_addr):
                    for name, sig in c.items():
                        if name in ("offered", "refused", "tx_packets", "tx_flits"):
                            continue
                        with m.Case(SCALARS.index(name)):
                            m.d.comb += self.rd_data.eq(sig)
            for name, dump in (("expected", exp_dump), ("received", cnt_dump), ("hist", hist_dump),
                               ("hop_count", hc_dump), ("hop_sum", hs_dump)):
                with m.Case(TABLES[name]):
                    m.d.comb += self.rd_data.eq(dump.data)
        return m


class TrafficBench(wiring.Component):
    """A mesh with a traffic generator and a checker at every node (simulation only).

    Ports: the configuration (``enable``, ``measure``, ``ext``, ``rate``,
    ``pattern``, ``hotspot``, ``hot_rate``, ``len_min``, ``len_mask``,
    ``stall``, ``seed``), ``cycle`` (a free-running counter), ``drained``
    (every source queue empty and every injected packet delivered),
    ``tx_total``/``rx_total`` (packets), the read-out ``rd_node``/``rd_sel``/
    ``rd_addr`` -> ``rd_data``, and the external local ports ``tx[n]``/``rx[n]``
    used when ``ext`` is high.
    """

    def __init__(self, features: Features, implementation: Implementation = Implementation(),
                 *, queue_depth: int = 32, hist_bins: int = 256):
        self.features, self.implementation = features, implementation
        self.mesh = Mesh(features, implementation)
        self.fmt = self.mesh.fmt
        self.queue_depth, self.hist_bins = queue_depth, hist_bins
        n = self.nodes = features.rows * features.cols
        ports = {name: In(_Config(n).members[name].shape) for name in _Config(n).members
                 if name != "cycle"}
        super().__init__({
            **ports,
            "cycle": Out(32), "drained": Out(1), "tx_total": Out(32), "rx_total": Out(32),
            "rd_node": In(range(max(2, n))), "rd_sel": In(4), "rd_addr": In(16), "rd_data": Out(64),
            "tx": In(self.fmt.tx_signature()).array(n),
            "rx": Out(self.fmt.rx_signature()).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mesh = mesh = self.mesh
        n = self.nodes
        m.d.sync += self.cycle.eq(self.cycle + 1)
        gens, chks = [], []
        for node in range(n):
            gen = TrafficGenerator(self.fmt, node, self.queue_depth)
            chk = TrafficChecker(self.fmt, node, self.hist_bins)
            m.submodules[f"gen_{node}"] = gen
            m.submodules[f"chk_{node}"] = chk
            for unit in (gen, chk):
                for name in _Config(n).members:
                    src = self.cycle if name == "cycle" else getattr(self, name)
                    m.d.comb += getattr(unit.cfg, name).eq(src)
                m.d.comb += [unit.rd_sel.eq(self.rd_sel), unit.rd_addr.eq(self.rd_addr)]
            ext_tx, ext_rx, mtx, mrx = self.tx[node], self.rx[node], mesh.tx[node], mesh.rx[node]
            m.d.comb += [
                mtx.valid.eq(Mux(self.ext, ext_tx.valid, gen.tx.valid)),
                mtx.payload.eq(Mux(self.ext, ext_tx.payload, gen.tx.payload)),
                ext_tx.ready.eq(self.ext & mtx.ready),
                gen.tx.ready.eq(~self.ext & mtx.ready),
                chk.valid.eq(mrx.valid), chk.payload.eq(mrx.payload), chk.ready_in.eq(ext_rx.ready),
                mrx.ready.eq(chk.ready),
                ext_rx.valid.eq(mrx.valid & self.ext), ext_rx.payload.eq(mrx.payload),
            ]
            gens.append(gen)
            chks.append(chk)

        # Totals for the drain test: packets into the network and packets out of it.
        heads_in = [mesh.tx[i].valid & mesh.tx[i].ready & _is_header(m, mesh, i) for i in range(n)]
        tails_out = [mesh.rx[i].valid & mesh.rx[i].ready & mesh.rx[i].payload.last for i in range(n)]
        m.d.sync += [self.tx_total.eq(self.tx_total + sum(heads_in)),
                     self.rx_total.eq(self.rx_total + sum(tails_out))]
        idle = Cat(*(g.idle for g in gens)).all()
        m.d.comb += self.drained.eq(idle & (self.tx_total == self.rx_total))

        data_sel = Array(Mux(self.rd_sel == 0,
                             Mux(self.rd_addr < 4, g.rd_data, c.rd_data),
                             Mux(self.rd_sel == TABLES["sent"], g.rd_data, c.rd_data))
                         for g, c in zip(gens, chks))
        m.d.comb += self.rd_data.eq(data_sel[self.rd_node])
        return m


def _is_header(m, mesh, node):
    """1 while the next word on ``mesh.tx[node]`` is a packet header (tracks lengths)."""
    fmt = mesh.fmt
    remaining = Signal(fmt.length_bits, name=f"tx_remaining_{node}")
    port = mesh.tx[node]
    hdr = fmt.header(port.payload)
    with m.If(port.valid & port.ready):
        with m.If(remaining == 0):
            m.d.sync += remaining.eq(hdr.length)
        with m.Else():
            m.d.sync += remaining.eq(remaining - 1)
    return remaining == 0
