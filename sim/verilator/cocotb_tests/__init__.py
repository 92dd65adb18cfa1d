"""cocotb test modules, run on Verilator through :mod:`spikeforge.sim.verilator.harness`."""
