"""Loopitis: recurring HTTP callbacks with an honest record of every execution."""

__version__ = "0.1.0"
