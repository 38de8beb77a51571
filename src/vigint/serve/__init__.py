"""Serve: the composition root of `vigint serve`, which builds the stages and wires them to one shared
state."""
