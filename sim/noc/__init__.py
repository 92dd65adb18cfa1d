"""Simulation rigs of the mesh network-on-chip: RTL traffic generators and checkers, their runner and the benchmark."""
