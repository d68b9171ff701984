"""accelsim.diffusion."""
