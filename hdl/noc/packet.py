"""Packet and flit formats of the mesh network-on-chip, shared by the RTL and Python.

A *packet* is a header flit followed by ``length`` payload flits (``length`` may
be 0: a header-only packet). Every flit is ``flit_width`` bits of data; on the
links between routers each flit also carries a ``last`` bit that marks the
packet's tail (the router needs nothing else to keep packets contiguous).

The header flit's data is :attr:`PacketFormat.header`, an
:class:`amaranth.lib.data.StructLayout` (least significant field first)::

    dst_x | dst_y | src_x | src_y | type | length | aux

``dst_x``/``src_x`` are column numbers (0 = west), ``dst_y``/``src_y`` row
numbers (0 = north), each as wide as the mesh needs (at least one bit).
``type`` is 4 bits for the cores' own use (command, spike, gradient, ...),
``length`` is the number of payload flits (8 bits, at most 255; fewer when a
narrow flit has no room: :attr:`PacketFormat.max_length`) and ``aux``
is whatever is left of the header flit: free for the sender (for example a
neuron index or a time step); the network does not look at it.

Python code never packs bits by hand: :meth:`PacketFormat.pack_header`,
:meth:`PacketFormat.unpack_header` and :meth:`PacketFormat.packet` use the
same layouts as the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from amaranth.hdl import unsigned
from amaranth.lib import data, stream
from amaranth.utils import ceil_log2

from ..config import ConfigError, Features, Implementation

__all__ = ["PacketFormat", "TYPE_BITS", "LENGTH_BITS", "Header"]

#: Width of the header's ``type`` field.
TYPE_BITS = 4
#: Width of the header's ``length`` field (payload flits after the header) when the
#: flit has room; narrower flits get what is left after the other fields.
LENGTH_BITS = 8


@dataclass(frozen=True)
class Header:
    """A packet header as Python values (see :attr:`PacketFormat.header`)."""
    dst_x: int
    dst_y: int
    src_x: int = 0
    src_y: int = 0
    type: int = 0
    length: int = 0
    aux: int = 0


def _bits(n: int) -> int:
    """Bits needed for the numbers 0 .. n-1 (at least one)."""
    return max(1, ceil_log2(n))


@dataclass(frozen=True)
class PacketFormat:
    """Flit and header layouts for a ``rows x cols`` mesh with ``flit_width``-bit flits."""

    rows: int
    cols: int
    flit_width: int

    def __post_init__(self):
        for name in ("rows", "cols", "flit_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        need = 2 * (self.x_bits + self.y_bits) + TYPE_BITS + 1
        if need > self.flit_width:
            raise ConfigError(
                f"flit_width {self.flit_width} is too narrow for the header of a "
                f"{self.rows}x{self.cols} mesh, which needs {need} bits")

    @classmethod
    def from_config(cls, features: Features, implementation: Implementation) -> "PacketFormat":
        return cls(features.rows, features.cols, implementation.flit_width)

    # -- layouts ---------------------------------------------------------------------------

    @property
    def x_bits(self) -> int:
        return _bits(self.cols)

    @property
    def y_bits(self) -> int:
        return _bits(self.rows)

    @property
    def length_bits(self) -> int:
        return min(LENGTH_BITS, self.flit_width - 2 * (self.x_bits + self.y_bits) - TYPE_BITS)

    @property
    def aux_bits(self) -> int:
        return self.flit_width - 2 * (self.x_bits + self.y_bits) - TYPE_BITS - self.length_bits

    @property
    def max_length(self) -> int:
        return (1 << self.length_bits) - 1

    @cached_property
    def header(self) -> data.StructLayout:
        """Layout of the header flit's data (exactly ``flit_width`` bits)."""
        return data.StructLayout({
            "dst_x": unsigned(self.x_bits),
            "dst_y": unsigned(self.y_bits),
            "src_x": unsigned(self.x_bits),
            "src_y": unsigned(self.y_bits),
            "type": unsigned(TYPE_BITS),
            "length": unsigned(self.length_bits),
            "aux": unsigned(self.aux_bits),
        })

    @cached_property
    def flit(self) -> data.StructLayout:
        """A flit on a link between routers: data and the tail mark."""
        return data.StructLayout({"data": unsigned(self.flit_width), "last": unsigned(1)})

    @cached_property
    def beat(self) -> data.StructLayout:
        """A flit as a network interface delivers it: data, header mark and tail mark."""
        return data.StructLayout({"data": unsigned(self.flit_width),
                                  "first": unsigned(1), "last": unsigned(1)})

    def link_signature(self) -> stream.Signature:
        """The stream of flits between two routers (and between a router and its NI)."""
        return stream.Signature(self.flit)

    def tx_signature(self) -> stream.Signature:
        """What a core sends into its network interface: a header word, then ``length`` words."""
        return stream.Signature(unsigned(self.flit_width))

    def rx_signature(self) -> stream.Signature:
        """What a network interface delivers to its core: flits with first/last marks."""
        return stream.Signature(self.beat)

    # -- Python side -------------------------------------------------------------------------

    def node(self, x: int, y: int) -> int:
        """Node number of column ``x``, row ``y`` (row-major, as the mesh's port arrays)."""
        return y * self.cols + x

    def coords(self, node: int) -> tuple[int, int]:
        """``(x, y)`` of node number ``node``."""
        return node % self.cols, node // self.cols

    def pack_header(self, header: Header | None = None, **fields) -> int:
        """The header flit's data as an integer, from a :class:`Header` or field values."""
        if header is not None:
            fields = {**header.__dict__, **fields}
        for name, value in fields.items():
            if name not in self.header.members:
                raise ValueError(f"unknown header field {name!r}; allowed: {list(self.header.members)}")
            width = self.header.members[name].width
            if not 0 <= value < (1 << width):
                raise ValueError(f"header field {name}={value} does not fit in {width} bits")
        return self.header.const(fields).as_value().value

    def unpack_header(self, word: int) -> Header:
        """The :class:`Header` held in a header flit's data."""
        view = self.header.from_bits(word)
        return Header(**{name: int(getattr(view, name)) for name in self.header.members})

    def packet(self, *, dst: tuple[int, int], payload=(), src: tuple[int, int] = (0, 0),
               type: int = 0, aux: int = 0) -> list[int]:
        """The words a core sends for one packet: header, then the payload words."""
        payload = [int(p) for p in payload]
        if len(payload) > self.max_length:
            raise ValueError(f"a packet holds at most {self.max_length} payload flits, "
                             f"not {len(payload)}")
        mask = (1 << self.flit_width) - 1
        for p in payload:
            if not 0 <= p <= mask:
                raise ValueError(f"payload word {p:#x} does not fit in {self.flit_width} bits")
        head = self.pack_header(dst_x=dst[0], dst_y=dst[1], src_x=src[0], src_y=src[1],
                                type=type, length=len(payload), aux=aux)
        return [head, *payload]

    def pack_flit(self, data_word: int, last: bool) -> int:
        return self.flit.const({"data": data_word, "last": int(last)}).as_value().value

    def unpack_beat(self, word: int) -> tuple[int, bool, bool]:
        """``(data, first, last)`` of an rx beat."""
        view = self.beat.from_bits(word)
        return int(view.data), bool(view.first), bool(view.last)
