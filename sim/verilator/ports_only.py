"""Verilator builds that expose only the top-level ports to cocotb.

cocotb's runner makes every signal of a design public (``--public-flat-rw``),
which on a large design (a core has tens of thousands of wires) makes the C++
symbol table take many minutes to compile and keeps Verilator from optimising
the model. Testbenches that drive only the top-level ports need no more:
:func:`public_ports_only` marks exactly the top module's ports public in the
Verilog text and :data:`BUILD_ARGS` turns the blanket option off again, for
``harness.run(None, verilog_text=..., extra_build_args=BUILD_ARGS)``.
"""

from __future__ import annotations

import re

__all__ = ["BUILD_ARGS", "public_ports_only", "elaborate"]

#: Verilator arguments that go with :func:`public_ports_only` (they follow cocotb's own).
BUILD_ARGS = ("--no-public-flat-rw",)

_PORT = re.compile(r"\s*(input|output|inout)\b.*;\s*$")


def public_ports_only(text: str, top: str) -> str:
    """``text`` with every port declaration of module ``top`` marked public."""
    out = []
    in_top = False
    found = False
    for line in text.splitlines():
        if line.startswith("module "):
            in_top = line.startswith(f"module {top}(")
            found |= in_top
        if in_top and _PORT.match(line):
            line = line.rstrip()[:-1] + " /*verilator public_flat_rw*/;"
        out.append(line)
    if not found:
        raise ValueError(f"the Verilog text has no module named {top!r}")
    return "\n".join(out) + "\n"


def elaborate(component, *, name: str) -> str:
    """The Verilog of ``component`` (top module ``name``) with only its ports public."""
    from spikeforge.sim.verilator import harness
    return public_ports_only(harness.elaborate(component, name=name), name)
