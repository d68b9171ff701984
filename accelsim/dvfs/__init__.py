"""accelsim.dvfs."""
