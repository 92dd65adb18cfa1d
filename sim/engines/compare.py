"""Bit-for-bit comparison of hardware results with the golden model, reporting the
first difference with its coordinates."""

from __future__ import annotations

import numpy as np

__all__ = ["Mismatch", "first_difference", "describe"]


class Mismatch(AssertionError):
    """Hardware and golden model differ; ``where`` holds the coordinates."""

    def __init__(self, message, where):
        super().__init__(message)
        self.where = where


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype == np.float16 else a.astype(np.int64)


def describe(value):
    value = np.asarray(value)
    if value.dtype == np.float16:
        return f"{float(value)!r} (0x{int(value.view(np.uint16)):04x})"
    return str(int(value))


def first_difference(what: str, got, want, *, kind: str):
    """Raise :class:`Mismatch` at the first element where ``got`` and ``want`` differ
    (fp16 compared by bit pattern). ``kind`` names the axes: ``"W"`` (neuron, input)
    or ``"trace"`` (time step, neuron)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise Mismatch(f"{what}: shape {got.shape} differs from the golden {want.shape}", {})
    diff = np.argwhere(_bits(got) != _bits(want))
    if not diff.size:
        return
    idx = tuple(int(x) for x in diff[0])
    names = ("neuron", "input") if kind == "W" else ("time step", "neuron")
    where = dict(zip(names, idx))
    loc = ", ".join(f"{k} {v}" for k, v in where.items())
    raise Mismatch(f"{what}: first difference at {loc}: hardware {describe(got[idx])}, "
                   f"golden {describe(want[idx])} ({len(diff)} elements differ)", where)
