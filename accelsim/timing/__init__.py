"""Timing model: delay vs voltage, data-dependent sensitized delay, variation, error probability."""
