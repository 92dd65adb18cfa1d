"""Networks in and out of spikeforge: NIR graphs (:mod:`spikeforge.sim.interop.nir_io`)."""
