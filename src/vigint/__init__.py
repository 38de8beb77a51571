"""Vigint: cameras stream H.264 to a server that detects incidents and alerts with a clip."""

__version__ = "0.1.0"
