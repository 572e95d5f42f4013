"""Subcommands of the ``wwm-fast`` CLI, one module each (see wwm_fast/cli.py).

Each turns its flags into calls of the Python API and prints the result; none computes anything
the API does not (the CLI and ``import wwm_fast`` behave the same).
"""
