"""Subcommands of the ``accelsim`` CLI that run models (torch imported lazily)."""
