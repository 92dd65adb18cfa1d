"""The routing check and the packet format (pure Python, fast)."""

import pytest

from spikeforge.hdl.config import ConfigError, Features, Implementation
from spikeforge.hdl.noc import routing
from spikeforge.hdl.noc.packet import Header, PacketFormat
from spikeforge.hdl.noc.routing import (
    EAST, LOCAL, NORTH, SOUTH, WEST, RoutingError, check_routing, path, xy_route)


@pytest.mark.parametrize("rows,cols", [(1, 1), (1, 2), (2, 2), (3, 3), (4, 4), (3, 5), (8, 8)])
def test_xy_routing_reachable_minimal_and_acyclic(rows, cols):
    summary = check_routing(rows, cols)
    assert summary["pairs"] == (rows * cols) ** 2
    assert summary["max_hops"] == rows + cols - 2


def test_xy_goes_x_first():
    assert [h[3] for h in path((0, 0), (2, 1), 3, 3)] == [EAST, EAST, SOUTH, LOCAL]
    assert [h[3] for h in path((2, 2), (0, 0), 3, 3)] == [WEST, WEST, NORTH, NORTH, LOCAL]


def test_off_mesh_destination_delivered_at_edge():
    # A 3-column mesh has 2-bit x: x = 3 does not exist and ends at column 2.
    assert xy_route(2, 0, 3, 0, 1, 3) == LOCAL
    check_routing(1, 3)


def _yx_route(x, y, dst_x, dst_y, rows, cols):
    if dst_y > y:
        return SOUTH
    if dst_y < y:
        return NORTH
    if dst_x > x:
        return EAST
    if dst_x < x:
        return WEST
    return LOCAL


def test_check_rejects_turns_the_router_lacks():
    with pytest.raises(RoutingError, match="does not build"):
        check_routing(2, 2, _yx_route)


def test_check_finds_a_dependency_cycle(monkeypatch):
    # With every turn allowed, a routing that mixes XY and YX closes a cycle.
    monkeypatch.setattr(routing, "ALLOWED_TURNS", {q: frozenset(range(5)) for q in range(5)})

    def mixed(x, y, dst_x, dst_y, rows, cols):
        if (x + y) % 2:
            return _yx_route(x, y, dst_x, dst_y, rows, cols)
        return xy_route(x, y, dst_x, dst_y, rows, cols)
    with pytest.raises(RoutingError, match="cycle"):
        routing.check_routing.__wrapped__(3, 3, mixed)


def test_check_finds_unreachable():
    def stuck(x, y, dst_x, dst_y, rows, cols):
        return LOCAL
    with pytest.raises(RoutingError, match="arrives at"):
        check_routing(2, 2, stuck)


def test_check_finds_packets_leaving_the_mesh():
    def off(x, y, dst_x, dst_y, rows, cols):
        return WEST if (x, y) != (dst_x, dst_y) else LOCAL
    with pytest.raises(RoutingError, match="leaves"):
        check_routing(2, 2, off)


def test_header_round_trip_and_widths():
    fmt = PacketFormat.from_config(Features(rows=4, cols=4), Implementation(flit_width=32))
    assert fmt.header.size == 32 and fmt.flit.size == 33
    h = Header(dst_x=3, dst_y=2, src_x=1, src_y=0, type=9, length=200, aux=0xABC)
    assert fmt.unpack_header(fmt.pack_header(h)) == h
    words = fmt.packet(dst=(1, 3), payload=[5, 6], type=2)
    assert len(words) == 3 and fmt.unpack_header(words[0]).length == 2
    assert fmt.coords(fmt.node(3, 1)) == (3, 1)


def test_narrow_flits_shrink_the_length_field():
    fmt = PacketFormat(4, 4, 16)
    assert fmt.max_length == 15 and fmt.aux_bits == 0
    with pytest.raises(ValueError, match="at most 15"):
        fmt.packet(dst=(0, 0), payload=[0] * 16)
    with pytest.raises(ConfigError, match="too narrow"):
        PacketFormat(32, 32, 16)


def test_bad_header_values_are_named():
    fmt = PacketFormat(2, 2, 32)
    with pytest.raises(ValueError, match="dst_x=2 does not fit"):
        fmt.pack_header(dst_x=2, dst_y=0)
    with pytest.raises(ValueError, match="unknown header field"):
        fmt.pack_header(dest=1)
