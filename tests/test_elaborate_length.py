"""Every ``elaborate`` under ``hdl/`` fits in 150 lines: a longer one is split into
components with signatures of their own (docs/architecture.md maps them)."""

from __future__ import annotations

import ast
from pathlib import Path

HDL = Path(__file__).resolve().parents[1] / "hdl"
LIMIT = 150


def elaborates():
    """``{"file:Class": lines}`` of every ``elaborate`` method under ``hdl/``."""
    found = {}
    for path in sorted(HDL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "elaborate":
                        key = f"{path.relative_to(HDL)}:{node.name}"
                        found[key] = item.end_lineno - item.lineno + 1
    return found


def test_every_elaborate_is_at_most_150_lines():
    found = elaborates()
    # the walk sees the components (the core's, the inference core's, the system's)
    for key in ("core/core.py:Core", "inference/engine.py:InferenceEngine",
                "dispatch.py:Dispatcher"):
        assert key in found
    assert {key: n for key, n in found.items() if n > LIMIT} == {}
