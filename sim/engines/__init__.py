"""Training engines: the arithmetic of one training step on a golden model or on hardware."""
