"""Flag helpers shared by the subcommands: absl-style booleans, as Google's scripts take them."""

from __future__ import annotations

import argparse


def parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_bool_flag(parser, name: str, default: bool, help: str) -> None:
    """``--name``, ``--name=true|false`` and absl's ``--noname``, like Google's flags."""
    dest = name.lstrip("-")
    parser.add_argument(f"--{dest}", dest=dest, nargs="?", const=True, default=default,
                        type=parse_bool, metavar="{true,false}", help=help)
    parser.add_argument(f"--no{dest}", dest=dest, action="store_false",
                        help=argparse.SUPPRESS)
