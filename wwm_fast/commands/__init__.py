"""Subcommands of the ``wwm-fast`` CLI, one module each (see wwm_fast/cli.py)."""
