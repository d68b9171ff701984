"""accelsim.faults."""
