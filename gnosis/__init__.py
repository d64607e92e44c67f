"""Gnosis: a streaming trading-signal engine."""

__version__ = "0.3.0"
