"""The routing function of the mesh and its checks, in plain Python.

Ports are numbered :data:`NORTH`, :data:`EAST`, :data:`SOUTH`, :data:`WEST`,
:data:`LOCAL`. ``x`` is the column (east is ``x + 1``), ``y`` the row (south is
``y + 1``); node ``(0, 0)`` is the north-west corner.

Routing is dimension ordered (XY): a packet first travels along its row until
its column is right, then along the column, then leaves at the local port.
A destination outside the mesh (possible when ``rows`` or ``cols`` is not a
power of two) is treated as the nearest node inside it: the packet is delivered
to an edge node's local port instead of being sent off the mesh.

:func:`check_routing` is run by :class:`~spikeforge.hdl.noc.mesh.Mesh` before
elaboration. It walks every (source, destination) pair through the routing
function and proves:

* every pair is reachable, by a minimal path (``|dx| + |dy|`` hops);
* every turn taken is in :data:`ALLOWED_TURNS`, the turn set the router builds
  its crossbar from (so the hardware has a path for every packet);
* the channel dependency graph (an edge from link ``a`` to link ``b`` when a
  packet may hold ``a`` while it waits for ``b``) has no cycle, which by
  Dally and Seitz's theorem makes wormhole routing on it deadlock-free.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "NORTH", "EAST", "SOUTH", "WEST", "LOCAL", "PORT_NAMES", "OPPOSITE", "STEP",
    "ALLOWED_TURNS", "RoutingError", "xy_route", "path", "check_routing", "hops",
]

NORTH, EAST, SOUTH, WEST, LOCAL = range(5)
PORT_NAMES = ("north", "east", "south", "west", "local")
#: The input port of the neighbour that an output port leads to.
OPPOSITE = {NORTH: SOUTH, SOUTH: NORTH, EAST: WEST, WEST: EAST}
#: (dx, dy) of one hop out of each mesh port.
STEP = {NORTH: (0, -1), EAST: (1, 0), SOUTH: (0, 1), WEST: (-1, 0)}

#: output port -> input ports that may send to it under XY routing. A packet
#: arriving from the west travels east, so it can only continue east, turn to
#: the Y dimension or leave; once in Y it never turns back to X. The local
#: port may send anywhere (including back to itself).
ALLOWED_TURNS: dict[int, frozenset[int]] = {
    EAST: frozenset({WEST, LOCAL}),
    WEST: frozenset({EAST, LOCAL}),
    NORTH: frozenset({SOUTH, EAST, WEST, LOCAL}),
    SOUTH: frozenset({NORTH, EAST, WEST, LOCAL}),
    LOCAL: frozenset({NORTH, EAST, SOUTH, WEST, LOCAL}),
}


class RoutingError(ValueError):
    """The routing function fails a check; the message names the pair or the cycle."""


def xy_route(x: int, y: int, dst_x: int, dst_y: int, rows: int, cols: int) -> int:
    """Output port taken at router ``(x, y)`` by a packet for ``(dst_x, dst_y)``.

    The hardware in :mod:`~spikeforge.hdl.noc.router` computes exactly this (the
    tests compare them exhaustively).
    """
    if x < cols - 1 and dst_x > x:
        return EAST
    if x > 0 and dst_x < x:
        return WEST
    if y < rows - 1 and dst_y > y:
        return SOUTH
    if y > 0 and dst_y < y:
        return NORTH
    return LOCAL


def hops(src: tuple[int, int], dst: tuple[int, int]) -> int:
    """Router-to-router hops between two nodes (Manhattan distance)."""
    return abs(src[0] - dst[0]) + abs(src[1] - dst[1])


def path(src: tuple[int, int], dst: tuple[int, int], rows: int, cols: int,
         route=xy_route) -> list[tuple[int, int, int, int]]:
    """The hops of a packet as ``(x, y, in_port, out_port)`` per router, ending at LOCAL."""
    x, y = src
    in_port = LOCAL
    hops_taken = []
    for _ in range(rows * cols + 1):
        out = route(x, y, dst[0], dst[1], rows, cols)
        hops_taken.append((x, y, in_port, out))
        if out == LOCAL:
            return hops_taken
        dx, dy = STEP[out]
        x, y = x + dx, y + dy
        if not (0 <= x < cols and 0 <= y < rows):
            raise RoutingError(f"a packet from {src} to {dst} leaves the {rows}x{cols} mesh "
                               f"at ({x}, {y})")
        in_port = OPPOSITE[out]
    raise RoutingError(f"a packet from {src} to {dst} never arrives (livelock)")


@lru_cache(maxsize=None)
def check_routing(rows: int, cols: int, route=xy_route) -> dict:
    """Prove the routing function correct and deadlock-free on a ``rows x cols`` mesh.

    Raises :class:`RoutingError` naming the first problem; returns a summary
    (``pairs``, ``channels``, ``dependencies``, ``max_hops``).
    """
    if rows < 1 or cols < 1:
        raise RoutingError(f"a mesh needs at least one row and column, not {rows}x{cols}")
    deps: dict[tuple, set] = {}
    channels: set = set()
    max_hops = 0
    nodes = [(x, y) for y in range(rows) for x in range(cols)]
    for src in nodes:
        for dst in nodes:
            p = path(src, dst, rows, cols, route)
            x, y, _, _ = p[-1]
            if (x, y) != dst:
                raise RoutingError(f"a packet from {src} to {dst} arrives at ({x}, {y})")
            if len(p) - 1 != hops(src, dst):
                raise RoutingError(f"the route from {src} to {dst} takes {len(p) - 1} hops, "
                                   f"not the minimal {hops(src, dst)}")
            max_hops = max(max_hops, len(p) - 1)
            held = None  # the channel the packet's head has acquired last
            for (x, y, in_port, out) in p:
                if in_port not in ALLOWED_TURNS[out]:
                    raise RoutingError(
                        f"the route from {src} to {dst} turns from {PORT_NAMES[in_port]} to "
                        f"{PORT_NAMES[out]} at ({x}, {y}), which the router does not build")
                channel = (x, y, out)
                channels.add(channel)
                if held is not None:
                    deps.setdefault(held, set()).add(channel)
                held = channel
    cycle = _find_cycle(deps)
    if cycle:
        text = " -> ".join(f"({x},{y}).{PORT_NAMES[p]}" for x, y, p in cycle)
        raise RoutingError(f"the channel dependency graph of the {rows}x{cols} mesh has a "
                           f"cycle, so it can deadlock: {text}")
    return {"pairs": len(nodes) ** 2, "channels": len(channels),
            "dependencies": sum(len(v) for v in deps.values()), "max_hops": max_hops}


def _find_cycle(graph: dict) -> list | None:
    """A cycle of ``graph`` (node -> successors) as a list of nodes, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour: dict = {}
    for start in graph:
        if colour.get(start, WHITE) != WHITE:
            continue
        stack = [(start, iter(graph.get(start, ())))]
        trail = [start]
        colour[start] = GREY
        while stack:
            node, successors = stack[-1]
            for nxt in successors:
                state = colour.get(nxt, WHITE)
                if state == GREY:
                    return trail[trail.index(nxt):] + [nxt]
                if state == WHITE:
                    colour[nxt] = GREY
                    trail.append(nxt)
                    stack.append((nxt, iter(graph.get(nxt, ()))))
                    break
            else:
                colour[node] = BLACK
                trail.pop()
                stack.pop()
    return None
