"""Mesh network-on-chip."""
