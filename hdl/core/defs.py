"""Shared definitions of the core: sizes derived from the build configuration,
the lane operation format that engines issue, and small fp16 helpers.

:class:`CoreGeometry` turns a :class:`~spikeforge.hdl.config.BuildConfig` into
memory depths and field widths (see ``docs/core.md``, "Memories"). Engines send
the lane datapath one :data:`op layout <CoreGeometry.op_layout>` per cycle; an
operation drives all ``lanes`` FMAs at once (its :class:`OpKind` selects the
operands and the write-back).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum
from amaranth.utils import bits_for, ceil_log2, exact_log2

from ..config import BuildConfig, ConfigError, check_build_config
from ..protocol import COUNTERS

__all__ = [
    "OpKind", "Space", "CoreGeometry", "F16", "f16_lt", "f16_ge", "f16_gt",
    "f16_is_zero", "f16_is_nonfinite", "count_to_f16", "ceil_div",
]


#: Register bits of a counter in the ``bram`` counter store (the rest are in a block RAM).
COUNTER_LOW_BITS = 16


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class F16:
    """Bit patterns of the fp16 constants the datapath uses."""
    POS_ZERO = 0x0000
    NEG_ZERO = 0x8000
    ONE = 0x3C00
    NEG_ONE = 0xBC00


class OpKind(enum.Enum, shape=4):
    """What one lane operation computes (lane ``k`` of group ``g``; see docs/core.md)."""
    NOP = 0      # nothing (the value of an idle operation port)
    FP = 1       # acc[t,g] = fma(W[col], 1, acc[t,g])
    LIF = 2      # u[t] = s[t-1] ? x : fma(alpha, u[t-1], x); s, m bits
    LOSS_R = 3   # acc[0,g] = fma(count, inv_T, -0)
    LOSS_E = 4   # acc[0,g] = fma(r, 1, -y)
    LOSS_G = 5   # acc[0,g] = fma(e, gscale, -0)
    COPY = 6     # acc[t,g] = fma(acc[0,g], 1, -0)
    BPA = 7      # du[t,g] = m ? fma(beta, ds, -0) : +0           (term)
    BPB = 8      # du[t,g] = s ? term : fma(alpha, du[t+1,g], term); nz bit
    GIN = 9      # acc[t,h] = fma(W[row], du[t,i], acc[t,h])
    WG = 10      # dW[col] = fma(du[t,g], 1, dW[col])      (lanes with du != 0)
    UPD = 11     # W = fma(neg_lr, dW, W); dW = +0
    BPT1 = 12    # du[t,g] = fma(-alpha, u[t], -0)      (through: -(alpha*u))
    BPT2 = 13    # du[t,g] = fma(du[t,g], du[t+1,g], g[t])  (through: ds)


class Space(enum.IntEnum, shape=2):
    """Which memory an operation's result (and its hazard) lives in."""
    ACC = 0
    DU = 1
    DW = 2
    W = 3


