"""The top level that puts any block on a board with its timing real.

Every input port of the block is driven straight from a register and every
output port lands straight in a register, so the block's own paths are timed
register to register, as they will be inside the accelerator. The registers
cost pins nowhere:

* the inputs come from a shift register fed by the board's stimulus pin
  (synchronised), XORed with its own last bit: what the block sees depends on
  an external pin, so Yosys can neither constant-fold nor trim any input bit;
* the outputs are XOR-reduced to the observation pin through a pipelined tree
  of 4-input XORs (one LUT level per stage, so the tree never limits fmax);
  every output bit reaches the pin, so no logic behind it can be removed.

Ports a :class:`~spikeforge.boards.registry.Block` lists in ``board_ports``
(a UART of the future top level, say) are wired to the named board resources
instead. The ``sync`` domain comes from :class:`~spikeforge.boards.clocks.PLLDomain`.
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In

from spikeforge.hdl.checked import ArgumentChecked

from .clocks import PLLDomain

__all__ = ["BoundaryTop", "block_ports"]


def block_ports(component):
    """``(inputs, outputs)`` of a component: lists of ``(name, value)`` with dotted names."""
    inputs, outputs = [], []
    for path, member, value in component.signature.flatten(component):
        name = ".".join(str(p) for p in path)
        (inputs if member.flow == In else outputs).append((name, Value.cast(value)))
    return inputs, outputs


class BoundaryTop(ArgumentChecked, Elaboratable):
    """``block`` between boundary registers, clocked by ``pll`` (a PLLPlan)."""

    @classmethod
    def check(cls, block, board, pll, *, board_ports=None):
        inputs, outputs = block_ports(block)
        unknown = set(board_ports or {}) - {n for n, _ in inputs + outputs}
        if unknown:
            raise ValueError(f"board_ports names no port of the block: {sorted(unknown)}")

    def __init__(self, block, board, pll, *, board_ports=None):
        self.board_ports = dict(board_ports or {})
        inputs, outputs = block_ports(block)
        self.block = block
        self.board = board
        self.clock = PLLDomain(pll)
        self.pinned = [(n, v, "i") for n, v in inputs if n in self.board_ports] + \
                      [(n, v, "o") for n, v in outputs if n in self.board_ports]
        self.inputs = [(n, v) for n, v in inputs if n not in self.board_ports]
        self.outputs = [(n, v) for n, v in outputs if n not in self.board_ports]
        self.in_bits = sum(len(v) for _, v in self.inputs)
        self.out_bits = sum(len(v) for _, v in self.outputs)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.clock.domain
        m.submodules.clock = self.clock
        m.submodules.dut = self.block

        # Ports on real pins.
        requested = {}

        def pin(res, num, sub, direction):
            if (res, num) not in requested:
                requested[res, num] = platform.request(res, num, dir="-")
            port = requested[res, num]
            if sub is not None:
                port = getattr(port, sub)
            buf = io.Buffer(direction, port)
            m.submodules[f"{res}_{num}{'_' + sub if sub else ''}"] = buf
            return buf

        for name, value, direction in self.pinned:
            res, num, *sub = self.board_ports[name]
            buf = pin(res, num, sub[0] if sub else None, direction)
            if direction == "i":
                m.d.comb += value.eq(buf.i)
            else:
                m.d.comb += buf.o.eq(value)

        # Inputs: a pin-fed shift register, its bits wired straight to the ports.
        stim = pin(*self.board.stim_pin, None, "i")
        stim_sync = Signal()
        m.submodules.stim_sync = FFSynchronizer(stim.i, stim_sync, reset_less=True)
        if self.in_bits:
            seed = int("5A" * (self.in_bits // 8 + 1), 16) & ((1 << self.in_bits) - 1)
            chain = Signal(self.in_bits, init=seed, reset_less=True)
            m.d.sync += chain.eq(Cat(stim_sync ^ chain[-1], chain[:-1]))
            pos = 0
            for _, value in self.inputs:
                m.d.comb += value.eq(chain[pos:pos + len(value)])
                pos += len(value)

        # Outputs: registered, then a pipelined XOR tree down to one pin.
        level = Signal(max(1, self.out_bits), reset_less=True)
        if self.out_bits:
            m.d.sync += level.eq(Cat(v for _, v in self.outputs))
        stage = 0
        while len(level) > 1:
            groups = [level[i:i + 4] for i in range(0, len(level), 4)]
            nxt = Signal(len(groups), name=f"xor_tree_{stage}", reset_less=True)
            m.d.sync += nxt.eq(Cat(g.xor() for g in groups))
            level, stage = nxt, stage + 1
        observe = pin(*self.board.observe_pin, None, "o")
        m.d.comb += observe.o.eq(level)
        return m
