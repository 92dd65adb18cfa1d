"""FPGA platforms, top-levels and the bitstream flow of spikeforge."""
