"""Sinks: where signals and metrics leave the engine."""
