"""Verilator and cocotb: the build harness, the simulation transport, ports-only builds and the cocotb test modules."""
