"""accelsim: systolic-array accelerator simulator with V/f timing-error modeling."""

__version__ = "0.1.0"
