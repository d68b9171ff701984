"""accelsim.campaign."""
