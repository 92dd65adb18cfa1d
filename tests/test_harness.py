"""The Verilator harness: build, cache, run, and report failures."""

import pytest
from amaranth import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.sim.verilator import harness

pytestmark = pytest.mark.verilator

SELFTEST = "spikeforge.sim.verilator.cocotb_tests.harness_selftest"


class StreamFIFO(wiring.Component):
    def __init__(self, depth=4):
        self.depth = depth
        super().__init__({"i": In(stream.Signature(16)), "o": Out(stream.Signature(16))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.f = f = fifo.SyncFIFOBuffered(width=16, depth=self.depth)
        m.d.comb += [
            f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
            self.o.payload.eq(f.r_data), self.o.valid.eq(f.r_rdy), f.r_en.eq(self.o.ready),
        ]
        return m


def test_verilator_found():
    env = harness.verilator_env()
    assert env["VERILATOR_ROOT"]
    assert "verilator" in env["PATH"]


def test_stream_fifo_runs_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path))
    first = harness.run(StreamFIFO(), name="fifo", test_module=SELFTEST,
                        args={"count": 3000, "in_stall": 0.3, "out_stall": 0.4})
    assert (first.tests, first.failed) == (1, 0)
    stamp = first.build_dir / "spikeforge.stamp"
    mtime = stamp.stat().st_mtime_ns
    second = harness.run(StreamFIFO(), name="fifo", test_module=SELFTEST, args={"count": 500})
    assert second.build_dir == first.build_dir
    assert stamp.stat().st_mtime_ns == mtime, "the cached build was rebuilt"
    other = harness.build(StreamFIFO(depth=8), name="fifo")
    assert other != first.build_dir, "a different configuration reused another's build"


def test_failing_cocotb_test_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path))

    with pytest.raises(harness.HarnessError, match="failed"):
        harness.run(StreamFIFO(depth=1), name="fifo", test_module=SELFTEST,
                    args={"count": 200, "corrupt_expectation": True})