class CoreGeometry:
    """Sizes of one core's memories and fields, derived from a build configuration.

    * ``lanes`` (``P``) lanes, ``fma_stages`` FMA pipeline stages,
      ``max_time_steps`` (<= 16: one history word per neuron and step set).
    * Neuron groups of ``P`` neurons: ``in_groups`` for the input spikes,
      ``neuron_groups`` for the layers' neurons (each layer starts a new group),
      ``hist_groups`` history words per bank, ``acc_groups`` accumulator groups.
    * ``weight_depth`` words per weight bank (``P`` banks, skewed layout),
      ``acc_depth`` / ``du_depth`` words per accumulator / ``du`` bank.
    * Field widths: ``time_bits`` (a step), ``lane_bits`` (a lane; ``lane_shift`` =
      log2 ``P`` turns a group number into its first neuron), ``neuron_bits``
      (a neuron or input index), ``waddr_bits`` (a weight address), ``hist_group_bits``,
      ``acc_group_bits``, ``du_group_bits`` (group numbers), ``key_bits`` (a hazard key).
    """

    def __init__(self, config: BuildConfig):
        check_build_config(config)
        f, impl = config.features, config.implementation
        self.config = config
        self.lanes = f.lanes
        self.fma_stages = impl.fma_stages
        # the lanes' pipeline from the words read (cycle 1) to the write-back: their
        # register, the operand register, then the FMA's stages
        self.lane_depth = self.fma_stages + 2
        self.max_time_steps = f.max_time_steps
        if self.max_time_steps > 16:
            raise ConfigError(f"max_time_steps must be at most 16 for this core "
                              f"(one 16-bit history word per neuron), not {self.max_time_steps}")
        if self.lanes & (self.lanes - 1):
            raise ConfigError(f"lanes must be a power of two for this core, not {self.lanes}")
        self.max_layers = f.max_layers
        self.neurons = f.neurons_per_core
        self.max_fan_in = f.max_fan_in
        self.through = f.stores_potentials
        self.inference_only = f.inference_only
        self.modes = f.reset_grad_modes
        self.memory = impl.memory
        self.bit_history = impl.history_write == "bit"
        self.counter_store = impl.counters
        P = self.lanes
        self.in_groups = ceil_div(self.max_fan_in, P)
        self.neuron_groups = ceil_div(self.neurons, P) + self.max_layers - 1
        self.hist_groups = self.in_groups + self.neuron_groups
        self.acc_groups = max(ceil_div(self.neurons, P), self.in_groups)
        self.time_bits = max(1, ceil_log2(self.max_time_steps))
        self.lane_bits = max(1, exact_log2(P))   # width of a lane number (one bit for P = 1)
        self.lane_shift = exact_log2(P)           # a group number to its first neuron: << this
        self.acc_group_bits = max(1, ceil_log2(self.acc_groups))
        self.du_group_bits = max(1, ceil_log2(self.neuron_groups))
        self.acc_depth = 1 << (self.time_bits + self.acc_group_bits)
        self.du_depth = 1 << (self.time_bits + self.du_group_bits)
        self.weight_depth = (ceil_div(self.neurons * self.max_fan_in, P)
                             + (self.max_layers - 1) * self.max_fan_in)
        self.waddr_bits = bits_for(self.weight_depth)
        self.hist_group_bits = bits_for(self.hist_groups)
        self.neuron_bits = bits_for(max(self.neurons, self.max_fan_in))
        self.key_bits = max(self.waddr_bits, self.time_bits + self.acc_group_bits,
                            self.time_bits + self.du_group_bits) + 2
        if self.counter_store == "bram":
            n, inc = len(COUNTERS), self.max_counter_increment
            if inc * (n + 2) >= 1 << COUNTER_LOW_BITS:
                raise ConfigError(
                    f"counters='bram' cannot keep up with this core: a counter may grow by "
                    f"{inc} a cycle and takes its carry every {n} cycles, more than its "
                    f"{COUNTER_LOW_BITS} register bits hold; use counters='registers', or "
                    "fewer lanes, time steps or neurons")

    @property
    def counter_increments(self) -> dict[str, int]:
        """The most each counter can grow in one cycle (from the widths of its events:
        skipped FMAs are ``zeros * fanout`` plus masked lanes)."""
        P, TM = self.lanes, self.max_time_steps
        most = {"fmas": P, "skipped": P * TM * ((1 << self.neuron_bits) - 1) + P,
                "w_reads": 2 * P, "w_writes": 2 * P,
                "bp_skipped_out": P + (1 << (self.neuron_bits + 1)) - 1}
        return {n: most.get(n, most.get(n.split("_", 1)[-1], 1)) for n in COUNTERS}

    @property
    def max_counter_increment(self) -> int:
        return max(self.counter_increments.values())

    @property
    def counter_low_bits(self) -> dict[str, int]:
        """``bram`` counter store: register bits of each counter, enough that it carries
        at most once between two visits of the block RAM (every ``len(COUNTERS)``
        cycles)."""
        n = len(COUNTERS)
        return {name: bits_for(inc * (n + 2)) for name, inc in self.counter_increments.items()}

    @property
    def op_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "kind": OpKind,
            "t": self.time_bits,
            "g": self.acc_group_bits,     # accumulator group (output group, or input group h for GIN)
            "dg": self.du_group_bits,     # du group (layer-relative base + group)
            "hg": self.hist_group_bits,   # history word address (s, m, nz of the lanes' neurons)
            "waddr": self.waddr_bits,     # weight / dW address (column mode: all banks)
            "rot": self.lane_bits,        # lane k <- bank (k + rot) mod P
            "row": 1,                     # row mode: bank b reads waddr + (b - rot) mod P
            "bsel": self.lane_bits,       # GIN: lane whose du is broadcast
            "nvalid": bits_for(self.lanes),  # lanes k < nvalid take part
            # GIN: input-gradient FMAs skipped for output sparsity beside this operation
            # (groups of inputs with no window bit at step t; counted, never computed)
            "oskip": self.neuron_bits + 1,
        })

    @property
    def layer_layout(self) -> data.StructLayout:
        """Parameters of the layer block an engine works on (an entry of the layer table)."""
        NB, HGB, DGB = self.neuron_bits, self.hist_group_bits, self.du_group_bits
        return data.StructLayout({
            "n_in": NB, "n_out": NB,
            "g_in": NB, "g_out": NB,        # groups of P inputs / neurons
            "wbase": self.waddr_bits,
            "in_hg": HGB, "out_hg": HGB,    # history groups of inputs / neurons
            "in_dg": DGB, "out_dg": DGB,    # du groups of inputs / neurons
        })

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "lanes", "fma_stages", "max_time_steps", "max_layers", "neurons", "max_fan_in",
            "in_groups", "neuron_groups", "hist_groups", "acc_depth", "du_depth",
            "weight_depth")}


# --- fp16 helpers on Amaranth values -------------------------------------------------

def _key(x):
    # monotone unsigned key of a (non-NaN) binary16 pattern; -0 and +0 differ by one
    return Mux(x[15], ~x, x | 0x8000)[:16]


def f16_is_nan(x):
    return (x[10:15] == 31) & (x[0:10] != 0)


def f16_is_nonfinite(x):
    return x[10:15] == 31


def f16_is_zero(x):
    return x[0:15] == 0


def f16_lt(a, b):
    """IEEE ordered ``a < b`` (false when either is NaN; -0 == +0)."""
    return ~f16_is_nan(a) & ~f16_is_nan(b) & ~(f16_is_zero(a) & f16_is_zero(b)) & (_key(a) < _key(b))


def f16_gt(a, b):
    return f16_lt(b, a)


def f16_ge(a, b):
    """IEEE ordered ``a >= b``."""
    return ~f16_is_nan(a) & ~f16_is_nan(b) & ~f16_lt(a, b)


def count_to_f16(m: Module, count, width: int):
    """The exact binary16 pattern of an unsigned integer ``count`` (< 2048)."""
    if width > 11:
        raise ConfigError(f"count width {width} exceeds the exact fp16 integer range")
    out = Signal(16)
    m.d.comb += out.eq(0)
    for p in range(width):
        with m.If(count[p]):      # later (higher) bits win
            mant = (count << (10 - p))[:10] if p <= 10 else 0
            m.d.comb += out.eq(Cat(Const(0, 10) | mant, Const(15 + p, 5), Const(0, 1)))
    return out
