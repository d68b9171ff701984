"""accelsim.torch."""
