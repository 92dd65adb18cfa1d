"""Training engines: the arithmetic of one training step on a golden model or on hardware.

``base`` (the interface and its statistics), ``golden`` (the golden model and its
float64 twin), ``rtl`` (the Verilator model of one core, checked bit for bit),
``compare`` (the first difference between hardware and the golden model). The one
training loop that drives them is :mod:`spikeforge.sim.train`.
"""
