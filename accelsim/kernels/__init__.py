"""numba kernels (plain arrays in, no validation; wrappers live elsewhere)."""
