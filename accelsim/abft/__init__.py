"""accelsim.abft."""
