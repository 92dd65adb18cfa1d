"""Golden model, Verilator runner, cocotb testbenches and host driver of spikeforge."""
