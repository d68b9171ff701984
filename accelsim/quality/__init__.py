"""accelsim.quality."""
