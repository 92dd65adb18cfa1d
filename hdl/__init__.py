"""Amaranth modules of the spikeforge accelerator."""
