# amaranth: UnusedElaboratable=no
"""The core's memories: what the lane datapath builds, against the table of
``scripts/core_memories.py`` and the configuration's needs."""

import pytest
from amaranth.lib.memory import Memory

from spikeforge.hdl.config import preset
from spikeforge.hdl.core.defs import CoreGeometry
from spikeforge.hdl.core.lane_datapath import LaneDatapath

from script_loader import load_script


def _script():
    return load_script("core_memories")


def _width(mem):
    from amaranth.hdl import Shape
    return Shape.cast(mem.shape).width


def _memories_of(cfg):
    geo = CoreGeometry(cfg)
    dp = LaneDatapath(geo)
    mems = {}
    elab = dp.elaborate(None)
    for name, sub in elab._named_submodules.items():
        sub = sub[0] if isinstance(sub, tuple) else sub
        if isinstance(sub, Memory):
            mems[name] = sub
    return geo, mems


@pytest.mark.parametrize("name", ["tiny", "digits", "digits-through", "inference"])
def test_the_table_describes_the_memories_the_datapath_builds(name):
    cfg = preset(name)
    geo, mems = _memories_of(cfg)
    P, TM = geo.lanes, geo.max_time_steps
    rows = {r["memory"]: r for r in _script().memories(geo, "now")}
    # the lane memories: one per bank (W, histories) or one of P lanes (dW, acc, du, u)
    for key, prefix in (("W", "w"), ("s history", "s"), ("m history", "m"),
                        ("du!=0 history", "nz")):
        banks = [mems[f"{prefix}{k}"] for k in range(P) if f"{prefix}{k}" in mems]
        if key not in rows:
            assert not banks, f"{name}: {key} is built but not needed"
            continue
        r = rows[key]
        assert len(banks) == P == r["banks"]
        for mem in banks:
            assert (mem.depth, _width(mem)) == (r["words"], r["width"]), key
            assert len(mem.read_ports) == r["read_ports"], key
            # whole words written: no bit-granular write enables
            assert all(p.signature.granularity in (None, r["width"]) for p in mem.write_ports)
    # the accumulators' written flags: rows of flags, one per acc group, written whole
    flags, r = mems["acc_written"], rows["acc written bits"]
    assert (flags.depth, _width(flags)) == (r["words"], r["width"])
    assert r["words"] * r["width"] == geo.acc_depth
    assert all(p.signature.granularity in (None, r["width"]) for p in flags.write_ports)
    for key, nm in (("dW", "dw"), ("acc", "acc"), ("du", "du"), ("u", "u")):
        if key not in rows:
            assert nm not in mems, f"{name}: {key} is built but not needed"
            continue
        mem, r = mems[nm], rows[key]
        assert (mem.depth, _width(mem)) == (r["words"], 16 * P), key
        assert len(mem.read_ports) == r["read_ports"], key
        assert [p.signature.granularity for p in mem.write_ports] == [16]


def test_memories_only_where_the_configuration_needs_them():
    _, digits = _memories_of(preset("digits"))
    _, through = _memories_of(preset("digits-through"))
    _, inference = _memories_of(preset("inference"))
    assert "u" not in digits and "u" in through        # potentials: through builds only
    for nm in ("dw", "du", "nz0"):                     # backward memories: training builds
        assert nm in digits and nm not in inference
    assert "m0" in inference and "s0" in inference     # the forward histories stay


def test_repacking_cuts_the_digits_core_memories():
    """Before: 161 DP16KD and 2,560 TRELLIS_DPR16X4, as Yosys 0.70 mapped the digits core
    (docs/core.md); the model reproduces them, and the repacked core needs fewer."""
    mod = _script()
    geo = CoreGeometry(preset("digits"))
    before = mod.totals(mod.memories(geo, "before"))
    now = mod.totals(mod.memories(geo, "now"))
    assert before["DP16KD"]["count"] == 161
    assert before["TRELLIS_DPR16X4"]["count"] == 2560
    assert now["DP16KD"]["count"] < 161
    assert now["TRELLIS_DPR16X4"]["count"] <= 640
    assert now["all"]["efficiency"] >= 0.5 > before["all"]["efficiency"]
