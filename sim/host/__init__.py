"""Host side of the host protocol: the frame driver and the device API over any transport."""
