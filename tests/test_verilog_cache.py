"""harness.elaborate_cached: the Verilog text of a key is elaborated once and read back
after, and a different key (or top name) elaborates anew."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.sim.verilator import harness


class Inverter(wiring.Component):
    i: In(4)
    o: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(~self.i)
        return m


def test_verilog_is_kept_by_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path))
    made = []

    def make():
        made.append(1)
        return Inverter()

    first = harness.elaborate_cached(make, key="a", name="inv")
    assert "module inv" in first and len(made) == 1
    assert harness.elaborate_cached(make, key="a", name="inv") == first and len(made) == 1
    assert list((tmp_path / "verilator" / "verilog").glob("inv-*.v"))
    harness.elaborate_cached(make, key="b", name="inv")
    assert len(made) == 2
    other = harness.elaborate_cached(make, key="a", name="inv2")
    assert len(made) == 3 and "module inv2" in other
